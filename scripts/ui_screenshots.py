"""Look at the MLflow UI as a user would: the experiment's runs, the latest scoring and training
runs with their Datasets panels, and their plots.

Usage, in the directory whose runs to show (after `bash scripts/demo`, the repository root):

    .venv/bin/python scripts/ui_screenshots.py [--out results/screenshots]

Starts `anomaly ui` on a free port, finds the latest scoring run and the training run it links
to, opens in headless Chromium (Debian's `chromium` package), in the UI's model-training views
(`?workflowType=machine_learning`, as the links `anomaly` prints do), the experiment's runs list,
the scoring run's page (its Datasets panel naming the scored file), its `plots/scores.png` and
`plots/events.png` artifacts, the training run's page and its `plots/training.png`, saves a
screenshot of each, and exits 1 if a page did not render (an expected text missing from the
rendered page, an artifact image missing, or a blank screenshot). Stops the UI at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
from matplotlib.image import imread

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,1200",
    "--virtual-time-budget=25000",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def chromium(binary: str, profile: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def capture(binary: str, url: str, png: Path, must_contain: list[str]) -> list[str]:
    """Screenshot ``url`` to ``png``; return the problems found (empty when it rendered)."""
    problems = []
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium(binary, profile, "--dump-dom", url).stdout
    with tempfile.TemporaryDirectory() as profile:
        chromium(binary, profile, f"--screenshot={png}", url)
    for text in must_contain:
        if text not in dom:
            problems.append(f"{url}: the rendered page does not contain {text!r}")
    if not png.exists():
        problems.append(f"{url}: no screenshot was written")
    elif float(np.std(imread(png)[..., :3])) < 0.02:
        problems.append(f"{png}: the screenshot is blank")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/screenshots"), help="where to save the PNGs")
    parser.add_argument("--chromium", default="chromium", help="Chromium binary (Debian: apt-get install chromium)")
    args = parser.parse_args()
    binary = shutil.which(args.chromium)
    if binary is None:
        print(
            f"error: {args.chromium!r} not found; install Debian's chromium package (apt-get install chromium)", file=sys.stderr
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ui = subprocess.Popen(
        [sys.executable, "-m", "anomaly", "ui", "--port", str(port)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        ready = ui.stdout.readline()
        if not ready.startswith("MLflow UI:"):
            print(f"error: anomaly ui did not start (exit code {ui.wait()})", file=sys.stderr)
            return 1
        runs = api(
            base,
            "runs/search",
            {
                "filter": "tags.`anomaly.kind` = 'score'",
                "order_by": ["attributes.start_time DESC"],
                "max_results": 1,
                "experiment_ids": [
                    e["experiment_id"] for e in api(base, "experiments/search", {"max_results": 1000})["experiments"]
                ],
            },
        )
        if not runs.get("runs"):
            print("error: no scoring run in this store; run `bash scripts/demo` first", file=sys.stderr)
            return 2
        run = runs["runs"][0]
        info, tags = run["info"], {t["key"]: t["value"] for t in run["data"]["tags"]}
        experiment, run_id, training = info["experiment_id"], info["run_id"], tags.get("anomaly.training_run_id")
        params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        scored_file = Path(params.get("data.file", "")).name
        page = f"{base}/#/experiments/{experiment}/runs"
        view = "?workflowType=machine_learning"
        shots = [
            ("experiment_runs.png", f"{page}{view}", [info["run_name"], ">Model registry<"]),
            ("score_run.png", f"{page}/{run_id}{view}", [info["run_name"], ">Datasets<", scored_file, ">scoring<"]),
            ("score_plot.png", f"{page}/{run_id}/artifacts/plots/scores.png{view}", ['alt="plots/scores.png" src="blob:']),
            ("events_plot.png", f"{page}/{run_id}/artifacts/plots/events.png{view}", ['alt="plots/events.png" src="blob:']),
        ]
        if training:
            shots.append(("train_run.png", f"{page}/{training}{view}", [">Datasets<", ">training<"]))
            shots.append(
                (
                    "training_plot.png",
                    f"{page}/{training}/artifacts/plots/training.png{view}",
                    ['alt="plots/training.png" src="blob:'],
                )
            )
        problems = []
        for name, url, must_contain in shots:
            found = capture(binary, url, args.out / name, must_contain)
            problems += found
            print(f"{'FAIL' if found else 'ok  '} {args.out / name}  <- {url}")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
