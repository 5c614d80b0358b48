"""Export ensembles / emcee draws as an ArviZ DataTree (draws x radius) with HDI bands; NetCDF4 + Zarr.

Groups of :func:`profiles_to_datatree`:

* ``posterior`` (ArviZ): the profiles (:data:`PROFILE_DIMS`) per draw (chain=1, draw = ensemble
  member or posterior draw, on ``radius`` or ``R``) and, from the same draws, the scalars such as
  the J-factors ``log10_J_<angle>deg``; the fit's settings in the group's attributes;
* ``mcmc`` (not an ArviZ group): the emcee chains of the model parameters, walkers as ``chain``
  and steps as ``draw`` (for R-hat / ESS). It is not part of ``posterior`` because the profile
  draws are a random subset of the flattened chains, not the same (chain, draw) pairs;
* ``hdi`` (not an ArviZ group): the HDI band of every ``posterior`` variable per credible level
  (coordinate ``prob``) and ``ci_bound`` (lower, upper).

Every variable and coordinate with a unit carries it in ``units`` (:data:`UNITS`: kpc, km s^-1,
Msun, Msun kpc^-3, dex(...); ``""``: dimensionless). Attributes hold only text and numbers (dicts
as JSON text, booleans as 1/0, None as ""), and text arrays are variable-length, so the tree
stores as NetCDF4 (``dt.to_netcdf(path, engine="h5netcdf")``) and Zarr as it is and opens with
``xr.open_datatree``. :func:`save_datatree` writes both (``profiles.nc`` and ``profiles.zarr``).
Legacy ArviZ (0.2x) works on ``az.from_datatree(dt)``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import JeansFileError

__all__ = ["profiles_to_datatree", "hdi_bands", "save_datatree", "load_datatree", "truth_coverage",
           "PROFILE_DIMS", "UNITS", "portable_attrs"]

_MARK = "gcsbi_output"  # root attribute of the Zarr stores written here (same marker as gcsbi's own outputs)

# profile name -> radial coordinate it lives on
PROFILE_DIMS = {"n": "radius", "sigma_r": "radius", "beta": "radius", "mass": "radius", "mass_dm": "radius",
                "rho": "radius",
                "slope": "radius", "dlnn_dlnr": "radius", "dlns2_dlnr": "radius", "Sigma_R": "R",
                "sigma_los_R": "R"}

#: ``units`` of the profiles, the radial coordinates and the parameters (by name; a name not here
#: is dimensionless). n and Sigma_R are normalised to one tracer star.
UNITS = {"radius": "kpc", "R": "kpc", "n": "kpc^-3", "Sigma_R": "kpc^-2", "sigma_r": "km s^-1",
         "sigma_los_R": "km s^-1", "mass": "Msun", "mass_dm": "Msun", "rho": "Msun kpc^-3", "beta": "",
         "slope": "", "dlnn_dlnr": "", "dlns2_dlnr": "",
         # emcee parameters (baseline and free-form); log10_ra is log10(r_a / r_half)
         "log10_a": "dex(kpc)", "log10_r_s": "dex(kpc)", "log10_rho_s": "dex(Msun kpc^-3)",
         "log10_rho_half": "dex(Msun kpc^-3)", "log10_ra": "dex",
         # headline scalars of the free-form posterior, one per draw
         "rho_dm_150pc": "Msun kpc^-3", "mass_r_half": "Msun", "beta_r_half": ""}
_PREFIX_UNITS = {"log10_J_": "dex(GeV^2 cm^-5)"}
_DESCRIPTIONS = {"n": "3D tracer number density, normalised to one star",
                 "Sigma_R": "projected tracer surface density, normalised to one star",
                 "slope": "logarithmic slope d ln rho / d ln r", "beta": "velocity anisotropy",
                 "mass": "enclosed mass (dark matter and stars)", "mass_dm": "enclosed dark-matter mass",
                 "rho": "dark-matter density", "sigma_r": "radial velocity dispersion",
                 "sigma_los_R": "line-of-sight velocity dispersion", "radius": "3D radius",
                 "R": "projected radius", "rho_dm_150pc": "dark-matter density at r = 150 pc",
                 "mass_r_half": "enclosed mass (dark matter and stars) inside the half-light radius",
                 "beta_r_half": "velocity anisotropy at the half-light radius"}


def _unit(name: str) -> str:
    if name in UNITS:
        return UNITS[name]
    return next((u for p, u in _PREFIX_UNITS.items() if name.startswith(p)), "")


def _portable(value, top: bool = True):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, np.generic):
        return _portable(value.item(), top)
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (list, tuple)) and top and all(
            isinstance(v, (str, int, float, np.generic)) and not isinstance(v, (bool, np.bool_)) for v in value):
        items = [_portable(v, False) for v in value]
        return items if len({isinstance(v, str) for v in items}) <= 1 else json.dumps(items)
    return json.dumps(value, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))


def portable_attrs(attrs: dict | None) -> dict:
    """``attrs`` as NetCDF4 and Zarr both store them: dicts and nested lists as JSON text, booleans as 1/0,
    None as ""."""
    return {str(k): _portable(v) for k, v in (attrs or {}).items()}


def _label(ds: xr.Dataset) -> xr.Dataset:
    """Units and descriptions on ``ds``'s variables and radial coordinates; text coordinates as objects
    (Zarr v3 warns about fixed-length unicode arrays)."""
    for name in list(ds.data_vars) + [c for c in ("radius", "R") if c in ds.coords]:
        ds[name].attrs["units"] = _unit(str(name))
        if name in _DESCRIPTIONS:
            ds[name].attrs["description"] = _DESCRIPTIONS[name]
    for name in list(ds.coords):
        if ds[name].dtype.kind == "U":
            ds = ds.assign_coords({name: ds[name].astype(object)})
    return ds


def profiles_to_datatree(profiles: dict[str, np.ndarray], *, radius: np.ndarray, R: np.ndarray,
                         attrs: dict | None = None, chain: np.ndarray | None = None,
                         param_names: tuple[str, ...] = (), bands: tuple[float, ...] = (0.68, 0.95),
                         scalars: dict[str, np.ndarray] | None = None):
    """Posterior group with one chain and the ensemble members / posterior draws as ``draw``.

    ``chain`` (steps, walkers, params) from emcee, if given, goes to a group ``mcmc`` with walkers as
    chains (for R-hat/ESS). ``scalars`` (name -> one value per draw, from the same draws as the
    profiles, e.g. log10 J-factors) go to ``posterior`` too. HDI bands of every posterior variable go
    to the group ``hdi``, one per credible level in ``bands`` (coordinate ``prob``). ``attrs`` go to the
    posterior group's attributes (:func:`portable_attrs`). See the module docstring."""
    from arviz_base import from_dict

    post = {k: np.asarray(v)[None] for k, v in profiles.items() if k in PROFILE_DIMS}
    dims = {k: [PROFILE_DIMS[k]] for k in post}
    if scalars:  # one value per draw of the profiles: the same (chain, draw)
        post.update({k: np.asarray(v, float)[None] for k, v in scalars.items()})
    groups = {"posterior": post}
    if chain is not None:
        groups["mcmc"] = {name: np.swapaxes(chain[:, :, i], 0, 1) for i, name in enumerate(param_names)}
    with warnings.catch_warnings():  # more walkers (chains) than kept steps is normal for emcee
        warnings.filterwarnings("ignore", message="Found chain dimension to be longer than draw dimension")
        dt = from_dict(groups, coords={"radius": np.asarray(radius), "R": np.asarray(R)}, dims=dims)
    for name in groups:
        dt[name] = xr.DataTree(_label(dt[name].to_dataset()))
    dt["posterior"].attrs.update(portable_attrs(attrs))
    n_draws = next(iter(post.values())).shape[1] if post else 0
    probs = [float(p) for p in bands] if n_draws >= 2 else []
    if probs:
        hdi = xr.concat([hdi_bands(dt, prob=p) for p in probs], dim=xr.DataArray(probs, dims="prob", name="prob"))
        hdi["prob"].attrs["description"] = "probability of the highest-density interval"
        dt["hdi"] = xr.DataTree(_label(hdi))
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


def _ours(zpath: Path) -> bool:
    """Whether the existing folder ``zpath`` may be replaced: empty, or a Zarr store this package wrote
    (its root attribute ``gcsbi_output`` lists every top-level entry)."""
    entries = set(os.listdir(zpath))
    if not entries:
        return True
    try:
        marker = json.loads((zpath / "zarr.json").read_text())["attributes"][_MARK]
        if isinstance(marker, str):  # JSON text since the marker must not keep the tree from NetCDF
            marker = json.loads(marker)
        return marker["format"] == "gcsbi-output" and entries <= set(marker["names"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_zarr(dt, zpath: Path) -> None:
    """Write ``dt`` to ``zpath`` via a temporary sibling renamed into place; only over an empty folder or
    an earlier output of this function (marked in its root attributes), never over anything else."""
    if zpath.exists() and not (zpath.is_dir() and not zpath.is_symlink() and _ours(zpath)):
        raise JeansFileError(f"{zpath} exists and was not written by gcsbi-jeans; it is not replaced: give "
                             "another --out folder, or move it away")
    tmp, old = (zpath.with_name(f".{zpath.name}.{tag}-{os.getpid()}-{time.time_ns()}") for tag in ("tmp", "old"))
    tmp.mkdir()
    try:
        with warnings.catch_warnings():  # zarr's note that consolidated metadata is not yet in the v3 spec
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
            # consolidated: xr.open_datatree(zpath, engine="zarr") then opens it without a warning
            dt.to_zarr(tmp, mode="w", consolidated=True, zarr_format=3)
        meta = json.loads((tmp / "zarr.json").read_text())
        # JSON text, not a dict: the tree read back from the store then stores as NetCDF as it is
        meta.setdefault("attributes", {})[_MARK] = json.dumps(
            {"format": "gcsbi-output", "kind": "gcsbi-jeans profiles", "names": sorted(os.listdir(tmp))})
        (tmp / "zarr.json").write_text(json.dumps(meta, indent=2))
        if zpath.exists():
            os.rename(zpath, old)  # the earlier output goes only once the new one is complete
        os.rename(tmp, zpath)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not zpath.exists():
            os.rename(old, zpath)
        raise
    shutil.rmtree(old, ignore_errors=True)


def save_datatree(dt, out_dir: str | Path, *, stem: str = "profiles") -> dict[str, Path]:
    """Write the whole DataTree twice: ``stem.zarr`` (Zarr v3, consolidated metadata) and ``stem.nc``
    (NetCDF4 with groups, engine h5netcdf); open either with :func:`load_datatree` or ``xr.open_datatree``.

    Both replace only what this function wrote before: a ``stem.zarr`` folder of another origin, or a
    ``stem.nc`` that is not a NetCDF file, is refused (JeansFileError) and left as it is."""
    out = Path(out_dir)
    zpath, npath = out / f"{stem}.zarr", out / f"{stem}.nc"
    if os.path.lexists(npath) and not (npath.is_file() and _head(npath) in _NETCDF_MAGIC):
        raise JeansFileError(f"{npath} exists and is not a NetCDF file; it is not overwritten: give another "
                             "--out folder, or move it away")
    tmp = npath.with_name(f".{npath.name}.tmp-{os.getpid()}-{time.time_ns()}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_zarr(dt, zpath)
        dt.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, npath)
    except JeansFileError:
        raise
    except OSError as exc:
        raise JeansFileError(f"cannot write results to {out}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return {"zarr": zpath, "netcdf": npath}


#: First bytes of a NetCDF4 (HDF5) and of a NetCDF3 file (earlier versions of save_datatree).
_NETCDF_MAGIC = (b"\x89HD", b"CDF")


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(3)


def load_datatree(path: str | Path):
    """Open a DataTree written by :func:`save_datatree`: the .zarr folder (read without relying on
    consolidated metadata, so earlier outputs open quietly too) or the .nc file."""
    p = Path(path)
    if not p.exists():
        raise JeansFileError(f"no such result: {p}")
    try:
        if p.is_file():
            return xr.open_datatree(p, engine="h5netcdf")
        return xr.open_datatree(p, engine="zarr", consolidated=False)
    except Exception as exc:  # corrupt store
        raise JeansFileError(f"cannot read {p}: {exc}") from exc
