"""Every tutorial (jupytext percent-format .py) runs top to bottom; the demo runs end to end (README and docs
commands: test_docs_commands.py)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from gcsbi.demo.run import SHIPPED_POSTERIOR
from gcsbi.errors import GcsbiWarning

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    import jupytext

    nb = jupytext.read(path)  # a valid jupytext notebook ...
    assert nb.cells, f"{path.name} has no cells"
    monkeypatch.chdir(tmp_path)  # ... that runs as a script without writing into the repo
    runpy.run_path(str(path), run_name="__main__")


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED_POSTERIOR.is_file(), reason="shipped posterior not built yet")
def test_demo_output_is_clean(tmp_path):
    """``python -m gcsbi.demo`` as a user runs it: its whole output holds no warning line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "gcsbi.demo", "--out", str(tmp_path / "out"), "--num-samples",
                           "200", "--n-calibration", "10"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    warned = [line for line in lines if "warning" in line.lower()]
    assert not warned, warned


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED_POSTERIOR.is_file(), reason="shipped posterior not built yet")
def test_demo_runs(tmp_path, capsys):
    from gcsbi.demo.run import main

    assert main(["--out", str(tmp_path), "--num-samples", "200", "--n-calibration", "10"]) == 0
    text = capsys.readouterr().out
    assert "posterior" in text and "truth" in text
    for name in ("corner.png", "cluster.png", "calibration.png", "summary.csv", "posterior.zarr"):
        assert (tmp_path / name).exists(), name
