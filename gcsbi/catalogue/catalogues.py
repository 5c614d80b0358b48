"""The PHAT cluster catalogue (Johnson et al. 2015) and its Caldwell et al. (2011) cross-match.

* :func:`read_phat_catalogue` - the VizieR table J/ApJ/802/127 (FITS) as an astropy Table.
* :func:`resolve_cluster` - a row from an APID (``166``, ``"APID 166"``, ``"AP166"``) or a name
  listed in the ``AltID`` column (``"B165"``, ``"G218"``, ``"B165-G218"``; case and spaces ignored;
  AltIDs are split at ``-`` into their aliases).
* :func:`catalogue_values` / :func:`observation_from_row` - the catalogue values of a row and
  the network input of catalogue mode (:func:`gcsbi.catalogue.model.features`).
* :func:`caldwell_matched` - PHAT clusters within 1" of a Caldwell+2011 old cluster, with the
  Caldwell log M, [Fe/H], E(B-V) and age (reuses :func:`gcsbi.stars.reference.read_m31_old_clusters`).
* :func:`select_clusters` - the rows of a sample for a list of cluster names / APIDs.

Data paths default to ``$GCSBI_SHARED_DATA/m31`` when set, else the catalogues shipped in
the package (:func:`data_dir`, :data:`PACKAGED_DATA`).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiFileError, GcsbiValueError
from .model import BANDS, LIMIT_ERROR, CatalogueModel, features

__all__ = ["PHAT_FILE", "CALDWELL_FILE", "data_dir", "read_phat_catalogue", "resolve_cluster", "catalogue_values",
           "observation_from_row", "caldwell_matched", "is_catalogue_row", "select_clusters"]

#: our parameter -> Caldwell column of :func:`caldwell_matched`
CALDWELL_PARAMS: dict[str, str] = {"log10_mass": "caldwell_log_mass", "feh": "caldwell_feh", "ebv": "caldwell_ebv",
                                   "age_gyr": "caldwell_age"}
PHAT_FILE = "phat_ap_clusters_johnson2015.fits"
CALDWELL_FILE = "caldwell2011_m31_old_clusters.dat"
#: The catalogues shipped as package data (Johnson et al. 2015; Caldwell et al. 2011).
PACKAGED_DATA = Path(__file__).resolve().parent / "data"


def data_dir() -> Path:
    """Folder holding the M31 catalogues: ``$GCSBI_SHARED_DATA/m31`` when set, else the copies
    shipped in the package (``gcsbi/catalogue/data``, see its ``CITATION.md``)."""
    env = os.environ.get("GCSBI_SHARED_DATA")
    if env:
        return Path(env).expanduser() / "m31"
    return PACKAGED_DATA


def _path(path: str | Path | None, default: str) -> Path:
    p = Path(path) if path is not None else data_dir() / default
    if not p.is_file():
        raise GcsbiFileError(f"catalogue file not found: {p} (set GCSBI_SHARED_DATA or pass a path)")
    return p


_CACHE: dict[str, Any] = {}


def read_phat_catalogue(path: str | Path | None = None) -> Any:
    """The PHAT AP cluster catalogue (Johnson+2015, VizieR J/ApJ/802/127 table 2) as an astropy Table."""
    from astropy.table import Table

    p = _path(path, PHAT_FILE)
    key = str(p.resolve())
    if key not in _CACHE:
        try:
            t = Table.read(p)
        except Exception as exc:  # astropy raises many kinds
            raise GcsbiFileError(f"{p}: cannot read the PHAT catalogue: {exc}") from exc
        missing = [c for c in ("APID", "RAdeg", "DEdeg", "Rap", "Reff", "AltID", *BANDS, *("e_" + b for b in BANDS))
                   if c not in t.colnames]
        if missing:
            raise GcsbiFileError(f"{p}: not the Johnson+2015 table (missing columns {missing})")
        _CACHE[key] = t
    return _CACHE[key]


def _norm(s: str) -> str:
    return re.sub(r"[\s_]+", "", str(s)).upper()


def _aliases(table: Any) -> dict[str, list[int]]:
    key = ("aliases", id(table))
    if key not in _CACHE:
        index: dict[str, list[int]] = {}
        for i, alt in enumerate(table["AltID"]):
            alt = "" if np.ma.is_masked(alt) else str(alt).strip()
            if not alt:
                continue
            for name in {_norm(alt), *(_norm(a) for a in alt.split("-") if a.strip())}:
                index.setdefault(name, []).append(i)
        _CACHE[key] = index
    return _CACHE[key]


def resolve_cluster(name: str | int, table: Any = None) -> Any:
    """The catalogue row (astropy Row) of a cluster given by APID or AltID alias (module docstring)."""
    t = read_phat_catalogue() if table is None else table
    apids = np.asarray(t["APID"])
    if isinstance(name, (int, np.integer)):
        apid = int(name)
    else:
        s = _norm(name)
        if not s:
            raise GcsbiValueError("empty cluster name")
        m = re.fullmatch(r"(?:APID|AP)?(\d+)", s)
        if m:
            apid = int(m.group(1))
        else:
            rows = _aliases(t).get(s, [])
            if len(rows) == 1:
                return t[rows[0]]
            if len(rows) > 1:
                raise GcsbiValueError(f"cluster name {name!r} is ambiguous: APIDs {[int(apids[r]) for r in rows]}")
            close = difflib.get_close_matches(s, list(_aliases(t)), n=5, cutoff=0.75)
            hint = f"; close matches: {close}" if close else ""
            raise GcsbiValueError(f"unknown cluster {name!r}: not an APID nor an AltID name in the PHAT catalogue{hint}")
    hit = np.flatnonzero(apids == apid)
    if len(hit) == 0:
        raise GcsbiValueError(f"no cluster with APID {apid} in the PHAT catalogue")
    return t[int(hit[0])]


def _get(row: Any, col: str) -> float:
    v = row[col]
    if np.ma.is_masked(v):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def is_catalogue_row(obj: Any) -> bool:
    """True for an astropy Row / dict-like with the catalogue's magnitude, Reff and Rap columns."""
    try:
        keys = obj.keys() if hasattr(obj, "keys") else obj.colnames
        return "Rap" in keys and "Reff" in keys and any(b in keys for b in BANDS)
    except Exception:
        return False


def _ident(row: Any, keys: Any) -> str:
    """How error messages name a row: its APID, else "this row"."""
    if "APID" not in keys or np.ma.is_masked(row["APID"]):
        return "this row"
    try:
        return f"APID {int(row['APID'])}"
    except (TypeError, ValueError):
        return f"APID {row['APID']!r}"


def _check_photometry(ident: str, bands: tuple[str, ...], mag: np.ndarray, err: np.ndarray) -> None:
    """Raise :class:`GcsbiValueError` naming the field and value of the first unphysical entry.

    NaN (or a masked cell) means "not given": a band without a magnitude is not observed (an
    error or upper-limit flag left in that band is ignored), a magnitude without an error gets one
    from the error model. An infinite magnitude, or an infinite or negative error, is a broken row.
    """
    for b, m, e in zip(bands, mag, err):
        if np.isinf(m):
            raise GcsbiValueError(f"{ident}: magnitude {b} must be finite (NaN if not observed), got {m:g}")
        if np.isinf(e) or e < 0:
            raise GcsbiValueError(f"{ident}: error e_{b} must be finite and >= 0 mag (NaN if not given), got {e:g}")


def catalogue_values(row: Any, *, model: CatalogueModel | None = None, missing_errors: str = "model",
                     bands: tuple[str, ...] = BANDS) -> dict[str, Any]:
    """``mag`` (F,), ``err`` (F,), ``reff``, ``rap``, ``upper_limit`` (F,) of a catalogue row (or dict) in ``bands``.

    A band without a magnitude (not observed) is NaN in ``mag`` and ``err`` and listed in
    ``missing_bands``. A row with none of ``bands``, without Reff or Rap, with Reff or Rap <= 0,
    an infinite magnitude, or an infinite or negative error raises :class:`GcsbiValueError`
    naming the field and its value. A missing error
    with a magnitude present: ``missing_errors="model"`` uses the catalogue error model's median
    at that magnitude (listed in ``filled_errors``), ``"raise"`` raises. Upper limits (``l_<band> = '>'``) get the error
    :data:`~gcsbi.catalogue.model.LIMIT_ERROR`, as in training.
    """
    model = model or CatalogueModel()
    keys = row.keys() if hasattr(row, "keys") else row.colnames
    mag = np.array([_get(row, b) if b in keys else np.nan for b in bands])
    err = np.array([_get(row, "e_" + b) if "e_" + b in keys else np.nan for b in bands])
    reff = _get(row, "Reff") if "Reff" in keys else np.nan
    rap = _get(row, "Rap") if "Rap" in keys else np.nan
    ident = _ident(row, keys)
    _check_photometry(ident, bands, mag, err)
    missing = [b for b, m in zip(bands, mag) if np.isnan(m)]
    if len(missing) == len(bands):
        raise GcsbiValueError(f"{ident}: no magnitude in any of the bands {list(bands)}")
    if np.isnan(rap):
        raise GcsbiValueError(f"{ident}: missing aperture radius Rap")
    if not (np.isfinite(rap) and rap > 0):
        raise GcsbiValueError(f"{ident}: aperture radius Rap must be finite and > 0 arcsec, got {rap:g}")
    if np.isnan(reff):
        raise GcsbiValueError(f"{ident}: missing effective radius Reff")
    if not (np.isfinite(reff) and reff > 0):
        raise GcsbiValueError(f"{ident}: effective radius Reff must be finite and > 0 arcsec, got {reff:g}")
    limit = np.array([str(row.get("l_" + b, "") if hasattr(row, "get") else row["l_" + b]).strip() == ">"
                      if "l_" + b in keys and not np.ma.is_masked(row["l_" + b]) else False for b in bands])
    limit &= np.isfinite(mag)
    filled = []
    for j, b in enumerate(bands):
        if limit[j]:
            err[j] = LIMIT_ERROR
        elif np.isfinite(mag[j]) and not np.isfinite(err[j]):
            if missing_errors == "raise":
                raise GcsbiValueError(f"{ident}: missing error for {b}")
            err[j] = float(np.round(model.median_catalogue_error(b, mag[j]), 2))
            filled.append(b)
    return {"mag": mag, "err": err, "reff": float(reff), "rap": float(rap), "upper_limit": limit,
            "filled_errors": filled, "missing_bands": missing, "bands": list(bands), "id": ident}


def observation_from_row(row: Any, *, model: CatalogueModel | None = None, missing_errors: str = "model",
                         bands: tuple[str, ...] = BANDS) -> np.ndarray:
    """Catalogue-mode network input (2F + 2,) float32 of a catalogue row."""
    v = catalogue_values(row, model=model, missing_errors=missing_errors, bands=bands)
    return features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0]


def caldwell_matched(phat_path: str | Path | None = None, caldwell_path: str | Path | None = None, *,
                     max_sep_arcsec: float = 1.0) -> Any:
    """PHAT clusters matched (<= ``max_sep_arcsec``) to Caldwell+2011 old clusters: an astropy Table.

    Columns: ``APID``, ``name`` (Caldwell), ``sep_arcsec``, ``log_mass``, ``feh``, ``ebv``, ``age``
    (Caldwell; NaN where not given), plus the PHAT columns of the matched row.
    """
    from astropy.table import Table, hstack

    from ..stars.reference import read_m31_old_clusters

    pp, cp = _path(phat_path, PHAT_FILE), _path(caldwell_path, CALDWELL_FILE)
    d = read_m31_old_clusters(pp, cp, max_sep_arcsec=max_sep_arcsec, require_feh_ebv=False)
    phat = read_phat_catalogue(pp)
    cal = Table({"APID": d["apid"], "name": d["name"], "sep_arcsec": d["sep_arcsec"],
                 "caldwell_log_mass": d["log_mass"], "caldwell_feh": d["feh"], "caldwell_ebv": d["ebv"],
                 "caldwell_age": d["age"]})
    rows = phat[d["phat_index"]]
    rows.remove_column("APID")
    out = hstack([cal, rows], join_type="exact")
    out.meta = {"source": "Johnson+2015 (J/ApJ/802/127) x Caldwell+2011 (AJ 141, 61)",
                "max_sep_arcsec": float(max_sep_arcsec)}
    return out


def select_clusters(table: Any, names: Any, *, catalogue: Any = None, sample: str = "the sample") -> Any:
    """The rows of ``table`` (the PHAT catalogue or a sample of it, with APID) for the clusters ``names``.

    Each name is an APID or AltID alias resolved in ``catalogue`` (default: the PHAT catalogue),
    as by :func:`resolve_cluster`; rows come in the order of ``names``, each cluster once. Names
    that resolve to no cluster, or to several, and clusters missing from ``table`` (named ``sample``
    in the message), raise one :class:`GcsbiValueError` listing every such name.
    """
    from ..outputs import printable

    names = [str(n) for n in names]
    if not names:
        raise GcsbiValueError("no cluster names given")
    phat = read_phat_catalogue() if catalogue is None else catalogue
    unknown, ambiguous, wanted = [], [], {}  # APID -> the first name given for it
    for name in names:
        try:
            apid = int(resolve_cluster(name, phat)["APID"])
        except GcsbiValueError:
            several = len(_aliases(phat).get(_norm(name), [])) > 1
            (ambiguous if several else unknown).append(repr(name))
            continue
        wanted.setdefault(apid, name)
    if unknown or ambiguous:
        parts = [f"unknown cluster name(s) {_listed(unknown)} (not an APID nor an AltID name in the PHAT catalogue)"
                 ] if unknown else []
        parts += [f"ambiguous name(s) {_listed(ambiguous)} (give the APID)"] if ambiguous else []
        raise GcsbiValueError(printable("; ".join(parts)))
    in_table = np.asarray(table["APID"]).astype(np.int64)
    rows, absent = [], []
    for apid, name in wanted.items():
        hit = np.flatnonzero(in_table == apid)
        if len(hit):
            rows.append(int(hit[0]))
        else:
            absent.append(f"{name} (APID {apid})")
    if absent:
        raise GcsbiValueError(printable(f"cluster(s) {_listed(absent)} not in {sample}"))
    return table[rows]


def _listed(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")
