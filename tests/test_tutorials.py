"""Every tutorial (jupytext percent-format .py) runs top to bottom; the demo runs end to end (README and docs
commands: test_docs_commands.py)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from gcsbi.demo.run import SHIPPED_POSTERIOR

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
def test_demo_runs_and_its_output_is_clean(tmp_path):
    """``python -m gcsbi.demo`` as a user runs it: it writes its files and its whole output holds no warning line."""
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "gcsbi.demo", "--out", str(out), "--num-samples",
                           "200", "--n-calibration", "10"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    warned = [line for line in lines if "warning" in line.lower()]
    assert not warned, warned
    assert "posterior" in proc.stdout and "truth" in proc.stdout
    for name in ("corner.png", "cluster.png", "calibration.png", "summary.csv", "posterior.zarr"):
        assert (out / name).exists(), name
