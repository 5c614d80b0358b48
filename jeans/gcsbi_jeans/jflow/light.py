"""The tracer density n(r) as an ensemble of equivariant radial CNFs fitted to a photometric sample (torch).

Model. n(r) is the seed's :class:`~gcsbi_jeans.jflow.cnf.RadialCNF` (Lim et al. 2025; the 'cored' variant, or
'cusp' with its learnable power-law map r = s^(1+c)), a density in 3D. As in the seed, it is never Abel-inverted
or deprojected by formula: the flow's 3D samples are projected onto the sky and compared with the stars' projected
positions through the seed's smeared-KDE likelihood (:func:`~gcsbi_jeans.jflow.loss.smeared_log_likelihood` with
``positions_only``): each star's position is smeared by a Gaussian of width h(R) = h sqrt(1 + (R/L)^2) and
scored under the model samples' kernel density estimate of the same widths, so the loss is minimised when the
model's projection equals the data's, and the 3D n(r) follows from the flow (the deprojection is the flow's
spherical symmetry). :func:`radial_smeared_log_likelihood` is that likelihood with three changes, none of which
alters what it estimates:

* the model samples' azimuths are integrated analytically (a spherical model's samples have uniform azimuths,
  and the 2D Gaussian kernel averaged over the relative angle is exp(-(R - R')^2 / 2h^2) i0e(R R' / h^2) /
  (2 pi h^2)): a Rao-Blackwellisation, as the seed does for velocities; only radii matter for a spherical model;
* the members are seen inside the sample's footprint (a disc of radius R_max): the model's kernel density is
  normalised by its (smoothly counted) fraction of samples inside it;
* a fraction f of the sample may be a uniform field of non-members on the footprint (fitted, like the Plummer
  sum's background term of :func:`~gcsbi_jeans.core.light.fit_light`): each star's likelihood is
  (1 - f) p_members + f p_field, p_field = Phi((R_max - R) / h) / (pi R_max^2) (the disc smeared by the kernel).

Membership weights multiply each star's log-likelihood term (as in the seed). For speed the stars are gathered
in ``bins`` bins of ln R, each at its stars' weighted mean radius with their summed weight (a shift far below
the kernel widths, h / R >= h_pos_frac), and smeared ``n_smear`` times per step: every step then sees the whole
sample, at a cost independent of its size.

Ensemble. The uncertainty of n(r) comes from refitting on bootstrap resamples of the photometric sample: the
first fit (all stars) is the starting point of ``members`` fits on bootstrap resamples (warm-started, so each
costs a fraction of the first); their n(r) tables form a :class:`~gcsbi_jeans.core.light_table.LightEnsemble`,
which the free-form posterior marginalises over (see :class:`~gcsbi_jeans.freeform.model.JeansKernel`).
Variant 'auto' trains a cored and a cusp flow on all stars and keeps the cusp only when the exact likelihood
of the projected radii (the tabulated profile projected numerically, with the field term) improves by at least
``cusp_delta_chi2``: the cusp variant contains near-cored profiles but, trained by stochastic gradients, also
fits spurious small cusps to cored data.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from ..core.light import fit_light
from ..core.light_table import LightEnsemble, TabulatedLight
from ..errors import JeansRuntimeError, JeansValueError
from .cnf import RadialCNF
from .config import FlowConfig, LightConfig

__all__ = ["radial_smeared_log_likelihood", "fit_cnf_light", "binned", "exact_log_likelihood", "tabulate_flow",
           "TABLE_SPAN", "TABLE_POINTS"]

#: the tabulated n(r)'s grid: radii TABLE_SPAN (in units of the scale L), TABLE_POINTS log-spaced
TABLE_SPAN = (1e-3, 1e3)
TABLE_POINTS = 241
_LOG_2PI = math.log(2.0 * math.pi)


def radial_smeared_log_likelihood(flow: RadialCNF, R: torch.Tensor, w: torch.Tensor, *, n_model: int,
                                  h_pos: float, R_max: float, f: torch.Tensor | None,
                                  generator: torch.Generator, debias: bool = True) -> torch.Tensor:
    """The seed's smeared log-likelihood of projected positions (scaled units, L = 1), azimuths integrated.

    ``R``: the stars' projected radii, ``w`` their weights (any positive scale), ``f`` the field fraction (None:
    no field). Returns the weighted mean log-likelihood per star.
    """
    z = torch.randn(n_model, 3, generator=generator)
    s0 = z.norm(dim=-1).clamp_min(1e-12)
    r = flow.push_radius(s0)
    Rc = r * torch.hypot(z[:, 0], z[:, 1]) / s0  # the model samples' projected radii
    h_a = h_pos * torch.sqrt(1.0 + R**2)
    e = torch.randn(R.shape[0], 2, generator=generator)
    Rd = torch.hypot(R + h_a * e[:, 0], h_a * e[:, 1])  # smeared data
    h_c2 = (h_pos**2 * (1.0 + Rc**2))[None, :]
    zz = Rd[:, None] * Rc[None, :] / h_c2
    logk = -0.5 * (Rd[:, None] - Rc[None, :]) ** 2 / h_c2 + torch.log(torch.special.i0e(zz)) \
        - torch.log(2.0 * math.pi * h_c2)
    delta = 0.5 * h_pos * math.sqrt(1.0 + R_max**2)
    log_in = torch.nn.functional.logsigmoid((R_max - Rc) / delta)  # inside the footprint, smoothly
    logk = logk + log_in[None, :]
    log_norm = torch.logsumexp(log_in, dim=0)
    log_pm = torch.logsumexp(logk, dim=1) - log_norm
    if debias:
        # E ln(mean of n kernels) = ln(mean) - CV^2 / 2n + O(n^-2): add the estimated leading term back
        cv2 = torch.exp(torch.logsumexp(2.0 * logk, dim=1) - log_norm - 2.0 * log_pm) * math.exp(0.0) - 1.0
        n_eff = torch.exp(2.0 * log_norm - torch.logsumexp(2.0 * log_in, dim=0))
        log_pm = log_pm + (0.5 * cv2 / n_eff).clamp(0.0, 1.0)
    if f is None:
        per = log_pm
    else:
        edge = 0.5 * torch.special.erfc((Rd - R_max) / (math.sqrt(2.0) * h_a))
        log_pb = torch.log(edge.clamp_min(1e-30)) - math.log(math.pi * R_max**2)
        per = torch.logaddexp(torch.log1p(-f) + log_pm, torch.log(f) + log_pb)
    return (w * per).sum() / w.sum()


def tabulate_flow(flow: RadialCNF, L: float, background_fraction: float = 0.0) -> TabulatedLight:
    """The flow's n(r) (physical units, kpc^-3) on :data:`TABLE_POINTS` radii over L x :data:`TABLE_SPAN`."""
    rs = torch.logspace(math.log10(TABLE_SPAN[0]), math.log10(TABLE_SPAN[1]), TABLE_POINTS, dtype=torch.float32)
    ln_n = flow.log_prob_radius(rs).detach().double().numpy() - 3.0 * math.log(L)
    ln_r = np.log(rs.double().numpy() * L)
    if not np.all(np.isfinite(ln_n)):
        raise JeansRuntimeError("the fitted CNF gives a non-finite density; refit with more --light-ode-steps or "
                                "a smaller --light-lr")
    return TabulatedLight(ln_r, np.maximum(ln_n, -700.0), background_fraction=background_fraction)


def exact_log_likelihood(light: TabulatedLight, R: np.ndarray, w: np.ndarray, R_max: float) -> float:
    """Weighted log-likelihood of projected radii under the profile inside R_max, with its field fraction:
    sum w ln[(1 - f) 2 pi R Sigma(R) / F(R_max) + f 2 R / R_max^2]."""
    f = light.background_fraction
    pm = 2.0 * math.pi * R * light.surface(R) / float(light.cdf2d(R_max))
    p = (1.0 - f) * pm + f * 2.0 * R / R_max**2
    return float(np.sum(w * np.log(np.maximum(p, 1e-300))))


def _field_param(f0: float) -> torch.nn.Parameter:
    f0 = min(max(f0, 0.01), 0.8)
    return torch.nn.Parameter(torch.tensor(math.log(f0 / (0.9 - f0)), dtype=torch.float32))


def _field(q: torch.nn.Parameter | None) -> torch.Tensor | None:
    return None if q is None else 0.9 * torch.sigmoid(q)


def binned(R: np.ndarray, w: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The stars gathered in ``bins`` equal bins of ln R: each non-empty bin's weighted mean radius and summed
    weight."""
    lR = np.log(R)
    edges = np.linspace(lR.min(), lR.max() + 1e-9, bins + 1)
    j = np.clip(np.searchsorted(edges, lR, side="right") - 1, 0, bins - 1)
    W = np.bincount(j, weights=w, minlength=bins)
    Rw = np.bincount(j, weights=w * R, minlength=bins)
    ok = W > 0
    return Rw[ok] / W[ok], W[ok]


def _train(flow: RadialCNF, q, R: np.ndarray, w: np.ndarray, cfg: LightConfig, *, steps: int, lr: float,
           R_max: float, generator: torch.Generator) -> np.ndarray:
    params = list(flow.parameters()) + ([q] if q is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.05 * lr)
    Rb, Wb = binned(R, w, cfg.bins)
    Rt = torch.as_tensor(np.repeat(Rb, cfg.n_smear), dtype=torch.float32)
    wt = torch.as_tensor(np.repeat(Wb / Wb.sum(), cfg.n_smear), dtype=torch.float32)
    losses = np.empty(steps)
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = -radial_smeared_log_likelihood(flow, Rt, wt, n_model=cfg.n_model, h_pos=cfg.h_pos_frac,
                                              R_max=R_max, f=_field(q), generator=generator,
                                              debias=cfg.debias)
        if not torch.isfinite(loss):
            raise JeansRuntimeError(f"non-finite CNF light loss at step {i}; try a smaller --light-lr")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        sched.step()
        losses[i] = float(loss.detach())
    return losses


def pretrain(flow: RadialCNF, start, L: float, *, steps: int, lr: float, points: int = 512) -> float:
    """Start the flow at the profile ``start`` (anything with ``mass_fraction(r)``, kpc): regress its radius map
    on the one monotone map that carries the base's radius (chi with 3 degrees of freedom) to ``start``'s,
    r(s) = F^-1(F_chi3(s)), at ``points`` quantiles, in ln r (only the forward ODE: cheap). Returns the final
    mean squared error. The data then decide through the smeared likelihood; this only shortens the way."""
    from scipy.stats import chi

    u = (np.arange(points) + 0.5) / points
    s = torch.as_tensor(chi.ppf(u, 3), dtype=torch.float32)
    grid = L * np.geomspace(TABLE_SPAN[0], TABLE_SPAN[1], 2001)
    frac = np.maximum.accumulate(np.asarray(start.mass_fraction(grid), float))
    keep = np.concatenate([[True], np.diff(frac) > 0])
    target = torch.as_tensor(np.interp(u, frac[keep], np.log(grid[keep] / L)), dtype=torch.float32)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.05 * lr)
    loss = torch.zeros(())
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = ((torch.log(flow.push_radius(s).clamp_min(1e-12)) - target) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
    return float(loss.detach())


def _check(R, weight, R_max):
    R = np.asarray(R, float)
    w = np.ones_like(R) if weight is None else np.asarray(weight, float)
    if R.ndim != 1 or w.shape != R.shape:
        raise JeansValueError(f"R and weight must be 1-D arrays of the same length, got shapes {R.shape} and "
                              f"{w.shape}")
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(w))):
        raise JeansValueError("projected radii and weights must be finite")
    if np.any(R < 0) or np.any(w < 0) or np.any(w > 1):
        raise JeansValueError(f"projected radii must be >= 0 and weights in [0, 1]; got R in [{R.min():g}, "
                              f"{R.max():g}], weights in [{w.min():g}, {w.max():g}]")
    good = (w > 0) & (R > 0)
    R, w = R[good], w[good]
    if w.sum() < 200:
        raise JeansValueError(f"a CNF light profile needs at least 200 stars (sum of weights) at R > 0, got "
                              f"{w.sum():.1f}; use the Plummer sum (--light-model plummer)")
    R_max = float(R.max()) if R_max is None else float(R_max)
    if not (math.isfinite(R_max) and R_max > 0):
        raise JeansValueError(f"R_max must be a finite radius > 0 (kpc), got {R_max}")
    keep = R <= R_max
    return R[keep], w[keep], R_max


def fit_cnf_light(R, weight=None, config: LightConfig = LightConfig(), *, R_max: float | None = None,
                  seed: int = 0) -> LightEnsemble:
    """An ensemble of radial CNFs n(r) fitted to projected radii ``R`` (kpc) with membership ``weight``.

    ``R_max``: the footprint's radius (default: the largest radius; stars beyond it are ignored); the fit uses
    the stars inside the smaller radius enclosing ``config.fit_quantile`` of the weight, as a footprint. Everything
    random is drawn from generators seeded by ``seed`` (same seed and one thread: the same result). The
    Plummer-sum fit (:func:`~gcsbi_jeans.core.light.fit_light`) sets the length unit L (its R_1/2), decides
    whether a field is fitted (``background='auto'``: when it keeps one) and the field fraction's start.
    Returns a :class:`LightEnsemble` whose ``info`` records the variant, the field, the exact log-likelihoods
    of 'auto' and the fit time.
    """
    t0 = time.perf_counter()
    R, w, R_max = _check(R, weight, R_max)
    if config.fit_quantile < 1.0:
        order = np.argsort(R)
        cw = np.cumsum(w[order])
        R_max = min(R_max, float(R[order][np.searchsorted(cw, config.fit_quantile * cw[-1])]))
        R, w = R[R <= R_max], w[R <= R_max]
    plummer = fit_light(R, w, R_max=R_max, seed=seed,
                        background="none" if config.background == "none" else "auto")
    L = plummer.half_light_radius()
    use_field = config.background == "fit" or (config.background == "auto" and plummer.background_fraction > 0)
    f0 = plummer.background_fraction if plummer.background_fraction > 0 else 0.05
    Rs, Rm = R / L, R_max / L
    variants = ("cored", "cusp") if config.variant == "auto" else (config.variant,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        flows = {v: RadialCNF(FlowConfig(variant=v, hidden=config.hidden, layers=config.layers,
                                         ode_steps=config.ode_steps)) for v in variants}
    first = {}
    for i, v in enumerate(variants):
        gen = torch.Generator().manual_seed(seed * 7919 + 17 + i)
        pretrain(flows[v], plummer, L, steps=config.pretrain_steps, lr=config.lr)
        q = _field_param(f0) if use_field else None
        losses = _train(flows[v], q, Rs, w, config, steps=config.steps, lr=config.lr, R_max=Rm, generator=gen)
        f = float(_field(q)) if q is not None else 0.0
        table = tabulate_flow(flows[v], L, f)
        first[v] = (flows[v], q, table, exact_log_likelihood(table, R, w, R_max), float(losses[-50:].mean()))
    info: dict = {"variant_requested": config.variant, "length_scale_kpc": L, "R_max_kpc": R_max,
                  "field_fitted": use_field, "exact_log_like": {v: first[v][3] for v in variants}}
    chosen = variants[0]
    if config.variant == "auto":
        gain = 2.0 * (first["cusp"][3] - first["cored"][3])
        chosen = "cusp" if gain >= config.cusp_delta_chi2 else "cored"
        info["cusp_delta_chi2"] = gain
    flow0, q0, _, _, _ = first[chosen]
    info["variant"] = chosen
    if chosen == "cusp":
        info["cusp_c"] = float(flow0.cusp_c.detach())
    rng = np.random.default_rng(seed)
    members = []
    for k in range(config.members):
        idx = rng.integers(0, R.size, R.size)
        flow, q = copy.deepcopy(flow0), copy.deepcopy(q0)
        gen = torch.Generator().manual_seed(seed * 7919 + 1000 * (k + 1))
        _train(flow, q, Rs[idx], w[idx], config, steps=config.member_steps, lr=0.5 * config.lr, R_max=Rm,
               generator=gen)
        members.append(tabulate_flow(flow, L, float(_field(q)) if q is not None else 0.0))
    info["fit_wall_s"] = time.perf_counter() - t0
    return LightEnsemble(tuple(members), info=info)
