"""The parametric baseline route, GravSphere-style: Plummer light + gNFW/Zhao halo + the same beta(r), sampled with
emcee; a comparison for the free-form posterior."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import emcee
import numpy as np

from ..core.beta import BetaModel
from ..core.io import StarTable, check_fit_sample, robust_dispersion2
from ..core.options import option
from ..core.parametric import G_KPC_KMS2_MSUN, plummer_cdf_2d, plummer_density, plummer_surface, \
    sigma_los_parametric, zhao_density, zhao_mass
from ..core.sampling import check_sampler_settings
from ..errors import JeansRuntimeError, JeansValueError

__all__ = ["BaselineConfig", "BaselineResult", "fit_baseline", "PARAM_NAMES"]

PARAM_NAMES = ("log10_a", "log10_rho_s", "log10_r_s", "gamma")


@dataclass(frozen=True)
class BaselineConfig:
    """emcee settings and priors (uniform) of the parametric model; alpha, beta_out of the Zhao halo are fixed."""

    walkers: int = option(32, "emcee walkers (even, >= 8)")
    steps: int = option(1500, "emcee steps per walker, --burn of them discarded")
    burn: int = option(500, "emcee steps discarded as burn-in")
    thin: int = option(10, "keep every thin-th emcee step")
    alpha: float = option(1.0, "the Zhao halo's transition sharpness alpha (fixed)")
    beta_out: float = option(3.0, "the Zhao halo's outer slope (fixed)")
    log10_rho_s: tuple[float, float] = option((5.0, 11.0), "uniform prior of log10 rho_s (Msun/kpc^3)")
    log10_r_s: tuple[float, float] = option((-1.0, 1.5), "uniform prior of log10 r_s (kpc)")
    gamma: tuple[float, float] = option((0.0, 2.0), "uniform prior of the inner slope gamma")
    n_grid: int = option(24, "projected radii sigma_los(R) is computed at (then interpolated to the stars)")
    seed: int = option(0, "seed of the walkers' start and of emcee")

    def __post_init__(self) -> None:
        check_sampler_settings(self.walkers, self.steps, self.burn, self.thin)
        for lo, hi in (self.log10_rho_s, self.log10_r_s, self.gamma):
            if not lo < hi:
                raise JeansValueError("prior ranges must be (low, high) with low < high")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BaselineResult:
    """Chains (steps, walkers, params) after burn-in/thinning, acceptance, wall time and profiles per draw."""

    chain: np.ndarray
    acceptance: float
    wall_s: float
    radius: np.ndarray
    R: np.ndarray
    profiles: dict[str, np.ndarray]
    config: BaselineConfig
    beta_spec: str


class _LogPosterior:
    def __init__(self, stars: StarTable, beta: BetaModel, cfg: BaselineConfig) -> None:
        self.R = stars.R
        self.v = stars.v
        self.e2 = stars.verr**2
        self.w = stars.weight
        self.beta = beta
        self.cfg = cfg
        self.Rmax = float(self.R.max())
        self.L = stars.half_light_radius()
        self.grid = np.geomspace(max(self.R.min(), 1e-3 * self.L), self.Rmax, cfg.n_grid)
        self.lo = np.array([math.log10(self.L) - 1.5, cfg.log10_rho_s[0], cfg.log10_r_s[0], cfg.gamma[0]])
        self.hi = np.array([math.log10(self.L) + 1.5, cfg.log10_rho_s[1], cfg.log10_r_s[1], cfg.gamma[1]])

    def model(self, theta: np.ndarray, R: np.ndarray):
        a, rho_s, r_s, gam = 10 ** theta[0], 10 ** theta[1], 10 ** theta[2], theta[3]
        cfg = self.cfg
        return sigma_los_parametric(
            R, nu=lambda r: plummer_density(r, a),
            mass=lambda r: zhao_mass(r, rho_s, r_s, cfg.alpha, cfg.beta_out, gam),
            beta=self.beta, r_min=1e-3 * self.L, r_max=200.0 * max(self.L, a))

    def __call__(self, theta: np.ndarray) -> float:
        if np.any(theta < self.lo) or np.any(theta > self.hi):
            return -np.inf
        a = 10 ** theta[0]
        _, s_grid = self.model(theta, self.grid)
        if not np.all(np.isfinite(s_grid)):
            return -np.inf
        s2 = np.exp(np.interp(np.log(self.R), np.log(self.grid), np.log(s_grid**2))) + self.e2
        lpos = np.log(2 * math.pi * self.R * plummer_surface(self.R, a) / plummer_cdf_2d(self.Rmax, a))
        lv = -0.5 * self.v**2 / s2 - 0.5 * np.log(2 * math.pi * s2)
        return float(np.sum(self.w * (lpos + lv)))


def _initial(lp: _LogPosterior, stars: StarTable, rng: np.random.Generator, n: int) -> np.ndarray:
    """Walkers around a Wolf-like mass estimate: M(R_half) ~ 2.5 <v^2> R_half / G, cored-ish gNFW."""
    s2 = max(robust_dispersion2(stars), 1.0)
    m_half = 2.5 * s2 * lp.L / G_KPC_KMS2_MSUN
    r_s, gam = 1.0, 0.5
    rho_s = m_half / zhao_mass(lp.L, 1.0, r_s, lp.cfg.alpha, lp.cfg.beta_out, gam)
    base = np.array([math.log10(lp.L), math.log10(float(rho_s)), math.log10(r_s), gam])
    p0 = base + rng.normal(0.0, [0.05, 0.1, 0.1, 0.1], size=(n, 4))
    return np.clip(p0, lp.lo + 1e-6, lp.hi - 1e-6)


def fit_baseline(stars: StarTable, beta: BetaModel, config: BaselineConfig = BaselineConfig(), *,
                 radius: np.ndarray, R: np.ndarray, n_draws: int = 200, progress: bool = True) -> BaselineResult:
    """Sample the parametric posterior with emcee (seeded) and evaluate profiles on ``radius``/``R`` grids.

    The likelihood is Gaussian with no contamination term: gross velocity outliers are refused by
    :func:`~gcsbi_jeans.core.io.check_fit_sample` (the free-form fit models them instead).
    """
    check_fit_sample(stars)
    lp = _LogPosterior(stars, beta, config)
    rng = np.random.default_rng(config.seed)
    p0 = _initial(lp, stars, rng, config.walkers)
    sampler = emcee.EnsembleSampler(config.walkers, 4, lp)
    sampler.random_state = np.random.RandomState(config.seed).get_state()  # emcee's own generator, seeded
    t0 = time.perf_counter()
    sampler.run_mcmc(p0, config.steps, progress=progress)
    wall = time.perf_counter() - t0
    chain = sampler.get_chain(discard=config.burn, thin=config.thin)
    if not np.all(np.isfinite(chain)):
        raise JeansRuntimeError("emcee chain contains non-finite values")
    flat = chain.reshape(-1, 4)
    idx = rng.choice(len(flat), size=min(n_draws, len(flat)), replace=False)
    radius = np.asarray(radius, float)
    R = np.asarray(R, float)
    prof: dict[str, list] = {k: [] for k in ("n", "mass", "rho", "slope", "beta", "Sigma_R", "sigma_los_R")}
    for th in flat[idx]:
        a, rho_s, r_s, gam = 10 ** th[0], 10 ** th[1], 10 ** th[2], th[3]
        x = (radius / r_s) ** config.alpha
        prof["n"].append(plummer_density(radius, a))
        prof["mass"].append(zhao_mass(radius, rho_s, r_s, config.alpha, config.beta_out, gam))
        prof["rho"].append(zhao_density(radius, rho_s, r_s, config.alpha, config.beta_out, gam))
        prof["slope"].append(-gam - (config.beta_out - gam) * x / (1.0 + x))
        prof["beta"].append(beta(radius))
        sig, slos = lp.model(th, R)
        prof["Sigma_R"].append(sig)
        prof["sigma_los_R"].append(slos)
    return BaselineResult(chain=chain, acceptance=float(np.mean(sampler.acceptance_fraction)), wall_s=wall,
                          radius=radius, R=R, profiles={k: np.stack(v) for k, v in prof.items()},
                          config=config, beta_spec=beta.spec)
