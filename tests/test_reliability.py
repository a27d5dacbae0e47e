"""Real processes against one store: concurrent training, and a training killed mid-epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_series
from tests.test_cli import TINY_OPTIONS

ROOT = Path(__file__).resolve().parent.parent


def anomaly(*args: str, cwd: Path) -> subprocess.Popen:
    """`python -m anomaly ARGS` as a user would run it, in ``cwd``, output captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "anomaly", *args], cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.mark.slow
def test_four_trainings_started_at_once_on_a_new_store_all_complete(mlflow_store: Path):
    from mlflow.tracking import MlflowClient

    from anomaly.detector import Detector
    from anomaly.tracking import runs as tracking

    make_series(300, 0).to_csv(mlflow_store / "plant.csv")
    # Click keeps the last --seed given, so each process gets its own seed.
    processes = [
        anomaly("train", "plant.csv", *TINY_OPTIONS, "--seed", str(seed), "--json", cwd=mlflow_store) for seed in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert len({r["run_id"] for r in results}) == 4
    assert sorted(r["model_uri"] for r in results) == [f"models:/anomaly-plant/{v}" for v in range(1, 5)]
    client = MlflowClient()
    for result in results:
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(result["run_id"], "val_loss")) >= 1
        assert "threshold" in run.data.metrics
        detector = Detector.load(tracking.resolve_model(result["model_uri"]).detector_dir)
        assert detector.threshold_ == pytest.approx(run.data.metrics["threshold"])


@pytest.mark.slow
def test_a_training_killed_mid_epoch_leaves_a_usable_store(mlflow_store: Path):
    from mlflow.tracking import MlflowClient

    make_series(300, 0).to_csv(mlflow_store / "plant.csv")
    make_series(100, 1).to_csv(mlflow_store / "new.csv")
    options = [*TINY_OPTIONS]
    options[options.index("--epochs") + 1] = "500"
    victim = anomaly("train", "plant.csv", *options, "--patience", "500", cwd=mlflow_store)
    for line in victim.stdout:  # progress lines: kill once training is well under way
        if "epoch   3/" in line:
            break
    else:
        pytest.fail(f"training ended before epoch 3: {victim.stderr.read()}")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("anomaly-plant").experiment_id])
    assert len(runs) == 1 and runs[0].info.status != "FINISHED"  # left RUNNING: it never finished
    assert len(client.get_metric_history(runs[0].info.run_id, "loss")) >= 2  # what it logged is readable

    trained = anomaly("train", "plant.csv", *TINY_OPTIONS, "--json", cwd=mlflow_store)
    out, err = trained.communicate(timeout=300)
    assert trained.returncode == 0, err
    # The next training on this host found the dead run and ended it honestly.
    assert f"note: run {runs[0].info.run_id} (train-plant) was left RUNNING by a dead process and marked FAILED" in err
    assert client.get_run(runs[0].info.run_id).info.status == "FAILED"
    assert json.loads(out.strip().splitlines()[-1])["model_uri"] == "models:/anomaly-plant/1"
    scored = anomaly("score", "new.csv", "--json", cwd=mlflow_store)
    out, err = scored.communicate(timeout=300)
    assert scored.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["rows"] == 100


@pytest.mark.slow
def test_a_training_stopped_with_kill_ends_its_run_killed_as_ctrl_c_does(mlflow_store: Path):
    from mlflow.tracking import MlflowClient

    make_series(300, 0).to_csv(mlflow_store / "plant.csv")
    options = [*TINY_OPTIONS]
    options[options.index("--epochs") + 1] = "500"
    victim = anomaly("train", "plant.csv", *options, "--patience", "500", cwd=mlflow_store)
    for line in victim.stdout:
        if "epoch   2/" in line:
            break
    else:
        pytest.fail(f"training ended before epoch 2: {victim.stderr.read()}")
    os.kill(victim.pid, signal.SIGTERM)  # what `kill`, `timeout` and service managers send
    _, err = victim.communicate(timeout=60)
    assert victim.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("anomaly-plant").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["anomaly.error"] == "stopped by SIGTERM (kill)"
