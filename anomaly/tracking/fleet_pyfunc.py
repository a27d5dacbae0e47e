"""The MLflow pyfunc model of a fleet, logged as "models from code" (no pickle).

MLflow runs this file itself when it loads the model. The fitted fleet travels as the model's
``fleet`` artifact (:meth:`anomaly.fleet.model.Fleet.save`): one detector per series, each loaded
when its series is first asked for.

The input holds rows of one or more series: the series column the fleet was trained with and
each series' features, the rows of each series in time order. The output has one row per input
row, in input order: the series column, ``score``, ``threshold``, ``is_anomaly`` and
``z_<feature>``, as ``anomaly score --series-col`` writes them.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FleetModel(PythonModel):
    """Pyfunc wrapper around :class:`anomaly.fleet.model.Fleet`: routes each row to its series' detector."""

    def load_context(self, context: Any) -> None:
        from anomaly.fleet.model import Fleet

        self.fleet = Fleet.load(context.artifacts["fleet"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

        from anomaly.errors import AnomalyError

        try:
            return self.fleet.score(pd.DataFrame(model_input))
        except AnomalyError as err:  # the input's problem, answered as a 400 with its one line
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None


mlflow.models.set_model(FleetModel())
