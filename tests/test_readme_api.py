"""The README's "Python API" block, run as it stands (with its data paths and a short fit)."""

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _api_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section holds one python block"
    return blocks[0]


@pytest.mark.slow
def test_the_readme_python_api_block_runs_and_streams_the_same_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = _api_block().replace('"demo-detector"', repr(str(tmp_path / "demo-detector")))
    namespace: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), namespace)
    # What the block claims in its comments: the streamed scores are the whole-series scores.
    whole = namespace["same"].score(namespace["test"].frame)["score"].to_numpy()
    np.testing.assert_array_equal(np.asarray(namespace["streamed"]), whole)
    np.testing.assert_array_equal(namespace["results"]["score"].to_numpy(), whole)
    assert set(np.unique(namespace["flags"])) <= {0, 1}
