"""Profile plots (Sigma or n, sigma_los with binned data, beta when inferred, M, rho) with 68/95% bands,
the truth when known, R_1/2 and 150 pc marked, and the radii without stars greyed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io import StarTable

__all__ = ["binned_dispersion", "binned_surface_density", "plot_profiles", "profiles_figure", "object_name", "WALKER_NAMES"]


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


#: Galaxy names of the three-letter prefixes of Walker et al.'s files (``car_justin1_spec.dat``: Carina).
WALKER_NAMES = {"car": "Carina", "dra": "Draco", "for": "Fornax", "scl": "Sculptor", "sex": "Sextans",
                "umi": "Ursa Minor", "leo1": "Leo I", "leo2": "Leo II", "cvn1": "Canes Venatici I"}


def object_name(data: str | Path, name: str | None = None) -> str:
    """The object a star file holds, for titles: ``name`` if given, the galaxy of a Walker file prefix, else the
    file's name without its suffix."""
    if name:
        return str(name)
    stem = Path(data).stem
    return WALKER_NAMES.get(stem.split("_")[0].lower(), stem)


def _band(ax, x, draws, color, label):
    lo95, lo68, med, hi68, hi95 = np.quantile(draws, [0.025, 0.16, 0.5, 0.84, 0.975], axis=0)
    ax.fill_between(x, lo95, hi95, color=color, alpha=0.2, lw=0)
    ax.fill_between(x, lo68, hi68, color=color, alpha=0.4, lw=0)
    ax.plot(x, med, color=color, lw=1.5, label=label)


def binned_surface_density(R: np.ndarray, weight: np.ndarray | None = None, *, bins: int = 12,
                           min_stars: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-spaced annuli between the smallest and largest positive R: (R_mid, Sigma, error), Sigma the weighted
    number per kpc^2 as a fraction of the total weight (one-star normalisation, as the model's Sigma_R).
    Annuli holding fewer than ``min_stars`` effective stars are left out (their error bar spans zero)."""
    R = np.asarray(R, float)
    w = np.ones_like(R) if weight is None else np.asarray(weight, float)
    ok = (R > 0) & np.isfinite(R) & (w > 0)
    R, w = R[ok], w[ok]
    edges = np.geomspace(R.min(), R.max() * (1 + 1e-9), bins + 1)
    k = np.clip(np.searchsorted(edges, R, side="right") - 1, 0, bins - 1)
    area = np.pi * np.diff(edges**2)
    total = w.sum()
    sw, sw2 = np.bincount(k, w, bins), np.bincount(k, w**2, bins)
    sig, err = sw / area / total, np.sqrt(sw2) / area / total
    keep = sw**2 >= min_stars * np.maximum(sw2, 1e-300)  # effective number of stars in the annulus
    return np.sqrt(edges[:-1] * edges[1:])[keep], sig[keep], err[keep]


def _model_fraction(R: np.ndarray, sigma: np.ndarray, lo: float, hi: float) -> float:
    """Fraction of stars the model surface density puts between projected radii lo and hi (kpc)."""
    grid = np.geomspace(max(lo, R.min()), min(hi, R.max()), 400)
    s = np.exp(np.interp(np.log(grid), np.log(R), np.log(np.maximum(sigma, 1e-300))))
    f = 2 * np.pi * grid * s
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(grid)))  # trapezoid rule (numpy 1.26 has no trapezoid)


def _sigma_data(ax, R_model, sigma_draws, R_data, w_data, label):
    """Binned surface density of a sample, scaled so that it holds the model's fraction of stars over its radii."""
    Rb, sb, eb = binned_surface_density(R_data, w_data)
    if not len(Rb):
        return
    pos = np.asarray(R_data, float)[np.asarray(R_data, float) > 0]
    frac = _model_fraction(np.asarray(R_model, float), np.median(sigma_draws, axis=0), pos.min(), pos.max())
    ax.errorbar(Rb, sb * frac, eb * frac, fmt="s", color="k", ms=3.5, mfc="white", label=label)


def plot_profiles(results: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]], path: str | Path,
                  **kwargs) -> Path:
    """:func:`profiles_figure` saved as a PNG at ``path`` (keywords as there); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = profiles_figure(results, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def profiles_figure(results: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]], *,
                    stars: StarTable | None = None, truth: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
                    title: str = "", mark_radius: float | None = None, name: str = "", r_half: float | None = None,
                    photometry: tuple[np.ndarray, np.ndarray] | None = None):
    """Jeans profiles with 68/95% bands: Sigma(R), sigma_los(R), [beta(r),] M(<r), rho_DM(r); returns the figure.

    ``results``: label -> (radius, R, profiles with draws x radius). ``name``: the object (galaxy
    or mock), put before ``title`` (the method). Sigma(R) is compared with the binned
    ``photometry`` sample (projected radii in kpc, weights) when given, else with the
    spectroscopic ``stars``; sigma_los(R) with the stars' binned dispersion. Every panel marks
    R_1/2 (``r_half`` in kpc; default: the stars' projected half-number radius) and 150 pc, and
    greys the radii outside those of the stars. beta(r) gets a panel when its draws vary (inferred).
    One legend serves all panels.
    """
    import matplotlib.pyplot as plt

    colors = ["C0", "C1", "C2", "C3"]
    profs = [prof for _, _, prof in results.values()]
    inferred_beta = any("beta" in p and np.ptp(np.asarray(p["beta"]), axis=0).max() > 1e-6 for p in profs)
    has_sigma = all("Sigma_R" in p for p in profs)
    light = (("Sigma_R", "Σ(R) [fraction of stars kpc⁻²]", "R") if has_sigma else
             ("n", "n(r) [fraction of stars kpc⁻³]", "radius"))
    panels = [light, ("sigma_los_R", "σ_los(R) [km s⁻¹]", "R")]
    if inferred_beta:
        panels.append(("beta", "anisotropy β(r)", "radius"))
    panels += [("mass", "M(<r) [M☉]", "radius"), ("rho", "ρ_DM(r) [M☉ kpc⁻³]", "radius")]
    ncols = 3 if inferred_beta else 2
    fig, axes = plt.subplots(2, ncols, figsize=(4.6 * ncols, 8.2), layout="constrained")
    flat = list(axes.flat)
    if r_half is None:
        r_half = stars.half_light_radius() if stars is not None else None
    member = stars.R[(stars.weight > 0) & (stars.R > 0)] if stars is not None else np.array([])
    covered = (float(member.min()), float(member.max())) if member.size else None
    for (key, ylabel, coord), ax in zip(panels, flat):
        for (label, (radius, R, prof)), c in zip(results.items(), colors):
            if key in prof:
                _band(ax, radius if coord == "radius" else R, prof[key], c, label)
        if truth and key in truth:
            x = next(iter(results.values()))[0 if coord == "radius" else 1]
            ax.plot(x, truth[key](x), "k--", lw=1.5, label="truth")
        if key == "sigma_los_R" and stars is not None:
            Rb, sb, eb = binned_dispersion(stars)
            ax.errorbar(Rb, sb, eb, fmt="o", color="k", ms=3, label="binned stars (σ_los)")
        elif key == "Sigma_R" and (photometry is not None or stars is not None):
            _, R0, prof0 = next(iter(results.values()))
            Rd, wd = photometry if photometry is not None else (stars.R, stars.weight)
            _sigma_data(ax, R0, prof0["Sigma_R"], Rd, wd, "binned photometric sample (Σ)" if photometry is not None
                        else "binned spectroscopic stars (Σ)")
        if key not in ("sigma_los_R", "beta"):
            ax.set_yscale("log")
        if key == "beta":
            ax.axhline(0.0, color="0.6", lw=0.6)
        if mark_radius is not None and key == "rho":
            ax.axvline(mark_radius, color="grey", ls=":")
        if r_half is not None:
            ax.axvline(r_half, color="0.35", ls=":", lw=1.3, label=f"R½ = {r_half:.3g} kpc")
        ax.axvline(0.15, color="0.35", ls="-.", lw=1.0, label="150 pc")
        ax.set_xscale("log")
        if covered is not None:
            lo, hi = ax.get_xlim()
            ax.axvspan(lo, covered[0], color="0.5", alpha=0.12, lw=0, label="outside the stars' radii")
            ax.axvspan(covered[1], hi, color="0.5", alpha=0.12, lw=0)
            ax.set_xlim(lo, hi)
        ax.set_xlabel("r [kpc] (3D)" if coord == "radius" else "R [kpc] (projected)")
        ax.set_ylabel(ylabel)
    handles: dict[str, object] = {}
    for ax in flat[:len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    spare = flat[len(panels):]
    for ax in spare:
        ax.set_axis_off()
    if spare:  # the one legend fills the unused panel
        spare[0].legend(list(handles.values()), list(handles), loc="center", fontsize=10, frameon=False)
    else:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 4),
                   fontsize=9, frameon=False)
    heading = ": ".join(t for t in (name, title) if t)
    if heading:
        fig.suptitle(heading, fontsize=12)
    return fig
