"""Export ensembles / emcee draws as an ArviZ DataTree (draws x radius) with HDI bands; NetCDF + Zarr."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import JeansFileError

__all__ = ["profiles_to_datatree", "hdi_bands", "save_datatree", "load_datatree", "truth_coverage",
           "PROFILE_DIMS"]

# profile name -> radial coordinate it lives on
PROFILE_DIMS = {"n": "radius", "sigma_r": "radius", "beta": "radius", "mass": "radius", "mass_dm": "radius",
                "rho": "radius",
                "slope": "radius", "dlnn_dlnr": "radius", "dlns2_dlnr": "radius", "Sigma_R": "R",
                "sigma_los_R": "R"}


def profiles_to_datatree(profiles: dict[str, np.ndarray], *, radius: np.ndarray, R: np.ndarray,
                         attrs: dict | None = None, chain: np.ndarray | None = None,
                         param_names: tuple[str, ...] = (), bands: tuple[float, ...] = (0.68, 0.95),
                         scalars: dict[str, np.ndarray] | None = None):
    """Posterior group with one chain and the ensemble members / posterior draws as ``draw``.

    ``chain`` (steps, walkers, params) from emcee, if given, goes to a group ``mcmc`` with walkers as
    chains (for R-hat/ESS). HDI bands of every profile go to groups ``hdi_68``, ``hdi_95`` (per ``bands``).
    ``scalars`` (name -> one value per draw, e.g. log10 J-factors) go to a group ``jfactor``."""
    from arviz_base import from_dict

    post = {k: np.asarray(v)[None] for k, v in profiles.items() if k in PROFILE_DIMS}
    dims = {k: [PROFILE_DIMS[k]] for k in post}
    groups = {"posterior": post}
    if chain is not None:
        groups["mcmc"] = {name: np.swapaxes(chain[:, :, i], 0, 1) for i, name in enumerate(param_names)}
    if scalars:
        groups["jfactor"] = {k: np.asarray(v, float)[None] for k, v in scalars.items()}
    dt = from_dict(groups, coords={"radius": np.asarray(radius), "R": np.asarray(R)}, dims=dims)
    meta = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v) for k, v in (attrs or {}).items()}
    dt["posterior"].attrs.update(meta)
    n_draws = next(iter(post.values())).shape[1] if post else 0
    for prob in bands if n_draws >= 2 else ():
        dt[f"hdi_{int(round(100 * prob))}"] = xr.DataTree(hdi_bands(dt, prob=prob))
    return dt


def hdi_bands(dt, *, prob: float, var_names: list[str] | None = None) -> xr.Dataset:
    """HDI (lower, upper) per radius of the posterior group (arviz_stats)."""
    from arviz_stats import hdi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = hdi(dt, prob=prob, var_names=var_names)
    return out.to_dataset() if hasattr(out, "to_dataset") else out


def truth_coverage(draws: np.ndarray, truth: np.ndarray, *, probs: tuple[float, ...] = (0.68, 0.95)) -> dict:
    """Median |log10 ratio| of the draw median to the truth, and per radius whether the truth is inside the
    central (equal-tailed) intervals of the draws."""
    draws = np.asarray(draws, float)
    med = np.median(draws, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.log10(np.abs(med / truth))
    out = {"median_abs_log10_ratio": float(np.nanmedian(np.abs(ratio))), "log10_ratio": ratio.tolist()}
    for p in probs:
        lo, hi = np.quantile(draws, [0.5 - p / 2, 0.5 + p / 2], axis=0)
        inside = (truth >= lo) & (truth <= hi)
        out[f"inside_{int(round(100 * p))}"] = inside.tolist()
        out[f"frac_inside_{int(round(100 * p))}"] = float(inside.mean())
    return out


def save_datatree(dt, out_dir: str | Path, *, stem: str = "profiles") -> dict[str, Path]:
    """Write ``stem.zarr`` (the whole DataTree) and ``stem_posterior.nc`` (NetCDF3, posterior group)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        zpath, npath = out / f"{stem}.zarr", out / f"{stem}_posterior.nc"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt.to_zarr(zpath, mode="w", consolidated=False)
        dt["posterior"].to_dataset().to_netcdf(npath, engine="scipy")
    except OSError as exc:
        raise JeansFileError(f"cannot write results to {out}: {exc}") from exc
    return {"zarr": zpath, "netcdf": npath}


def load_datatree(path: str | Path):
    """Open a DataTree written by :func:`save_datatree` (the .zarr folder)."""
    p = Path(path)
    if not p.exists():
        raise JeansFileError(f"no such result: {p}")
    try:
        return xr.open_datatree(p, engine="zarr", consolidated=False)
    except Exception as exc:  # corrupt store
        raise JeansFileError(f"cannot read {p}: {exc}") from exc
