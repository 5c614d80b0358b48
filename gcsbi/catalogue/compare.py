"""Literature comparison: catalogue-mode posteriors vs Caldwell et al. (2011) masses and metallicities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiValueError
from .catalogues import CALDWELL_PARAMS, caldwell_matched

__all__ = ["CALDWELL_PARAMS", "compare_with_caldwell", "literature_values", "plot_comparison", "plot_cluster_posterior"]


def _stats(res: Any, param: str, col: str, mask: np.ndarray) -> dict[str, Any]:
    ref = np.asarray(res[col], dtype=float)
    med = np.asarray(res[f"{param}_p50"], dtype=float)
    ok = mask & np.isfinite(ref) & np.isfinite(med)
    if not ok.any():
        return {"n": 0}
    d = med[ok] - ref[ok]
    lo68, hi68 = np.asarray(res[f"{param}_p16"], float)[ok], np.asarray(res[f"{param}_p84"], float)[ok]
    lo95, hi95 = np.asarray(res[f"{param}_p2.5"], float)[ok], np.asarray(res[f"{param}_p97.5"], float)[ok]
    return {"n": int(ok.sum()), "median_offset": float(np.median(d)), "mean_offset": float(np.mean(d)),
            "scatter_std": float(np.std(d, ddof=1)) if ok.sum() > 1 else float("nan"),
            "scatter_mad": float(1.4826 * np.median(np.abs(d - np.median(d)))),
            "coverage_68": float(np.mean((ref[ok] >= lo68) & (ref[ok] <= hi68))),
            "coverage_95": float(np.mean((ref[ok] >= lo95) & (ref[ok] <= hi95))),
            "median_posterior_width_68": float(np.median(hi68 - lo68))}


def compare_with_caldwell(results: Any, params: tuple[str, ...] = ("log10_mass", "feh", "ebv")) -> dict[str, Any]:
    """Offsets (posterior median - Caldwell), scatter (std and 1.4826 MAD) and 68%/95% coverage.

    ``results``: the table of :func:`gcsbi.catalogue.inference.infer_catalogue` on
    :func:`~gcsbi.catalogue.catalogues.caldwell_matched`. Given for all used clusters and for the
    in-distribution ones (``any_ood`` False).
    """
    missing = [CALDWELL_PARAMS[p] for p in params if CALDWELL_PARAMS[p] not in results.colnames]
    if missing:
        raise GcsbiValueError(f"the results table has no Caldwell+2011 columns ({', '.join(missing)}): compare needs "
                              "a batch run on the Caldwell-matched sample (gcsbi m31 batch --sample caldwell)")
    status = np.asarray(results["status"]).astype(str)
    used = np.char.startswith(status, "ok")
    ood = np.asarray(results["any_ood"], dtype=bool)
    out: dict[str, Any] = {"n_clusters": int(len(results)), "n_used": int(used.sum()),
                           "n_ood": int((used & ood).sum()),
                           "ood_fraction": float((used & ood).sum() / max(used.sum(), 1)),
                           "n_ood_mmd": int((used & np.asarray(results["ood_flag"], bool)).sum()),
                           "n_ood_range": int((used & np.asarray(results["range_flag"], bool)).sum()),
                           "all": {}, "in_distribution": {}}
    for p in params:
        col = CALDWELL_PARAMS[p]
        out["all"][p] = _stats(results, p, col, used)
        out["in_distribution"][p] = _stats(results, p, col, used & ~ood)
    return out


def literature_values(row: Any, phat_path: str | Path | None = None,
                      caldwell_path: str | Path | None = None) -> dict[str, float]:
    """Caldwell+2011 values (parameter -> value: ``log10_mass``, ``feh``, ``ebv``, ``age_gyr``) of the PHAT
    catalogue row ``row`` (matched by position, <= 1"), plus ``"name"``; only values Caldwell gives.

    Empty when the cluster is not in Caldwell's old-cluster table, a catalogue file is missing, or a
    user's PHAT-like table lacks the positions the cross-match needs (the markers are optional).
    """
    from ..errors import GcsbiError

    try:
        table = caldwell_matched(phat_path, caldwell_path)
    except (GcsbiError, KeyError, ValueError):
        return {}
    hit = np.flatnonzero(np.asarray(table["APID"]) == int(row["APID"]))
    if len(hit) == 0:
        return {}
    match = table[int(hit[0])]
    out: dict[str, Any] = {"name": str(match["name"]).strip()}
    for param, col in CALDWELL_PARAMS.items():
        v = float(match[col]) if not np.ma.is_masked(match[col]) else float("nan")
        if np.isfinite(v):
            out[param] = v
    return out


# the pictures live in plots.py; kept importable from here
from .plots import LABELS, plot_cluster_posterior, plot_comparison  # noqa: E402
