"""Keeping runs reviewable: MLflow runs and models (``runs``), the pyfunc model MLflow loads
(``pyfunc``), run figures (``figures``), the local UI and the team server (``ui``, ``server``,
``server_check``), and the liveness of running runs (``liveness``). The only folder that
imports mlflow."""
