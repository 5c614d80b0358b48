"""Readers for the real cluster catalogues used to validate integrated colours (Harris 2010, PHAT x Caldwell 2011)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GcsbiFileError

__all__ = ["PHAT_BANDS", "read_harris_colours", "read_m31_old_clusters"]

#: The six bands of the PHAT cluster catalogue (Johnson et al. 2015), blue to red.
PHAT_BANDS: tuple[str, ...] = ("F275W", "F336W", "F475W", "F814W", "F110W", "F160W")


def _f(s: str) -> float:
    s = s.strip()
    return float(s) if s else np.nan


def read_harris_colours(path: Path) -> dict[str, np.ndarray]:
    """Harris (1996, 2010 ed.) part II: name, [Fe/H], E(B-V), U-B, B-V, V-I (observed, not dereddened)."""
    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"Harris catalogue not found: {path}")
    lines = path.read_text(errors="replace").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("ID") and "B-V" in ln and "V-I" in ln), None)
    if start is None:
        raise GcsbiFileError(f"{path}: part II header ([Fe/H] ... B-V V-R V-I) not found")
    rows = []
    for ln in lines[start + 1 :]:
        if ln.strip().startswith("ID") or ln.strip().startswith("_"):
            break
        if len(ln) < 30 or not ln[1:12].strip():
            continue
        try:
            rows.append((ln[1:12].strip(), _f(ln[12:19]), _f(ln[22:28]), _f(ln[54:61]), _f(ln[62:67]), _f(ln[74:79])))
        except ValueError:
            continue
    names, feh, ebv, ub, bv, vi = zip(*rows)
    return {"name": np.array(names), "feh": np.array(feh), "ebv": np.array(ebv), "ub": np.array(ub),
            "bv": np.array(bv), "vi": np.array(vi)}


def read_m31_old_clusters(phat_fits: Path, caldwell_dat: Path, max_sep_arcsec: float = 1.0,
                          require_feh_ebv: bool = True) -> dict[str, np.ndarray]:
    """PHAT (Johnson+2015) magnitudes in its six bands matched (<= 1") to Caldwell+2011 [Fe/H], E(B-V), age.

    Also returned: ``log_mass`` (Caldwell log M, NaN if none), ``apid`` (PHAT APID),
    ``phat_index`` (row in the PHAT table), ``sep_arcsec`` and the errors ``e_<band>``. ``require_feh_ebv=False`` keeps
    matched clusters without a Caldwell [Fe/H] or E(B-V) too.
    """
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    for p in (phat_fits, caldwell_dat):
        if not Path(p).is_file():
            raise GcsbiFileError(f"M31 catalogue not found: {p}")
    phat = Table.read(phat_fits)
    lines = Path(caldwell_dat).read_text(errors="replace").splitlines()
    hdr = next(i for i, ln in enumerate(lines) if ln.startswith("object"))
    cols = [c.strip() for c in lines[hdr].split("\t")]
    recs = [ln.split("\t") for ln in lines[hdr + 2 :] if ln.strip()]
    get = {c: [r[i].strip() if i < len(r) else "" for r in recs] for i, c in enumerate(cols)}
    feh = np.array([_f(x) for x in get["[Fe/H]"]])
    ebv = np.array([_f(x) for x in get["E(B-V)"]])
    age = np.array([_f(x.strip("()")) for x in get["Age"]])
    cc = SkyCoord(get["RA"], get["DEC"], unit=(u.hourangle, u.deg))
    pc = SkyCoord(np.asarray(phat["RAdeg"]) * u.deg, np.asarray(phat["DEdeg"]) * u.deg)
    idx, sep, _ = cc.match_to_catalog_sky(pc)
    ok = sep.arcsec <= max_sep_arcsec
    if require_feh_ebv:
        ok &= np.isfinite(feh) & np.isfinite(ebv)
    logm = np.array([_f(x) for x in get.get("Log_Mass", [""] * len(recs))])
    out = {"name": np.array(get["object"])[ok], "feh": feh[ok], "ebv": ebv[ok], "age": age[ok],
           "log_mass": logm[ok], "apid": np.asarray(phat["APID"])[idx[ok]].astype(int),
           "phat_index": idx[ok].astype(int), "sep_arcsec": sep.arcsec[ok]}
    for band in PHAT_BANDS:
        for key in (band, "e_" + band):
            col = phat[key][idx[ok]]
            out[key] = np.asarray(col.filled(np.nan) if hasattr(col, "filled") else col, dtype=float)
    return out
