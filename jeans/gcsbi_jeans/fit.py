"""Training loop for the JFlow model and a bootstrap ensemble of fits, with profiles on radius grids."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import JeansRuntimeError, JeansValueError
from .flows import FlowConfig
from .io import StarTable, check_duplicates, check_outliers, robust_dispersion2, robust_velocity_scale
from .loss import smeared_log_likelihood, stars_to_tensors
from .model import JeansFlowModel
from .solve import jeans_profiles, projected_profiles
from .velocity import BetaModel

__all__ = ["MIN_STARS", "FitConfig", "FitResult", "fit_model", "fit_ensemble", "EnsembleResult", "default_grids",
           "check_fit_sample"]

#: Fewest member stars a fit accepts: below it the half-number radius, velocity dispersion and the
#: kernel bandwidths derived from them are noise, and the fit returns confident-looking nonsense.
MIN_STARS = 20


@dataclass(frozen=True)
class FitConfig:
    """Settings of one JFlow fit; bandwidths are fractions of the data's half-number radius / velocity spread."""

    flow: FlowConfig = field(default_factory=FlowConfig)
    sigma_hidden: int = 16
    sigma_layers: int = 2
    steps: int = 1000
    lr: float = 1e-2
    lr_final_frac: float = 0.05
    n_model: int = 1024
    n_kernel: int = 1
    h_pos_frac: float = 0.15
    h_vel_frac: float = 0.1
    positions_only: bool = False
    rao_blackwell: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.n_model < 2 or self.n_kernel < 1:
            raise JeansValueError("steps >= 1, n_model >= 2 and n_kernel >= 1 are required")
        if not (self.lr > 0 and 0 < self.lr_final_frac <= 1):
            raise JeansValueError("lr must be > 0 and 0 < lr_final_frac <= 1")
        if not (self.h_pos_frac > 0 and self.h_vel_frac >= 0):
            raise JeansValueError("h_pos_frac must be > 0 and h_vel_frac >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    """A trained model, its loss history and the wall time (s)."""

    model: JeansFlowModel
    losses: np.ndarray
    wall_s: float


def check_fit_sample(stars: StarTable, *, min_stars: int = MIN_STARS, model_outliers: bool = False) -> None:
    """Refuse samples no fit can use: fewer than ``min_stars`` stars, mostly duplicated rows, no spatial or
    velocity spread, or (unless the fit has a contamination component, ``model_outliers``) gross velocity
    outliers (:func:`~gcsbi_jeans.io.outlier_stars`). A few duplicated rows give a
    :class:`~gcsbi_jeans.errors.JeansWarning`.

    Raises :class:`~gcsbi_jeans.errors.JeansValueError`, naming the offending rows, before any model is built.
    """
    if stars.n < min_stars:
        raise JeansValueError(f"need at least {min_stars} stars, got {stars.n}")
    check_duplicates(stars)
    _scales(stars)
    if not model_outliers:
        check_outliers(stars)


def _scales(stars: StarTable) -> tuple[float, float]:
    L = stars.half_light_radius()
    if not L > 0:
        raise JeansValueError(f"the half-number radius is 0: at least half of the {stars.n} stars are at R = 0 "
                              "(x = y = 0); positions must be offsets from the centre")
    V = math.sqrt(max(robust_dispersion2(stars), 0.0))
    if not V > 0:
        V = robust_velocity_scale(stars.v, stars.weight)[1]
    if not V > 0:
        raise JeansValueError(f"the {stars.n} stars have no velocity spread (all v equal after removing vsys)")
    return L, V


def fit_model(stars: StarTable, beta: BetaModel, config: FitConfig = FitConfig(), *, seed: int | None = None,
              progress: bool = True, desc: str = "jflow fit") -> FitResult:
    """Maximise the smeared likelihood of ``stars`` (same seed -> same result, bit for bit, on one thread).

    ``stars`` must pass :func:`check_fit_sample` (at least :data:`MIN_STARS` stars, some spread).
    """
    seed = config.seed if seed is None else int(seed)
    check_fit_sample(stars)
    L, V = _scales(stars)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = JeansFlowModel(beta=beta, length_scale=L, velocity_scale=V, flow=config.flow,
                               sigma_hidden=config.sigma_hidden, sigma_layers=config.sigma_layers)
    gen = torch.Generator().manual_seed(seed + 7919)
    data = stars_to_tensors(stars)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps,
                                                       eta_min=config.lr * config.lr_final_frac)
    losses = np.empty(config.steps)
    t0 = time.perf_counter()
    bar = tqdm(range(config.steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for i in bar:
        opt.zero_grad(set_to_none=True)
        loss = -smeared_log_likelihood(model, data, n_model=config.n_model, n_kernel=config.n_kernel,
                                       h_pos=config.h_pos_frac * L, h_vel=config.h_vel_frac * V, generator=gen,
                                       positions_only=config.positions_only, rao_blackwell=config.rao_blackwell)
        if not torch.isfinite(loss):
            raise JeansRuntimeError(f"non-finite loss at step {i}; try a smaller lr or more ode_steps")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        losses[i] = float(loss.detach())
        if i % 25 == 0:
            bar.set_postfix(loss=f"{losses[i]:.3f}")
    return FitResult(model=model, losses=losses, wall_s=time.perf_counter() - t0)


def default_grids(stars: StarTable, *, n_r: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Radius grid r (kpc) for 3D profiles and R for projected ones, spanning the data's radial range."""
    order = np.argsort(stars.R)
    cw = np.cumsum(stars.weight[order])
    cw /= cw[-1]
    lo, hi = (max(float(stars.R[order][np.searchsorted(cw, q)]), 1e-6) for q in (0.01, 0.99))
    return np.geomspace(lo, hi * 1.5, n_r), np.geomspace(lo, hi, n_r // 2)


@dataclass
class EnsembleResult:
    """Profiles of every ensemble member on common grids: arrays of shape (members, radii)."""

    radius: np.ndarray
    R: np.ndarray
    profiles: dict[str, np.ndarray]
    wall_s: np.ndarray
    losses: list[np.ndarray]
    config: FitConfig
    beta_spec: str
    bootstrap: bool
    models: list[JeansFlowModel] = field(default_factory=list, repr=False)


def fit_ensemble(stars: StarTable, beta: BetaModel, config: FitConfig = FitConfig(), *, members: int = 8,
                 bootstrap: bool = True, radius: np.ndarray | None = None, R: np.ndarray | None = None,
                 progress: bool = True, keep_models: bool = False) -> EnsembleResult:
    """Fit ``members`` models, each on a bootstrap resample of the stars (seeded by config.seed + k).

    The smeared-likelihood fit is a point estimate; refitting on bootstrap resamples propagates the sampling
    noise of the finite star sample (the dominant error for ~10^3 stars) and, with a new network initialisation
    per member, also the optimisation scatter (a deep ensemble). Bands are quantiles/HDIs over members.
    """
    if members < 1:
        raise JeansValueError(f"members must be >= 1, got {members}")
    check_fit_sample(stars)
    r_def, R_def = default_grids(stars)
    radius = r_def if radius is None else np.asarray(radius, float)
    R = R_def if R is None else np.asarray(R, float)
    rng = np.random.default_rng(config.seed)
    profs: dict[str, list[np.ndarray]] = {}
    walls, losses, models = [], [], []
    for k in tqdm(range(members), desc="ensemble", disable=not progress):
        sample = stars.select(rng.integers(0, stars.n, stars.n)) if bootstrap else stars
        res = fit_model(sample, beta, config, seed=config.seed + 1000 * (k + 1), progress=progress,
                        desc=f"member {k + 1}/{members}")
        p = jeans_profiles(res.model, radius)
        p.update({f"{key}_R": val for key, val in projected_profiles(res.model, R).items()})
        for key, val in p.items():
            profs.setdefault(key, []).append(val)
        walls.append(res.wall_s)
        losses.append(res.losses)
        if keep_models:
            models.append(res.model)
    return EnsembleResult(radius=radius, R=R, profiles={k: np.stack(v) for k, v in profs.items()},
                          wall_s=np.asarray(walls), losses=losses, config=config, beta_spec=beta.spec,
                          bootstrap=bootstrap, models=models)
