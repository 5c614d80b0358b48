"""Pictures of map predictions: input | mass map | uncertainty | truth | residual, and profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import check_file_target
from .targets import APERTURES, SUMMARY_NAMES, log_mass

__all__ = ["rgb", "plot_examples", "plot_profiles"]


def rgb(x: np.ndarray) -> np.ndarray:
    """(H, W, 3) colour picture of one observation's first three channels (asinh fluxes, blue to red)."""
    ch = np.asarray(x[:3], np.float64)[::-1]  # reddest band as red
    out = np.empty((*ch.shape[1:], 3))
    for k in range(3):
        lo, hi = np.percentile(ch[k], [1.0, 99.7])
        out[..., k] = np.clip((ch[k] - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return out


def _rgb_bands(model: Any) -> tuple[str, str, str]:
    """(red, green, blue) band names of :func:`rgb` for this model's inputs (its first three channels)."""
    channels = (model.meta.get("spec") or {}).get("simulator", {}).get("channels") or list(model.photometry.bands)
    first = [str(c).removeprefix("asinh_") for c in channels[:3]]
    return first[2], first[1], first[0]


def plot_examples(model: Any, x: np.ndarray, *, truth_mass: np.ndarray | None = None,
                  truth_clean: np.ndarray | None = None, title: str = "", path: str | Path | None = None) -> Any:
    """One row per observation: input RGB | predicted log10 mass per pixel | its sigma | clean image
    (reddest band) [| true log10 mass | residual]; axes in arcsec from the stamp centre (the map
    model's pixel scale). ``title`` names the object. Returns the figure (saved to ``path`` if given)."""
    import matplotlib

    if path is not None:
        path = check_file_target(path)  # replaces a picture, never a file of another kind
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pred = model.predict_maps(x)
    n = len(x)
    phot = model.photometry
    scale = float(phot.pixel_scale_arcsec)
    h, w = np.asarray(x).shape[-2:]
    extent = (-0.5 * w * scale, 0.5 * w * scale, -0.5 * h * scale, 0.5 * h * scale)  # pixel edges, arcsec
    red, green, blue = _rgb_bands(model)
    clean_band = phot.bands[-1]
    cols = 4 + (2 if truth_mass is not None else 0)
    fig, axes = plt.subplots(n, cols, figsize=(2.9 * cols, 2.75 * n + 0.5), squeeze=False, layout="constrained")
    per_pixel = f"per {scale:g}″ pixel"
    for i in range(n):
        lm = pred["log_mass"][i]
        vmin, vmax = -2.0, float(np.nanmax(lm)) if truth_mass is None else float(log_mass(truth_mass[i]).max())
        panels = [(rgb(x[i]), f"input: RGB = {red}/{green}/{blue}", {}, ""),
                  (lm, "mass map (predicted)", {"vmin": vmin, "vmax": vmax, "cmap": "magma"},
                   f"log₁₀ M☉ {per_pixel}"),
                  (pred["log_mass_std"][i], "mass-map uncertainty", {"cmap": "viridis"}, "σ(log₁₀ M) [dex]"),
                  (np.arcsinh(pred["clean"][i, -1] / phot.noise_scale[-1]), f"clean {clean_band} (cluster light only)",
                   {"cmap": "gray"}, f"asinh({clean_band} counts / noise σ)")]
        if truth_mass is not None:
            t = log_mass(truth_mass[i])
            panels += [(t, "mass map (true)", {"vmin": vmin, "vmax": vmax, "cmap": "magma"}, f"log₁₀ M☉ {per_pixel}"),
                       (lm - t, "predicted − true", {"vmin": -1, "vmax": 1, "cmap": "RdBu_r"}, "Δ log₁₀ M [dex]")]
        for k, (ax, (img, panel_title, kw, unit)) in enumerate(zip(axes[i], panels)):
            im = ax.imshow(img, origin="lower", extent=extent, **kw)
            ax.set_title(panel_title, fontsize=9)
            ax.tick_params(labelsize=7.5)
            if i == n - 1:
                ax.set_xlabel("Δx [arcsec]", fontsize=9)
            if k == 0:
                ax.set_ylabel("Δy [arcsec]", fontsize=9)
            if img.ndim == 2:
                cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
                cb.set_label(unit, fontsize=8)
                cb.ax.tick_params(labelsize=7.5)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def plot_profiles(model: Any, x: np.ndarray, *, truth: np.ndarray | None = None, n_draws: int = 1000,
                  seed: int = 0, path: str | Path | None = None) -> Any:
    """Enclosed mass and M/L inside 0.5, 1, 2 R_h and the field (68% and 95% bands) of the first observation."""
    import matplotlib

    if path is not None:
        path = check_file_target(path)  # replaces a picture, never a file of another kind
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    draws = model.sample_summaries(x[:1], n_draws, seed=seed)[:, 0]
    j = {n: i for i, n in enumerate(SUMMARY_NAMES)}
    rh = 10 ** np.median(draws[:, j["log10_rh_light_arcsec"]])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    band = model.photometry.bands[model.photometry.band]
    for ax, kind, label in ((axes[0], "mass", "log₁₀ M(<R) [M☉]"), (axes[1], "ml", f"log₁₀ M/L{band}(<R) [M☉/L☉]")):
        keys = [f"log10_{kind}_{a:g}rh" for a in APERTURES]
        r = np.asarray(APERTURES) * rh
        q = np.quantile(draws[:, [j[k] for k in keys]], [0.025, 0.16, 0.5, 0.84, 0.975], axis=0)
        ax.fill_between(r, q[0], q[4], alpha=0.25, color="C0", label="95%")
        ax.fill_between(r, q[1], q[3], alpha=0.45, color="C0", label="68%")
        ax.plot(r, q[2], "o-", color="C0", label="median")
        if truth is not None:
            ax.plot(np.asarray(APERTURES) * 10 ** truth[0, j["log10_rh_light_arcsec"]],
                    truth[0, [j[k] for k in keys]], "k*", ms=10, label="truth")
        ax.set_xlabel("R [arcsec]")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    ratio = 10 ** np.quantile(draws[:, j["log10_rh_mass_over_light"]], [0.16, 0.5, 0.84])
    fig.suptitle(f"R_h(light) = {rh:.2f}\"; R_h(mass)/R_h(light) = {ratio[1]:.2f} "
                 f"[{ratio[0]:.2f}, {ratio[2]:.2f}] (68%)", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
