"""Honest free-form bands: the inferred LOS velocity shape, the tempering cap, the theory-based anisotropy
prior, convergence checks and finite J-factors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.integrate import quad

from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.light import LightProfile
from gcsbi_jeans.core.sampling import chain_diagnostics
from gcsbi_jeans.errors import JeansValueError, JeansWarning
from gcsbi_jeans.freeform import FreeformConfig, JeansKernel, fit_freeform
from gcsbi_jeans.freeform.model import _log_genorm, shape_kurtosis

PLUMMER = LightProfile(a=(0.25,), w=(1.0,))


# ------------------------------------------------------------------ the generalised Gaussian
@pytest.mark.parametrize("p", [0.8, 1.0, 2.0, 3.0, 5.0])
def test_generalised_gaussian_has_unit_mass_the_given_variance_and_its_kurtosis(p):
    var = 7.3
    pdf = lambda v: math.exp(float(_log_genorm(np.array(v * v), np.array(var), np.array(p))))  # noqa: E731
    mass = 2 * quad(pdf, 0, np.inf)[0]
    m2 = 2 * quad(lambda v: v**2 * pdf(v), 0, np.inf)[0]
    m4 = 2 * quad(lambda v: v**4 * pdf(v), 0, np.inf)[0]
    assert mass == pytest.approx(1.0, rel=1e-6)
    assert m2 == pytest.approx(var, rel=1e-6)
    assert m4 / m2**2 == pytest.approx(float(shape_kurtosis(p)), rel=1e-5)


def test_shape_kurtosis_known_values():
    # Gaussian 3, Laplace 6, and the uniform limit 9/5
    assert shape_kurtosis([2.0, 1.0, 200.0]) == pytest.approx([3.0, 6.0, 1.8], rel=1e-3)


def test_inferred_shape_recovers_heavy_and_light_tails(tiny_mock):
    """Maximum likelihood of the shape (Jeans variance held at the truth) on Laplace and uniform velocities."""
    stars, _ = tiny_mock
    k = JeansKernel(stars, PLUMMER, FreeformConfig(nodes=4, shape_bins=1), beta=parse_beta("iso"))
    theta = np.array([8.0, 0.5, 1.0, 2.0, 3.0])
    s = np.sqrt(k.evaluate(theta[None])["sigma_los2_R"] @ k.P.T + k.e2)[0]
    rng = np.random.default_rng(5)
    grid = np.log(np.linspace(0.8, 5.0, 200))
    best = {}
    for name, z in {"laplace": rng.laplace(0, 1 / math.sqrt(2), (50, s.size)),
                    "uniform": rng.uniform(-math.sqrt(3), math.sqrt(3), (50, s.size))}.items():
        k.v2 = (z.ravel() * np.tile(s, 50)) ** 2  # 50 copies of the sample: a precise answer
        k.e2, k.w, k.temper = np.zeros_like(k.v2), np.ones_like(k.v2), np.ones_like(k.v2)
        k.shape_bin = np.zeros(k.v2.size, dtype=np.intp)
        k.half_log_v2 = 0.5 * np.log(k.v2)
        k.P = np.tile(k.P, (50, 1))
        rows = np.column_stack([np.tile(theta, (grid.size, 1)), grid])
        best[name] = float(np.exp(grid[np.argmax(k.log_likelihood(rows))]))
        k.P = k.P[: s.size]
    assert best["laplace"] == pytest.approx(1.0, abs=0.15)
    assert best["uniform"] > 4.0


def test_tempering_weight_never_exceeds_one(tiny_mock):
    """Flat-topped velocities (kurtosis ~1.8 < 3) no longer get weights above 1."""
    stars, _ = tiny_mock
    k = JeansKernel(stars, PLUMMER, FreeformConfig(nodes=4, velocity_shape="tempered"), beta=parse_beta("iso"))
    theta = np.array([8.0, 0.5, 1.0, 2.0, 3.0])
    s = np.sqrt(k.evaluate(theta[None])["sigma_los2_R"] @ k.P.T + k.e2)[0]
    k.v2 = (np.random.default_rng(1).uniform(-math.sqrt(3), math.sqrt(3), s.size) * s) ** 2
    k.set_tempering(theta, stars_per_bin=1000)
    assert k.kurtosis["kappa"][0] < 2.5
    assert np.all(k.temper == 1.0)


@pytest.mark.parametrize("bad", [dict(shape_p=(0.1, 5.0)), dict(shape_bins=0),
                                 dict(velocity_shape="gaussian", shape_bins=2),
                                 dict(steps=1005, burn=500, thin=10), dict(max_steps=100),
                                 dict(converge=False, max_steps=50000), dict(inner_slope_max=0.0),
                                 dict(inner_slope_max=3.5), dict(slope_max=1.0)])
def test_config_refuses_options_that_do_not_apply(bad):
    with pytest.raises(JeansValueError):
        FreeformConfig(**bad)


# ------------------------------------------------------------------ the anisotropy prior
def test_anisotropy_prior_obeys_the_slope_anisotropy_inequality(tiny_mock):
    stars, _ = tiny_mock
    k = JeansKernel(stars, PLUMMER, FreeformConfig(nodes=4), beta=None)
    base = [8.0, 0.5, 1.0, 2.0, 3.0]
    shape = [math.log(2.0)] * 3

    def prior(bt0, btinf, lra=0.0, eta=2.0):
        return float(k.log_prior(np.array([base + [bt0, btinf, lra, eta] + shape]))[0])

    assert np.isfinite(prior(-0.1, 0.3))        # tangential centre, radial outside: allowed
    assert prior(0.2, 0.2) == -np.inf           # radial centre of a cored (Plummer) tracer: gamma_nu(0) = 0
    assert prior(-0.5, 0.0) == -np.inf          # beta = -2: outside the simulation envelope beta >= -1
    assert np.isfinite(prior(-1 / 3 + 1e-9, 0.0))
    # beta(r) <= gamma_nu(r) / 2 at every radius: check it on the grid for an allowed draw
    beta, _ = k.beta_and_log_g(np.array([base + [-0.1, 0.9, -0.5, 3.0] + shape]))
    ok = np.isfinite(prior(-0.1, 0.9, -0.5, 3.0))
    assert ok == bool(np.all(beta[0] <= k.beta_max + 1e-9))
    unconstrained = JeansKernel(stars, PLUMMER, FreeformConfig(nodes=4, slope_anisotropy=False), beta=None)
    assert np.isfinite(unconstrained.log_prior(np.array([base + [0.2, 0.2, 0.0, 2.0] + shape]))[0])


# ------------------------------------------------------------------ convergence
def test_chain_diagnostics_known_answers():
    rng = np.random.default_rng(0)
    mixed = rng.normal(size=(1000, 16, 2))
    d = chain_diagnostics(mixed, ["a", "b"])
    assert d["rhat_max"] < 1.01 and d["ess_bulk_min"] > 10000
    stuck = mixed.copy()
    stuck[:, :, 1] += np.arange(16)[None, :]  # every walker in its own place
    d = chain_diagnostics(stuck, ["a", "b"])
    assert d["rhat_max"] > 2 and d["rhat_worst"] == "b" and d["ess_worst"] == "b"


def test_unconverged_run_is_extended_then_warns(tiny_mock):
    stars, _ = tiny_mock
    cfg = FreeformConfig(walkers=24, steps=40, burn=20, thin=4, nodes=4, max_steps=80)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_freeform(stars, cfg, beta=parse_beta("iso"), light=PLUMMER, n_draws=20, progress=False)
    d = res.diagnostics
    assert d["steps"] == 80 and d["burn"] == 40 and not d["converged"]
    assert res.chain.shape[0] == 10  # (80 - 40) / 4 stored draws per walker
    said = [str(w.message) for w in caught if issubclass(w.category, JeansWarning)]
    assert any("has not converged after 80 steps" in m and "--max-steps" in m for m in said)


def test_quick_look_reports_but_does_not_extend(tiny_mock):
    stars, _ = tiny_mock
    cfg = FreeformConfig(walkers=24, steps=40, burn=20, thin=4, nodes=4, converge=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_freeform(stars, cfg, beta=parse_beta("iso"), light=PLUMMER, n_draws=20, progress=False,
                           distance_kpc=80.0)
    assert res.diagnostics["steps"] == 40 and res.diagnostics["rhat_max"] > 1.0
    assert not any("converged" in str(w.message) for w in caught)
    # headline scalars per draw, and J-factors that are finite or NaN (never inf), with the NaN fraction reported
    assert {"rho_dm_150pc", "mass_r_half", "beta_r_half", "log10_J_0.5deg"} <= set(res.scalars)
    J = res.scalars["log10_J_0.5deg"]
    assert np.isfinite(J).all() and res.diagnostics["J_infinite_fraction"] == 0.0  # inner slope < 1.5: finite J
    assert np.all(res.chain[:, :, 1] <= 1.5)
    assert np.all(res.scalars["rho_dm_150pc"] > 0) and np.all(res.scalars["beta_r_half"] == 0)
