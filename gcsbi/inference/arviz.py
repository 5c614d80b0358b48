"""Conversions to ArviZ ``xarray.DataTree`` (arviz_base 0.8 / ArviZ 1.x conventions), and storing them.

Every DataTree gcsbi returns can be stored as it is, as NetCDF4 (HDF5 with groups:
``dt.to_netcdf(path, engine="h5netcdf")``) or Zarr (``dt.to_zarr(path)``), and read back with
``xr.open_datatree(path)``; :func:`save_datatree` / :func:`open_datatree` do both without Zarr's
warnings (they write and read Zarr v3 with consolidated metadata). So that both formats store them
and give them back, attributes hold only text, numbers and lists of these (:func:`portable_attrs`):

* flags are the integers 1 (yes) / 0 (no), so ``bool(dt.attrs["prior_edge_flag"])`` works;
  ``ood_flag`` is 1 / 0, or -1 when the test could not run (undetermined; see :mod:`gcsbi.inference.infer`);
* a missing value is the empty text ``""`` (e.g. ``ood_reason`` of an observation not flagged);
* nested values (a dict, a list of lists) are JSON text: ``json.loads(dt.attrs["cluster"])``.

NetCDF gives a list back as an array and a one-element list as its element; Zarr gives lists back.
Every variable with a physical unit carries it in its ``units`` attribute ("dex(Msun)", "kpc", "mag",
...; ``""``: dimensionless).

Groups, with ArviZ names where one applies:

* ``posterior``: draws (chain, draw[, observation]) per parameter; attrs ``units``, ``prior_low``,
  ``prior_high``;
* ``observed_data``: ``image``, the network input x the posterior was conditioned on (the
  simulator's output after the spec's transforms; catalogue mode: the feature vector);
* ``constant_data``: ``<parameter>_true`` when a truth is known (same units as the parameter);
* ``maps`` and ``derived`` (``infer(..., maps=True)``; not ArviZ groups): see :mod:`gcsbi.maps.infer`;
* ``calibration`` (:func:`calibration_datatree`; not an ArviZ group): the report of
  :func:`~gcsbi.inference.calibrate.calibrate` per parameter and credible level;
* ``prior_sbc`` (:func:`sbc_datatree`): PIT values, as ``arviz_plots.plot_ecdf_pit`` expects.

Legacy ArviZ (0.2x, ``import arviz as az``) works on an InferenceData: ``az.summary(az.from_datatree(dt))``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["posterior_datatree", "sbc_datatree", "calibration_datatree", "summary", "portable_attrs",
           "save_datatree", "open_datatree", "write_zarr", "write_netcdf"]

#: Description of the ``observed_data`` variable ``image``.
_X_DESCRIPTION = ("the network input x the posterior was conditioned on: the simulator's output after the "
                  "spec's transforms (catalogue mode: the feature vector)")


def _portable(value: Any, *, top: bool = True) -> Any:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.generic):
        return _portable(value.item(), top=top)
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and top:
        items = [_portable(v, top=False) for v in value]
        if any(isinstance(v, str) for v in items) and not all(isinstance(v, str) for v in items):
            items = [v if isinstance(v, str) else json.dumps(v) for v in items]  # one type per list
        return items
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def portable_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` as NetCDF4 and Zarr both store them (module docstring): bool -> 1/0, None -> "",
    dicts and nested lists -> JSON text, NumPy scalars -> Python numbers."""
    return {str(k): _portable(v) for k, v in attrs.items()}


def posterior_datatree(samples: np.ndarray, *, names: tuple[str, ...], units: dict[str, str] | None = None,
                       bounds: dict[str, tuple[float, float]] | None = None,
                       observed: np.ndarray | None = None, truth: np.ndarray | None = None,
                       attrs: dict[str, Any] | None = None) -> Any:
    """DataTree with a ``posterior`` group (chain=1, draw=S[, observation=B]) per named parameter.

    ``samples`` is (S, D) or (S, B, D); ``observed`` the image(s) go to ``observed_data``; a known
    ``truth`` (D,) or (B, D) goes to ``constant_data`` as ``<name>_true``. ``attrs`` become the root
    attributes through :func:`portable_attrs`, so the tree stores as NetCDF4 and Zarr as it is.
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
    dt.attrs.update(portable_attrs(attrs or {}))
    for n in names:
        var = dt["posterior"][n]
        var.attrs["units"] = str((units or {}).get(n, "") or "")
        if bounds and n in bounds:
            var.attrs["prior_low"], var.attrs["prior_high"] = (float(b) for b in bounds[n])
        if truth is not None:
            dt["constant_data"][f"{n}_true"].attrs["units"] = var.attrs["units"]
    if observed is not None:
        dt["observed_data"]["image"].attrs["description"] = _X_DESCRIPTION
    return dt


def sbc_datatree(pit: np.ndarray, *, names: tuple[str, ...]) -> Any:
    """``prior_sbc`` group of PIT values (chain=1, draw=N) as ``arviz_plots.plot_ecdf_pit`` expects."""
    from arviz_base import from_dict

    p = np.asarray(pit, dtype=np.float64)
    return from_dict({"prior_sbc": {n: p[None, :, i] for i, n in enumerate(names)}})


def summary(dt: Any, *, ci_prob: float = 0.94, kind: str = "stats", round_to: int | str = "none") -> Any:
    """Table (pandas DataFrame) of posterior mean, sd and HDI per parameter (``arviz_stats.summary``).

    With legacy ArviZ (0.2x), which takes an InferenceData: ``az.summary(az.from_datatree(dt))``.
    """
    from arviz_stats import summary as az_summary

    return az_summary(dt, group="posterior", kind=kind, ci_prob=ci_prob, ci_kind="hdi", round_to=round_to)


#: Per-parameter entries of a calibration report that are errors in the parameter's own units.
_ERRORS_IN_PARAMETER_UNITS = ("median_abs_error", "bias", "rms_error", "posterior_sd_mean")


def calibration_datatree(report: Mapping[str, Any]) -> Any:
    """The report of :func:`~gcsbi.inference.calibrate.calibrate` as a DataTree with a ``calibration`` group.

    Variables over ``parameter``: ``coverage`` and ``coverage_deviation`` (also over ``level``, the
    credible levels), ``verdict`` (text) and every number the report gives per parameter
    (``sbc_ks_pvalue``, ``median_abs_error``, ``bias``, ...); ``tarp_ecp`` over ``tarp_alpha``. The
    errors ``median_abs_error``, ``bias``, ``rms_error`` and ``posterior_sd_mean`` are in each
    parameter's own units: the coordinate ``parameter_units`` (from the report's ``units`` per
    parameter). The report's other entries (``verdict``, ``n_held_out``, ``tarp_atc``, ``spec``, ...)
    are the group's attributes (:func:`portable_attrs`: dicts as JSON text).
    """
    import xarray as xr

    params: Mapping[str, Mapping[str, Any]] = report.get("parameters") or {}
    names = list(params)
    levels = [float(q) for q in report.get("levels", [])]
    data: dict[str, Any] = {}
    keys = [k for k in dict.fromkeys(k for p in params.values() for k in p) if k != "units"]
    for key in keys:
        vals = [params[n].get(key) for n in names]
        if key in ("coverage", "coverage_deviation"):
            data[key] = (("parameter", "level"), np.asarray(vals, dtype=np.float64))
        elif all(isinstance(v, str) for v in vals):
            data[key] = (("parameter",), np.asarray(vals, dtype=object))
        else:
            data[key] = (("parameter",), np.asarray([np.nan if v is None else v for v in vals], dtype=np.float64))
    coords: dict[str, Any] = {"parameter": np.asarray(names, dtype=object), "level": levels,
                              "parameter_units": ("parameter", np.asarray([str(params[n].get("units", "") or "")
                                                                         for n in names], dtype=object))}
    if report.get("tarp_ecp") is not None:
        data["tarp_ecp"] = (("tarp_alpha",), np.asarray(report["tarp_ecp"], dtype=np.float64))
        coords["tarp_alpha"] = np.asarray(report["tarp_alpha"], dtype=np.float64)
    ds = xr.Dataset(data, coords=coords)
    for key in _ERRORS_IN_PARAMETER_UNITS:
        if key in ds:
            ds[key].attrs["description"] = "in the parameter's units (coordinate parameter_units)"
    ds["level"].attrs["description"] = "probability of the central credible interval"
    skip = {"parameters", "levels", "tarp_ecp", "tarp_alpha"}
    ds.attrs.update(portable_attrs({k: v for k, v in report.items() if k not in skip}))
    return xr.DataTree.from_dict({"calibration": ds})


def write_zarr(dt: Any, path: str | Path, *, mode: str = "w-") -> None:
    """``dt.to_zarr(path)`` as Zarr v3 with consolidated metadata, so that ``xr.open_datatree(path,
    engine="zarr")`` opens it without a warning; zarr's note that consolidated metadata is not yet part
    of the v3 specification is not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        dt.to_zarr(path, mode=mode, consolidated=True, zarr_format=3)


def write_netcdf(dt: Any, path: str | Path) -> Path:
    """``dt`` as a NetCDF4 file (HDF5 with groups; engine h5netcdf), written to a temporary sibling and
    renamed into place; an existing ``path`` is replaced only when it is a NetCDF or HDF5 file."""
    from ..errors import GcsbiFileError
    from ..outputs import check_file_target

    p = check_file_target(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        dt.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, p)
    except OSError as exc:
        raise GcsbiFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return p


def save_datatree(dt: Any, path: str | Path) -> Path:
    """Write ``dt`` to ``path``: NetCDF4 for a ``.nc`` name (:func:`write_netcdf`), else a new Zarr folder
    (:func:`write_zarr`; an existing ``path`` is refused). Read it back with :func:`open_datatree` or
    ``xr.open_datatree(path)``."""
    from ..errors import GcsbiFileError

    p = Path(path)
    if p.suffix.lower() == ".nc":
        return write_netcdf(dt, p)
    if p.exists():
        raise GcsbiFileError(f"{path} exists; give a new name for the Zarr folder")
    write_zarr(dt, p)
    return p


def open_datatree(path: str | Path) -> Any:
    """Open a DataTree written by gcsbi (NetCDF4 file or Zarr folder) with ``xr.open_datatree``, quietly:
    a Zarr folder is read with or without consolidated metadata as it was written."""
    import xarray as xr

    p = Path(path)
    if p.is_dir():
        return xr.open_datatree(p, engine="zarr", consolidated=_consolidated(p))
    return xr.open_datatree(p, engine="h5netcdf")


def _consolidated(store: Path) -> bool:
    """Whether the Zarr folder ``store`` has consolidated metadata (v3 in zarr.json, or v2 .zmetadata)."""
    if (store / ".zmetadata").is_file():
        return True
    try:
        meta = json.loads((store / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and bool(meta.get("consolidated_metadata"))
