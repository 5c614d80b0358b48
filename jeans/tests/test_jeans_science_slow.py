"""Slow science checks: JFlow and emcee recover the mass at the half-light radius of a galpy mock."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi_jeans.baseline import BaselineConfig, fit_baseline
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.mocks import MockConfig, make_mock, truth_profiles
from gcsbi_jeans.jflow.config import FitConfig
from gcsbi_jeans.jflow.fit import fit_model
from gcsbi_jeans.jflow.solve import jeans_profiles, projected_profiles

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mock():
    return make_mock(MockConfig(n=1000, halo="core", anisotropy="iso", seed=21))


def test_jflow_recovers_mass_at_half_light_radius(mock):
    stars, truth = mock
    tp = truth_profiles(truth)
    res = fit_model(stars, parse_beta(truth["beta"]), FitConfig(steps=400, n_model=768), progress=False)
    rh = stars.half_light_radius()
    r = np.array([0.5 * rh, rh, 2 * rh])
    p = jeans_profiles(res.model, r)
    # mass within ~R_half is the best-constrained Jeans quantity (Wolf et al. 2010)
    assert p["mass"][1] == pytest.approx(tp["mass"](r)[1], rel=0.3)
    assert np.all(np.abs(np.log10(p["rho"] / tp["rho"](r))) < np.log10(3.0))
    q = projected_profiles(res.model, r)
    np.testing.assert_allclose(q["sigma_los"], tp["sigma_los_R"](r), rtol=0.15)


def test_emcee_baseline_recovers_mass_at_half_light_radius(mock):
    stars, truth = mock
    tp = truth_profiles(truth)
    rh = stars.half_light_radius()
    r = np.array([0.5 * rh, rh, 2 * rh])
    res = fit_baseline(stars, parse_beta(truth["beta"]), BaselineConfig(walkers=16, steps=600, burn=300),
                       radius=r, R=r, n_draws=100, progress=False)
    m = np.median(res.profiles["mass"], axis=0)
    assert m[1] == pytest.approx(tp["mass"](r)[1], rel=0.25)
    lo, hi = np.quantile(res.profiles["mass"][:, 1], [0.005, 0.995])
    assert lo < tp["mass"](r)[1] < hi


@pytest.mark.slow
def test_freeform_recovers_plumcoreom_and_carina(shared_data):
    """The free-form posterior on Gaia Challenge PlumCoreOm (beta given) and on Carina (beta inferred, dark
    matter only): accuracy, positivity, and agreement with Read et al. (2019) and Pace & Strigari (2019)."""
    from gcsbi_jeans.core.beta import parse_beta
    from gcsbi_jeans.core.io import read_gaia_challenge, read_walker
    from gcsbi_jeans.core.light import fit_light, read_photometry
    from gcsbi_jeans.core.mocks import PLUMCOREOM_TRUTH, truth_profiles
    from gcsbi_jeans.freeform import FreeformConfig, fit_freeform

    base = shared_data / "dsph/gaia_challenge/PlumCoreOm/gs010_bs050_rcrs025_rarc100_core_0400mpc3_df_"
    ph = np.loadtxt(str(base) + "10000_0.dat")
    light = fit_light(np.hypot(ph[:, 0], ph[:, 1]))
    rh = light.half_light_radius()
    radius = np.geomspace(0.25 * rh, 4 * rh, 9)
    stars = read_gaia_challenge(str(base) + "1000_0_err.dat", verr=2.0)
    res = fit_freeform(stars, FreeformConfig(), beta=parse_beta("om:0.25"), light=light, radius=radius,
                       progress=False)
    truth = truth_profiles(PLUMCOREOM_TRUTH)["rho"](radius)
    rho = res.profiles["rho"]
    assert np.all(rho > 0) and np.all(np.diff(res.profiles["mass"], axis=1) > 0)
    assert np.median(np.abs(np.log10(np.median(rho, axis=0) / truth))) < 0.1  # measured 0.079
    lo, hi = np.quantile(rho, [0.025, 0.975], axis=0)
    assert np.mean((truth >= lo) & (truth <= hi)) >= 7 / 9

    walker = shared_data / "dsph/walker"
    car = read_walker(walker / "car_justin1_spec.dat", distance_kpc=105.0).members(0.05)
    R, w = read_photometry(walker / "car_justin1_phot.dat", distance_kpc=105.0, fmt="walker")
    res = fit_freeform(car, FreeformConfig(), beta=None, light=fit_light(R, w), stellar_mass=0.38e6,
                       radius=np.array([0.1, 0.15, 0.3]), distance_kpc=105.0, progress=False)
    q = np.quantile(res.profiles["rho"][:, 1] / 1e7, [0.025, 0.975])
    assert q[0] < 11.6 + 2.0 and q[1] > 11.6 - 2.2  # Read et al. 2019: 11.6 (-2.2/+2.0) x 1e7 Msun kpc^-3
    assert abs(np.median(res.scalars["log10_J_0.5deg"]) - 17.83) < 0.3  # Pace & Strigari 2019: 17.83 +- 0.10
