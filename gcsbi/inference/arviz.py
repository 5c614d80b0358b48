"""Conversions to ArviZ ``xarray.DataTree`` (arviz_base 0.8 / ArviZ 1.x conventions)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["posterior_datatree", "sbc_datatree", "summary"]


def posterior_datatree(samples: np.ndarray, *, names: tuple[str, ...], units: dict[str, str] | None = None,
                       bounds: dict[str, tuple[float, float]] | None = None,
                       observed: np.ndarray | None = None, truth: np.ndarray | None = None,
                       attrs: dict[str, Any] | None = None) -> Any:
    """DataTree with a ``posterior`` group (chain=1, draw=S[, observation=B]) per named parameter.

    ``samples`` is (S, D) or (S, B, D); ``observed`` the image(s) go to ``observed_data``; a known
    ``truth`` (D,) or (B, D) goes to ``constant_data`` as ``<name>_true``.
    """
    from arviz_base import from_dict

    s = np.asarray(samples, dtype=np.float64)
    batched = s.ndim == 3
    post = {n: s[None, ..., i] for i, n in enumerate(names)}
    dims: dict[str, list[str]] = {n: ["observation"] for n in names} if batched else {}
    data: dict[str, dict[str, Any]] = {"posterior": post}
    if observed is not None:
        obs = np.asarray(observed, dtype=np.float32)
        img_dims = (["observation"] if obs.ndim == 4 else []) + ["band", "y", "x"][-min(obs.ndim, 3):]
        data["observed_data"] = {"image": obs}
        dims["image"] = img_dims
    if truth is not None:
        t = np.asarray(truth, dtype=np.float64).reshape((-1, len(names)) if batched else (len(names),))
        data["constant_data"] = {f"{n}_true": t[..., i] for i, n in enumerate(names)}
        if batched:
            dims.update({f"{n}_true": ["observation"] for n in names})
    dt = from_dict(data, dims=dims)
    dt.attrs.update(dict(attrs or {}))
    for n in names:
        var = dt["posterior"][n]
        var.attrs["units"] = (units or {}).get(n, "")
        if bounds and n in bounds:
            var.attrs["prior_low"], var.attrs["prior_high"] = (float(b) for b in bounds[n])
    return dt


def sbc_datatree(pit: np.ndarray, *, names: tuple[str, ...]) -> Any:
    """``prior_sbc`` group of PIT values (chain=1, draw=N) as ``arviz_plots.plot_ecdf_pit`` expects."""
    from arviz_base import from_dict

    p = np.asarray(pit, dtype=np.float64)
    return from_dict({"prior_sbc": {n: p[None, :, i] for i, n in enumerate(names)}})


def summary(dt: Any, *, ci_prob: float = 0.94, kind: str = "stats", round_to: int | str = "none") -> Any:
    """Table (pandas DataFrame) of posterior mean, sd and HDI per parameter (``arviz_stats.summary``)."""
    from arviz_stats import summary as az_summary

    return az_summary(dt, group="posterior", kind=kind, ci_prob=ci_prob, ci_kind="hdi", round_to=round_to)
