"""Posterior inference for observed images, with input validation and out-of-distribution flags.

Two independent flags, each with its own warning category and attrs:

* Out of distribution: the observation and up to 500 held-out training simulations (stored in
  the checkpoint) are embedded with the trained embedding net, and sbi's
  ``calc_misspecification_mmd`` (RBF-MMD, median-heuristic bandwidth, permutation baseline) gives
  a p-value that the observation comes from the training distribution. ``p < ood_alpha`` ->
  ``OutOfDistributionWarning`` and ``dt.attrs["ood_flag"] = 1`` (else 0). With fewer than
  ``MIN_REFERENCE`` reference embeddings the test cannot run: ``ood_flag`` is -1
  (undetermined: ``bool()`` of it is True, it is not a pass), ``ood_test`` says why, and one
  ``GcsbiWarning`` is emitted. Whether or not it
  runs, an observation lying more than ``Z_MAX`` training standard deviations from the training
  mean, or whose embedding is not finite, is flagged with p-value 0 and its reason in
  ``ood_reason`` (``""`` for observations not flagged so): the float32 network and the MMD
  have no meaning there (:func:`ood_test`).
* Prior edge: more than ``edge_threshold`` of the draws within 2% of the prior range from a bound
  -> ``PriorEdgeWarning``, ``dt.attrs["prior_edge_flag"] = 1`` (else 0) and the parameters in
  ``prior_edge_params``. This also happens for legitimate prior draws whose true value lies near a
  bound, so it is not an out-of-distribution verdict.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError, GcsbiWarning, OutOfDistributionWarning, PriorEdgeWarning
from .arviz import posterior_datatree, summary
from .posterior import TrainedPosterior
from .seeding import seeded

__all__ = ["infer", "summary", "posterior_predictive", "check_observation", "ood_pvalues", "ood_test",
           "input_range_reasons", "prior_edge_fraction", "read_observation", "MIN_REFERENCE", "Z_MAX"]

#: Fewest reference embeddings for which the MMD out-of-distribution test is run.
MIN_REFERENCE = 20
#: Distance from a prior bound, as a fraction of the prior range, that counts as "at the edge".
EDGE_MARGIN = 0.02
#: Most standard deviations of the training x (the estimator's own input standardisation, per
#: channel) an observation may lie from the training mean. By Samuelson's inequality no value of
#: N standardised with their own mean and std lies beyond sqrt(N - 1) of them; a training set has
#: far fewer than 10^12 values per channel (10^5 simulations x 10^6 pixels is 10^11), so no
#: training x came near 10^6 and an observation beyond it is outside anything the network saw.
#: Real observations lie within ~10 (hst-phat mocks: < 10); x scaled by 10^3 is already caught by
#: the MMD test, this catches what overflows it.
Z_MAX = 1e6


def check_observation(observation: Any, x_shape: tuple[int, ...]) -> tuple[torch.Tensor, bool]:
    """Validate an observation against the training shape; returns ((B, *x_shape) float32, batched)."""
    if isinstance(observation, (str, Path)):
        raise GcsbiValueError("observation is a path; read it first with read_observation(paths, bands=...)")
    try:
        x = torch.as_tensor(np.asarray(observation) if not torch.is_tensor(observation) else observation)
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"observation must be a numeric array: {exc}") from exc
    if not (x.is_floating_point() or x.dtype in (torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise GcsbiValueError(f"observation must be numeric, got dtype {x.dtype}")
    x = x.to(torch.float32)
    nd = len(x_shape)
    if x.ndim == nd and tuple(x.shape) == tuple(x_shape):
        xb, batched = x[None], False
    elif x.ndim == nd + 1 and tuple(x.shape[1:]) == tuple(x_shape) and len(x) > 0:
        xb, batched = x, True
    else:
        raise GcsbiValueError(f"observation shape {tuple(x.shape)} does not match the training shape "
                              f"{tuple(x_shape)} (give (C, H, W) or (B, C, H, W))")
    n_nan, n_inf = int(torch.isnan(xb).sum()), int(torch.isinf(xb).sum())
    if n_nan or n_inf:
        bands = sorted({int(b) for b in torch.nonzero(~torch.isfinite(xb))[:, 1].tolist()}) if xb.ndim > 2 else []
        raise GcsbiValueError(f"observation contains {n_nan} NaN and {n_inf} inf values"
                              + (f" (band index {bands})" if bands else "") + "; mask or inpaint them first")
    return xb, batched


def ood_pvalues(posterior: TrainedPosterior, x: torch.Tensor, *, seed: int = 0, n_shuffle: int = 200,
                max_samples: int = 500) -> list[float]:
    """Per-observation p-value that x (B, C, H, W) is drawn from the training distribution (:func:`ood_test`)."""
    return ood_test(posterior, x, seed=seed, n_shuffle=n_shuffle, max_samples=max_samples)[0]


def input_range_reasons(posterior: TrainedPosterior, x: torch.Tensor) -> list[str | None]:
    """Per observation of x (B, C, H, W), in float64: why it lies outside any training x (NaN/inf, or past
    :data:`Z_MAX` training standard deviations), or None."""
    x64 = torch.as_tensor(x).detach().cpu().to(torch.float64)
    finite = torch.isfinite(x64.reshape(len(x64), -1)).all(1)
    extent = posterior.standardized_extent(x64)
    reasons: list[str | None] = []
    for i in range(len(x64)):
        if not bool(finite[i]):
            reasons.append("x has NaN or inf values")
        elif extent is not None and not float(extent[i]) <= Z_MAX:
            reasons.append(f"x lies {float(extent[i]):.3g} standard deviations of the training x from its mean "
                           f"(the estimator's input standardisation); no training x lies beyond {Z_MAX:.0e}")
        else:
            reasons.append(None)
    return reasons


def ood_test(posterior: TrainedPosterior, x: torch.Tensor, *, seed: int = 0, n_shuffle: int = 200,
             max_samples: int = 500, progress: bool = False) -> tuple[list[float], list[str | None]]:
    """Per observation of x (B, C, H, W): p-value of the training distribution, and a reason to flag it regardless.

    The reason (``None`` when there is none) says why the observation is out of distribution
    whatever the MMD says. Checked in float64 first: NaN/inf values, and more than :data:`Z_MAX` training standard
    deviations from the training mean (:meth:`TrainedPosterior.standardized_extent`); then the
    embedding must be finite and the MMD (run in float64, so that distances between embeddings
    of huge inputs do not overflow) finite too. Each failure gives p-value 0 and a reason. The
    p-values of the others are NaN when the posterior has fewer than ``MIN_REFERENCE`` reference
    embeddings (the MMD test is not run). ``progress``: a bar over the observations tested (stderr).
    """
    from sbi.diagnostics import calc_misspecification_mmd
    from tqdm.auto import tqdm

    n = len(x)
    pvalues, reasons = [float("nan")] * n, input_range_reasons(posterior, x)
    todo = [i for i in range(n) if reasons[i] is None]
    ref = posterior.reference_embeddings
    if todo and ref is not None and len(ref) >= MIN_REFERENCE:
        z = posterior.embed(torch.as_tensor(x)[todo]).to(torch.float64)
        ref64 = ref.to(torch.float64)
        with seeded(seed):
            for k, i in enumerate(tqdm(todo, desc="OOD test (MMD)", unit="obs", disable=not progress)):
                if not bool(torch.isfinite(z[k]).all()):
                    reasons[i] = "its embedding is not finite (the network overflows on it)"
                    continue
                p, (_, mmd) = calc_misspecification_mmd(z[k:k + 1], ref64, mode="x_space", n_shuffle=n_shuffle,
                                                        max_samples=min(max_samples, len(ref64)))
                if not np.isfinite(float(mmd)):
                    reasons[i] = "the MMD between its embedding and the reference embeddings is not finite"
                    continue
                pvalues[i] = float(p)
    return [0.0 if r else p for p, r in zip(pvalues, reasons)], reasons


def prior_edge_fraction(samples: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
                        margin: float = EDGE_MARGIN) -> torch.Tensor:
    """Fraction of draws within ``margin`` x (high - low) of either prior bound, per parameter (..., D)."""
    width = high - low
    near = (samples - low < margin * width) | (high - samples < margin * width)
    return near.float().mean(0)


def infer(posterior: TrainedPosterior, observation: Any, *, num_samples: int = 1000, seed: int = 0,
          check_ood: bool = True, ood_alpha: float = 0.01, edge_threshold: float = 0.25,
          truth: Any = None, maps: Any = False, progress: bool = False) -> Any:
    """Sample the posterior for an observation (C, H, W) or a batch (B, C, H, W) -> ArviZ DataTree.

    Groups: ``posterior`` (chain=1, draw=num_samples[, observation=B]; units and prior bounds in
    each variable's attrs), ``observed_data`` (the image(s)), ``constant_data`` (``truth`` if
    given). Root attrs: ``ood_pvalue``, ``ood_flag`` (1 / 0; -1 when undetermined), ``ood_reason``
    (why it is flagged whatever the MMD says, else ``""``), ``ood_test``,
    ``prior_edge_fraction``, ``prior_edge_params``, ``prior_edge_flag`` (1 / 0), ``seed``. Attributes
    are stored as NetCDF4 and Zarr store them (flags as integers, JSON text for nested values; see
    :mod:`gcsbi.inference.arviz`): ``dt.to_netcdf(path, engine="h5netcdf")`` and ``dt.to_zarr(path)``
    work as they are. Legacy ArviZ (0.2x): ``az.summary(az.from_datatree(dt))``.
    Same seed -> same draws. When an observation reader is installed for the posterior's simulator
    kind (:data:`READERS_GROUP`), ``observation`` goes through it first: for a catalogue-mode
    posterior it may be a PHAT catalogue row or a cluster name / APID (gcsbi's catalogue mode).

    ``maps=True`` (or a map-model path / :class:`gcsbi.maps.MapModel`) also predicts the mass map
    and the decontaminated image with their uncertainties (group ``maps``) and draws the enclosed
    mass, M/L and mass-segregation ratio (group ``derived``); see :mod:`gcsbi.maps.infer`.
    ``progress``: bars on stderr over the posterior sampling and the OOD tests.
    """
    from tqdm.auto import tqdm

    if int(num_samples) < 1:
        raise GcsbiValueError(f"num_samples must be >= 1, got {num_samples}")
    observation, extra_attrs = _read_observation_for(posterior, observation)
    xb, batched = check_observation(observation, posterior.x_shape)
    names = posterior.param_names
    try:
        with seeded(seed, posterior.config.device), \
                tqdm(total=len(xb), desc="posterior draws", unit="obs", disable=not progress) as bar:
            s = posterior.sample_batched((int(num_samples),), x=xb)
            bar.update(len(xb))
    except (AssertionError, ValueError, RuntimeError) as exc:  # the flow breaks down on absurd inputs
        why = input_range_reasons(posterior, xb)
        bad = [i for i, w in enumerate(why) if w]
        if not bad:
            raise
        which = f"observation(s) {bad} are" if batched else "the observation is"
        raise GcsbiValueError(f"{which} out of the training distribution ({why[bad[0]]}): the density estimator "
                              "cannot be sampled for it") from exc
    acc = posterior.last_acceptance
    low, high = posterior.prior.low.cpu(), posterior.prior.high.cpu()
    edge = prior_edge_fraction(s, low, high)  # (B, D)
    attrs: dict[str, Any] = {"seed": int(seed), "num_samples": int(num_samples),
                             "inference_library": "sbi", "method": "NPE"}
    if acc is not None:
        attrs["posterior_mass_in_prior"] = [float(a) for a in acc] if batched else float(acc[0])
        leaky = [i for i, a in enumerate(acc.tolist()) if a < 0.01]
        if leaky:
            warnings.warn(f"only {float(acc.min()):.2%} of the posterior mass lies inside the prior box for "
                          f"observation(s) {leaky}: draws are returned without rejection (some lie outside "
                          "the prior); the observation is probably outside the training distribution",
                          OutOfDistributionWarning, stacklevel=2)
    edge_params = sorted({names[j] for j in range(len(names)) if bool((edge[:, j] > edge_threshold).any())})
    edge_flag = [int(bool((edge[b] > edge_threshold).any())) for b in range(edge.shape[0])]
    attrs["prior_edge_fraction"] = [float(v) for v in edge.max(0).values]
    attrs["prior_edge_params"] = edge_params
    attrs["prior_edge_flag"] = edge_flag if batched else edge_flag[0]
    attrs["prior_edge_threshold"] = float(edge_threshold)
    if edge_params:
        warnings.warn(_edge_message(s, low, high, names, edge_params, posterior.units), PriorEdgeWarning,
                      stacklevel=2)
    if check_ood:
        pv, why = ood_test(posterior, xb, seed=seed, progress=progress)
        n_ref = 0 if posterior.reference_embeddings is None else len(posterior.reference_embeddings)
        attrs["ood_pvalue"] = pv if batched else pv[0]
        # 1 with a reason; -1: undetermined (MMD not run); integers, as NetCDF stores no booleans
        flag = [1 if w else -1 if np.isnan(p) else int(p < ood_alpha) for p, w in zip(pv, why)]
        attrs["ood_flag"] = flag if batched else flag[0]
        why = [w or "" for w in why]  # "": not flagged by the range check (NetCDF stores no None)
        attrs["ood_reason"] = why if batched else why[0]
        attrs["ood_alpha"] = float(ood_alpha)
        if n_ref < MIN_REFERENCE:
            attrs["ood_test"] = f"not run: only {n_ref} reference embeddings (need >= {MIN_REFERENCE})"
            warnings.warn(f"out-of-distribution test not run: the posterior stores only {n_ref} reference "
                          f"embeddings (need >= {MIN_REFERENCE}); ood_flag is undetermined (-1)", GcsbiWarning,
                          stacklevel=2)
        else:
            attrs["ood_test"] = (f"embedding MMD against {min(n_ref, 500)} reference simulations, after a range "
                                 f"check (|x - mean| / std <= {Z_MAX:.0e})")
        if any(f == 1 for f in flag):
            found = sorted({w for w in why if w})
            detail = "; ".join(found) if found else f"embedding MMD p-value {np.nanmin(pv):.3g} < {ood_alpha}"
            warnings.warn(f"observation looks out of the training distribution ({detail}); the posterior is not "
                          "trustworthy", OutOfDistributionWarning, stacklevel=2)
    else:
        attrs["ood_test"] = "not run: check_ood=False"
    attrs.update(extra_attrs)
    samples = s.numpy() if batched else s[:, 0].numpy()
    bounds = {n: (float(low[i]), float(high[i])) for i, n in enumerate(names)}
    dt = posterior_datatree(samples, names=names, units=posterior.units, bounds=bounds,
                            observed=xb.numpy() if batched else xb[0].numpy(),
                            truth=_truth_vector(truth, names), attrs=attrs)
    if maps is not False and maps is not None:
        from ..maps.infer import add_map_groups

        add_map_groups(dt, posterior, maps, xb.numpy(), batched=batched, num_samples=int(num_samples), seed=seed)
    return dt


def _edge_message(s: torch.Tensor, low: torch.Tensor, high: torch.Tensor, names: tuple[str, ...],
                  flagged: list[str], units: dict[str, str]) -> str:
    """What a prior-edge flag means, per flagged parameter: which bound, how many draws, how close."""
    parts = []
    for name in flagged:
        j = names.index(name)
        width = float(high[j] - low[j])
        # fraction per observation (S, B) -> (B,), reported for the worst observation
        near_low = float((s[..., j] - low[j] < EDGE_MARGIN * width).float().mean(0).max())
        near_high = float((high[j] - s[..., j] < EDGE_MARGIN * width).float().mean(0).max())
        side, bound, frac = (("lower", float(low[j]), near_low) if near_low >= near_high
                             else ("upper", float(high[j]), near_high))
        unit = f" {units.get(name, '')}".rstrip()
        parts.append(f"{name} ({frac:.0%} of draws within {EDGE_MARGIN * width:.3g}{unit} of the {side} bound "
                     f"{bound:.4g})")
    return (f"posterior mass piled up at the prior bound of {'; '.join(parts)}; the data may prefer values "
            "outside the prior, or the true value lies near the bound")


def _truth_vector(truth: Any, names: tuple[str, ...]) -> np.ndarray | None:
    """Truth as a vector in parameter order; a mapping must name every parameter."""
    if truth is None:
        return None
    if isinstance(truth, dict):
        missing = [n for n in names if n not in truth]
        if missing:
            raise GcsbiValueError(f"truth is missing parameters {missing}")
        truth = [truth[n] for n in names]
    return np.asarray(truth, dtype=np.float64)


#: Entry-point group of observation readers, keyed by ``spec["simulator"]["kind"]``: a reader
#: ``(posterior, observation) -> (x, extra DataTree attrs)`` turns what a user has (a catalogue
#: row, a cluster name, ...) into the posterior's input. gcsbi's catalogue mode registers
#: ``catalogue`` in ``pyproject.toml``; other packages may register their own kinds.
READERS_GROUP = "gcsbi.observation_readers"


def observation_reader(kind: str | None) -> Any:
    """The installed observation reader for simulator ``kind``, or None."""
    if not kind:
        return None
    from importlib.metadata import entry_points

    for ep in entry_points(group=READERS_GROUP):
        if ep.name == kind:
            return ep.load()
    return None


def _read_observation_for(posterior: TrainedPosterior, observation: Any) -> tuple[Any, dict[str, Any]]:
    """Pass ``observation`` through the reader of the posterior's simulator kind, if one is installed."""
    spec = getattr(posterior, "spec", None)
    sim = spec.get("simulator") if isinstance(spec, dict) else None
    kind = sim.get("kind") if isinstance(sim, dict) else None
    reader = observation_reader(kind)
    if reader is not None:
        return reader(posterior, observation)
    if isinstance(observation, str):
        raise GcsbiValueError(f"observation {observation!r} is a string: for a file, read it first with "
                              "read_observation(paths, bands=...); a name needs an observation reader for this "
                              f"posterior's simulator kind {kind!r} (entry-point group {READERS_GROUP!r}), and "
                              "none is installed")
    return observation, {}


def posterior_predictive(posterior: TrainedPosterior, simulator: Any, observation: Any, *, num_draws: int = 4,
                         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulate images from ``num_draws`` posterior draws: returns (theta (K, D), x (K, C, H, W))."""
    xb, _ = check_observation(observation, posterior.x_shape)
    theta = posterior.sample(int(num_draws), xb[0], seed=seed)
    from .seeding import stream_seed

    return theta, torch.as_tensor(simulator(theta, seed=stream_seed(seed, "ppc", 1)))


def _read_fits(path: Path) -> tuple[np.ndarray, str | None]:
    """The first science image of a FITS file (float32) and its band, read as the per-band image path reads them."""
    from ..observe.hst_images import band_name, read_fits_planes

    plane = read_fits_planes(path)[0]
    return np.asarray(plane.data, dtype=np.float32), band_name(plane.band_headers)


def read_observation(paths: str | Path | Sequence[str | Path] | Mapping[str, str | Path], *,
                     bands: Sequence[str] | None = None) -> np.ndarray:
    """Read FITS image(s) into a (C, H, W) float32 array in the order of ``bands``.

    ``paths``: one cube file (C, H, W) or 2D image; a list of 2D files (band from the FILTER
    header keyword); or a mapping band -> file. With ``bands`` given, missing bands raise a
    GcsbiValueError naming them and the output follows ``bands``' order.
    """
    if isinstance(paths, (str, Path)):
        data, _ = _read_fits(Path(paths))
        cube = data if data.ndim == 3 else data[None]
        if bands is not None and len(bands) != cube.shape[0]:
            raise GcsbiValueError(f"{paths}: has {cube.shape[0]} band(s) but bands={list(bands)}")
        return np.ascontiguousarray(cube, dtype=np.float32)
    items: list[tuple[str | None, Path]]
    if isinstance(paths, Mapping):
        items = [(str(b), Path(p)) for b, p in paths.items()]
    else:
        items = [(None, Path(p)) for p in paths]
    if not items:
        raise GcsbiValueError("no observation files given")
    images: dict[str, np.ndarray] = {}
    order: list[str] = []
    for band, path in items:
        data, found = _read_fits(path)
        if data.ndim != 2:
            raise GcsbiValueError(f"{path}: expected a 2D image per band, got shape {data.shape}")
        name = band or found or path.stem
        if name in images:
            raise GcsbiValueError(f"band {name!r} given twice")
        images[name] = data
        order.append(name)
    if bands is not None:
        missing = [b for b in bands if b not in images]
        if missing:
            raise GcsbiValueError(f"missing band(s) {missing}; got {order}")
        order = list(bands)
    shapes = {images[b].shape for b in order}
    if len(shapes) != 1:
        raise GcsbiValueError(f"band images differ in shape: { {b: images[b].shape for b in order} }")
    return np.stack([images[b] for b in order]).astype(np.float32)
