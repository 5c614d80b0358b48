"""The MIST/C3K bolometric-correction table ships with gcsbi and is checked against its SHA-256 on load."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from gcsbi.errors import GcsbiFileError
from gcsbi.stars import bolometric as B


@pytest.fixture
def fresh_table_cache():
    """Forget the loaded table (and grids built from it) before and after the test."""
    caches = (B._bc_tables, B._mist_grid, B.bc_grid)
    for c in caches:
        c.cache_clear()
    yield
    for c in caches:
        c.cache_clear()


def test_shipped_table_is_the_recorded_file():
    path = B.bc_table_path()
    assert path == B.BC_TABLE_FILE and path.parent.name == "data"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == B.BC_TABLE_SHA256
    assert path.stat().st_size < 1_000_000
    assert (path.parent / "README.md").is_file()


def test_shipped_table_holds_exactly_the_bands_gcsbi_reads():
    t = B._bc_tables()
    wanted = [(s, b) for s, b, _, _ in B.REFERENCE_BANDS + B.HOLDOUT_BANDS]
    assert list(zip(t["systems"].tolist(), t["bands"].tolist())) == wanted
    assert set(B.DIRECT_BANDS.values()) <= set(t["bands"].tolist())
    assert t["bc"].dtype == np.float32 and t["bc"].shape == (len(wanted), 70, 26, 18)
    assert np.isfinite(t["bc"]).all()
    assert t["teff"][0] == 2500.0 and t["teff"][-1] == 1.0e6
    assert t["logg"][0] == -4.0 and t["logg"][-1] == 9.5
    assert t["feh"][0] == -4.0 and t["feh"][-1] == 0.75


@pytest.mark.parametrize("band, teff, logg, feh, source", [
    # float32 values read from astroLACHESIS 1.0.9's bc_tables.h5 (Av = 0): the shipped copy is exact
    ("Bessell_V", 5750.0, 4.5, 0.0, -0.03245899826288223),
    ("GALEX_NUV", 4000.0, 1.0, -1.5, -11.694683074951172),
    ("WISE_W2", 3500.0, 0.5, -2.0, 2.8806040287017822),
    ("PS_g", 10000.0, 4.0, 0.5, -0.09807900339365005),
])
def test_shipped_values_are_the_source_values(band, teff, logg, feh, source):
    t = B._bc_tables()
    k = t["bands"].tolist().index(band)
    i, j, f = (int(np.flatnonzero(t[a] == v)[0]) for a, v in (("teff", teff), ("logg", logg), ("feh", feh)))
    assert float(t["bc"][k, i, j, f]) == source


def test_tampered_table_is_a_one_line_file_error(tmp_path, monkeypatch, fresh_table_cache):
    bad = tmp_path / B.BC_TABLE_FILE.name
    shutil.copyfile(B.BC_TABLE_FILE, bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr(B, "BC_TABLE_FILE", bad)
    with pytest.raises(GcsbiFileError) as exc:
        B.bolometric_corrections([3.76], [4.44], 0.0, ("V",))
    msg = str(exc.value)
    assert "\n" not in msg and "SHA-256" in msg and str(bad) in msg


def test_missing_table_is_a_file_error(tmp_path, monkeypatch, fresh_table_cache):
    monkeypatch.setattr(B, "BC_TABLE_FILE", tmp_path / "absent.npz")
    with pytest.raises(GcsbiFileError, match="not found"):
        B.bolometric_corrections([3.76], [4.44], 0.0, ("V",))
