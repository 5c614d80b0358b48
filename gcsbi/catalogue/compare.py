"""Literature comparison: catalogue-mode posteriors vs Caldwell et al. (2011) masses and metallicities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALDWELL_PARAMS", "compare_with_caldwell", "plot_comparison", "plot_cluster_posterior"]

#: our parameter -> Caldwell column of :func:`gcsbi.catalogue.catalogues.caldwell_matched`
CALDWELL_PARAMS: dict[str, str] = {"log10_mass": "caldwell_log_mass", "feh": "caldwell_feh", "ebv": "caldwell_ebv",
                                   "age_gyr": "caldwell_age"}
LABELS = {"log10_mass": "log10 M [Msun]", "feh": "[Fe/H]", "ebv": "E(B-V)", "age_gyr": "age [Gyr]",
          "log10_age_yr": "log10 age [yr]"}


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


def plot_comparison(results: Any, out: str | Path | None = None, params: tuple[str, ...] = ("log10_mass", "feh", "ebv"),
                    stats: dict[str, Any] | None = None) -> Any:
    """Posterior median (16-84% bars) vs Caldwell per parameter; OOD clusters in red."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(params), figsize=(4.2 * len(params), 4.0))
    axes = np.atleast_1d(axes)
    ood = np.asarray(results["any_ood"], dtype=bool)
    for ax, p in zip(axes, params):
        ref = np.asarray(results[CALDWELL_PARAMS[p]], float)
        med = np.asarray(results[f"{p}_p50"], float)
        lo, hi = np.asarray(results[f"{p}_p16"], float), np.asarray(results[f"{p}_p84"], float)
        for m, c, lab in ((~ood, "C0", "in distribution"), (ood, "C3", "OOD flag")):
            ok = m & np.isfinite(ref) & np.isfinite(med)
            ax.errorbar(ref[ok], med[ok], yerr=[med[ok] - lo[ok], hi[ok] - med[ok]], fmt="o", ms=3, color=c,
                        alpha=0.7, lw=0.8, label=f"{lab} ({ok.sum()})")
        fin = np.isfinite(ref) & np.isfinite(med)
        if fin.any():
            a, b = np.nanmin([ref[fin].min(), lo[fin].min()]), np.nanmax([ref[fin].max(), hi[fin].max()])
            ax.plot([a, b], [a, b], "k--", lw=0.8)
        ax.set_xlabel(f"Caldwell+2011 {LABELS[p]}")
        ax.set_ylabel(f"gcsbi posterior {LABELS[p]}")
        if stats and p in stats.get("all", {}) and stats["all"][p].get("n"):
            s = stats["all"][p]
            ax.set_title(f"offset {s['median_offset']:+.2f}, scatter {s['scatter_mad']:.2f}\n"
                         f"68%: {s['coverage_68']:.0%}  95%: {s['coverage_95']:.0%}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
        plt.close(fig)
    return fig


def plot_cluster_posterior(dt: Any, reference: dict[str, float] | None = None, out: str | Path | None = None,
                           params: tuple[str, ...] = ("log10_mass", "age_gyr", "feh", "ebv"), title: str = "") -> Any:
    """Marginal posteriors of one cluster with literature values (``reference``: param -> value) marked."""
    import matplotlib.pyplot as plt

    reference = dict(reference or {})
    if "age_gyr" in params and "age_gyr" not in dt["posterior"] and "log10_age_yr" in dt["posterior"]:
        params = tuple("log10_age_yr" if p == "age_gyr" else p for p in params)
        if "age_gyr" in reference:
            reference["log10_age_yr"] = 9.0 + np.log10(reference["age_gyr"])
    fig, axes = plt.subplots(1, len(params), figsize=(3.4 * len(params), 3.0))
    for ax, p in zip(np.atleast_1d(axes), params):
        d = np.asarray(dt["posterior"][p].values).ravel()
        var = dt["posterior"][p]
        ax.hist(d, bins=40, density=True, color="C0", alpha=0.7,
                range=(var.attrs.get("prior_low", d.min()), var.attrs.get("prior_high", d.max())))
        q = np.percentile(d, [16, 50, 84])
        ax.axvline(q[1], color="C0")
        ax.axvspan(q[0], q[2], color="C0", alpha=0.15)
        if p in reference and np.isfinite(reference[p]):
            ax.axvline(reference[p], color="C3", ls="--", lw=2, label="Caldwell+2011")
            ax.legend(fontsize=7)
        ax.set_xlabel(LABELS.get(p, p))
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out, dpi=110)
        plt.close(fig)
    return fig
