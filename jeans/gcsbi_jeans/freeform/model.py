"""Free-form, positive dark-matter profile solved through the integral form of the spherical Jeans equation.

rho_DM(r) is described by its logarithmic slope gamma(r) = -dln rho/dln r at K nodes in ln r (linear in
ln r between nodes, constant outside) and its value at the tracers' half-light radius. No halo family: any
non-increasing profile with a piecewise-smooth slope is reachable, and rho > 0, M(r) increasing, by
construction. With the tracer density nu(r) (fitted from photometry), the stars' mass M_*(r) and beta(r):

    nu sigma_r^2 (r) = 1/g(r) int_r^inf g nu G M / r'^2 dr',   g = exp(int 2 beta / r dr)       (no derivatives)
    Sigma sigma_los^2 (R) = 2 int_R^inf (1 - beta R^2/r^2) nu sigma_r^2 r dr / sqrt(r^2 - R^2)

Everything is linear algebra on fixed grids, vectorised over many parameter vectors at once (one row per
emcee walker), so a posterior of ~10^5 evaluations takes seconds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.special import gammaln

from ..core.beta import BetaModel
from ..core.io import StarTable, outlier_stars, star_label
from ..core.light import LightProfile
from ..core.options import option
from ..core.parametric import G_KPC_KMS2_MSUN
from ..core.sampling import check_sampler_settings
from ..errors import JeansValueError, JeansWarning

__all__ = ["FreeformConfig", "JeansKernel", "G_KPC_KMS2_MSUN", "SLOPE_PRIORS", "OUTLIER_MODELS"]

SLOPE_PRIORS = ("smooth", "sorted")
VELOCITY_SHAPES = ("inferred", "tempered", "mixture", "gaussian")
OUTLIER_MODELS = ("auto", "uniform", "none")


@dataclass(frozen=True)
class FreeformConfig:
    """The free-form model, its priors and the sampler.

    ``nodes`` slope nodes log-spaced over ``node_span`` (units of R_1/2); ``slope_prior``: 'smooth' (default: a
    Gaussian random walk between neighbouring nodes with step ``slope_step``, each 0 <= gamma <= slope_max, so
    that every node's prior is nearly uniform) or 'sorted' (GravSphere-like: uniform in [0, slope_max] and
    non-decreasing outwards). 'sorted' is the flat prior on an ordered set, whose marginals are order
    statistics: the slope at R_1/2 has prior mean slope_max / 2 with a small spread, the innermost node is
    pushed towards 0 and the outermost towards slope_max, and where 1000 velocities say little the bands
    follow that prior. On 20 fresh galpy mocks (``bench/jeans_freeform.py --stage holdout|holdout2``) the truth
    lay inside the 68% band at 53-56% of the (mock, radius) pairs with 'sorted' and at 66-70% with 'smooth'
    (9 nodes, step 1); halving the likelihood's weight widened the 'sorted' bands by only 12%.
    The innermost slope (rho ~ r^-gamma_1 inside the first node) is at most ``inner_slope_max`` (1.5): central
    cusps of simulated dark-matter haloes are no steeper (NFW gives 1, Moore et al. 1999's extreme 1.5, and
    resolved CDM haloes flatten below 1, Navarro et al. 2010), and a steeper cusp makes the annihilation
    J-factor infinite; 1000 velocities barely constrain it (Carina without the bound: 41% of the draws had
    gamma_1 >= 1.5).
    Priors of an inferred beta (``beta=None`` in the fit; Baes & van Hese 2007 in the symmetrised
    beta~ = beta / (2 - beta)): beta~_0, beta~_inf uniform in ``beta_tilde``, log10(r_a / R_1/2) in
    ``log10_ra``, eta in ``eta``. The default bounds come from theory and simulations, not from published dSph
    fits: with ``slope_anisotropy`` (default) every draw obeys beta(r) <= gamma_nu(r) / 2, gamma_nu = -dln nu /
    dln r of the tracer light, at every radius (the central density-slope--anisotropy theorem of An & Evans
    2006, which holds wherever the distribution function is positive, and its global form, proven for broad
    families by Ciotti & Morganti 2010 and van Hese, Baes & Dejonghe 2011): a cored tracer has beta(0) <= 0.
    Positivity does not bound tangential orbits, so the lower bound beta~ >= -1/3 (beta >= -1, sigma_t <=
    sqrt(2) sigma_r) is an envelope around simulated dwarfs, which are near isotropic at the centre and
    isotropic to radial outside (El-Badry et al. 2017; Campbell et al. 2017; Genina et al. 2018); the old
    box [-0.95, 0.95] allowed beta down to -38, and two real dwarfs then drifted to strongly tangential
    orbits that raised rho_DM(150 pc) by ~50%.
    ``velocity_shape``: each star's v_los has the Jeans variance sigma_los^2(R) + error^2. 'inferred' (default):
    a generalised Gaussian (exponential-power) distribution of that variance, p(v) ~ exp(-|v / alpha|^p), whose
    shape p is one free parameter in each of ``shape_bins`` radial bins of equal (membership-weighted) star
    counts (ln p uniform in ln ``shape_p``): p = 2 is Gaussian, p < 2 heavy-tailed
    (kurtosis 6 at p = 1), p > 2 flat-topped (kurtosis 2.19 at p = 4), so the likelihood learns how much
    Var(v^2) the data have at each radius instead of assuming 2 sigma^4. 'tempered':
    a Gaussian likelihood, whose variance estimate is consistent whatever the true shape, with each star's term
    weighted by 2 / (kappa - 1), kappa the kurtosis of the standardised velocities at the MAP in radial bins:
    the Gaussian likelihood assumes Var(v^2) = 2 sigma^4 while it is (kappa - 1) sigma^4, so untempered bands
    are too narrow for leptokurtic data (Gaia Challenge PlumCoreOm: kappa = 5.2). 'mixture': a free global
    shape (two Gaussians of variances q sigma^2 and (1 - f q)/(1 - f) sigma^2, weights f, 1 - f), which biases
    the variance where the true shape changes with radius. 'gaussian': no correction.
    ``outliers``: a contamination component. Each star's likelihood becomes (1 - eps) member(v) + eps / W, the
    field uniform over the observed velocity range W, with eps ('outlier_frac') uniform in ``outlier_frac``
    (default [0, 0.5]: no preferred contamination below the point where the field would outnumber the
    members). 'uniform': always; 'auto' (default): when the sample holds gross velocity outliers
    (:func:`~gcsbi_jeans.core.io.outlier_stars`), so that clean samples keep the plain likelihood; 'none': never
    (the fit then refuses gross outliers). On clean leptokurtic data the field absorbs the members' tails
    (PlumCoreOm, 1000 stars, 'uniform': eps ~ 0.04 and rho(R_1/2) 0.08 dex low), hence 'auto' by default;
    once a gross outlier widens W, eps / W is far below the members' density and only the outlier is absorbed.
    Sampler: emcee with ``walkers`` walkers for ``steps`` steps (the first ``burn`` discarded, every ``thin``-th
    kept). With ``converge`` (default) the run is extended by ``steps`` at a time, the first half of the whole
    run then discarded, until the largest walker R-hat (rank-normalised split R-hat with the walkers as chains)
    is <= ``rhat_max`` and the smallest bulk ESS >= ``ess_min``, or ``max_steps`` is reached; a run that stops
    unconverged gives a :class:`JeansWarning`.
    """

    nodes: int = option(9, "slope nodes of the free-form rho_DM, log-spaced over --node-span")
    node_span: tuple[float, float] = option((0.125, 8.0), "innermost and outermost slope node, in units of R_1/2")
    slope_prior: str = option("smooth", "smooth: a Gaussian random walk between neighbouring nodes, each slope "
                              "nearly uniform in [0, --slope-max]; sorted: non-decreasing outwards "
                              "(GravSphere-like; its order-statistics prior narrows the bands)", choices=SLOPE_PRIORS)
    slope_step: float = option(1.0, "step of the smooth prior's random walk between neighbouring nodes")
    slope_max: float = option(4.0, "largest slope gamma = -dln rho / dln r at any node")
    inner_slope_max: float = option(1.5, "largest slope at the innermost node (1.5: Moore's cusp; J finite below)")
    log10_rho_half: tuple[float, float] = option((3.0, 12.0), "uniform prior of log10 rho_DM(R_1/2) (Msun/kpc^3)")
    beta_tilde: tuple[float, float] = option((-1.0 / 3.0, 0.95), "uniform prior of the symmetrised anisotropy "
                                             "beta~ = beta / (2 - beta) at the centre and at infinity (--beta infer)")
    slope_anisotropy: bool = option(True, "inferred beta obeys beta(r) <= gamma_nu(r) / 2 everywhere "
                                    "(An & Evans 2006; --beta infer)")
    log10_ra: tuple[float, float] = option((-1.0, 1.0), "uniform prior of log10(r_a / R_1/2) (--beta infer)")
    eta: tuple[float, float] = option((1.0, 3.0), "uniform prior of the sharpness eta of the inferred beta(r)")
    velocity_shape: str = option("inferred", "LOS velocity distribution: a generalised Gaussian whose shape "
                                 "(kurtosis) is inferred in --shape-bins radial bins (inferred), a Gaussian with "
                                 "kurtosis-tempered weights (tempered), a free two-Gaussian mixture (mixture), or a "
                                 "plain Gaussian (gaussian)", choices=VELOCITY_SHAPES)
    shape_p: tuple[float, float] = option((0.8, 5.0), "range of the generalised Gaussian's shape p (ln p uniform; "
                                          "2: Gaussian; velocity shape 'inferred')")
    shape_bins: int = option(3, "radial bins of equal star counts, each with its own shape p (velocity shape "
                             "'inferred')")
    shape_f: tuple[float, float] = option((0.05, 0.95), "prior range of the narrow Gaussian's weight f (velocity "
                                          "shape 'mixture')")
    shape_q: tuple[float, float] = option((0.05, 1.0), "prior range of the narrow Gaussian's variance ratio q "
                                          "(velocity shape 'mixture')")
    outliers: str = option("auto", "contamination component: eps x uniform over the observed velocity range; "
                           "auto: only when the data hold gross velocity outliers; none: refuse them",
                           choices=OUTLIER_MODELS)
    outlier_frac: tuple[float, float] = option((0.0, 0.5), "uniform prior of the contamination fraction eps")
    grid_points: int = option(320, "points of the ln r grid the Jeans equation is solved on")
    grid_span: tuple[float, float] = option((1e-3, 300.0), "the ln r grid's range, in units of R_1/2")
    n_R: int = option(48, "projected radii sigma_los(R) is computed at (then interpolated to the stars)")
    n_t: int = option(96, "quadrature points of each line-of-sight projection")
    walkers: int = option(48, "emcee walkers (even, >= 8 and >= twice the number of parameters)")
    steps: int = option(10000, "emcee steps per walker of the first run, half of them burn-in (with --converge, "
                        "also the length of each extension)")
    burn: int = option(5000, "emcee steps discarded as burn-in", shown="half of --steps")
    thin: int = option(10, "keep every thin-th emcee step", shown="--steps / 100, between 1 and 10")
    converge: bool = option(True, "extend the run by --steps at a time until the largest walker R-hat <= "
                            "--rhat-max and the smallest bulk ESS >= --ess-min, up to --max-steps (then a "
                            "warning); --no-converge: stop after --steps whatever they say (summary.json still "
                            "reports them)")
    max_steps: int = option(40000, "most emcee steps of a converging run (--converge)")
    rhat_max: float = option(1.01, "largest walker R-hat a converged run may have (--converge)")
    ess_min: float = option(400.0, "smallest bulk ESS a converged run may have (--converge)")
    seed: int = option(0, "seed of the MAP start, the walkers and emcee")

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise JeansValueError(f"nodes must be >= 2, got {self.nodes}")
        if self.velocity_shape not in VELOCITY_SHAPES:
            raise JeansValueError(f"velocity_shape must be one of {VELOCITY_SHAPES}, got {self.velocity_shape!r}")
        if not (0 < self.shape_f[0] < self.shape_f[1] < 1 and 0 < self.shape_q[0] < self.shape_q[1] <= 1):
            raise JeansValueError("shape_f must lie inside (0, 1) and shape_q inside (0, 1]")
        if self.outliers not in OUTLIER_MODELS:
            raise JeansValueError(f"outliers must be one of {OUTLIER_MODELS}, got {self.outliers!r}")
        lo, hi = self.outlier_frac
        if not (0.0 <= lo < hi <= 0.5):
            raise JeansValueError(f"outlier_frac must be (low, high) with 0 <= low < high <= 0.5, got {(lo, hi)}")
        if self.slope_prior not in SLOPE_PRIORS:
            raise JeansValueError(f"slope_prior must be one of {SLOPE_PRIORS}, got {self.slope_prior!r}")
        defaults = {f.name: f.default for f in fields(self)}
        if self.slope_prior != "smooth" and self.slope_step != defaults["slope_step"]:
            raise JeansValueError("slope_step only applies to slope_prior='smooth'")
        if self.velocity_shape != "mixture" and (self.shape_f, self.shape_q) != (defaults["shape_f"],
                                                                                  defaults["shape_q"]):
            raise JeansValueError("shape_f and shape_q only apply to velocity_shape='mixture'")
        if self.velocity_shape != "inferred" and (self.shape_p, self.shape_bins) != (defaults["shape_p"],
                                                                                       defaults["shape_bins"]):
            raise JeansValueError("shape_p and shape_bins only apply to velocity_shape='inferred'")
        if not (0.3 <= self.shape_p[0] < self.shape_p[1] <= 20.0 and 1 <= self.shape_bins <= 8):
            raise JeansValueError(f"shape_p must be (low, high) with 0.3 <= low < high <= 20 and shape_bins in "
                                  f"1..8, got {self.shape_p} and {self.shape_bins}")
        if self.outliers == "none" and self.outlier_frac != defaults["outlier_frac"]:
            raise JeansValueError("outlier_frac does not apply to outliers='none'")
        for name in ("node_span", "grid_span", "log10_rho_half", "beta_tilde", "log10_ra", "eta", "shape_f",
                     "shape_q"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise JeansValueError(f"{name} must be (low, high) with low < high, got {(lo, hi)}")
        if self.node_span[0] <= 0 or self.grid_span[0] <= 0:
            raise JeansValueError("node_span and grid_span are radii in units of R_1/2 and must be > 0")
        if self.grid_span[0] > self.node_span[0] or self.grid_span[1] < self.node_span[1]:
            raise JeansValueError("grid_span must contain node_span")
        if not (self.slope_step > 0 and self.slope_max > 0):
            raise JeansValueError("slope_step and slope_max must be > 0")
        if not (0 < self.inner_slope_max <= min(self.slope_max, 3.0)):
            raise JeansValueError(f"inner_slope_max must lie in (0, min(slope_max, 3)] (3: a finite central mass), "
                                  f"got {self.inner_slope_max}")
        if not (-1 < self.beta_tilde[0] and self.beta_tilde[1] < 1 and self.eta[0] > 0):
            raise JeansValueError("beta_tilde must lie inside (-1, 1) and eta must be > 0")
        if self.grid_points < 64 or self.n_R < 8 or self.n_t < 16:
            raise JeansValueError("grid_points >= 64, n_R >= 8 and n_t >= 16 are required")
        check_sampler_settings(self.walkers, self.steps, self.burn, self.thin)
        if self.steps % self.thin or self.burn % self.thin:
            raise JeansValueError(f"steps ({self.steps}) and burn ({self.burn}) must be multiples of thin "
                                  f"({self.thin}): the chain is stored thinned")
        if not (self.max_steps >= self.steps and self.rhat_max > 1.0 and self.ess_min > 0):
            raise JeansValueError(f"max_steps must be >= steps ({self.steps}), rhat_max > 1 and ess_min > 0; got "
                                  f"{self.max_steps}, {self.rhat_max}, {self.ess_min}")
        if not self.converge and (self.max_steps, self.rhat_max, self.ess_min) != (
                defaults["max_steps"], defaults["rhat_max"], defaults["ess_min"]):
            raise JeansValueError("max_steps, rhat_max and ess_min only apply with converge=True")

    def to_dict(self) -> dict:
        return asdict(self)


def _interp_matrix(x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
    """(len(x_to), len(x_from)) linear-interpolation weights (clamped at the ends)."""
    x = np.clip(x_to, x_from[0], x_from[-1])
    j = np.clip(np.searchsorted(x_from, x) - 1, 0, len(x_from) - 2)
    t = (x - x_from[j]) / (x_from[j + 1] - x_from[j])
    m = np.zeros((len(x_to), len(x_from)))
    rows = np.arange(len(x_to))
    m[rows, j] = 1.0 - t
    m[rows, j + 1] += t
    return m


def _log_normal(v2: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (v2 / var + np.log(2.0 * math.pi * var))


def _log_genorm_at(half_log_v2: np.ndarray, log_var: np.ndarray, log_p: np.ndarray,
                   bins: np.ndarray | None = None) -> np.ndarray:
    """ln of the generalised Gaussian p / (2 alpha Gamma(1/p)) exp(-|v / alpha|^p), alpha^2 = var Gamma(1/p) /
    Gamma(3/p), at ln|v| = ``half_log_v2`` for ln var = ``log_var`` and ln p = ``log_p``.

    With ``bins`` (one index per star), ``log_p`` holds one shape per (row, bin) and the Gamma functions are
    evaluated once per bin, then spread to the stars (the likelihood's fast path).
    """
    take = (lambda a: a) if bins is None else (lambda a: a[:, bins])  # noqa: E731
    p = np.exp(log_p)
    g1 = gammaln(1.0 / p)
    log_alpha = 0.5 * (log_var + take(g1 - gammaln(3.0 / p)))
    z = np.exp(take(p) * (half_log_v2 - log_alpha))
    return take(log_p - g1 - math.log(2.0)) - log_alpha - z


def _log_genorm(v2: np.ndarray, var: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ln of the generalised Gaussian of variance ``var`` and shape ``p`` at v (given v^2):
    p / (2 alpha Gamma(1/p)) exp(-|v / alpha|^p), alpha^2 = var Gamma(1/p) / Gamma(3/p)."""
    with np.errstate(divide="ignore"):
        return _log_genorm_at(0.5 * np.log(v2), np.log(var), np.log(p))


def shape_kurtosis(p):
    """Kurtosis Gamma(5/p) Gamma(1/p) / Gamma(3/p)^2 of the generalised Gaussian of shape ``p`` (3 at p = 2)."""
    p = np.asarray(p, float)
    return np.exp(gammaln(5.0 / p) + gammaln(1.0 / p) - 2.0 * gammaln(3.0 / p))


def beta_from_tilde(bt):
    """beta from the symmetrised anisotropy beta~ = beta / (2 - beta)."""
    return 2.0 * bt / (1.0 + bt)


class JeansKernel:
    """Precomputed grids for one data set; :meth:`evaluate` maps parameter rows to profiles and log-posterior.

    Parameter vector: [log10 rho_DM(R_1/2) (Msun kpc^-3), gamma_1..gamma_K], then, if beta is inferred,
    [beta~_0, beta~_inf, log10(r_a / R_1/2), eta], then, for the 'mixture' velocity shape, [f, q] (for the
    'inferred' shape, ln p at each shape bin), then, with
    a contamination component (:attr:`has_outliers`), [outlier_frac], then, when ``light`` is an ensemble of K >= 2
    tracer profiles (:class:`~gcsbi_jeans.core.light_table.LightEnsemble`, e.g. the CNF fit), [light_member].

    The light ensemble's uncertainty is carried into the posterior by marginalising over its members: k =
    floor(light_member), light_member uniform in [0, K), picks the member whose nu(r), Sigma(R), stellar mass
    profile and slope--anisotropy bound that row uses. The K equally weighted members stand for draws of n(r)
    given the photometry, so this samples p(theta, k | v) ~ p(theta) p(k) L(v | theta, nu_k) exactly: the joint
    posterior of the Jeans model and the light profile given photometry and velocities, the velocities
    reweighting members as they should. The alternatives are worse or dearer: a fixed member per walker is not a
    valid emcee ensemble (walkers propose moves from each other, so they must share one target) and ignores the
    velocities' say on the light; the mean of K likelihoods per evaluation costs K times as much. Here a row costs
    the same as with one profile (the member's precomputed grids are gathered); the index mixes through the
    ensemble moves like any parameter (its R-hat is reported with the others).
    """

    def __init__(self, stars: StarTable, light: LightProfile, config: FreeformConfig, *,
                 beta: BetaModel | None = None, stellar_mass: float = 0.0) -> None:
        if not (math.isfinite(stellar_mass) and stellar_mass >= 0):
            raise JeansValueError(f"stellar_mass must be finite and >= 0 Msun, got {stellar_mass}")
        cfg = self.config = config
        self.light = light
        self.beta_model = beta
        self.stellar_mass = float(stellar_mass)
        self.r_half = light.half_light_radius()
        k = cfg.nodes
        self.names = ["log10_rho_half"] + [f"gamma_{i + 1}" for i in range(k)]
        if beta is None:
            self.names += ["beta_tilde_0", "beta_tilde_inf", "log10_ra", "eta"]
        self.i_shape = len(self.names)
        if cfg.velocity_shape == "mixture":
            self.names += ["shape_f", "shape_q"]
        if cfg.velocity_shape == "inferred":
            self.names += [f"log_shape_{i + 1}" for i in range(cfg.shape_bins)]
        self.flagged = outlier_stars(stars)
        self.has_outliers = cfg.outliers == "uniform" or (cfg.outliers == "auto" and self.flagged.size > 0)
        self.i_out = len(self.names)
        if self.has_outliers:
            self.names += ["outlier_frac"]
        members = getattr(light, "members", None)
        self.light_members = tuple(members) if members is not None and len(members) > 1 else (light,)
        self.n_light = len(self.light_members)
        self.i_light = len(self.names)
        if self.n_light > 1:
            self.names += ["light_member"]
        # the field: uniform over the observed velocity range
        self.log_field = -math.log(max(float(np.ptp(stars.v)), 1e-3))
        # ln r grid through ln R_1/2 exactly (index j0): rho_DM(R_1/2) is a parameter
        lo, hi = (math.log(s) for s in cfg.grid_span)
        hi = max(hi, math.log(3.0 * float(stars.R.max()) / self.r_half))  # outlying stars stay inside the grid
        h = (hi - lo) / (cfg.grid_points - 1)
        j0 = int(round(-lo / h))
        self.lr = math.log(self.r_half) + h * (np.arange(cfg.grid_points) - j0)
        self.j0, self.h = j0, h
        self.r = np.exp(self.lr)
        self.node_lr = math.log(self.r_half) + np.linspace(*(math.log(s) for s in cfg.node_span), k)
        self.S = _interp_matrix(self.node_lr, self.lr)  # slope at grid points from node slopes
        # per light member (one row each): nu, gamma_nu / 2 (the largest beta the density-slope--anisotropy
        # inequality allows at each grid radius), the stars' mass; then Sigma below
        self.nu_k = np.stack([np.asarray(m.density(self.r), float) for m in self.light_members])
        self.beta_max_k = -0.5 * np.gradient(np.log(np.maximum(self.nu_k, 1e-300)), self.lr, axis=1)
        self.m_star_k = self.stellar_mass * np.stack([np.asarray(m.mass_fraction(self.r), float)
                                                      for m in self.light_members])
        self.nu, self.beta_max, self.m_star = self.nu_k[0], self.beta_max_k[0], self.m_star_k[0]
        # projected radii: the stars' range; projection matrices A (plain) and B (times R^2/r^2)
        R = stars.R
        R_pos = R[R > 0]
        R_lo = max(float(R_pos.min()) if R_pos.size else self.r_half * 1e-2, self.r[1])
        self.R = np.geomspace(R_lo * 0.99, float(R.max()) * 1.01, cfg.n_R)
        self.A, self.B = self._projection(self.R)
        self.Sigma_k = self.nu_k @ self.A.T
        self.Sigma = self.Sigma_k[0]
        self.P = _interp_matrix(np.log(self.R), np.log(np.maximum(R, R_lo)))  # grid -> stars
        self.v2 = stars.v**2
        self.e2 = stars.verr**2
        self.w = stars.weight
        self.R_stars = R
        self.stars = stars
        self.temper = np.ones_like(self.w)  # per-star likelihood weights of the 'tempered' shape
        # the 'inferred' shape: one p per radial bin of equal (membership-weighted) star counts; shape_lR holds
        # each bin's median ln R
        lR = np.log(np.maximum(R, R_lo))
        order = np.argsort(lR)
        cw = np.cumsum(self.w[order])
        self.shape_bin = np.empty(lR.size, dtype=np.intp)
        self.shape_bin[order] = np.minimum((cw / cw[-1] * cfg.shape_bins - 1e-9).astype(np.intp),
                                           cfg.shape_bins - 1)
        self.shape_lR = np.array([float(np.median(lR[self.shape_bin == b])) if np.any(self.shape_bin == b)
                                  else float(np.median(lR)) for b in range(cfg.shape_bins)])
        self.half_log_v2 = 0.5 * np.log(np.maximum(self.v2, 1e-300))
        self.kurtosis: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ grids
    def _projection(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """2 int_R^rmax f(r) r dr / sqrt(r^2 - R^2) = 2 int_0^tmax f(R cosh t) R cosh t dt as matrices on f."""
        r_max = self.r[-1]
        A = np.zeros((len(R), len(self.r)))
        B = np.zeros_like(A)
        u = np.linspace(0.0, 1.0, self.config.n_t)
        wu = np.full(u.size, u[1] - u[0])
        wu[[0, -1]] *= 0.5
        for i, Ri in enumerate(R):
            tmax = math.acosh(max(r_max / Ri, 1.0 + 1e-12))
            t = u * tmax
            rr = Ri * np.cosh(t)
            L = _interp_matrix(self.lr, np.log(rr))
            wt = 2.0 * wu * tmax * rr
            A[i] = wt @ L
            B[i] = (wt / np.cosh(t) ** 2) @ L
        return A, B

    def light_index(self, theta: np.ndarray) -> np.ndarray:
        """The light member each parameter row uses (zeros with a single profile)."""
        theta = np.atleast_2d(theta)
        if self.n_light == 1:
            return np.zeros(len(theta), dtype=np.intp)
        return np.clip(np.floor(theta[:, self.i_light]).astype(np.intp), 0, self.n_light - 1)

    @property
    def ndim(self) -> int:
        return len(self.names)

    # ------------------------------------------------------------------ the model
    def beta_and_log_g(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """beta(r) and ln g(r) on the grid, shape (rows, grid)."""
        n = theta.shape[0]
        if self.beta_model is not None:
            b = np.broadcast_to(np.asarray(self.beta_model(self.r), float), (n, self.r.size))
            return b, np.broadcast_to(np.asarray(self.beta_model.log_g(self.r), float), (n, self.r.size))
        k = self.config.nodes
        b0 = beta_from_tilde(theta[:, k + 1])[:, None]
        binf = beta_from_tilde(theta[:, k + 2])[:, None]
        ra = self.r_half * 10.0 ** theta[:, k + 3][:, None]
        eta = theta[:, k + 4][:, None]
        x = (self.r / ra) ** eta
        beta = (b0 + binf * x) / (1.0 + x)
        log_g = 2.0 * b0 * self.lr + 2.0 * (binf - b0) / eta * np.log1p(x)
        return beta, log_g

    def log_rho(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ln rho_DM and the slope gamma on the grid, shape (rows, grid)."""
        gam = theta[:, 1:1 + self.config.nodes] @ self.S.T
        steps = 0.5 * (gam[:, 1:] + gam[:, :-1]) * self.h
        cum = np.concatenate([np.zeros((gam.shape[0], 1)), np.cumsum(steps, axis=1)], axis=1)
        ln_rho = theta[:, :1] * math.log(10.0) - (cum - cum[:, self.j0:self.j0 + 1])
        return ln_rho, gam

    def evaluate(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Profiles on the internal grids for parameter rows ``theta`` (rows, ndim)."""
        theta = np.atleast_2d(np.asarray(theta, float))
        ln_rho, gam = self.log_rho(theta)
        rho = np.exp(ln_rho)
        r3 = self.r**3
        inner = 4.0 * math.pi * rho[:, :1] * r3[0] / np.maximum(3.0 - gam[:, :1], 1e-3)
        shell = 4.0 * math.pi * rho * r3
        m_dm = inner + np.concatenate([np.zeros((len(theta), 1)),
                                       np.cumsum(0.5 * (shell[:, 1:] + shell[:, :-1]) * self.h, axis=1)], axis=1)
        k_light = self.light_index(theta)
        nu, m_star, Sigma = self.nu_k[k_light], self.m_star_k[k_light], self.Sigma_k[k_light]
        mass = m_dm + m_star
        beta, log_g = self.beta_and_log_g(theta)
        log_g = log_g - log_g.max(axis=1, keepdims=True)
        g = np.exp(log_g)
        integrand = g * nu * G_KPC_KMS2_MSUN * mass / self.r
        seg = 0.5 * (integrand[:, 1:] + integrand[:, :-1]) * self.h
        tail = np.concatenate([np.cumsum(seg[:, ::-1], axis=1)[:, ::-1], np.zeros((len(theta), 1))], axis=1)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            nus2 = tail / g
        nus2 = np.where(np.isfinite(nus2), nus2, 0.0)
        ss2 = nus2 @ self.A.T - (beta * nus2) @ self.B.T
        s_los2 = np.maximum(ss2, 0.0) / Sigma
        with np.errstate(divide="ignore", invalid="ignore"):
            s_r2 = np.where(nu > 0, nus2 / nu, 0.0)
        return {"rho": rho, "gamma": gam, "mass_dm": m_dm, "mass": mass, "beta": np.asarray(beta),
                "sigma_r2": s_r2, "sigma_los2_R": s_los2}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper limits of every parameter (the prior's box)."""
        cfg = self.config
        lo = [cfg.log10_rho_half[0]] + [0.0] * cfg.nodes
        hi = [cfg.log10_rho_half[1], cfg.inner_slope_max] + [cfg.slope_max] * (cfg.nodes - 1)
        if self.beta_model is None:
            lo += [cfg.beta_tilde[0], cfg.beta_tilde[0], cfg.log10_ra[0], cfg.eta[0]]
            hi += [cfg.beta_tilde[1], cfg.beta_tilde[1], cfg.log10_ra[1], cfg.eta[1]]
        if cfg.velocity_shape == "mixture":
            lo += [cfg.shape_f[0], cfg.shape_q[0]]
            hi += [cfg.shape_f[1], cfg.shape_q[1]]
        if cfg.velocity_shape == "inferred":
            lo += [math.log(cfg.shape_p[0])] * cfg.shape_bins
            hi += [math.log(cfg.shape_p[1])] * cfg.shape_bins
        if self.has_outliers:
            lo.append(cfg.outlier_frac[0])
            hi.append(cfg.outlier_frac[1])
        if self.n_light > 1:
            lo.append(0.0)
            hi.append(self.n_light - 1e-9)
        return np.asarray(lo, float), np.asarray(hi, float)

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """Uniform in :meth:`bounds`, a finite central mass, and the slope prior (sorted or smooth)."""
        cfg = self.config
        theta = np.atleast_2d(theta)
        if theta.shape[-1] != self.ndim:
            raise JeansValueError(f"expected {self.ndim} parameters ({', '.join(self.names)}), got {theta.shape[-1]}")
        lo, hi = self.bounds()
        gam = theta[:, 1:1 + cfg.nodes]
        ok = np.all((theta >= lo) & (theta <= hi), axis=1) & (gam[:, 0] < 3.0)  # finite central mass (and J)
        lp = np.zeros(len(theta))
        d = np.diff(gam, axis=1)
        if self.beta_model is None and cfg.slope_anisotropy and ok.any():
            beta, _ = self.beta_and_log_g(theta[ok])
            ok[ok] = np.all(beta <= self.beta_max_k[self.light_index(theta[ok])] + 1e-9, axis=1)
        if cfg.slope_prior == "sorted":
            ok &= np.all(d >= 0, axis=1)
        else:
            lp -= 0.5 * np.sum(d**2, axis=1) / cfg.slope_step**2
        return np.where(ok, lp, -np.inf)

    def shape_p(self, theta: np.ndarray) -> np.ndarray:
        """The 'inferred' shape p at every star (rows, stars)."""
        k = self.config.shape_bins
        return np.exp(theta[:, self.i_shape:self.i_shape + k])[:, self.shape_bin]

    def _log_member(self, theta: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """Per-star log-density of v under the Jeans model (rows, stars)."""
        if self.config.velocity_shape == "inferred":
            # _log_genorm with the Gamma functions evaluated once per (row, radial bin)
            return _log_genorm_at(self.half_log_v2, np.log(s2 + self.e2),
                                  theta[:, self.i_shape:self.i_shape + self.config.shape_bins], self.shape_bin)
        if self.config.velocity_shape != "mixture":
            return _log_normal(self.v2, s2 + self.e2)
        f = theta[:, self.i_shape:self.i_shape + 1]
        q = theta[:, self.i_shape + 1:self.i_shape + 2]
        wide = (1.0 - f * q) / (1.0 - f)
        return np.logaddexp(np.log(f) + _log_normal(self.v2, q * s2 + self.e2),
                            np.log1p(-f) + _log_normal(self.v2, wide * s2 + self.e2))

    def _member_and_field(self, theta: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ln((1 - eps) member(v)) and ln(eps / W) per star (the second -inf without a contamination term)."""
        lm = self._log_member(theta, s2)
        if not self.has_outliers:
            return lm, np.full_like(lm, -np.inf)
        eps = theta[:, self.i_out:self.i_out + 1]
        return np.log1p(-eps) + lm, np.broadcast_to(np.log(eps) + self.log_field, lm.shape)

    def log_likelihood(self, theta: np.ndarray, prof: dict[str, np.ndarray] | None = None) -> np.ndarray:
        theta = np.atleast_2d(theta)
        if theta.shape[-1] != self.ndim:
            raise JeansValueError(f"expected {self.ndim} parameters ({', '.join(self.names)}), got {theta.shape[-1]}")
        prof = self.evaluate(theta) if prof is None else prof
        s2 = prof["sigma_los2_R"] @ self.P.T
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lm, lf = self._member_and_field(theta, s2)
            per_star = np.logaddexp(lm, lf) if self.has_outliers else lm
            weight = self.w * self.temper if self.config.velocity_shape != "mixture" else self.w
            ll = np.sum(weight * per_star, axis=1)
        return np.where(np.isfinite(ll), ll, -np.inf)

    def member_probability(self, theta: np.ndarray) -> np.ndarray:
        """Probability that each star belongs to the Jeans (member) component rather than the field, at each
        parameter row (rows, stars); 1 without a contamination component."""
        theta = np.atleast_2d(np.asarray(theta, float))
        s2 = self.evaluate(theta)["sigma_los2_R"] @ self.P.T
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lm, lf = self._member_and_field(theta, s2)
            p = np.exp(lm - np.logaddexp(lm, lf))
        return np.where(np.isfinite(p), p, 0.0)

    def set_tempering(self, theta: np.ndarray, *, stars_per_bin: int = 250, limits=(0.1, 1.0)) -> None:
        """Weights 2 / (kappa - 1) per star from the kurtosis of v / sqrt(sigma_los^2 + err^2) at ``theta`` (the
        MAP), in radial bins of about ``stars_per_bin`` (membership-weighted) stars. The weight never exceeds
        1 (``limits[1]``): a kurtosis estimate below 3 from a few hundred stars is mostly noise, and a weight
        above 1 would narrow the bands where the data are fewest. Stars count with their
        member probability (:meth:`member_probability`), so that contaminants do not set the members' kurtosis.
        A kurtosis beyond 1 + 2 / limits[0], where the weight is clipped, gives a :class:`JeansWarning`."""
        s2 = (self.evaluate(np.atleast_2d(theta))["sigma_los2_R"] @ self.P.T)[0] + self.e2
        z2 = self.v2 / s2
        wm = self.w * self.member_probability(theta)[0] if self.has_outliers else self.w
        order = np.argsort(self.R_stars)
        cw = np.cumsum(self.w[order])
        n_bins = int(np.clip(cw[-1] // stars_per_bin, 1, 8))
        edges_idx = np.searchsorted(cw, cw[-1] * np.arange(1, n_bins) / n_bins)
        groups = np.split(order, edges_idx)
        kap, t = [], np.ones_like(self.w)
        k_max = 1.0 + 2.0 / limits[0]
        for g in groups:
            w = wm[g]
            k = float(np.sum(w * z2[g] ** 2) / np.sum(w) / (np.sum(w * z2[g]) / np.sum(w)) ** 2)
            kap.append(k)
            t[g] = np.clip(2.0 / max(k - 1.0, 1e-6), *limits)
        self.temper = t
        R_bin = [float(self.R_stars[g].max()) for g in groups]
        self.kurtosis = {"R_max_of_bin": R_bin, "kappa": kap, "kappa_limit": k_max,
                         "heavy_tails": [k > k_max for k in kap]}
        for k, g, R in zip(kap, groups, R_bin):
            if k > k_max:
                worst = g[np.argmax(wm[g] * z2[g])]
                warnings.warn(JeansWarning(
                    f"velocity kurtosis {k:.3g} among the {g.size} stars at R <= {R:.3g} kpc exceeds {k_max:g} (a "
                    f"Gaussian has 3; the tempering weight is clipped at {limits[0]:g}): contaminants or bad "
                    f"velocities? Largest |v| / sigma_los: {star_label(self.stars, worst)}; check the table or "
                    f"fit with outliers='uniform' (CLI: --outliers uniform)"), stacklevel=2)

    def log_posterior(self, theta: np.ndarray) -> np.ndarray:
        """Vectorised log-posterior (emcee's ``vectorize=True``): rows outside the prior cost nothing."""
        theta = np.atleast_2d(np.asarray(theta, float))
        lp = self.log_prior(theta)
        out = np.full(len(theta), -np.inf)
        ok = np.isfinite(lp)
        if ok.any():
            out[ok] = lp[ok] + self.log_likelihood(theta[ok])
        return out
