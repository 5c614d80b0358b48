"""The near-UV model discrepancy: shipped calibration, known answers, integrity, use in the simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gcsbi.catalogue.discrepancy import SHIPPED_NEAR_UV, NearUVDiscrepancy, fit_delta, harris_residuals, load_near_uv
from gcsbi.errors import GcsbiValueError

HARRIS = Path(__file__).resolve().parents[3] / "shared" / "data" / "harris2010_milky_way_gcs.dat"


@pytest.fixture(scope="module")
def nuv():
    return load_near_uv()


def test_shipped_offsets_follow_the_cool_light(nuv):
    bands = ("F275W", "F336W", "F475W", "F814W")
    old = nuv.mean_offsets(np.array([10.1]), np.array([-1.5]), bands)[0]
    young = nuv.mean_offsets(np.array([7.3]), np.array([-1.5]), bands)[0]
    # an old population's near-UV light is all from cool stars: the full offset Delta([Fe/H])
    assert old[1] == pytest.approx(nuv.delta(-1.5), rel=0.01) and 0.04 < old[1] < 0.15
    assert old[0] == pytest.approx(nuv.delta(-1.5), rel=0.05)
    assert young[1] < 0.3 * old[1]  # hot main-sequence stars carry a young cluster's near-UV
    assert np.all(old[2:] == 0) and np.all(young[2:] == 0)  # optical and IR untouched


def test_draws_scatter_as_stated(nuv):
    n = 20000
    feh = np.full(n, -1.5)
    d = nuv.draw_offsets(np.full(n, 10.1), feh, ("F336W",), np.random.default_rng(1))[:, 0]
    f = nuv.cool_fraction(np.array([10.1]), np.array([-1.5]))[0, nuv.bands.index("F336W")]
    expected_sd = f * np.sqrt(nuv.sigma**2 + nuv.cov[0][0])
    assert d.mean() == pytest.approx(f * nuv.delta(-1.5), abs=4 * expected_sd / np.sqrt(n))
    assert d.std() == pytest.approx(expected_sd, rel=0.03)
    again = nuv.draw_offsets(np.full(n, 10.1), feh, ("F336W",), np.random.default_rng(1))[:, 0]
    assert np.array_equal(d, again)


def test_bad_tables_are_refused(nuv):
    with pytest.raises(GcsbiValueError, match="shape"):
        NearUVDiscrepancy.from_dict({**nuv.to_dict(), "fraction": [[0.5]]})
    with pytest.raises(GcsbiValueError, match="cov"):
        NearUVDiscrepancy.from_dict({**nuv.to_dict(), "cov": [[-1.0, 0.0], [0.0, 1.0]]})


def test_fit_recovers_a_known_line():
    rng = np.random.default_rng(0)
    feh = rng.uniform(-2.4, -0.5, 400)
    f = rng.uniform(0.8, 1.0, 400)
    res = f * (0.08 + 0.03 * (feh + 1.5)) + 0.02 * rng.standard_normal(400)
    coef, cov, s = fit_delta(feh, res, f, feh_pivot=-1.5)
    assert np.all(np.abs(coef - [0.08, 0.03]) < 3 * np.sqrt(np.diag(cov)))
    assert s == pytest.approx(0.02, rel=0.1)


@pytest.mark.skipif(not HARRIS.is_file(), reason="needs ../shared/data (Harris 2010)")
def test_harris_colours_after_correction(nuv):
    """U-B of Milky Way clusters: about 0.07-0.11 mag too blue before, within 0.03 in every [Fe/H] bin after."""
    d = harris_residuals(HARRIS, max_ebv=0.15, teff_cool=nuv.teff_cool, teff_hot=nuv.teff_hot)
    after = d["ub"] - d["f_u"] * nuv.delta(d["feh"])
    for lo, hi in ((-2.6, -2.0), (-2.0, -1.6), (-1.6, -1.2), (-1.2, -0.8)):
        m = (d["feh"] >= lo) & (d["feh"] < hi)
        assert np.median(d["ub"][m]) > 0.05
        assert abs(np.median(after[m])) < 0.03, (lo, hi, np.median(after[m]))
    assert np.std(after) < np.std(d["ub"] - np.median(d["ub"])) + 1e-9


def test_simulator_applies_the_offsets():
    """Dimming the cluster light by the drawn offsets shifts the noiseless magnitudes by exactly them."""
    from gcsbi.catalogue.model import CatalogueModel
    from gcsbi.catalogue.simulator import CatalogueSimulator

    sim = CatalogueSimulator("hst-phat6", "m31-clusters", stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)))
    theta = sim.prior.sample((2,))
    theta[:, sim.param_names.index("log10_mass")] = 4.5
    theta[:, sim.param_names.index("log10_age_yr")] = 10.1
    prof = sim.profiles(theta, seed=1).numpy()
    off = sim.near_uv_offsets(theta, seed=5)
    nuv_cols = [i for i, b in enumerate(sim.profiles.filters) if b in ("F275W", "F336W")]
    assert np.all(off[:, nuv_cols] > -0.2) and np.any(off[:, nuv_cols] != 0)
    assert np.all(np.delete(off, nuv_cols, axis=1) == 0)
    base = sim.measure(prof, np.random.default_rng(0))
    dimmed = sim.measure(prof, np.random.default_rng(0), offsets=off)
    np.testing.assert_allclose(dimmed["mag_true"] - base["mag_true"], off, atol=1e-9)
    with pytest.raises(GcsbiValueError, match="theta"):
        sim.from_profiles(prof, seed=1)
    plain = CatalogueSimulator("hst-phat6", "m31-clusters", stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)),
                               near_uv=None)
    assert plain.from_profiles(prof, seed=1).shape == (2, 14)
    assert sim.spec["simulator"]["near_uv"]["coef"] == list(load_near_uv().coef)
    assert SHIPPED_NEAR_UV.is_file()
