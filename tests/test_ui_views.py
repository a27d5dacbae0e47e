"""The MLflow UI as a user sees it, in headless Chromium, after a small training and scoring.

`anomaly ui` serves the store; Chromium renders the pages (`--dump-dom` after the UI's own
requests have settled) and the checks read the rendered DOM: the links `anomaly` prints open the
model-training views (not "Evaluations"), both runs are listed there, and each run page's
Datasets panel names its file, digest and context.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from anomaly.data.formats import fingerprint
from tests.conftest import make_series, need_binary, plant_spike, use_store
from tests.test_cli import TINY_OPTIONS, free_port

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1200",
    "--virtual-time-budget=30000",
]

pytestmark = pytest.mark.slow


def dom(binary: str, url: str) -> str:
    """The page at ``url`` as Chromium has rendered it (a fresh profile: the UI's defaults)."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True, text=True, timeout=180
        )
    return done.stdout


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def side_nav(html: str) -> list[tuple[str, bool]]:
    """The side navigation's entries: (label, is the current page)."""
    nav = html[html.find("<nav") : html.find("</nav>")]
    return [(text_of(m.group(2)).strip(), "aria-current" in m.group(1)) for m in re.finditer(r"<a ([^>]*)>(.*?)</a>", nav, re.S)]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory):
    binary = need_binary("chromium", "apt-get install chromium")
    directory = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, directory)
        make_series(400, 0).to_csv(directory / "plant.csv")
        plant_spike(make_series(200, 5), at=120).to_csv(directory / "new.csv")
        runner = CliRunner()
        trained = runner.invoke(cli, ["train", "plant.csv", *TINY_OPTIONS, "--json"], catch_exceptions=False)
        scored = runner.invoke(cli, ["score", "new.csv"], catch_exceptions=False)
        assert trained.exit_code == 0 and scored.exit_code == 0, trained.output + scored.output
        (directory / "pumps").mkdir()
        for seed, name in enumerate(["pump-a", "pump-b"]):
            make_series(300, seed).to_csv(directory / "pumps" / f"{name}.csv")
        fleet = runner.invoke(cli, ["train", "pumps", *TINY_OPTIONS, "--jobs", "1", "--json"], catch_exceptions=False)
        assert fleet.exit_code == 0, fleet.output
        link = re.search(r"open (http://\S+)", scored.stdout).group(1)  # what the user is told to open
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "anomaly", "ui", "--port", str(port)],
            cwd=directory,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stdout.readline().startswith("MLflow UI:")
            yield {
                "binary": binary,
                "base": f"http://127.0.0.1:{port}",
                "dir": directory,
                "link": link.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}"),
                "train_run": json.loads(trained.stdout.strip().splitlines()[-1])["run_id"],
                "fleet_run": json.loads(fleet.stdout.strip().splitlines()[-1])["run_id"],
            }
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def api(base: str, endpoint: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/{endpoint}", timeout=30) as response:
        return json.load(response)


def test_the_experiment_carries_the_model_training_kind(ui):
    experiment = api(ui["base"], "experiments/get-by-name?experiment_name=anomaly-plant")["experiment"]
    tags = {t["key"]: t["value"] for t in experiment["tags"]}
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_printed_link_opens_the_scoring_run_in_the_model_training_views_with_its_dataset(ui):
    assert ui["link"].endswith("?workflowType=machine_learning")
    html = dom(ui["binary"], ui["link"])
    nav = side_nav(html)
    labels = [label for label, _ in nav]
    assert ("Runs", True) in nav and "Model registry" in labels, nav
    assert "Evaluation runs" not in labels and "Judges" not in labels
    page = text_of(html[html.find("</nav>") :])
    assert "score-new" in page and "Evaluations" not in page
    digest = fingerprint(ui["dir"] / "new.csv")[:36]
    assert re.search(rf"Datasets new\.csv \({digest}\) scoring", page), page[:3000]


def test_without_the_link_parameter_mlflow_3_17_files_the_scoring_run_under_evaluations(ui):
    # Why the links carry ?workflowType=machine_learning: the UI's mode is its own switch
    # (GenAI at first), whatever the experiment's kind tag says.
    html = dom(ui["binary"], ui["link"].split("?")[0])
    assert ("Evaluation runs", True) in side_nav(html)


def test_the_runs_list_shows_training_and_scoring_with_their_datasets(ui):
    experiment_id = ui["link"].split("/experiments/")[1].split("/")[0]
    html = dom(ui["binary"], f"{ui['base']}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")
    page = text_of(html[html.find("</nav>") :])
    assert "train-plant" in page and "score-new" in page, page[:3000]
    train_digest = fingerprint(ui["dir"] / "plant.csv")[:36]
    assert f"plant.csv ({train_digest}) training" in page and "new.csv (" in page and ") scoring" in page
    assert "anomaly-plant v1" in page  # the training run's registered model version


def test_the_training_run_page_shows_its_dataset(ui):
    experiment_id = ui["link"].split("/experiments/")[1].split("/")[0]
    html = dom(ui["binary"], f"{ui['base']}/#/experiments/{experiment_id}/runs/{ui['train_run']}?workflowType=machine_learning")
    page = text_of(html[html.find("</nav>") :])
    digest = fingerprint(ui["dir"] / "plant.csv")[:36]
    assert "train-plant" in page and re.search(rf"Datasets plant\.csv \({digest}\) training", page), page[:3000]


def test_a_fleet_run_lists_its_series_as_child_runs_nested_under_it(ui):
    parent = api(ui["base"], f"runs/get?run_id={ui['fleet_run']}")["run"]
    experiment_id = parent["info"]["experiment_id"]
    base = f"{ui['base']}/#/experiments/{experiment_id}/runs"
    listed = text_of(dom(ui["binary"], f"{base}?workflowType=machine_learning"))
    # Collapsed under the fleet's run: one row, and the three runs counted.
    assert "train-fleet-pumps" in listed and "train-pump-a" not in listed, listed[:3000]
    assert "3 matching runs" in listed
    request = urllib.request.Request(
        f"{ui['base']}/api/2.0/mlflow/runs/search",
        data=json.dumps(
            {"experiment_ids": [experiment_id], "filter": f"tags.`mlflow.parentRunId` = '{ui['fleet_run']}'"}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        found = json.load(response)["runs"]
    assert sorted(r["info"]["run_name"] for r in found) == ["train-pump-a", "train-pump-b"]
    child = next(r for r in found if r["info"]["run_name"] == "train-pump-a")
    page = text_of(dom(ui["binary"], f"{base}/{child['info']['run_id']}?workflowType=machine_learning"))
    assert "Parent run train-fleet-pumps" in page, page[:3000]
    assert "Datasets pump-a.csv" in page or "pumps/pump-a.csv" in page, page[:3000]
