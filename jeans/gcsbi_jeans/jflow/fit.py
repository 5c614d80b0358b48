"""JFlow: the training loop of one model and a bootstrap ensemble of fits, with profiles on radius grids."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.beta import BetaModel
from ..core.grids import data_radius_range, default_grids
from ..core.io import StarTable, check_fit_sample, sample_scales
from ..errors import JeansRuntimeError, JeansValueError, JeansWarning
from .config import FitConfig
from .loss import smeared_log_likelihood, stars_to_tensors
from .model import JeansFlowModel
from .solve import format_radii, jeans_profiles, profile_validity, projected_profiles

__all__ = ["FitConfig", "FitResult", "fit_model", "fit_ensemble", "EnsembleResult", "screen_members"]
#: Profiles derived from M(r) by the Jeans equation: the ones masked where a kept member is unphysical.
_JEANS_KEYS = ("mass", "rho", "slope")


@dataclass
class FitResult:
    """A trained model, its loss history and the wall time (s)."""

    model: JeansFlowModel
    losses: np.ndarray
    wall_s: float


def fit_model(stars: StarTable, beta: BetaModel, config: FitConfig = FitConfig(), *, seed: int | None = None,
              progress: bool = True, desc: str = "jflow fit") -> FitResult:
    """Maximise the smeared likelihood of ``stars`` (same seed -> same result, bit for bit, on one thread).

    ``stars`` must pass :func:`check_fit_sample` (at least :data:`MIN_STARS` stars, some spread).
    """
    seed = config.seed if seed is None else int(seed)
    check_fit_sample(stars)
    L, V = sample_scales(stars)
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


@dataclass
class EnsembleResult:
    """Profiles of the valid ensemble members on common grids: arrays of shape (valid members, radii).

    ``wall_s``, ``losses``, ``models``, ``member_valid`` and ``member_reason`` have one entry per fitted member.
    ``member_valid``: the member's rho > 0 and M(<r) increasing on the grid inside ``data_range`` (kpc);
    ``member_reason``: '' or what failed where. ``rejected_profiles``: the dropped members' raw profiles.
    ``masked`` (valid members, radii): points beyond the data where a kept member is unphysical; its mass, rho
    and slope are NaN there.
    """

    radius: np.ndarray
    R: np.ndarray
    profiles: dict[str, np.ndarray]
    wall_s: np.ndarray
    losses: list[np.ndarray]
    config: FitConfig
    beta_spec: str
    bootstrap: bool
    models: list[JeansFlowModel] = field(default_factory=list, repr=False)
    member_valid: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    member_reason: list[str] = field(default_factory=list)
    data_range: tuple[float, float] | None = None
    rejected_profiles: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    masked: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool), repr=False)

    @property
    def n_valid(self) -> int:
        """Number of members whose profiles are in ``profiles``."""
        return int(np.count_nonzero(self.member_valid))


def screen_members(radius: np.ndarray, profiles: dict[str, np.ndarray], data_range: tuple[float, float]
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, list[str], np.ndarray]:
    """Keep the ensemble members whose Jeans profiles are physical where the data are; say what was dropped.

    A member is invalid when, at a grid radius in ``data_range`` (kpc), rho <= 0, M(<r) <= 0 or either is not
    finite, or M(<r) does not increase between neighbouring grid radii
    (:func:`~gcsbi_jeans.jflow.solve.profile_validity`).
    Invalid members are left out with a :class:`~gcsbi_jeans.errors.JeansWarning` naming how many and where;
    fewer than half valid raises :class:`~gcsbi_jeans.errors.JeansRuntimeError`. Beyond the data, a kept
    member's mass, rho and slope are set to NaN where it is unphysical (another warning). Nothing is clipped.

    Returns (kept profiles, rejected profiles, validity per member, reason per member, masked points).
    """
    check = profile_validity(radius, profiles["rho"], profiles["mass"], r_range=data_range)
    members, ok = check.valid.size, check.valid
    n_ok = int(ok.sum())
    lo, hi = data_range
    where = format_radii(radius, check.bad_inside[~ok].any(axis=0))
    what = f"rho <= 0 or M(<r) not increasing inside the data ({lo:.3g}-{hi:.3g} kpc), at r = {where} kpc"
    if 2 * n_ok < members:
        raise JeansRuntimeError(
            f"JFlow is unphysical for {members - n_ok} of {members} ensemble members ({what}); fewer than half "
            "are usable: use the default free-form route ('gcsbi-jeans fit freeform'), or more stars, "
            "more --steps or a larger --ensemble")
    if n_ok < members:
        warnings.warn(f"JFlow: dropped {members - n_ok} of {members} ensemble members, {what}; the bands use "
                      f"the other {n_ok}", JeansWarning, stacklevel=3)
    kept = {k: v[ok].copy() for k, v in profiles.items()}
    rejected = {k: v[~ok].copy() for k, v in profiles.items()}
    masked = check.bad[ok] & ~check.inside[None, :]
    if masked.any():
        for key in _JEANS_KEYS:
            if key in kept:
                kept[key][masked] = np.nan
        warnings.warn(f"JFlow: beyond the data (outside {lo:.3g}-{hi:.3g} kpc) {int(masked.any(axis=1).sum())} "
                      f"of {n_ok} kept members give rho <= 0 or a falling M(<r), at r = "
                      f"{format_radii(radius, masked.any(axis=0))} kpc; their mass, rho and slope are NaN there",
                      JeansWarning, stacklevel=3)
    return kept, rejected, ok, check.reasons, masked


def fit_ensemble(stars: StarTable, beta: BetaModel, config: FitConfig = FitConfig(), *, members: int = 8,
                 bootstrap: bool = True, radius: np.ndarray | None = None, R: np.ndarray | None = None,
                 progress: bool = True, keep_models: bool = False) -> EnsembleResult:
    """Fit ``members`` models, each on a bootstrap resample of the stars (seeded by config.seed + k).

    The smeared-likelihood fit is a point estimate; refitting on bootstrap resamples propagates the sampling
    noise of the finite star sample (the dominant error for ~10^3 stars) and, with a new network initialisation
    per member, also the optimisation scatter (a deep ensemble). Bands are quantiles/HDIs over members.

    M(r) comes from the fitted n and sigma_r, and nothing makes it increase: members whose rho <= 0 or whose
    M(<r) falls inside the radii the data cover (:func:`data_radius_range`) are dropped with a
    :class:`~gcsbi_jeans.errors.JeansWarning`, and fewer than half valid raises
    :class:`~gcsbi_jeans.errors.JeansRuntimeError` (:func:`screen_members`). ``profiles`` holds the valid members.
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
    data_range = data_radius_range(stars)
    kept, rejected, valid, reasons, masked = screen_members(radius, {k: np.stack(v) for k, v in profs.items()},
                                                            data_range)
    return EnsembleResult(radius=radius, R=R, profiles=kept, wall_s=np.asarray(walls), losses=losses, config=config,
                          beta_spec=beta.spec, bootstrap=bootstrap, models=models, member_valid=valid,
                          member_reason=reasons, data_range=data_range, rejected_profiles=rejected, masked=masked)
