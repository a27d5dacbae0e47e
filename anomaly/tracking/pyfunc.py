"""The MLflow pyfunc model, logged as "models from code" (no pickle).

MLflow runs this file itself when it loads the model (``mlflow.pyfunc.load_model``, ``mlflow
models serve``), so it is the one module besides ``runs.py`` that imports mlflow. The fitted
detector travels as the model's ``detector`` artifact: ``network.keras`` + ``detector.json``.

The input is one contiguous series, rows in time order, with the feature columns the model was
trained on, and its times as a column where the model's network gets the time of day (its
signature then names that column; see :mod:`anomaly.detection.calendar`); the output has one
row per input row: ``score``, ``threshold``, ``is_anomaly`` and
``z_<feature>``, exactly as ``anomaly score`` writes them.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class AnomalyModel(PythonModel):
    """Pyfunc wrapper around :class:`anomaly.detector.Detector`."""

    def load_context(self, context: Any) -> None:
        from anomaly.detector import Detector

        self.detector = Detector.load(context.artifacts["detector"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

        from anomaly.errors import AnomalyError

        try:
            return self.detector.score(pd.DataFrame(model_input)).reset_index(drop=True)
        except AnomalyError as err:  # the input's problem, answered as a 400 with its one line
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(AnomalyModel())
