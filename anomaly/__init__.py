"""anomaly: find anomalies in multivariate time series with recurrent networks.

Importing this package is cheap: it loads neither TensorFlow nor MLflow nor click. The heavy
public names are resolved lazily on first access.
"""

from __future__ import annotations

from typing import Any

from anomaly.errors import AnomalyError, DataError, ModelNotFoundError, NotFittedError, SpecError

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "DataError",
    "Detector",
    "ModelNotFoundError",
    "NotFittedError",
    "SpecError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Detector pulls in scikit-learn (≈1.6 s); load it only when someone asks for it.
    if name == "Detector":
        from anomaly.detector import Detector

        return Detector
    raise AttributeError(f"module 'anomaly' has no attribute {name!r}")
