"""Figures for inference and calibration (matplotlib / arviz_plots); computation lives elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_corner", "corner_figure", "plot_ppc", "plot_sbc_ecdf", "plot_coverage", "param_label",
           "PARAM_LABELS", "posterior_range"]

#: Axis labels with units of the simulator and catalogue parameters.
PARAM_LABELS: dict[str, str] = {
    "distance_kpc": "distance [kpc]", "log10_mass": "log₁₀ M [M☉]", "age_gyr": "age [Gyr]",
    "log10_age_yr": "log₁₀ age [yr]", "feh": "[Fe/H] [dex]", "log10_r_half": "log₁₀ r½ [pc]",
    "w0": "King W₀", "segregation": "mass segregation", "ellipticity": "ellipticity",
    "position_angle": "position angle [deg]", "ebv": "E(B−V) [mag]",
    "background_sb": "μ background [mag arcsec⁻²]",
}


def param_label(name: str, units: str = "") -> str:
    """Axis label of parameter ``name``: :data:`PARAM_LABELS`, else the name with ``units`` in brackets."""
    return PARAM_LABELS.get(name, name + (f" [{units}]" if units else ""))


def _finish(fig: Any, path: str | Path | None, *, tight: bool = True) -> Any:
    """Save ``fig`` at 110 dpi. ``tight=False`` for figures that set their own margins: a tight bounding box
    leaves out the part of an axis label wider than its axes (matplotlib sizes axes by their ticks only)."""
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight" if tight else None)
    return fig


def posterior_range(values: np.ndarray, *, bounds: tuple[float, float] | None = None,
                    marks: Sequence[float] = (), pad: float = 0.1) -> tuple[float, float]:
    """Axis range spanning the 0.5-99.5 percentiles of ``values`` padded by ``pad`` of the width on each
    side, widened to include the ``marks`` (truth, literature values), and clipped to ``bounds`` (the prior)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo, hi = np.percentile(v, [0.5, 99.5]) if v.size else (0.0, 1.0)
    for m in marks:
        if m is not None and np.isfinite(m):
            lo, hi = min(lo, m), max(hi, m)
    w = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    lo, hi = lo - pad * w, hi + pad * w
    if bounds is not None and all(b is not None and np.isfinite(b) for b in bounds):
        edge = 0.02 * (bounds[1] - bounds[0])  # a marker on the prior's edge stays visible
        lo, hi = max(lo, bounds[0] - edge), min(hi, bounds[1] + edge)
    return float(lo), float(hi)


def corner_figure(samples: dict[str, np.ndarray], *, labels: dict[str, str] | None = None,
                  bounds: dict[str, tuple[float, float]] | None = None, truth: dict[str, float] | None = None,
                  reference: dict[str, float] | None = None, reference_label: str = "literature",
                  bins: int = 30, title: str = "", panel: float = 1.9) -> Any:
    """Corner plot: 1-D marginals (with the 16-50-84% quantiles) on the diagonal, 2-D histograms below.

    ``samples``: name -> draws; axes span the posterior (:func:`posterior_range`) inside ``bounds``.
    ``truth`` (red, solid) and ``reference`` (dark green, dashed; e.g. literature values) mark
    values by name; missing or NaN values are not drawn. One legend names the markers.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    names = list(samples)
    labels, bounds = dict(labels or {}), dict(bounds or {})
    truth = {k: float(v) for k, v in (truth or {}).items() if v is not None and np.isfinite(v)}
    reference = {k: float(v) for k, v in (reference or {}).items() if v is not None and np.isfinite(v)}
    d = len(names)
    ranges = {n: posterior_range(samples[n], bounds=bounds.get(n), marks=(truth.get(n), reference.get(n)))
              for n in names}
    # fixed margins in inches: labels below and left, the title lines and the diagonal's quantiles above
    top_in = 0.45 + 0.25 * (title.count("\n") + 1 if title else 0)
    width, height = panel * d + 1.35, panel * d + 1.0 + top_in
    fig, axes = plt.subplots(d, d, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=0.9 / width, right=1 - 0.45 / width, bottom=1.0 / height, top=1 - top_in / height,
                        wspace=0.06, hspace=0.06)
    marker = {"truth": dict(color="C3", lw=1.2), "ref": dict(color="darkgreen", lw=1.4, ls="--")}
    for i, ni in enumerate(names):
        for j, nj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            xi, xj = np.asarray(samples[ni], float), np.asarray(samples[nj], float)
            if i == j:
                ax.hist(xi, bins=bins, range=ranges[ni], color="C0", histtype="stepfilled", alpha=0.6)
                for q, ls in zip(np.percentile(xi, [16, 50, 84]), (":", "-", ":")):
                    ax.axvline(q, color="C0", ls=ls, lw=1)
                ax.set_yticks([])
                lo, med, hi = np.percentile(xi, [16, 50, 84])
                ax.set_title(f"{med:.3g} (+{hi - med:.2g} / −{med - lo:.2g})", fontsize=8)
            else:
                ax.hist2d(xj, xi, bins=bins, range=[ranges[nj], ranges[ni]], cmap="Blues")
                ax.set_ylim(ranges[ni])
                for vals, kw in ((truth, marker["truth"]), (reference, marker["ref"])):
                    if ni in vals:
                        ax.axhline(vals[ni], **kw)
            for vals, kw in ((truth, marker["truth"]), (reference, marker["ref"])):
                if nj in vals:
                    ax.axvline(vals[nj], **kw)
            ax.set_xlim(ranges[nj])
            ax.xaxis.set_major_locator(MaxNLocator(4, prune="both"))  # no tick labels colliding across panels
            if i != j:
                ax.yaxis.set_major_locator(MaxNLocator(4, prune="both"))
            ax.tick_params(labelsize=7.5)
            if i == d - 1:
                ax.set_xlabel(labels.get(nj, nj), fontsize=10)
                ax.tick_params(axis="x", labelrotation=45)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels.get(ni, ni), fontsize=10)
            elif i != j:
                ax.set_yticklabels([])
    fig.align_labels()
    handles = [Line2D([], [], color="C0", lw=6, alpha=0.6, label="posterior (16, 50, 84%)")]
    if truth:
        handles.append(Line2D([], [], **marker["truth"], label="truth"))
    if reference:
        handles.append(Line2D([], [], **marker["ref"], label=reference_label))
    fig.legend(handles=handles, loc="upper right", fontsize=10, frameon=False,
               bbox_to_anchor=(1 - 0.45 / width, 1 - top_in / height))
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.1 / height, va="top")
    return fig


def plot_corner(dt: Any, *, truth: Sequence[float] | dict[str, float] | None = None, observation: int = 0,
                bins: int = 30, title: str = "", path: str | Path | None = None) -> Any:
    """Corner plot of the ``posterior`` group of an :func:`~gcsbi.inference.infer` DataTree.

    Marginal histograms on the diagonal, 2D histograms below, axes spanning the posterior (its
    0.5-99.5 percentiles, padded, inside the prior); ``truth`` (sequence in parameter order or a
    dict) is marked with lines; for batched results pick ``observation``. ``title`` names the
    object and prior (default: the number of draws).
    """
    post = dt["posterior"]
    names = list(post.data_vars)
    samples = {}
    for n in names:
        v = np.asarray(post[n].values)
        samples[n] = (v[..., observation] if v.ndim == 3 else v).reshape(-1)
    if truth is not None and not isinstance(truth, dict):
        truth = dict(zip(names, truth))
    bounds = {n: (post[n].attrs.get("prior_low"), post[n].attrs.get("prior_high")) for n in names}
    labels = {n: param_label(n, post[n].attrs.get("units", "")) for n in names}
    title = title or f"posterior ({len(samples[names[0]])} draws)"
    fig = corner_figure(samples, labels=labels, bounds=bounds, truth=truth, bins=bins, title=title)
    return _finish(fig, path, tight=False)


def plot_ppc(observed: np.ndarray, simulated: np.ndarray, *, band_names: Sequence[str] | None = None,
             path: str | Path | None = None) -> Any:
    """Posterior-predictive check: observed (C, H, W), simulations from posterior draws (K, C, H, W).

    Rows = bands; columns = observed, K simulated images, mean residual (observed - mean sim).
    Compute the simulations with :func:`gcsbi.inference.posterior_predictive`.
    """
    import matplotlib.pyplot as plt

    obs = np.asarray(observed)
    sims = np.asarray(simulated)
    C, K = obs.shape[0], sims.shape[0]
    fig, axes = plt.subplots(C, K + 2, figsize=(1.8 * (K + 2), 1.9 * C), squeeze=False)
    for c in range(C):
        lo, hi = np.percentile(obs[c], [1, 99.5])
        panels = [obs[c], *sims[:, c], obs[c] - sims[:, c].mean(0)]
        titles = ["observed", *[f"draw {k}" for k in range(K)], "obs - mean"]
        for k, (img, title) in enumerate(zip(panels, titles, strict=True)):
            ax = axes[c, k]
            if k == K + 1:
                r = np.abs(img).max() or 1.0
                ax.imshow(img, origin="lower", cmap="RdBu_r", vmin=-r, vmax=r)
            else:
                ax.imshow(img, origin="lower", cmap="magma", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(title, fontsize=8)
        axes[c, 0].set_ylabel(band_names[c] if band_names else f"band {c}")
    fig.tight_layout()
    return _finish(fig, path)


def _small_multiples(n: int, *, ncols: int = 4, panel: tuple[float, float] = (2.4, 1.9), extra_height: float = 0.6):
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows + extra_height),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for k, ax in enumerate(axes.ravel()[:n]):  # tick labels on the outer panels only
        ax.tick_params(labelbottom=k >= n - ncols, labelleft=k % ncols == 0, labelsize=8)
    return fig, axes.ravel()[:n], ncols


def _posterior_name(spec: Any) -> str:
    """``"hst-phat / m31-gc posterior: "`` from a posterior's spec dict (simulator and prior names), else ``""``."""
    if not isinstance(spec, dict):
        return ""
    sim, prior = (spec.get(k) or {} for k in ("simulator", "prior"))
    names = [str(d.get("name")) for d in (sim, prior) if isinstance(d, dict) and d.get("name")]
    return f"{' / '.join(names)} posterior: " if names else ""


def plot_sbc_ecdf(pit: np.ndarray, *, names: Sequence[str], ci_prob: float = 0.95, spec: Any = None,
                  path: str | Path | None = None) -> Any:
    """SBC: ECDF of the PIT values (N, D) minus the uniform one, per parameter, with the simultaneous
    ``ci_prob`` band of a calibrated posterior (``arviz_stats.ecdf_utils.ecdf_pit``, simulation method).
    ``spec``: the posterior's spec dict, to name it in the title.

    A curve leaving the band rejects calibration for that parameter: above zero at small PIT
    means the truth sits too often low in the posterior (posterior biased high), a hump
    means an over-dispersed posterior, a dip an over-confident one.
    """
    from arviz_stats.ecdf_utils import ecdf_pit

    pit = np.asarray(pit, dtype=np.float64)
    n, d = pit.shape
    x, _, lower, upper = ecdf_pit(np.linspace(0, 1, n), ci_prob, n_simulations=1000)
    fig, axes, ncols = _small_multiples(d)
    for k, (ax, name) in enumerate(zip(axes, names)):
        ax.fill_between(x, lower - x, upper - x, color="0.85", lw=0, step="mid")
        ax.axhline(0.0, color="0.5", lw=0.6)
        ecdf = np.searchsorted(np.sort(pit[:, k]), x, side="right") / n
        ax.step(x, ecdf - x, where="mid", color="C0", lw=1.2)
        ax.set_title(param_label(name), fontsize=9)
        if k % ncols == 0:
            ax.set_ylabel("ECDF − uniform", fontsize=9)
        if k >= d - ncols:
            ax.set_xlabel("PIT (rank of the truth)", fontsize=9)
    fig.suptitle(f"{_posterior_name(spec)}SBC on {n} held-out simulations, PIT ECDF minus uniform\n"
                 f"grey: {ci_prob:.0%} simultaneous band of a calibrated posterior", fontsize=10)
    return _finish(fig, path)


def plot_coverage(report: dict[str, Any], *, path: str | Path | None = None) -> Any:
    """Expected coverage minus credibility level, one panel per parameter, plus TARP's joint ECP.

    The grey band is the 95% range (``max_deviation_if_calibrated_per_parameter_q95``) an exactly
    calibrated posterior reaches with the same number of simulations; above zero is
    under-confident (intervals too wide), below zero over-confident.
    """
    lv = np.asarray(report["levels"], float)
    params = report["parameters"]
    noise = report.get("max_deviation_if_calibrated_per_parameter_q95")
    fig, axes, ncols = _small_multiples(len(params) + 1)
    curves = [(param_label(name), lv, np.asarray(p["coverage"], float) - lv, "C0") for name, p in params.items()]
    alpha = np.asarray(report["tarp_alpha"], float)
    curves.append(("TARP (all parameters jointly)", alpha, np.asarray(report["tarp_ecp"], float) - alpha, "k"))
    for k, (ax, (label, x, dev, colour)) in enumerate(zip(axes, curves)):
        if noise:
            ax.axhspan(-float(noise), float(noise), color="0.88", lw=0)
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.plot(x, dev, marker="o" if len(x) < 30 else None, ms=2.5, color=colour, lw=1.2)
        ax.set_title(label, fontsize=9)
        ax.set_xlim(0, 1)
        if k % ncols == 0:
            ax.set_ylabel("coverage − level", fontsize=9)
        if k >= len(curves) - ncols:
            ax.set_xlabel("credibility level", fontsize=9)
    title = (f"{_posterior_name(report.get('spec'))}expected coverage on {report.get('n_held_out', '?')} held-out "
             f"simulations\nmax |deviation| = {report['max_expected_coverage_deviation']:.3f}")
    calibrated = report.get("max_deviation_if_calibrated")
    if calibrated:  # what finite-sample noise alone gives for these n, parameters and levels
        title += f" (exactly calibrated: median {calibrated['median']:.3f}, 95% {calibrated['q95']:.3f})"
    if noise:
        title += "\ngrey: 95% range of one parameter's max deviation if exactly calibrated"
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)
