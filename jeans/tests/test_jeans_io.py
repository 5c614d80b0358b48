"""Star tables: generic text, RA/Dec projection, Walker and Gaia Challenge readers, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gcsbi_jeans.core.io import StarTable, radec_to_projected_kpc, read_stars, read_table, read_walker, write_table
from gcsbi_jeans.errors import JeansFileError, JeansValueError


def test_table_roundtrip_subtracts_weighted_vsys(tmp_path, rng):
    x, y = rng.normal(size=(2, 30))
    v = 100 + rng.normal(0, 5, 30)
    st = StarTable(x=x, y=y, v=v, verr=np.ones(30), weight=np.full(30, 0.5))
    write_table(tmp_path / "t.txt", st)
    back = read_stars(tmp_path / "t.txt")
    np.testing.assert_allclose(back.x, x, rtol=1e-7)
    assert back.vsys == pytest.approx(np.mean(v), rel=1e-7)
    np.testing.assert_allclose(back.v, v - np.mean(v), atol=1e-5)


def test_radec_projection_small_offsets():
    ra0, dec0, d = 40.0, -34.5, 140.0
    x, y = radec_to_projected_kpc(np.array([ra0 + 0.1 / math.cos(math.radians(dec0)), ra0]),
                                  np.array([dec0, dec0 + 0.1]), ra0=ra0, dec0=dec0, distance_kpc=d)
    np.testing.assert_allclose([x[0], y[1]], [d * math.radians(0.1)] * 2, rtol=1e-3)
    assert abs(y[0]) < 1e-3 and abs(x[1]) < 1e-9


def test_radec_table_needs_centre(tmp_path):
    p = tmp_path / "radec.txt"
    p.write_text("# ra dec vlos err\n40.0 -34.5 55 1\n40.1 -34.4 60 1\n40.05 -34.6 50 2\n")
    with pytest.raises(JeansValueError, match="centre"):
        read_table(p)
    st = read_table(p, centre=(40.0, -34.5), distance_kpc=140.0)
    assert st.n == 3 and st.R[0] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("text, exc", [
    ("# x y err\n1 2 3\n2 3 4\n", JeansValueError),            # no velocity column
    ("# x y v\n1 2 a\n2 3 4\n", JeansFileError),              # non-numeric
    ("# x y v\n1 2 3\n2 3\n", JeansFileError),                # ragged rows
    ("# x y v\n1 2 nan\n2 3 4\n", JeansValueError),           # NaN
    ("# x y v p\n1 2 3 1.5\n2 3 4 1\n", JeansValueError),     # bad membership
    ("1 2 3\n", JeansFileError),                              # no header
    ("", JeansFileError),                                     # empty
])
def test_bad_tables(tmp_path, text, exc):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(exc):
        read_table(p)


def test_missing_file():
    with pytest.raises(JeansFileError):
        read_stars("/nonexistent/stars.txt")


def test_startable_validates_shapes():
    with pytest.raises(JeansValueError):
        StarTable(x=np.zeros(3), y=np.zeros(2), v=np.zeros(3), verr=np.zeros(3), weight=np.ones(3))


def test_walker_draco(shared_data):
    st = read_walker(shared_data / "dsph/walker/dra_justin1_spec.dat", distance_kpc=76.0)
    raw = np.loadtxt(shared_data / "dsph/walker/dra_justin1_spec.dat")
    assert st.n == int(np.sum((raw[:, 15] > 0) & (raw[:, 6] != 0)))
    assert st.weight.sum() == pytest.approx(raw[raw[:, 6] != 0, 15].sum(), rel=1e-9)
    assert -300 < st.vsys < -285  # Draco's systemic velocity (~ -291 km/s)
    # tabulated R (col 4, arcmin) matches the x, y offsets
    keep = (raw[:, 15] > 0) & (raw[:, 6] != 0)
    np.testing.assert_allclose(np.sort(st.R), np.sort(raw[keep, 4] / (180 * 60 / math.pi) * 76.0),
                               rtol=1e-4)
    # the RA/Dec route (tangent plane about the McConnachie centre) gives similar radii
    st2 = read_walker(shared_data / "dsph/walker/dra_justin1_spec.dat", distance_kpc=76.0,
                      centre=(260.0516667, 57.9152778))
    assert abs(st2.half_light_radius() / st.half_light_radius() - 1) < 0.1


def test_gaia_challenge(shared_data):
    f = shared_data / "dsph/gaia_challenge/PlumCoreOm/gs010_bs050_rcrs025_rarc100_core_0400mpc3_df_1000_0_err.dat"
    st = read_stars(f, verr=2.0)
    raw = np.loadtxt(f)
    assert st.n == 1000 and np.all(st.verr == 2.0)
    np.testing.assert_allclose(st.v + st.vsys, raw[:, 5])
    assert 0.15 < st.half_light_radius() < 0.35  # r* = 0.25 kpc
