"""Pictures of catalogue-mode results: one cluster's corner plot, and the sample against Caldwell et al. (2011).

The numbers come from :mod:`gcsbi.catalogue.compare` (statistics, literature values) and
:mod:`gcsbi.catalogue.inference` (posteriors); this module only draws them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_comparison", "plot_cluster_posterior", "cluster_title", "LABELS"]

#: Axis labels (with units) of the parameters compared with the literature.
LABELS = {"log10_mass": "log₁₀ M [M☉]", "feh": "[Fe/H] [dex]", "ebv": "E(B−V) [mag]", "age_gyr": "age [Gyr]",
          "log10_age_yr": "log₁₀ age [yr]"}


def cluster_title(row: Any) -> str:
    """``"B165-G218 (PHAT APID 166)"`` for a PHAT catalogue row; ``"APID 166"`` when it has no AltID."""
    apid = int(row["APID"])
    alt = "" if np.ma.is_masked(row["AltID"]) else str(row["AltID"]).strip()
    return f"{alt} (PHAT APID {apid})" if alt else f"PHAT APID {apid}"


def plot_comparison(results: Any, out: str | Path | None = None, params: tuple[str, ...] = ("log10_mass", "feh", "ebv"),
                    stats: dict[str, Any] | None = None) -> Any:
    """Posterior median (16-84% bars) vs Caldwell per parameter; OOD clusters in red."""
    import matplotlib.pyplot as plt

    from .catalogues import CALDWELL_PARAMS

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


def _prior_line(dt: Any, params: tuple[str, ...]) -> str:
    """``prior: <the prior used>`` and, for the plain training prior, the box of the plotted parameters."""
    described = str(dt.attrs.get("prior", "")).strip()
    if not described:
        return ""
    line = f"prior: {described}"
    if " " not in described:  # only a name: say what the box is
        box = []
        for p in params:
            a = dt["posterior"][p].attrs
            if "prior_low" in a and "prior_high" in a:
                box.append(f"{LABELS.get(p, p).split(' [')[0]} {a['prior_low']:.3g} to {a['prior_high']:.3g}")
        if box:
            line += f" (box: {', '.join(box)})"
    return line


def plot_cluster_posterior(dt: Any, reference: dict[str, float] | None = None, out: str | Path | None = None,
                           params: tuple[str, ...] = ("log10_mass", "age_gyr", "feh", "ebv"), title: str = "",
                           reference_label: str = "Caldwell+2011") -> Any:
    """Corner plot of one cluster's posterior with literature values (``reference``: param -> value) marked.

    ``title`` names the cluster (:func:`cluster_title`); the prior used (``dt.attrs["prior"]``)
    is added below it unless the title already names one. Axes span the posterior (padded
    0.5-99.5 percentiles, widened to show the literature values, inside the prior box).
    Parameters without a literature value get no marker.
    """
    import matplotlib.pyplot as plt

    from ..inference.plots import corner_figure

    reference = dict(reference or {})
    post = dt["posterior"]
    if "age_gyr" in params and "age_gyr" not in post and "log10_age_yr" in post:
        params = tuple("log10_age_yr" if p == "age_gyr" else p for p in params)
        if "age_gyr" in reference and reference["age_gyr"] is not None and reference["age_gyr"] > 0:
            reference["log10_age_yr"] = 9.0 + np.log10(reference["age_gyr"])
    params = tuple(p for p in params if p in post)
    samples = {p: np.asarray(post[p].values).reshape(-1) for p in params}
    bounds = {p: (post[p].attrs.get("prior_low"), post[p].attrs.get("prior_high")) for p in params}
    labels = {p: LABELS.get(p, p) for p in params}
    lines = [title or "catalogue-mode posterior"]
    if "prior" not in title.lower():
        lines.append(_prior_line(dt, params))
    if not any(p in reference and np.isfinite(reference[p]) for p in params):
        lines.append(f"no {reference_label} values for this cluster")
    width = int(2.3 * len(params) * 11)  # characters of 11-pt text across the figure
    text = "\n".join(textwrap.fill(line, width) for line in lines if line)
    fig = corner_figure(samples, labels=labels, bounds=bounds, reference={p: reference.get(p) for p in params},
                        reference_label=reference_label, bins=35, title=text, panel=2.3)
    if out is not None:
        fig.savefig(out, dpi=110)
        plt.close(fig)
    return fig
