"""Slow science checks: JFlow and emcee recover the mass at the half-light radius of a galpy mock."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi_jeans.baseline import BaselineConfig, fit_baseline
from gcsbi_jeans.fit import FitConfig, fit_model
from gcsbi_jeans.mocks import MockConfig, make_mock, truth_profiles
from gcsbi_jeans.solve import jeans_profiles, projected_profiles
from gcsbi_jeans.velocity import parse_beta

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
