"""Profile plots (n, sigma_los with binned data, M, rho) with 68/95% bands and the truth when known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io import StarTable

__all__ = ["binned_dispersion", "plot_profiles"]


def binned_dispersion(stars: StarTable, *, per_bin: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-number bins in R: (R_mid, sigma_los, error) with error subtraction, weighted by membership."""
    order = np.argsort(stars.R)
    nb = max(1, stars.n // per_bin)
    out = []
    for idx in np.array_split(order, nb):
        w = stars.weight[idx]
        if w.sum() <= 0:
            continue
        var = np.sum(w * (stars.v[idx] ** 2 - stars.verr[idx] ** 2)) / w.sum()
        s = np.sqrt(max(var, 0.0))
        out.append((np.median(stars.R[idx]), s, s / np.sqrt(2 * max(w.sum() - 1, 1))))
    return tuple(np.array(a) for a in zip(*out))  # type: ignore[return-value]


def _band(ax, x, draws, color, label):
    lo95, lo68, med, hi68, hi95 = np.quantile(draws, [0.025, 0.16, 0.5, 0.84, 0.975], axis=0)
    ax.fill_between(x, lo95, hi95, color=color, alpha=0.2, lw=0)
    ax.fill_between(x, lo68, hi68, color=color, alpha=0.4, lw=0)
    ax.plot(x, med, color=color, lw=1.5, label=label)


def plot_profiles(results: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]], path: str | Path, *,
                  stars: StarTable | None = None, truth: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
                  title: str = "", mark_radius: float | None = None) -> Path:
    """``results``: label -> (radius, R, profiles with draws x radius). Saves a 2x2 PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    colors = ["C0", "C1", "C2", "C3"]
    panels = [("n", "n(r) [kpc$^{-3}$]", "radius"), ("sigma_los_R", r"$\sigma_{los}(R)$ [km/s]", "R"),
              ("mass", r"M(<r) [M$_\odot$]", "radius"), ("rho", r"$\rho$(r) [M$_\odot$ kpc$^{-3}$]", "radius")]
    for (key, ylabel, coord), ax in zip(panels, axes.flat):
        for (label, (radius, R, prof)), c in zip(results.items(), colors):
            if key in prof:
                x = radius if coord == "radius" else R
                _band(ax, x, prof[key], c, label)
        if truth and key in truth:
            x = next(iter(results.values()))[0 if coord == "radius" else 1]
            ax.plot(x, truth[key](x), "k--", lw=1.5, label="truth")
        if key == "sigma_los_R" and stars is not None:
            Rb, sb, eb = binned_dispersion(stars)
            ax.errorbar(Rb, sb, eb, fmt="o", color="k", ms=3, label="binned data")
        else:
            ax.set_yscale("log")
        if mark_radius is not None and key == "rho":
            ax.axvline(mark_radius, color="grey", ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("r [kpc]" if coord == "radius" else "R [kpc]")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
