"""Progress: a bar in a real terminal (tmux), nothing in --json output, pipes or CI logs."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from anomaly import progress
from anomaly.cli import cli
from tests.conftest import make_series, need_binary, use_store
from tests.test_cli import TINY_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
ANOMALY = f"{shlex.quote(sys.executable)} -m anomaly"
DONE = "__anomaly_exit__"


class FakeClock:
    """Seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_rows_rate_and_time_left_and_is_drawn_at_most_every_tenth_of_a_second():
    clock, screen = FakeClock(), Terminal()
    bar = progress.ScoreProgress(screen, 1000, True, clock=clock)
    bar(0)
    clock.now += 2.0
    bar(500)
    clock.now += 0.05  # too soon after the last draw: not drawn
    bar(600)
    clock.now += 0.5
    bar(1000)
    bar.close()
    frames = screen.getvalue().split("\r")[1:]
    assert frames[0] == "  scoring [........................]   0%  0/1,000 rows  - rows/s  -:-- left\x1b[K"
    assert frames[1] == "  scoring [############............]  50%  500/1,000 rows  250 rows/s  0:02 left\x1b[K"
    assert "600/" not in screen.getvalue()
    assert frames[2].startswith("  scoring [########################] 100%  1,000/1,000 rows  392 rows/s  0:00 left")
    assert frames[-1] == "  scored  [########################] 100%  1,000 rows  392 rows/s  in 0:03\x1b[K\n"


def test_a_terminal_that_reports_no_width_cuts_nothing(monkeypatch: pytest.MonkeyPatch):
    # `script` makes a pseudo-terminal of size 0x0: the lines stay whole, as where the size is unknown.
    monkeypatch.setattr(progress.os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    screen = Terminal()
    screen.fileno = lambda: 1  # type: ignore[method-assign]
    line = progress.Line(screen, clock=FakeClock())
    line.show("scored 100% in 0:01", force=True)
    assert screen.getvalue() == "\rscored 100% in 0:01\x1b[K"
    monkeypatch.setattr(progress.os, "get_terminal_size", lambda fd: os.terminal_size((10, 5)))
    line.show("scored 100% in 0:01", force=True)
    assert screen.getvalue().endswith("\rscored 10\x1b[K")


def test_a_csv_estimate_is_marked_and_never_shows_more_than_all():
    line = progress.rows_line(1200, 1000, False, 1.0)
    assert "1,200/~1,200 rows" in line and "100%" in line and "0:00 left" in line
    assert progress.rows_line(10, None, False, 2.0) == "  scoring  10 rows  5 rows/s"


def test_expected_rows_is_exact_for_parquet_and_close_for_csv(tmp_path: Path):
    frame = make_series(30000, 0)
    frame.to_csv(tmp_path / "long.csv")
    frame.to_parquet(tmp_path / "long.parquet")
    frame.iloc[:50].to_csv(tmp_path / "short.csv")
    estimate, exact = progress.expected_rows(tmp_path / "long.csv")
    assert not exact and abs(estimate - 30000) < 300  # from the file size and the first MiB's lines
    assert progress.expected_rows(tmp_path / "long.parquet") == (30000, True)
    assert progress.expected_rows(tmp_path / "short.csv") == (50, False)  # read whole: counted
    assert progress.expected_rows(tmp_path / "missing.csv") == (None, False)


def test_progress_is_wanted_only_on_a_terminal_without_json_or_ci():
    assert progress.wanted(Terminal(), environ={})
    assert not progress.wanted(Terminal(), as_json=True, environ={})
    assert not progress.wanted(Terminal(), environ={"CI": "true"})
    assert not progress.wanted(io.StringIO(), environ={})


def test_train_batches_are_drawn_in_place_and_each_epoch_keeps_its_own_line():
    clock, screen = FakeClock(), Terminal()
    batches = progress.TrainProgress(screen, 2, clock=clock)
    batches.batch(1, 1, 4, 0.5)
    clock.now += 1
    batches.batch(1, 4, 4, 0.25)
    batches.clear()
    assert screen.getvalue().split("\r")[1:] == [
        "  epoch   1/2 [######..................] batch 1/4  loss 0.5000\x1b[K",
        "  epoch   1/2 [########################] batch 4/4  loss 0.2500\x1b[K",
        "\x1b[K",
    ]


# ------------------------------------------------------------------ a real terminal


def in_tmux(command: str, cwd: Path, timeout: float = 300.0) -> tuple[str, str]:
    """Run ``command`` in a new tmux pane (a real terminal, 200 columns); return the screen at
    the end (capture-pane) and everything written to the terminal (pipe-pane)."""
    tmux = need_binary("tmux", "apt-get install tmux")
    socket = f"anomaly-test-{uuid.uuid4().hex[:8]}"
    raw = cwd / f"{socket}.raw"
    shell = f"cd {shlex.quote(str(cwd))} && {command}; echo {DONE}$?; sleep 600"
    base = [tmux, "-L", socket]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([*base, "new-session", "-d", "-x", "200", "-y", "50", "-s", "t", shell], check=True, env=env)
    try:
        subprocess.run([*base, "pipe-pane", "-t", "t", "-o", f"cat >> {shlex.quote(str(raw))}"], check=True)
        deadline = time.monotonic() + timeout
        while True:
            screen = subprocess.run(
                [*base, "capture-pane", "-p", "-t", "t", "-S", "-200"], capture_output=True, text=True, check=True
            ).stdout
            if DONE in screen or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)
    assert f"{DONE}0" in screen, screen
    # Bytes, not text: reading text would turn the carriage returns into newlines.
    return screen, raw.read_bytes().decode(errors="replace") if raw.exists() else ""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """A trained tiny model and a file long enough for several chunks, in a store of their own."""
    directory = tmp_path_factory.mktemp("progress")
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, directory)
        make_series(400, 0).to_csv(directory / "plant.csv")
        make_series(12000, 1).to_csv(directory / "long.csv")
        result = CliRunner().invoke(cli, ["train", "plant.csv", *TINY_OPTIONS], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        yield directory


def test_score_draws_the_bar_in_a_real_terminal(store: Path, monkeypatch: pytest.MonkeyPatch):
    use_store(monkeypatch, store)
    screen, raw = in_tmux(f"env -u CI {ANOMALY} score long.csv --chunk-rows 1200", store)
    # What the terminal shows at the end: the bar, complete, above the summary.
    final = re.search(r"^  scored  \[#{24}\] 100%  12,000 rows  [\d.]+k? rows/s  in \d+:\d\d$", screen, re.M)
    assert final, screen
    assert screen.index(final.group(0)) < screen.index("Scored 12000 rows of long.csv")
    # What was drawn on the way, in place (carriage returns): the bar from 0 of the file's estimate.
    frames = raw.split("\r")
    assert any(re.match(r"  scoring \[\.{24}\]   0%  0/~\d{2},\d{3} rows  - rows/s  -:-- left", f) for f in frames), raw[:2000]


def test_train_draws_batches_in_a_real_terminal_and_keeps_the_epoch_lines(store: Path, monkeypatch: pytest.MonkeyPatch):
    use_store(monkeypatch, store)
    screen, raw = in_tmux(f"env -u CI {ANOMALY} train plant.csv {' '.join(TINY_OPTIONS)}", store)
    assert re.search(r"  epoch   1/3 \[[#.]{24}\] batch 1/\d+  loss \d+\.\d{4}", raw), raw[:2000]
    assert re.search(r"^  epoch   3/3  loss \d+\.\d{4}  val_loss", screen, re.M), screen
    assert " batch " not in screen  # cleared before each epoch's line


@pytest.mark.parametrize("how", ["--json", "CI=1"])
def test_no_bar_in_a_terminal_with_json_or_under_ci(store: Path, monkeypatch: pytest.MonkeyPatch, how: str):
    use_store(monkeypatch, store)
    env, options = ("env -u CI", "--json") if how == "--json" else ("env CI=1", "")
    screen, raw = in_tmux(f"{env} {ANOMALY} score long.csv --chunk-rows 1200 {options} 2>/dev/null", store)
    assert "Results: results/long_scores.csv" in screen or json.loads(screen.split(DONE)[0].strip().splitlines()[-1])
    assert "\r\x1b[K" not in raw and "scoring [" not in raw and "scored  [" not in raw
    if how == "--json":
        assert json.loads(screen.split(DONE)[0].strip().splitlines()[-1])["rows"] == 12000


@pytest.mark.slow
def test_no_bar_when_stdout_is_not_a_terminal(store: Path):
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=f"sqlite:///{store / 'mlflow.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "anomaly", "score", "long.csv", "--chunk-rows", "1200"],
        cwd=store,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Scored 12000 rows" in done.stdout
    for stream in (done.stdout, done.stderr):
        assert "\r" not in stream and "scoring [" not in stream and "scored  [" not in stream
