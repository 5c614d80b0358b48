"""Pictures of mock images: RGB composites in a grid, each with a scale bar and the bands named.

The CLI (``gcsbi simulate --plot``), the demo (``cluster.png``) and the simulator benchmark draw
with :func:`plot_grid`; the simulation itself lives in :mod:`gcsbi.simulator.core`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_grid", "grid_figure", "nice_length", "PC_PER_ARCSEC_PER_KPC"]

#: Parsecs subtended by one arcsecond at 1 kpc (1 AU per arcsec per pc: 1e3 / 206264.8).
PC_PER_ARCSEC_PER_KPC = 1.0e3 / 206264.806


def nice_length(width: float, fraction: float = 0.25) -> float:
    """A round length (1, 2 or 5 x 10^k) close to ``fraction`` of ``width`` and not longer than it."""
    target = fraction * float(width)
    k = np.floor(np.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**k <= target:
            return float(m * 10**k)
    return float(10**k)


def _scale_bar(ax, n_pix: int, pixel_scale_arcsec: float, distance_kpc: float | None, fontsize: float):
    """Bar of a round number of arcsec in the lower left, labelled with its length in pc at the mock's distance."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    arcsec = nice_length(n_pix * pixel_scale_arcsec)
    label = f"{arcsec:g}″"
    if distance_kpc is not None and np.isfinite(distance_kpc):
        label += f" = {arcsec * distance_kpc * PC_PER_ARCSEC_PER_KPC:.1f} pc"
    bar = AnchoredSizeBar(ax.transData, arcsec / pixel_scale_arcsec, label, "lower left", pad=0.3, sep=2,
                          color="white", frameon=False, size_vertical=max(n_pix / 120, 0.5),
                          fontproperties={"size": fontsize})
    ax.add_artist(bar)
    return bar


def plot_grid(images: np.ndarray, sky: np.ndarray, titles: list[str], path: str | Path, *,
              ncols: int | None = None, suptitle: str = "", dpi: int = 110, bands: Sequence[str] | None = None,
              pixel_scale_arcsec: float | None = None, distance_kpc: float | Sequence[float] | None = None) -> Path:
    """:func:`grid_figure` saved at ``dpi`` to ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = grid_figure(images, sky, titles, ncols=ncols, suptitle=suptitle, bands=bands,
                      pixel_scale_arcsec=pixel_scale_arcsec, distance_kpc=distance_kpc)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def grid_figure(images: np.ndarray, sky: np.ndarray, titles: list[str], *, ncols: int | None = None,
                suptitle: str = "", bands: Sequence[str] | None = None, pixel_scale_arcsec: float | None = None,
                distance_kpc: float | Sequence[float] | None = None):
    """RGB composites (:func:`~gcsbi.observe.composite.rgb_composite`) of counts images (N, F, H, W) in a grid.

    ``titles``: one per image (lines kept as given, short enough for a 2.6-inch panel). ``bands``:
    filter names blue to red; the figure then says which band is R, G and B. ``pixel_scale_arcsec``
    adds a scale bar in arcsec to every panel, labelled in pc at ``distance_kpc`` (one value or
    one per image). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from ..observe.composite import rgb_bands, rgb_composite

    images = np.asarray(images)
    n = len(images)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    dist = np.broadcast_to(np.asarray(np.nan if distance_kpc is None else distance_kpc, float), (n,))
    # at least 3.8 inches wide: the two heading lines (~45 characters of 9-pt text) fit above one panel
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(2.6 * ncols, 3.8), 2.75 * nrows + 0.45), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title, d in zip(axes.ravel(), images, titles, dist):
        ax.imshow(rgb_composite(img, sky=sky), origin="lower")
        ax.set_title(title, fontsize=7.5, linespacing=1.1)
        if pixel_scale_arcsec:
            _scale_bar(ax, img.shape[-1], float(pixel_scale_arcsec), d, fontsize=7)
    lines = [suptitle] if suptitle else []
    if bands is not None:
        r, g, b = rgb_bands(bands)
        lines.append(f"RGB = {r} / {g} / {b} (arcsinh stretch)")
    if lines:
        fig.suptitle("\n".join(lines), fontsize=9)
    return fig
