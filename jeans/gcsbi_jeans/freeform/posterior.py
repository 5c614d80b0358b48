"""The free-form route's posterior: a MAP fit, then emcee (vectorised), profiles and J-factors per draw."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import emcee
import numpy as np
from scipy.optimize import minimize

from ..core.beta import BetaModel
from ..core.grids import default_grids
from ..core.io import OUTLIER_Z, StarTable, check_fit_sample, robust_dispersion2, star_label
from ..core.jfactor import j_factor
from ..core.light import LightProfile, fit_light
from ..core.sampling import chain_diagnostics
from ..errors import JeansRuntimeError, JeansValueError, JeansWarning
from .model import G_KPC_KMS2_MSUN, FreeformConfig, JeansKernel, shape_kurtosis

__all__ = ["FreeformResult", "fit_freeform", "profiles_at"]


@dataclass
class FreeformResult:
    """emcee chain (steps, walkers, ndim) after burn-in and thinning, the MAP, and profiles per draw."""

    names: list[str]
    chain: np.ndarray
    log_prob: np.ndarray
    theta_map: np.ndarray
    acceptance: float
    wall_s: float
    map_wall_s: float
    radius: np.ndarray
    R: np.ndarray
    profiles: dict[str, np.ndarray]
    scalars: dict[str, np.ndarray]
    light: LightProfile
    r_half: float
    config: FreeformConfig
    beta_spec: str
    stellar_mass: float
    kernel: JeansKernel = field(repr=False)
    outliers: dict = field(default_factory=dict)
    velocity_shape: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


def _initial_guess(kernel: JeansKernel, stars: StarTable) -> np.ndarray:
    """Wolf et al. (2010): M(4/3 R_1/2) = 3 <sigma_los^2> (4/3 R_1/2) / G, spread as a mildly cored profile."""
    cfg = kernel.config
    s2 = max(robust_dispersion2(stars), 1.0)
    r3 = 4.0 / 3.0 * kernel.r_half
    mean_rho = 3.0 * s2 * r3 / G_KPC_KMS2_MSUN / (4.0 / 3.0 * math.pi * r3**3)
    gam = np.linspace(0.3, 2.5, cfg.nodes)
    theta = [math.log10(mean_rho * 0.6)] + gam.tolist()
    if kernel.beta_model is None:
        theta += [-0.05, 0.0, 0.0, 0.5 * (cfg.eta[0] + cfg.eta[1])]  # just tangential: inside the beta prior
    if cfg.velocity_shape == "mixture":
        theta += [0.5, 0.9]
    if cfg.velocity_shape == "inferred":
        theta += [math.log(2.0)] * cfg.shape_bins
    if kernel.has_outliers:
        theta += [float(np.sum(stars.weight[kernel.flagged]) / np.sum(stars.weight)) + 0.01]
    if kernel.n_light > 1:
        theta += [0.5]  # the first light member
    return np.clip(np.asarray(theta), *kernel.bounds())


def _map(kernel: JeansKernel, theta0: np.ndarray) -> np.ndarray:
    """Maximum a posteriori by Powell from ``theta0``; infinite values are replaced by a large penalty."""
    def nlp(t: np.ndarray) -> float:
        v = float(kernel.log_posterior(t[None])[0])
        return -v if math.isfinite(v) else 1e30

    # the level first (1-D), then everything
    best = min(np.linspace(-1.5, 1.5, 31), key=lambda d: nlp(np.concatenate([[theta0[0] + d], theta0[1:]])))
    theta0 = np.concatenate([[theta0[0] + best], theta0[1:]])
    res = minimize(nlp, theta0, method="Powell", options={"maxiter": 20000, "xtol": 1e-4, "ftol": 1e-8})
    if not res.fun < 1e30:
        raise JeansRuntimeError("the MAP search found no parameters with a finite posterior")
    return res.x


def _ball(kernel: JeansKernel, center: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` walkers in a small ball around ``center``, each with a finite posterior."""
    lo, hi = kernel.bounds()
    scale = 0.02 * np.maximum(hi - lo, 1e-3)
    out = []
    for _ in range(200):
        cand = center + rng.normal(0.0, 1.0, (4 * n, center.size)) * scale
        if kernel.config.slope_prior == "sorted":
            k = kernel.config.nodes
            cand[:, 1:1 + k] = np.sort(cand[:, 1:1 + k], axis=1)
        good = cand[np.isfinite(kernel.log_posterior(cand))]
        out.extend(good)
        if len(out) >= n:
            return np.asarray(out[:n])
        scale *= 0.5
    raise JeansRuntimeError("could not place the walkers around the MAP (the posterior is not finite there)")


def _converged(diag: dict, config: FreeformConfig) -> bool:
    return diag["rhat_max"] <= config.rhat_max and diag["ess_bulk_min"] >= config.ess_min


def _per_member(kernel: JeansKernel, theta: np.ndarray, what: str, x: np.ndarray) -> np.ndarray:
    """The light member's ``what`` (density or surface) at ``x`` for every parameter row."""
    table = np.stack([np.asarray(getattr(m, what)(x), float) for m in kernel.light_members])
    return table[kernel.light_index(theta)]


def profiles_at(kernel: JeansKernel, theta: np.ndarray, radius: np.ndarray, R: np.ndarray) -> dict[str, np.ndarray]:
    """Profiles of parameter rows ``theta`` on ``radius`` (3D) and ``R`` (projected), kpc."""
    prof = kernel.evaluate(theta)
    lr, lR = np.log(np.asarray(radius, float)), np.log(np.asarray(R, float))

    def on(arr: np.ndarray, x_from: np.ndarray, x_to: np.ndarray, log: bool) -> np.ndarray:
        a = np.log(np.maximum(arr, 1e-300)) if log else arr
        out = np.stack([np.interp(x_to, x_from, row) for row in a])
        return np.exp(out) if log else out

    g = kernel.lr
    out = {
        "rho": on(prof["rho"], g, lr, True),
        "mass": on(prof["mass"], g, lr, True),
        "mass_dm": on(prof["mass_dm"], g, lr, True),
        "slope": -on(prof["gamma"], g, lr, False),
        "beta": on(prof["beta"], g, lr, False),
        "sigma_r": np.sqrt(on(np.maximum(prof["sigma_r2"], 1e-300), g, lr, True)),
        "n": _per_member(kernel, theta, "density", radius),
        "sigma_los_R": np.sqrt(on(np.maximum(prof["sigma_los2_R"], 1e-300), np.log(kernel.R), lR, True)),
        "Sigma_R": _per_member(kernel, theta, "surface", R),
    }
    return out


def fit_freeform(stars: StarTable, config: FreeformConfig = FreeformConfig(), *, beta: BetaModel | None = None,
                 light: LightProfile | None = None, stellar_mass: float = 0.0, radius: np.ndarray | None = None,
                 R: np.ndarray | None = None, distance_kpc: float | None = None, j_angles_deg=(0.5,),
                 n_draws: int = 1000, progress: bool = True) -> FreeformResult:
    """Posterior of rho_DM(r) (and beta(r) when ``beta`` is None) for ``stars``.

    ``light``: the tracer profile (default: fitted to the stars' own positions; pass one fitted to a larger
    photometric sample with :func:`~gcsbi_jeans.core.light.fit_light`). ``stellar_mass`` (Msun) adds the stars'
    own mass M_* times the light's enclosed fraction, so ``rho`` is dark matter only. With ``distance_kpc``,
    J-factors J(theta) in log10 GeV^2 cm^-5 are computed from every draw of rho_DM.
    Gross velocity outliers are modelled by the contamination component of ``config.outliers`` (a
    :class:`~gcsbi_jeans.errors.JeansWarning` names them; ``result.outliers`` holds the contamination fraction
    and the stars the MAP assigns to the field) or, with ``outliers='none'``, refused.
    """
    check_fit_sample(stars, model_outliers=config.outliers != "none")
    if n_draws < 1:
        raise JeansValueError(f"n_draws must be >= 1, got {n_draws}")
    if distance_kpc is not None and not (math.isfinite(distance_kpc) and distance_kpc > 0):
        raise JeansValueError(f"distance must be > 0 kpc, got {distance_kpc}")
    light = fit_light(stars.R, stars.weight, seed=config.seed) if light is None else light
    kernel = JeansKernel(stars, light, config, beta=beta, stellar_mass=stellar_mass)
    if kernel.flagged.size:
        warnings.warn(JeansWarning(
            f"{kernel.flagged.size} gross velocity outlier{'s' if kernel.flagged.size > 1 else ''} (beyond "
            f"{OUTLIER_Z:g} robust dispersions): {star_label(stars, kernel.flagged)}; modelled by the "
            f"contamination component (outlier_frac)"), stacklevel=2)
    if config.walkers < 2 * kernel.ndim:
        raise JeansValueError(f"need at least {2 * kernel.ndim} walkers for the {kernel.ndim} parameters "
                              f"({', '.join(kernel.names)}); got {config.walkers}")
    r_def, R_def = default_grids(stars)
    radius = r_def if radius is None else np.asarray(radius, float)
    R = R_def if R is None else np.asarray(R, float)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    theta_map = _map(kernel, _initial_guess(kernel, stars))
    if config.velocity_shape == "tempered":
        kernel.set_tempering(theta_map)
        theta_map = _map(kernel, theta_map)
    map_wall = time.perf_counter() - t0
    p0 = _ball(kernel, theta_map, config.walkers, rng)
    if kernel.n_light > 1:  # the walkers start spread over the light members (the MAP holds one of them)
        p0[:, kernel.i_light] = (np.arange(config.walkers) % kernel.n_light) + rng.uniform(0.05, 0.95, config.walkers)
        bad = ~np.isfinite(kernel.log_posterior(p0))
        p0[bad, kernel.i_light] = theta_map[kernel.i_light]
    # differential-evolution moves mix far better than the default stretch move in the slope-ordering
    # geometry (Carina, beta inferred, 8000 steps: largest walker R-hat 1.12 against 1.48 after 16000
    # stretch-move steps)
    moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    sampler = emcee.EnsembleSampler(config.walkers, kernel.ndim, kernel.log_posterior, vectorize=True, moves=moves)
    sampler.random_state = np.random.RandomState(config.seed).get_state()
    th = config.thin
    sampler.run_mcmc(p0, config.steps // th, thin_by=th, progress=progress)  # stored thinned: memory stays small
    total, burn = config.steps, config.burn
    diag = chain_diagnostics(sampler.get_chain(discard=burn // th), kernel.names)
    while config.converge and not _converged(diag, config) and total < config.max_steps:
        more = min(config.steps, config.max_steps - total)
        sampler.run_mcmc(None, more // th, thin_by=th, progress=progress)
        total += more - more % th
        burn = (total // 2) // th * th
        diag = chain_diagnostics(sampler.get_chain(discard=burn // th), kernel.names)
    diag.update(steps=total, burn=burn, thin=th, converged=_converged(diag, config))
    if config.converge and not diag["converged"]:
        warnings.warn(JeansWarning(
            f"the MCMC has not converged after {total} steps: largest walker R-hat {diag['rhat_max']:.3f} "
            f"({diag['rhat_worst']}; want <= {config.rhat_max:g}), smallest bulk ESS {diag['ess_bulk_min']:.0f} "
            f"({diag['ess_worst']}; want >= {config.ess_min:g}); the bands are not reliable: rerun with more steps "
            f"(max_steps; CLI --max-steps) or more walkers"), stacklevel=2)
    wall = time.perf_counter() - t0
    chain = sampler.get_chain(discard=burn // th)
    logp = sampler.get_log_prob(discard=burn // th)
    if not (np.all(np.isfinite(chain)) and np.all(np.isfinite(logp))):
        raise JeansRuntimeError("emcee chain contains non-finite values")
    flat = chain.reshape(-1, kernel.ndim)
    idx = np.sort(rng.choice(len(flat), size=min(n_draws, len(flat)), replace=False))
    draws = flat[idx]
    profiles = profiles_at(kernel, draws, radius, R)
    # headline numbers per draw: rho_DM(150 pc), M(<R_1/2), beta(R_1/2)
    head = profiles_at(kernel, draws, np.array([0.15, kernel.r_half]), np.array([kernel.r_half]))
    scalars: dict[str, np.ndarray] = {"rho_dm_150pc": head["rho"][:, 0], "mass_r_half": head["mass"][:, 1],
                                      "beta_r_half": head["beta"][:, 1]}
    if distance_kpc is not None:
        rho = kernel.evaluate(draws)["rho"]
        r_trunc = max(1.5 * float(stars.R.max()), 2.0 * distance_kpc * math.tan(math.radians(max(j_angles_deg))))
        for ang in j_angles_deg:
            scalars[f"log10_J_{ang:g}deg"] = j_factor(kernel.r, rho, distance_kpc=distance_kpc, angle_deg=ang,
                                                       r_trunc=r_trunc)
        # an inner slope >= 1.5 makes J infinite: such draws are NaN (excluded from every summary) and counted
        bad = ~np.isfinite(scalars[f"log10_J_{j_angles_deg[0]:g}deg"])
        diag["J_infinite_fraction"] = float(np.mean(bad))
        for key in scalars:
            scalars[key] = np.where(np.isfinite(scalars[key]), scalars[key], np.nan)
        if bad.any():
            warnings.warn(JeansWarning(
                f"{bad.mean():.1%} of the posterior draws have an inner dark-matter slope >= 1.5, where the J-factor "
                f"diverges; they are excluded from the J summaries (J_infinite_fraction in the diagnostics), which "
                f"are therefore conditional on a finite J"), stacklevel=2)
    spec = beta.spec if beta is not None else "inferred:bvh"
    outliers = {"model": "uniform" if kernel.has_outliers else "none", "flagged": star_label(stars, kernel.flagged)
                if kernel.flagged.size else None}
    if kernel.has_outliers:
        p_map = kernel.member_probability(theta_map)[0]
        low = np.flatnonzero(p_map < 0.5)
        outliers.update(outlier_frac=dict(zip(["q16", "median", "q84"], np.quantile(
            flat[:, kernel.i_out], [0.16, 0.5, 0.84]).tolist())), field_at_map=star_label(stars, low) if low.size
            else None)
    shape = {"model": config.velocity_shape}
    if config.velocity_shape == "inferred":
        i = kernel.i_shape
        p = np.exp(flat[:, i:i + config.shape_bins])
        q = lambda x: np.quantile(x, [0.16, 0.5, 0.84], axis=0).T.tolist()  # noqa: E731
        shape.update(R_bin_median_kpc=np.exp(kernel.shape_lR).tolist(), p_q16_median_q84=q(p),
                     kurtosis_q16_median_q84=q(shape_kurtosis(p)))
    elif config.velocity_shape == "tempered":
        shape.update(kernel.kurtosis)
    return FreeformResult(names=kernel.names, chain=chain, log_prob=logp, theta_map=theta_map,
                          acceptance=float(np.mean(sampler.acceptance_fraction)), wall_s=wall, map_wall_s=map_wall,
                          radius=radius, R=R, profiles=profiles, scalars=scalars, light=light, r_half=kernel.r_half,
                          config=config, beta_spec=spec, stellar_mass=float(stellar_mass), kernel=kernel,
                          outliers=outliers, velocity_shape=shape, diagnostics=diag)
