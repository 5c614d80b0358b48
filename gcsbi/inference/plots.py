"""Figures for inference and calibration (matplotlib / arviz_plots); computation lives elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_corner", "plot_ppc", "plot_sbc_ecdf", "plot_coverage"]


def _finish(fig: Any, path: str | Path | None) -> Any:
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def plot_corner(dt: Any, *, truth: Sequence[float] | dict[str, float] | None = None, observation: int = 0,
                bins: int = 30, path: str | Path | None = None) -> Any:
    """Corner plot of the ``posterior`` group of an :func:`~gcsbi.inference.infer` DataTree.

    Marginal histograms on the diagonal, 2D histograms below; ``truth`` (sequence in parameter
    order or a dict) is marked with lines; for batched results pick ``observation``.
    """
    import matplotlib.pyplot as plt

    post = dt["posterior"]
    names = list(post.data_vars)
    cols = []
    for n in names:
        v = np.asarray(post[n].values)
        cols.append((v[..., observation] if v.ndim == 3 else v).reshape(-1))
    if isinstance(truth, dict):
        truth = [truth[n] for n in names]
    d = len(names)
    fig, axes = plt.subplots(d, d, figsize=(2.2 * d, 2.2 * d), squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(cols[i], bins=bins, color="C0", histtype="stepfilled", alpha=0.7)
                if truth is not None:
                    ax.axvline(truth[i], color="C3")
                ax.set_yticks([])
            else:
                ax.hist2d(cols[j], cols[i], bins=bins, cmap="Blues")
                if truth is not None:
                    ax.axvline(truth[j], color="C3", lw=0.8)
                    ax.axhline(truth[i], color="C3", lw=0.8)
                    ax.plot(truth[j], truth[i], "s", color="C3", ms=4)
            unit_j = post[names[j]].attrs.get("units", "")
            if i == d - 1:
                ax.set_xlabel(names[j] + (f" [{unit_j}]" if unit_j else ""))
            if j == 0 and i > 0:
                unit_i = post[names[i]].attrs.get("units", "")
                ax.set_ylabel(names[i] + (f" [{unit_i}]" if unit_i else ""))
    fig.tight_layout()
    return _finish(fig, path)


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


def plot_sbc_ecdf(pit: np.ndarray, *, names: Sequence[str], path: str | Path | None = None) -> Any:
    """Δ-ECDF of SBC PIT values (N, D) with simultaneous bands (``arviz_plots.plot_ecdf_pit``)."""
    from arviz_plots import plot_ecdf_pit

    from .arviz import sbc_datatree

    pc = plot_ecdf_pit(sbc_datatree(pit, names=tuple(names)), backend="matplotlib")
    fig = pc.viz["figure"].item() if hasattr(pc.viz["figure"], "item") else pc.viz["figure"]
    return _finish(fig, path)


def plot_coverage(report: dict[str, Any], *, path: str | Path | None = None) -> Any:
    """Expected coverage vs credibility level per parameter, plus TARP's joint ECP curve."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    lv = np.asarray(report["levels"])
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
    colours = plt.get_cmap("tab20")  # distinct colours for up to 20 parameters
    for i, (name, p) in enumerate(report["parameters"].items()):
        ax.plot(lv, p["coverage"], marker="o", ms=3, color=colours(i % 20), label=name)
    ax.plot(report["tarp_alpha"], report["tarp_ecp"], color="k", lw=1.2, label="TARP (joint)")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    title = f"max |deviation| = {report['max_expected_coverage_deviation']:.3f}"
    noise = report.get("max_deviation_if_calibrated")
    if noise:  # what finite-sample noise alone gives for these n, parameters and levels
        title += f"\n(exactly calibrated: median {noise['median']:.3f}, 95% {noise['q95']:.3f})"
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return _finish(fig, path)
