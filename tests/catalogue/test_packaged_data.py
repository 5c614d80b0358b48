"""The PHAT and Caldwell catalogues ship with the package: catalogue mode works after ``pip install``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from gcsbi.catalogue.catalogues import CALDWELL_FILE, PACKAGED_DATA, PHAT_FILE, data_dir, read_phat_catalogue

ROOT = Path(__file__).resolve().parents[2]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_packaged_catalogues_are_the_published_tables(shared_data):
    for name in (PHAT_FILE, CALDWELL_FILE):
        assert _sha(PACKAGED_DATA / name) == _sha(shared_data / "m31" / name), name
    assert (PACKAGED_DATA / "CITATION.md").is_file()


def test_default_is_the_packaged_copy(monkeypatch):
    monkeypatch.delenv("GCSBI_SHARED_DATA", raising=False)
    assert data_dir() == PACKAGED_DATA
    table = read_phat_catalogue()
    assert len(table) == 2753 and "B165-G218" in [str(s).strip() for s in table["AltID"]]


@pytest.mark.slow
def test_wheel_install_then_m31_infer_without_shared(tmp_path):
    """Build the wheel, install it (no deps) into a fresh venv that sees this venv's dependencies
    only, and run ``gcsbi m31 infer B165`` far from the repository and from ``../shared``."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("gcsbi-*.whl"))
    with zipfile.ZipFile(wheel) as zf:  # the MIST/C3K bolometric corrections ship too (no astrolachesis)
        assert {"gcsbi/stars/data/mist_c3k_bc_av0.npz", "gcsbi/stars/data/README.md"} <= set(zf.namelist())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # this venv's dependencies as a plain path: its .pth files (the editable gcsbi) are not run
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("GCSBI_SHARED_DATA", "PYTHONPATH")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    probe = "import gcsbi; from gcsbi.catalogue.catalogues import data_dir; print(gcsbi.__file__); print(data_dir())"
    where, data = subprocess.run([str(py), "-c", probe], cwd=work, env=env, check=True, capture_output=True,
                                 text=True).stdout.split()
    assert Path(where).is_relative_to(site), where  # the installed wheel, not the checkout
    assert Path(data).is_relative_to(site) and (Path(data) / PHAT_FILE).is_file(), data
    proc = subprocess.run([str(py), "-m", "gcsbi", "m31", "infer", "B165", "--num-samples", "200"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "B165-G218" in proc.stdout and "log10_mass" in proc.stdout
