"""save_datatree replaces only what it wrote: never a user's folder or file of the same name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from gcsbi_jeans.core.export import load_datatree, profiles_to_datatree, save_datatree
from gcsbi_jeans.errors import JeansFileError


def _dt(n_draws: int):
    rng = np.random.default_rng(0)
    radius, R = np.geomspace(0.1, 1.0, 5), np.geomspace(0.1, 1.0, 4)
    profiles = {"rho": rng.uniform(1, 2, (n_draws, 5)), "Sigma_R": rng.uniform(1, 2, (n_draws, 4))}
    return profiles_to_datatree(profiles, radius=radius, R=R, bands=())


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def test_rerun_replaces_its_own_output(tmp_path):
    save_datatree(_dt(3), tmp_path)
    paths = save_datatree(_dt(5), tmp_path)
    assert load_datatree(paths["zarr"])["posterior"]["rho"].shape == (1, 5, 5)
    marker = json.loads(json.loads((paths["zarr"] / "zarr.json").read_text())["attributes"]["gcsbi_output"])
    assert set(marker["names"]) == set(os.listdir(paths["zarr"]))
    assert sorted(os.listdir(tmp_path)) == ["profiles.nc", "profiles.zarr"]  # no temporary left


@pytest.mark.parametrize("case", ["user-folder", "user-file-in-output", "user-netcdf-name"])
def test_refuses_what_it_did_not_write(case, tmp_path):
    if case == "user-folder":
        (tmp_path / "profiles.zarr").mkdir()
        (tmp_path / "profiles.zarr" / "thesis.tex").write_text("t")
    elif case == "user-file-in-output":
        save_datatree(_dt(3), tmp_path)
        (tmp_path / "profiles.zarr" / "notes.txt").write_text("mine")
    else:
        (tmp_path / "profiles.nc").write_text("my notes, not NetCDF")
    before = _tree(tmp_path)
    with pytest.raises(JeansFileError, match="not"):
        save_datatree(_dt(5), tmp_path)
    assert _tree(tmp_path) == before



def test_fit_never_overwrites_a_users_file_in_out(tmp_path, capsys):
    """profiles.png / summary.json in --out that gcsbi-jeans did not write are refused before fitting."""
    from gcsbi_jeans.cli import main

    table = tmp_path / "mock.txt"
    assert main(["mock", "--n", "120", "--halo", "cusp", "--anisotropy", "iso", "--seed", "4",
                 "--out", str(table)]) == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("my notes, not JSON\n")
    capsys.readouterr()
    assert main(["baseline", str(table), "--beta", "iso", "--walkers", "8", "--steps", "12", "--out", str(out)]) == 1
    assert "summary.json" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == "my notes, not JSON\n"
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
