"""Free-form Jeans model: light profiles, the integral Jeans kernel against independent quadrature, the
posterior's contract (positive rho, monotone M, seeded bytes), J-factors against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.jfactor import J_UNIT, j_factor
from gcsbi_jeans.core.light import LightProfile, fit_light, read_photometry
from gcsbi_jeans.core.mocks import PLUMCOREOM_TRUTH, plummer_positions, truth_profiles
from gcsbi_jeans.core.parametric import sigma_los_parametric, zhao_mass
from gcsbi_jeans.errors import JeansValueError
from gcsbi_jeans.freeform import FreeformConfig, JeansKernel, fit_freeform

TINY = FreeformConfig(walkers=24, steps=80, burn=40, thin=4, nodes=4, converge=False)


# ------------------------------------------------------------------ light profile
def test_light_profile_normalisations_and_half_light_radius():
    prof = LightProfile(a=(0.1, 0.5), w=(0.3, 0.7))
    r = np.geomspace(1e-4, 1e3, 4000)
    assert np.trapezoid(4 * math.pi * r**2 * prof.density(r), r) == pytest.approx(1.0, abs=2e-3)
    assert np.trapezoid(2 * math.pi * r * prof.surface(r), r) == pytest.approx(1.0, abs=2e-3)
    assert float(prof.mass_fraction(1e6)) == pytest.approx(1.0, abs=1e-9)
    assert LightProfile(a=(0.3,), w=(1.0,)).half_light_radius() == pytest.approx(0.3, rel=1e-6)  # Plummer: R_1/2 = a


def test_fit_light_recovers_a_plummer_scale():
    R = plummer_positions(3000, 0.25, seed=3)
    prof = fit_light(R, components=3, seed=0)
    assert prof.half_light_radius() == pytest.approx(0.25, rel=0.05)
    r = np.geomspace(0.1, 1.0, 20)  # 0.4-4 scale radii (the centre holds few stars: noisier)
    truth = LightProfile(a=(0.25,), w=(1.0,)).density(r)
    assert np.max(np.abs(np.log10(prof.density(r) / truth))) < 0.1


@pytest.mark.parametrize("bad", [dict(R=np.array([1.0, np.nan] * 20)), dict(R=-np.ones(40)), dict(R=np.ones(5)),
                                 dict(R=np.ones(40), weight=np.full(40, 2.0))])
def test_fit_light_refuses_bad_input(bad):
    with pytest.raises(JeansValueError):
        fit_light(**bad)


def test_read_carina_photometry(shared_data):
    R, w = read_photometry(shared_data / "dsph/walker/car_justin1_phot.dat", distance_kpc=105.0)
    assert R.size > 5000 and np.all((w >= 0) & (w <= 1)) and w.sum() > 1000
    r_half = fit_light(R, w).half_light_radius()
    assert 0.15 < r_half < 0.4  # Carina's R_1/2 is ~0.25 kpc (Read et al. 2019; McConnachie 2012)


# ------------------------------------------------------------------ the Jeans kernel
def _truth_kernel(stars, nodes=40):
    light = LightProfile(a=(0.25,), w=(1.0,))
    beta = parse_beta("om:0.25")
    k = JeansKernel(stars, light, FreeformConfig(nodes=nodes, node_span=(0.01, 100.0), velocity_shape="gaussian"),
                    beta=beta)
    tr = truth_profiles(PLUMCOREOM_TRUTH)
    theta = np.concatenate([[np.log10(tr["rho"](k.r_half))], -tr["slope"](np.exp(k.node_lr))])[None]
    return k, light, beta, tr, theta


def test_kernel_matches_independent_quadrature(tiny_mock):
    """rho, M and sigma_los of the node model of a known Zhao halo against the truth and a direct quadrature."""
    stars, _ = tiny_mock
    k, light, beta, tr, theta = _truth_kernel(stars)
    p = k.evaluate(theta)
    inside = (k.r > 0.01) & (k.r < 5)
    assert np.max(np.abs(np.log10(p["rho"][0] / tr["rho"](k.r)))[inside]) < 0.003
    assert np.max(np.abs(np.log10(p["mass"][0] / tr["mass"](k.r)))[inside]) < 0.003
    _, s = sigma_los_parametric(k.R, nu=light.density, mass=lambda r: zhao_mass(r, 4e8, 1.0, 1, 3, 0), beta=beta,
                                r_min=1e-4, r_max=500, n_r=2000, n_t=400)
    assert np.max(np.abs(np.sqrt(p["sigma_los2_R"][0]) / s - 1)) < 2e-3


def test_stellar_mass_adds_the_light_weighted_mass(tiny_mock):
    stars, _ = tiny_mock
    light = LightProfile(a=(0.25,), w=(1.0,))
    theta = np.array([[8.0, 0.5, 1.0, 2.0, 3.0, 0.5, 0.9]])
    cfg = FreeformConfig(nodes=4)
    p0 = JeansKernel(stars, light, cfg, beta=parse_beta("iso")).evaluate(theta)
    k1 = JeansKernel(stars, light, cfg, beta=parse_beta("iso"), stellar_mass=1e7)
    p1 = k1.evaluate(theta)
    np.testing.assert_allclose(p1["rho"], p0["rho"])
    np.testing.assert_allclose(p1["mass"] - p0["mass"], 1e7 * light.mass_fraction(k1.r)[None], rtol=1e-10)
    assert np.all(p1["sigma_los2_R"] > p0["sigma_los2_R"])


def test_prior_draws_give_positive_rho_and_increasing_mass(tiny_mock):
    stars, _ = tiny_mock
    k = JeansKernel(stars, LightProfile(a=(0.25,), w=(1.0,)),
                    FreeformConfig(nodes=5, velocity_shape="mixture", slope_prior="sorted"), beta=None)
    rng = np.random.default_rng(0)
    n = 200
    theta = np.column_stack([rng.uniform(6, 10, n), np.sort(rng.uniform(0, 2.99, (n, 5)), axis=1),
                             rng.uniform(-1 / 3, 0.0, n), rng.uniform(-1 / 3, 0.9, n), rng.uniform(-1, 1, n),
                             rng.uniform(1, 3, n), rng.uniform(0.1, 0.9, n), rng.uniform(0.1, 1.0, n)])
    theta[:, 1] = np.minimum(theta[:, 1], 1.49)  # the innermost slope prior: gamma_1 <= 1.5
    ok = np.isfinite(k.log_prior(theta))
    beta, _ = k.beta_and_log_g(theta)
    # the box holds every row; only the slope-anisotropy inequality beta(r) <= gamma_nu(r) / 2 rejects some
    assert ok.mean() > 0.5 and np.array_equal(ok, np.all(beta <= k.beta_max + 1e-9, axis=1))
    p = k.evaluate(theta)
    assert np.all(p["rho"] > 0) and np.all(np.diff(p["mass"], axis=1) > 0) and np.all(p["sigma_los2_R"] > 0)
    unsorted = theta.copy()
    unsorted[:, 1:6] = unsorted[:, 1:6][:, ::-1] + 1e-3 * np.arange(5)[::-1]
    assert np.all(np.isinf(k.log_prior(unsorted)))
    with pytest.raises(JeansValueError, match="expected 12 parameters"):
        k.log_prior(theta[:, :10])


def test_mixture_shape_reduces_to_gaussian(tiny_mock):
    stars, _ = tiny_mock
    light = LightProfile(a=(0.25,), w=(1.0,))
    theta = np.array([[8.0, 0.5, 1.0, 2.0, 3.0]])
    kg = JeansKernel(stars, light, FreeformConfig(nodes=4, velocity_shape="gaussian"), beta=parse_beta("iso"))
    km = JeansKernel(stars, light, FreeformConfig(nodes=4, velocity_shape="mixture"), beta=parse_beta("iso"))
    lg = kg.log_likelihood(theta)
    lm = km.log_likelihood(np.column_stack([theta, [[0.5, 1.0]]]))
    np.testing.assert_allclose(lm, lg, rtol=1e-10)
    assert km.log_likelihood(np.column_stack([theta, [[0.5, 0.3]]]))[0] != pytest.approx(lg[0])


@pytest.mark.parametrize("bad", [dict(nodes=1), dict(slope_prior="wiggly"), dict(velocity_shape="t"),
                                 dict(node_span=(2.0, 1.0)), dict(walkers=7),
                                 dict(velocity_shape="mixture", shape_q=(0.1, 1.5)), dict(grid_span=(0.5, 300.0)),
                                 dict(slope_prior="sorted", slope_step=0.5),
                                 dict(shape_f=(0.1, 0.9))])
def test_config_refuses_options_that_do_not_apply(bad):
    with pytest.raises(JeansValueError):
        FreeformConfig(**bad)


# ------------------------------------------------------------------ the posterior
def test_posterior_contract_and_reproducibility(tiny_mock):
    stars, truth = tiny_mock
    radius = np.geomspace(0.05, 1.0, 7)
    kw = dict(beta=parse_beta("iso"), radius=radius, n_draws=50, progress=False, distance_kpc=80.0)
    a = fit_freeform(stars, TINY, **kw)
    b = fit_freeform(stars, TINY, **kw)
    assert a.chain.tobytes() == b.chain.tobytes()  # same seed, same bytes
    assert a.profiles["rho"].shape == (50, 7) and np.all(a.profiles["rho"] > 0)
    assert np.all(np.diff(a.profiles["mass"], axis=1) > 0)
    s = fit_freeform(stars, FreeformConfig(**{**TINY.to_dict(), "slope_prior": "sorted"}), **kw)
    assert np.all(np.diff(s.profiles["slope"], axis=1) <= 1e-12)  # 'sorted': steepens outwards
    assert a.scalars["log10_J_0.5deg"].shape == (50,)
    c = fit_freeform(stars, FreeformConfig(**{**TINY.to_dict(), "seed": 1}), **kw)
    assert c.chain.tobytes() != a.chain.tobytes()


def test_posterior_with_inferred_beta_has_beta_parameters(tiny_mock):
    stars, _ = tiny_mock
    res = fit_freeform(stars, TINY, beta=None, n_draws=20, progress=False)
    assert res.beta_spec == "inferred:bvh" and "beta_tilde_inf" in res.names
    assert np.all(res.profiles["beta"] < 1)


# ------------------------------------------------------------------ J-factors
def test_jfactor_of_a_uniform_sphere_inside_the_cone():
    """rho0 inside r_t < D tan(theta): J = rho0^2 (4/3) pi r_t^3 / D^2 exactly (every shell fully inside)."""
    r = np.geomspace(1e-4, 0.3, 3000)
    rho0, D = 1e8, 80.0
    got = j_factor(r, np.full(r.size, rho0), distance_kpc=D, angle_deg=0.5, r_trunc=0.3)[0]
    want = math.log10(rho0**2 * 4 / 3 * math.pi * 0.3**3 / D**2 * J_UNIT)
    assert got == pytest.approx(want, abs=2e-3)


def test_jfactor_units_against_astropy():
    u = pytest.importorskip("astropy.units")
    const = pytest.importorskip("astropy.constants")
    want = ((u.Msun * const.c**2).to(u.GeV) ** 2 / u.kpc**5).to(u.GeV**2 / u.cm**5).value
    assert J_UNIT == pytest.approx(want, rel=1e-6)


def test_jfactor_matches_a_cylinder_integral():
    """The shell-fraction formula against a brute-force integral over the cylinder R < D sin(theta)."""
    a, D, ang = 0.3, 60.0, 0.5
    rho = lambda r: 1e8 / (1 + (r / a) ** 2) ** 2  # noqa: E731
    r = np.geomspace(1e-4, 5.0, 4000)
    got = j_factor(r, rho(r), distance_kpc=D, angle_deg=ang, r_trunc=5.0)[0]
    Rt = D * math.sin(math.radians(ang))
    R = np.linspace(0, Rt, 800)
    z = np.linspace(0, 5.0, 4000)
    rr = np.hypot(R[:, None], z[None, :])
    col = 2 * np.trapezoid(np.where(rr <= 5.0, rho(rr) ** 2, 0.0), z, axis=1)
    want = math.log10(2 * math.pi * np.trapezoid(col * R, R) / D**2 * J_UNIT)
    assert got == pytest.approx(want, abs=3e-3)


def test_tempering_weights_follow_the_kurtosis(tiny_mock):
    """Stars whose velocities are Laplace-distributed (kurtosis 6) around the model's sigma_los get weight
    2 / (6 - 1) = 0.4; Gaussian ones about 1."""
    from dataclasses import replace

    stars, _ = tiny_mock
    light = LightProfile(a=(0.25,), w=(1.0,))
    theta = np.array([8.0, 0.5, 1.0, 2.0, 3.0])
    big = replace(stars, x=np.tile(stars.x, 20), y=np.tile(stars.y, 20), v=np.zeros(20 * stars.n),
                  verr=np.zeros(20 * stars.n), weight=np.ones(20 * stars.n))
    k = JeansKernel(big, light, FreeformConfig(nodes=4), beta=parse_beta("iso"))
    s = np.sqrt(k.evaluate(theta[None])["sigma_los2_R"] @ k.P.T)[0]
    rng = np.random.default_rng(1)
    for draw, want in ((rng.laplace(0, 1 / np.sqrt(2), s.size), 0.4), (rng.normal(0, 1, s.size), 1.0)):
        k.v2 = (draw * s) ** 2
        k.set_tempering(theta, stars_per_bin=1000)
        assert np.median(k.temper) == pytest.approx(want, rel=0.2)
        assert len(k.kurtosis["kappa"]) == 4


def test_outlying_star_beyond_the_default_grid(tiny_mock):
    from dataclasses import replace

    stars, _ = tiny_mock
    far = replace(stars, x=np.append(stars.x, 500.0), y=np.append(stars.y, 0.0), v=np.append(stars.v, 3.0),
                  verr=np.append(stars.verr, 2.0), weight=np.append(stars.weight, 1.0))
    k = JeansKernel(far, LightProfile(a=(0.25,), w=(1.0,)), FreeformConfig(nodes=4), beta=parse_beta("iso"))
    assert k.r[-1] > 3 * 500.0 * 0.99
    theta = np.array([[8.0, 0.5, 1.0, 2.0, 3.0]])
    gauss = np.full((1, k.ndim - theta.shape[1]), np.log(2.0))  # the 'inferred' shape at p = 2 (Gaussian)
    assert np.isfinite(k.log_likelihood(np.column_stack([theta, gauss]))).all()
