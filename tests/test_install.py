"""A plain ``pip install`` (no Makefile, no extra data packages) can simulate and infer.

A fresh virtual environment gets ``pip install torch==2.13.0`` (the CPU wheel; any other torch
would be several GB of CUDA wheels), then ``pip install <repo>/jeans <repo>`` and nothing else,
non-editable. From a folder away from the repository it runs ``gcsbi simulate`` and
``gcsbi m31 infer B165``, and ``pip check`` must be clean. The bolometric-correction tables ship
inside gcsbi, so astroLACHESIS must not be needed (nor installed).

Skipped when the package index cannot be reached or when the only torch 2.13.0 to be had is a
CUDA build from the index. pip's cache makes reruns quicker.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
#: Not copied into the build tree: VCS, venvs, build output, and what no wheel contains.
_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                 "demo-output", "runs", "sbi-logs", "bench", "tests", "tutorials")


def _run(cmd: list[str], *, timeout: float, cwd: Path | None = None, env: dict | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        cmdline = " ".join(map(str, cmd))
        pytest.fail(f"{cmdline} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _index_url(py: Path, env: dict) -> str:
    if env.get("PIP_INDEX_URL"):
        return env["PIP_INDEX_URL"].split()[0]
    got = _run([py, "-m", "pip", "config", "get", "global.index-url"], timeout=60, env=env, check=False)
    return got.stdout.strip() if got.returncode == 0 and got.stdout.strip() else "https://pypi.org/simple"


def _skip_unless_installable(py: Path, tmp: Path, env: dict) -> None:
    """Skip when the package index is unreachable, or when torch 2.13.0 would be a CUDA build from it."""
    url = _index_url(py, env).rstrip("/") + "/sbi/"
    try:
        ctx = ssl.create_default_context(cafile=env.get("PIP_CERT") or None)
        with urllib.request.urlopen(url, timeout=15, context=ctx) as resp:
            resp.read(1)
    except (OSError, ValueError) as exc:
        pytest.skip(f"offline: cannot reach the package index ({url}: {exc})")
    report = tmp / "torch-report.json"
    dry = _run([py, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--report", report, TORCH],
               timeout=300, env=env, check=False)
    if dry.returncode != 0:
        pytest.skip(f"no {TORCH} wheel for this Python: {dry.stderr.strip()[-300:]}")
    (item,) = json.loads(report.read_text())["install"]
    where, version = item["download_info"]["url"], item["metadata"]["version"]
    if not (where.startswith("file:") or version.endswith("+cpu")):
        pytest.skip(f"{TORCH} here is {version} from {where} (a CUDA build of several GB), not a local CPU wheel")


def test_plain_pip_install_simulates_and_infers(tmp_path):
    t0 = time.monotonic()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "GCSBI_SHARED_DATA", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", PIP_DISABLE_PIP_VERSION_CHECK="1")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], timeout=300)
    py, bindir = venv / "bin" / "python", venv / "bin"
    _skip_unless_installable(py, tmp_path, env)

    # a copy of the sources, so the build (build/, *.egg-info) never touches the shared checkout
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_IGNORE)
    _run([py, "-m", "pip", "install", "-q", TORCH], timeout=900, env=env)
    _run([py, "-m", "pip", "install", "-q", src / "jeans", src], timeout=1500, env=env)
    t_install = time.monotonic() - t0

    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = ("import importlib.metadata as md, importlib.util, gcsbi, gcsbi_jeans; print(gcsbi.__file__); "
             "print(gcsbi_jeans.__file__); print(importlib.util.find_spec('lachesis')); "
             "print(' '.join(f'{p}=={md.version(p)}' for p in ('torch', 'numpy', 'scipy', 'matplotlib', 'xarray', "
             "'arviz-plots', 'sbi')))")
    where = _run([py, "-c", probe], cwd=work, env=env, timeout=120).stdout.split("\n")
    site = venv / "lib"
    assert Path(where[0]).is_relative_to(site) and Path(where[1]).is_relative_to(site), where  # not the checkout
    assert where[2] == "None", "astrolachesis got installed"

    sim = _run([bindir / "gcsbi", "simulate", "-n", "1", "--seed", "0", "--out", "mocks.npz", "--json"], cwd=work,
               env=env, timeout=600)
    summary = json.loads(sim.stdout)
    assert summary["n"] == 1 and summary["x_shape"][0] == 1 and (work / "mocks.npz").is_file()

    inf = _run([bindir / "gcsbi", "m31", "infer", "B165", "--num-samples", "200"], cwd=work, env=env, timeout=600)
    assert "B165-G218" in inf.stdout and "log10_mass" in inf.stdout

    # every model file in the installed wheel verifies (no trust option set)
    verify = ("from pathlib import Path; import gcsbi; from gcsbi.integrity import read_model_file; "
              "data = Path(gcsbi.__file__).parent / 'data'; "
              "files = sorted(data.glob('posteriors/*.pt')) + sorted(data.glob('maps/*.pt')); "
              "[read_model_file(f, fmt='gcsbi-maps' if f.parent.name == 'maps' else 'gcsbi-posterior', what='model') "
              "for f in files]; print(len(files))")
    clean_env = {k: v for k, v in env.items() if k != "GCSBI_TRUST_UNVERIFIED"}
    assert int(_run([py, "-c", verify], cwd=work, env=clean_env, timeout=120).stdout.strip()) >= 6

    check = _run([py, "-m", "pip", "check"], cwd=work, env=env, timeout=300, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    print(f"install {t_install:.0f} s, total {time.monotonic() - t0:.0f} s; {where[3]}; "
          f"pip check: {check.stdout.strip()}")
