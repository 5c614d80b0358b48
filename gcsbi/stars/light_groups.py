"""Unresolved light: the faint stars of a population as luminosity groups instead of particles.

A 10^6 Msun cluster holds ~2 million stars, but at M31 only the few thousand brightest ones
matter one by one: the rest add up to smooth light plus its surface-brightness fluctuation
(SBF). :func:`sample_resolved` draws the brightest stars individually (at most about
``max_resolved`` of them, and never fewer than :meth:`StellarPopulation.sample` would: all
stars above the population's split mass, every post-RGB-tip star, retained NS/BH) and
describes everything else by :class:`UnresolvedStars`: per luminosity group, the expected
number of stars, their mean current mass and the first two moments of their per-band flux.

That is all a renderer needs to reproduce the image statistics exactly: in a pixel with
``n_g`` expected stars of group g, the number of stars is Poisson(n_g), so the pixel's flux
has mean ``sum n_g <f>_g`` and variance ``sum n_g <f^2>_g`` (see
:mod:`gcsbi.observe.star_counts`). The groups are 0.5 dex wide in bolometric luminosity
along the main sequence and RGB (0.5 dex in flux for white dwarfs); the spread inside a
group is carried by ``flux2``, so the width only sets how non-Gaussian the draws are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import GcsbiValueError
from .population import Phase, StarSample, StellarPopulation, _build

__all__ = ["UnresolvedStars", "LightGroups", "light_groups", "sample_resolved", "GROUP_DEX"]

#: Width of a luminosity group (dex in log L along MS/RGB; dex in flux for white dwarfs).
GROUP_DEX = 0.5


@dataclass(frozen=True, eq=False)
class UnresolvedStars:
    """The stars of one cluster that are not sampled individually, by luminosity group.

    Attributes:
        n: (G,) expected number of stars in each group.
        mean_mass: (G,) mean present-day mass of a star, Msun.
        flux: (G, F) mean per-star flux 10^(-0.4 M) in each band (absolute Vega magnitudes M).
        flux2: (G, F) mean per-star squared flux (>= flux**2; the excess is the spread inside the group).
        filters: the F band names.
        resolved_above: initial mass (Msun) from which living stars are sampled one by one.
        initial_mass_range: (G, 2) the initial-mass interval of each main-sequence/RGB group (NaN
            for white-dwarf groups), for drawing a group's stars one by one.
    """

    n: np.ndarray
    mean_mass: np.ndarray
    flux: np.ndarray
    flux2: np.ndarray
    filters: tuple[str, ...]
    resolved_above: float = float("inf")
    initial_mass_range: np.ndarray | None = None  # (G, 2) initial masses of each MS/RGB group; NaN for WDs

    @property
    def total_mass(self) -> float:
        return float(np.sum(self.n * self.mean_mass))

    @property
    def n_stars(self) -> float:
        return float(np.sum(self.n))

    def integrated_flux(self) -> np.ndarray:
        """Expected total flux per band (F,)."""
        return self.n @ self.flux


@dataclass(frozen=True, eq=False)
class LightGroups:
    """Luminosity groups of one population, per M_sun formed (built once per population).

    The first ``n_ms`` groups lie along MS/RGB in increasing initial mass; ``lower[g]`` is the
    lower initial-mass edge of group g and ``upper`` the top of the last one (the RGB tip, or
    the end of the main sequence). White-dwarf groups follow. ``n_above[c]`` is the number of
    stars per M_sun formed with initial masses from ``lower[c]`` up to the last living star
    (``n_above[n_ms]``: above ``upper``); ``first`` is the first group at or above the split mass.
    """

    n: np.ndarray
    mass: np.ndarray  # current mass per M_sun formed
    flux: np.ndarray  # (G, F) summed flux per M_sun formed
    flux2: np.ndarray  # (G, F) summed squared per-star flux per M_sun formed
    lower: np.ndarray  # (n_ms,) lower initial-mass edge of each MS/RGB group
    upper: float
    n_ms: int
    n_above: np.ndarray  # (n_ms + 1,)
    first: int


def _segments(edges: np.ndarray, cum: np.ndarray) -> dict[str, np.ndarray]:
    d = np.diff(cum, axis=0)
    ok = d[:, 0] > 0
    n = d[ok, 0]
    flux = d[ok, 3:] / n[:, None]
    return {"lo": edges[:-1][ok], "n": n, "mi": d[ok, 1] / n, "mass": d[ok, 2], "flux": flux}


def _group(seg: dict[str, np.ndarray], key: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sum segments with equal (consecutive, sorted) ``key`` into groups."""
    _, start = np.unique(key, return_index=True)
    start = np.sort(start)
    n = np.add.reduceat(seg["n"], start)
    mass = np.add.reduceat(seg["mass"], start)
    flux = np.add.reduceat(seg["n"][:, None] * seg["flux"], start, axis=0)
    flux2 = np.add.reduceat(seg["n"][:, None] * seg["flux"] ** 2, start, axis=0)
    return n, mass, flux, flux2, seg["lo"][start]


@lru_cache(maxsize=64)
def light_groups(pop: StellarPopulation, mass_edges: tuple[float, ...] = ()) -> LightGroups:
    """The luminosity groups of ``pop`` (cached per population).

    ``mass_edges``: present-day masses that no group straddles (the boundaries between the
    components of a multi-mass cluster model, so each group belongs to one component).
    """
    medges = np.asarray(mass_edges, dtype=float)
    t = _build(pop)
    ms = _segments(t.ms_edges, t.ms_cum)
    br = _segments(t.br_edges, t.br_cum)
    # the smooth-eligible range ends at the RGB tip (brightest MS/RGB/PMS point of the isochrone)
    on = np.isin(t.iso_phase, (Phase.MS, Phase.RGB, Phase.PMS))
    log_l = t.iso_props[:, 3]
    tip = float(t.iso_mi[on][np.argmax(np.where(on, log_l, -np.inf)[on])]) if on.any() else t.split
    keep = br["lo"] < tip
    br = {k: v[keep] for k, v in br.items()}
    seg = {k: np.concatenate([ms[k], br[k]]) for k in ms}
    upper = float(t.br_edges[1:][np.flatnonzero(keep)[-1]]) if keep.any() else float(t.split)
    ll = np.maximum.accumulate(np.interp(seg["mi"], t.iso_mi, log_l))
    comp = np.searchsorted(medges, seg["mass"] / seg["n"])
    key = np.floor((ll - ll[0]) / GROUP_DEX).astype(np.int64) * 1000 + np.maximum.accumulate(comp)
    key = np.where(seg["lo"] >= t.split * (1 - 1e-12), key + 10**6, key)  # never straddle the split
    n, mass, flux, flux2, lower = _group(seg, key)
    n_ms = n.size
    first = int(np.searchsorted(lower, t.split * (1 - 1e-12)))
    n_alive = float(t.ms_cum[-1, 0] + t.br_cum[-1, 0])
    n_above = n_alive - np.concatenate([[0.0], np.cumsum(n)])
    wd = _segments(t.wd_edges, t.wd_cum)
    if wd["n"].size:
        lt = np.log10(np.maximum(wd["flux"].sum(axis=1), 1e-300))
        wkey = np.floor((lt.max() - lt) / GROUP_DEX).astype(np.int64) * 1000 + np.searchsorted(medges, wd["mass"] / wd["n"])
        order = np.argsort(wkey, kind="stable")
        gw = _group({k: v[order] for k, v in wd.items()}, wkey[order])
        n, mass, flux, flux2 = (np.concatenate([a, b]) for a, b in zip((n, mass, flux, flux2), gw[:4]))
    return LightGroups(n=n, mass=mass, flux=flux, flux2=flux2, lower=lower, upper=upper, n_ms=n_ms,
                       n_above=np.maximum(n_above, 0.0), first=first)


def sample_resolved(
    pop: StellarPopulation, current_mass: float, rng: np.random.Generator, *, max_resolved: int = 2000,
    mass_edges: tuple[float, ...] = (),
) -> tuple[StarSample, UnresolvedStars]:
    """Individually sampled bright stars and the unresolved rest of ``current_mass`` M_sun (module docstring).

    The cut is the lowest group edge at or above the split mass whose expected number of
    brighter living stars is <= ``max_resolved`` (if none is, every MS/RGB star below the RGB
    tip is unresolved). Bright stars are kept while they fit in ``current_mass``; the
    unresolved groups carry the rest of the mass, so the expected total is ``current_mass``.
    ``mass_edges``: see :func:`light_groups`.
    """
    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError("rng must be a numpy.random.Generator (explicit randomness)")
    if not (np.isfinite(current_mass) and current_mass > 0):
        raise GcsbiValueError(f"current_mass must be finite and > 0, got {current_mass}")
    if int(max_resolved) < 1:
        raise GcsbiValueError(f"max_resolved must be >= 1, got {max_resolved}")
    t, lg = _build(pop), light_groups(pop, tuple(float(m) for m in mass_edges))
    s = current_mass / t.mu
    fits = np.flatnonzero(s * lg.n_above[lg.first:] <= max_resolved)
    cut = lg.first + int(fits[0]) if fits.size else lg.n_ms
    m_cut = float(lg.lower[cut]) if cut < lg.n_ms else lg.upper
    bright = pop._sample_individual(current_mass, rng, m_lo=m_cut, n_per_msun=float(lg.n_above[cut]))
    smooth = np.r_[np.arange(cut), np.arange(lg.n_ms, lg.n.size)]
    faint_mass = float(lg.mass[smooth].sum())
    s_f = max(current_mass - bright.total_mass, 0.0) / faint_mass if faint_mass > 0 else 0.0
    n = lg.n[smooth]
    tops = np.append(lg.lower[1:], lg.upper)
    ranges = np.full((smooth.size, 2), np.nan)
    ranges[:cut] = np.column_stack([lg.lower[:cut], tops[:cut]])
    return bright, UnresolvedStars(n=s_f * n, mean_mass=lg.mass[smooth] / n, flux=lg.flux[smooth] / n[:, None],
                                   flux2=lg.flux2[smooth] / n[:, None], filters=pop.filters,
                                   resolved_above=m_cut, initial_mass_range=ranges)
