"""Simple stellar populations: cached per-(age, [Fe/H]) tables and fast hybrid star/particle sampling."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from functools import lru_cache

import numpy as np

from ..errors import GcsbiValueError, UnknownFilterError
from .bolometric import MBOL_SUN, bolometric_corrections
from .filters import FILTERS, check_filters, extinction_coefficients, solar_absolute_magnitudes
from .imf import IMF, IMF_KINDS
from .isochrone import grid_ranges, isochrone
from .remnants import RemnantModel, wd_cooling, wd_mass

__all__ = ["Phase", "StarSample", "StellarPopulation", "sample_every_star"]


class Phase(IntEnum):
    """Evolutionary phase codes stored (as int8) in :attr:`StarSample.phase`."""

    MS = 0  # main sequence (and MIST pre-MS below)
    RGB = 1  # subgiant + red giant branch
    CHEB = 2  # core-He burning (horizontal branch / red clump)
    EAGB = 3
    TPAGB = 4
    WR = 5  # Wolf-Rayet
    PMS = 6  # pre-main sequence (young populations)
    WD = 7
    NS = 8
    BH = 9


_MIST_TO_PHASE = {-1: Phase.PMS, 0: Phase.MS, 2: Phase.RGB, 3: Phase.CHEB, 4: Phase.EAGB, 5: Phase.TPAGB, 9: Phase.WR}
_PHASE_LOOKUP = np.full(11, -1, dtype=np.int8)  # MIST phase + 1 -> Phase (-1: not expected on an isochrone)
for _mist, _phase in _MIST_TO_PHASE.items():
    _PHASE_LOOKUP[_mist + 1] = _phase
_N_FINE_MS = 6000
_N_FINE_WD = 1500
_N_FINE_BH = 400


def _flux(mag: np.ndarray) -> np.ndarray:
    return 10.0 ** (-0.4 * mag)


def _mag(flux: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -2.5 * np.log10(flux)


def _abs_mags(log_l: np.ndarray, log_teff: np.ndarray, log_g: np.ndarray, feh: float,
              filters: tuple[str, ...]) -> np.ndarray:  # fmt: skip
    """Absolute Vega magnitudes (n, n_filters) of stars from log L, log Teff, log g (MIST/C3K BCs)."""
    return MBOL_SUN - 2.5 * log_l[:, None] - bolometric_corrections(log_teff, log_g, feh, filters)


def _white_dwarfs(initial_mass: np.ndarray, wd_mass_: np.ndarray, age_yr: float,
                  m_turnoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(log L, log Teff, log g) of white dwarfs of ``wd_mass_`` from progenitors of ``initial_mass``.

    A progenitor lives ~ age (M_i / M_TO)^-2.5, so its white dwarf has cooled for the rest of the
    population's age (Mestel cooling, :func:`~gcsbi.stars.remnants.wd_cooling`).
    """
    return wd_cooling(wd_mass_, age_yr * (1.0 - (initial_mass / m_turnoff) ** -2.5))


@dataclass(frozen=True)
class StarSample:
    """Particles of a population: individual stars (weight 1) and faint particles (weight = stars represented).

    ``abs_mag`` (n, n_filters) is the absolute Vega magnitude of the whole particle (np.inf for NS/BH);
    per-star quantities (masses, log_teff, log_g, log_l) are per star (representative for faint particles).
    Particle order carries no meaning.
    """

    initial_mass: np.ndarray
    current_mass: np.ndarray
    weight: np.ndarray
    phase: np.ndarray
    log_teff: np.ndarray
    log_g: np.ndarray
    log_l: np.ndarray
    abs_mag: np.ndarray
    filters: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.weight.size)

    def _take(self, index: np.ndarray) -> StarSample:
        """The particles selected by ``index`` (boolean mask or integer indices), in that order."""
        cols = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "filters"}
        return StarSample(filters=self.filters, **cols)

    @property
    def total_mass(self) -> float:
        return float(np.sum(self.current_mass * self.weight))

    @property
    def n_stars(self) -> float:
        return float(np.sum(self.weight))

    def integrated_magnitudes(self, ebv: float = 0.0) -> dict[str, float]:
        """Integrated absolute Vega magnitudes, reddened by ``ebv`` = E(B-V) (Fitzpatrick 1999, R_V = 3.1)."""
        if not (np.isfinite(ebv) and ebv >= 0.0):
            raise GcsbiValueError(f"ebv must be finite and >= 0, got {ebv}")
        tot = _mag(np.sum(_flux(self.abs_mag), axis=0))
        r = extinction_coefficients(self.filters)
        return {f: float(tot[j] + r[f] * ebv) for j, f in enumerate(self.filters)}


@dataclass(frozen=True)
class _Tables:
    iso_mi: np.ndarray
    iso_props: np.ndarray  # (n, 4): current mass, log_teff, log_g, log_l
    iso_phase: np.ndarray
    iso_mag: np.ndarray  # (n, nf) per star
    m_max_alive: float
    split: float
    mu: float  # present-day mass per M_sun formed
    n_bright: float  # per M_sun formed
    ms_edges: np.ndarray  # fine grid edges m_min..split and cumulatives (N, Mi, Mcur, flux)
    ms_cum: np.ndarray  # (k+1, 3 + nf)
    wd_edges: np.ndarray
    wd_cum: np.ndarray
    faint_mass: float  # current mass of faint component per M_sun formed
    br_edges: np.ndarray  # fine grid edges split..m_max_alive and cumulatives (N, Mi, Mcur, flux)
    br_cum: np.ndarray
    ns_range: tuple[float, float]
    bh_range: tuple[float, float]
    n_ns: float  # retained, per M_sun formed
    n_bh: float
    flux_total: np.ndarray  # expected flux per M_sun formed, (nf,)
    pdmf_points: tuple[np.ndarray, np.ndarray]  # (current mass, number per M_sun formed)
    iso_all: np.ndarray  # (n, 4 + nf): props then mags, for one-gather interpolation
    iso_dall: np.ndarray  # forward differences of iso_all
    iso_inv_dm: np.ndarray  # 1 / forward differences of iso_mi


def _cumulate(imf: IMF, edges: np.ndarray, mcur_fn, mag_fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (N, M_init, M_cur, flux...) over fine segments; also segment (mean M_cur, N) for the PDMF."""
    n = np.diff(imf.number(edges))
    m = np.diff(imf.mass(edges))
    mi = np.where(n > 0, m / np.maximum(n, 1e-300), 0.5 * (edges[1:] + edges[:-1]))
    mc = mcur_fn(mi)
    fl = _flux(mag_fn(mi))
    seg = np.column_stack([n, m, n * mc, n[:, None] * fl])
    cum = np.vstack([np.zeros(seg.shape[1]), np.cumsum(seg, axis=0)])
    return cum, mc, n


@lru_cache(maxsize=64)
def _build(pop: StellarPopulation) -> _Tables:
    imf = IMF(pop.imf, pop.m_min, pop.m_max)
    rem = RemnantModel(ns_retention=pop.ns_retention, bh_retention=pop.bh_retention)
    age_yr = pop.age_gyr * 1e9
    iso = isochrone(float(np.log10(age_yr)), float(pop.feh))
    mi, mcur, lt, lg, ll = iso.initial_mass, iso.star_mass, iso.log_teff, iso.log_g, iso.log_l
    mist = np.asarray(iso.mist_phase, dtype=np.intp)
    phase = _PHASE_LOOKUP[np.clip(mist + 1, 0, _PHASE_LOOKUP.size - 1)]
    if np.any(phase < 0) or np.any(mist + 1 >= _PHASE_LOOKUP.size):
        raise GcsbiValueError(f"unexpected MIST phases {sorted(set(mist.tolist()) - set(_MIST_TO_PHASE))}")
    if mi[0] > pop.m_min:  # MIST lacks the lowest masses here: extend the lower MS as power laws in mass
        k = min(12, mi.size)
        x = np.log10(mi[:k])
        new = np.geomspace(pop.m_min, mi[0], 24)[:-1]
        xn = np.log10(new)
        fit = [np.polyval(np.polyfit(x, y[:k], 1), xn) for y in (lt, lg, ll)]
        mi, mcur = np.concatenate([new, mi]), np.concatenate([new, mcur])
        lt, lg, ll = (np.concatenate([f, y]) for f, y in zip(fit, (lt, lg, ll)))
        phase = np.concatenate([np.full(new.size, phase[0], dtype=np.int8), phase])
    m_alive = float(min(mi[-1], pop.m_max))
    mags = _abs_mags(ll, lt, lg, pop.feh, pop.filters)
    props = np.column_stack([mcur, lt, lg, ll])

    def mcur_fn(m):
        return np.interp(m, mi, mcur)

    def mag_fn(m):
        return np.column_stack([np.interp(m, mi, mags[:, j]) for j in range(mags.shape[1])])

    if pop.split_mass is None:
        ms = phase == Phase.MS
        l_to = ll[ms].max() if ms.any() else ll.max()
        cand = mi[ms & (ll <= l_to - 1.0)] if ms.any() else mi[:1]
        split = float(cand[-1]) if cand.size else float(mi[0])
    else:
        split = float(pop.split_mass)
    split = float(np.clip(split, pop.m_min, m_alive))

    ms_edges = np.unique(np.concatenate([np.geomspace(pop.m_min, split, _N_FINE_MS), mi[(mi > pop.m_min) & (mi < split)]]))
    ms_cum, ms_mc, ms_n = _cumulate(imf, ms_edges, mcur_fn, mag_fn)
    br_edges = np.unique(np.concatenate([np.geomspace(split, m_alive, 2000), mi[(mi > split) & (mi < m_alive)]]))
    br_cum, br_mc, br_n = _cumulate(imf, br_edges, mcur_fn, mag_fn)
    n_bright = float(imf.number(m_alive) - imf.number(split))

    wd_hi = min(rem.m_ns_min, pop.m_max)
    if m_alive < wd_hi:
        wd_edges = np.geomspace(m_alive, wd_hi, _N_FINE_WD)

        def wd_mag(m):
            wl, wt, wg = _white_dwarfs(m, wd_mass(m), age_yr, m_alive)
            return _abs_mags(wl, wt, wg, pop.feh, pop.filters)

        wd_cum, wd_mc, wd_n = _cumulate(imf, wd_edges, wd_mass, wd_mag)
    else:
        wd_edges = np.array([wd_hi, wd_hi])
        wd_cum = np.zeros((2, 3 + len(pop.filters)))
        wd_mc, wd_n = np.zeros(0), np.zeros(0)
    ns_range = (max(rem.m_ns_min, m_alive), max(rem.m_bh_min, m_alive))
    bh_range = (min(max(rem.m_bh_min, m_alive), pop.m_max), pop.m_max)
    n_ns = rem.ns_retention * float(imf.number(ns_range[1]) - imf.number(ns_range[0]))
    n_bh = rem.bh_retention * float(imf.number(bh_range[1]) - imf.number(bh_range[0]))
    m_bh = rem.bh_retention * rem.bh_fraction * float(imf.mass(bh_range[1]) - imf.mass(bh_range[0]))
    bh_edges = np.geomspace(bh_range[0], max(bh_range[1], bh_range[0] * (1 + 1e-9)), _N_FINE_BH)
    bh_n = rem.bh_retention * np.diff(imf.number(bh_edges))
    bh_mc = rem.bh_fraction * np.diff(imf.mass(bh_edges)) / np.maximum(np.diff(imf.number(bh_edges)), 1e-300)

    faint_mass = float(ms_cum[-1, 2] + wd_cum[-1, 2])
    mu = faint_mass + float(br_cum[-1, 2]) + n_ns * rem.ns_mass + m_bh
    flux_total = ms_cum[-1, 3:] + wd_cum[-1, 3:] + br_cum[-1, 3:]
    pdmf = (
        np.concatenate([ms_mc, br_mc, wd_mc, [rem.ns_mass], bh_mc]),
        np.concatenate([ms_n, br_n, wd_n, [n_ns], bh_n]),
    )
    return _Tables(mi, props, phase, mags, m_alive, split, mu, n_bright, ms_edges, ms_cum, wd_edges, wd_cum,
                   faint_mass, br_edges, br_cum, ns_range, bh_range, n_ns, n_bh, flux_total, pdmf, *_gather_tables(mi, props, mags))


def _gather_tables(mi: np.ndarray, props: np.ndarray, mags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    allp = np.column_stack([props, mags])
    return allp, np.vstack([np.diff(allp, axis=0), np.zeros((1, allp.shape[1]))]), np.append(1.0 / np.diff(mi), 0.0)


@dataclass(frozen=True)
class StellarPopulation:
    """A simple stellar population (single age and [Fe/H]) with MIST v2.5 evolution and remnants.

    Heavy tables are built once per distinct population (``functools.lru_cache``) and reused.
    ``split_mass`` (initial mass, M_sun) separates individually sampled stars (above) from faint
    particles (below); ``None`` puts it on the main sequence where L = L_turnoff / 10.
    """

    age_gyr: float
    feh: float
    imf: str = "kroupa"
    filters: tuple[str, ...] = FILTERS
    ns_retention: float = 0.1
    bh_retention: float = 0.1
    split_mass: float | None = None
    m_min: float = 0.1
    m_max: float = 120.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", check_filters(self.filters))
        (f_lo, f_hi), (a_lo, a_hi) = grid_ranges()
        if not (np.isfinite(self.age_gyr) and a_lo <= np.log10(self.age_gyr * 1e9) <= a_hi):
            raise GcsbiValueError(f"age_gyr={self.age_gyr} outside MIST range [{10**a_lo / 1e9:.5g}, {10**a_hi / 1e9:.4g}] Gyr")
        if not (np.isfinite(self.feh) and f_lo <= self.feh <= f_hi):
            raise GcsbiValueError(f"feh={self.feh} outside MIST range [{f_lo}, {f_hi}]")
        if self.imf not in IMF_KINDS:
            raise GcsbiValueError(f"unknown imf {self.imf!r}; supported: {IMF_KINDS}")
        IMF(self.imf, self.m_min, self.m_max)
        RemnantModel(ns_retention=self.ns_retention, bh_retention=self.bh_retention)
        if self.split_mass is not None and not (self.m_min <= self.split_mass <= self.m_max):
            raise GcsbiValueError(f"split_mass={self.split_mass} outside [{self.m_min}, {self.m_max}]")
        object.__setattr__(self, "age_gyr", float(self.age_gyr))
        object.__setattr__(self, "feh", float(self.feh))

    @property
    def _t(self) -> _Tables:
        return _build(self)

    @property
    def turnoff_mass(self) -> float:
        """Largest initial mass still alive (end of the TP-AGB at old ages)."""
        return self._t.m_max_alive

    @property
    def effective_split_mass(self) -> float:
        return self._t.split

    # ------------------------------------------------------------------ expectations
    def expected_integrated_magnitudes(self, current_mass: float = 1.0, ebv: float = 0.0) -> dict[str, float]:
        """Expected integrated absolute Vega magnitudes of ``current_mass`` M_sun (present day), no sampling."""
        if not (np.isfinite(current_mass) and current_mass > 0):
            raise GcsbiValueError(f"current_mass must be > 0, got {current_mass}")
        t = self._t
        mag = _mag(t.flux_total * current_mass / t.mu)
        r = extinction_coefficients(self.filters)
        return {f: float(mag[j] + r[f] * ebv) for j, f in enumerate(self.filters)}

    def mass_to_light(self, band: str = "V") -> float:
        """Expected present-day M/L in solar units in ``band`` (solar magnitudes from sedpy, M_V,sun = 4.80)."""
        if band not in self.filters:
            raise UnknownFilterError(f"band {band!r} not among this population's filters {self.filters}")
        m = self.expected_integrated_magnitudes(1.0)[band]
        return float(1.0 / 10 ** (-0.4 * (m - solar_absolute_magnitudes((band,))[band])))

    def present_day_mass_function(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean current mass, mass fraction) in current-mass bins ``edges`` (stars + retained remnants).

        Empty bins get the bin's geometric centre and fraction 0. Fractions are of the total present-day
        mass, so they sum to < 1 when ``edges`` do not cover all masses.
        """
        e = np.asarray(edges, dtype=float)
        if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0) or e[0] < 0:
            raise GcsbiValueError("edges must be a 1-d increasing array of >= 2 non-negative masses")
        mc, n = self._t.pdmf_points
        num = np.histogram(mc, bins=e, weights=n)[0]
        mass = np.histogram(mc, bins=e, weights=n * mc)[0]
        centre = np.sqrt(np.maximum(e[:-1], 1e-3) * e[1:])
        mean = np.where(num > 0, mass / np.where(num > 0, num, 1.0), centre)
        return mean, mass / np.sum(n * mc)

    def light_fraction_below(self, teff_cool: float, teff_hot: float) -> dict[str, float]:
        """Fraction of each band's expected light from stars cooler than a tapered cut.

        Weight 1 below ``teff_cool`` K, 0 above ``teff_hot`` K, linear in Teff between; white dwarfs
        and stars above the cut count as hot. Integrated over the IMF on the same fine mass grids as
        :meth:`expected_integrated_magnitudes`.
        """
        if not (0 < teff_cool < teff_hot):
            raise GcsbiValueError(f"need 0 < teff_cool < teff_hot, got {teff_cool}, {teff_hot}")
        t = self._t
        imf = IMF(self.imf, self.m_min, self.m_max)
        cool = np.zeros(len(self.filters))
        for edges in (t.ms_edges, t.br_edges):
            n = np.diff(imf.number(edges))
            mi = np.where(n > 0, np.diff(imf.mass(edges)) / np.maximum(n, 1e-300), 0.5 * (edges[1:] + edges[:-1]))
            teff = 10.0 ** np.interp(mi, t.iso_mi, t.iso_props[:, 1])
            w = np.clip((teff_hot - teff) / (teff_hot - teff_cool), 0.0, 1.0)
            mags = np.column_stack([np.interp(mi, t.iso_mi, t.iso_mag[:, j]) for j in range(len(self.filters))])
            cool += (n * w) @ _flux(mags)
        return {f: float(cool[j] / t.flux_total[j]) for j, f in enumerate(self.filters)}

    # ------------------------------------------------------------------ single stars
    def evolve(self, initial_mass: np.ndarray) -> StarSample:
        """Present-day state of individual stars of the given initial masses (vectorised, deterministic).

        Stars with initial mass <= :attr:`turnoff_mass` are interpolated linearly in initial mass on the
        population's MIST isochrone (current mass, log Teff, log g, log L, magnitudes; phase of the nearer
        isochrone point); masses below the lowest tabulated one take that star's properties and keep their
        own mass. Heavier stars are remnants of the population's :class:`~gcsbi.stars.remnants.RemnantModel`:
        white dwarfs below ``m_ns_min`` (Cummings 2018 IFMR mass, Mestel cooling since the progenitor died
        at an age ~ age (M_i / M_TO)^-2.5, MIST/C3K bolometric corrections), neutron stars (``ns_mass``)
        below ``m_bh_min`` and black holes (``bh_fraction * M_i``) above. NS and BH are dark: ``log_teff``,
        ``log_g`` and ``log_l`` are NaN and ``abs_mag`` is inf.

        Every star is returned, in input order, with weight 1: NS/BH retention is a sampling decision
        (see :meth:`sample`, :func:`sample_every_star`) and is not applied here.

        Args:
            initial_mass: 1-d array (or scalar) of finite initial masses >= 0, M_sun.
        """
        mi = np.array(initial_mass, dtype=float, ndmin=1)
        if mi.ndim != 1 or not np.isfinite(mi).all() or (mi.size and mi.min() < 0):
            raise GcsbiValueError("initial_mass must be a 1-d array of finite masses >= 0")
        t = self._t
        rem = RemnantModel(ns_retention=self.ns_retention, bh_retention=self.bh_retention)
        # every star on the isochrone first (one searchsorted, one gather), then overwrite the dead ones
        x = np.clip(mi, t.iso_mi[0], t.iso_mi[-1])
        k = np.clip(np.searchsorted(t.iso_mi, x) - 1, 0, t.iso_mi.size - 2)
        w = (x - t.iso_mi[k]) * t.iso_inv_dm[k]
        row = t.iso_all[k] + w[:, None] * t.iso_dall[k]
        phase = t.iso_phase[k + (w >= 0.5)]
        mc = np.where(mi < t.iso_mi[0], mi, row[:, 0])
        lt, lg, ll, mags = row[:, 1], row[:, 2], row[:, 3], row[:, 4:]
        dead = mi > t.m_max_alive
        if dead.any():
            wd = dead & (mi < rem.m_ns_min)
            bh = dead & (mi >= rem.m_bh_min)
            ns = dead & ~wd & ~bh
            if wd.any():
                mc[wd] = wd_mass(mi[wd])
                wl, wt, wg = _white_dwarfs(mi[wd], mc[wd], self.age_gyr * 1e9, t.m_max_alive)
                lt[wd], lg[wd], ll[wd] = wt, wg, wl
                mags[wd] = _abs_mags(wl, wt, wg, self.feh, self.filters)
            mc[ns], mc[bh] = rem.ns_mass, rem.bh_mass(mi[bh])
            dark = ns | bh
            lt[dark], lg[dark], ll[dark], mags[dark] = np.nan, np.nan, np.nan, np.inf
            phase[wd], phase[ns], phase[bh] = Phase.WD, Phase.NS, Phase.BH
        return StarSample(mi, mc, np.ones(mi.size), phase.astype(np.int8, copy=False), lt, lg, ll, mags, self.filters)

    # ------------------------------------------------------------------ sampling
    def _sample_individual(self, current_mass: float, rng: np.random.Generator, *, m_lo: float,
                           n_per_msun: float) -> StarSample:
        """Living stars from ``m_lo`` up (``n_per_msun`` of them per M_sun formed), then retained NS/BH, each
        drawn one by one (Poisson numbers) and evolved; kept, in that order, while they fit in ``current_mass``."""
        t = self._t
        imf = IMF(self.imf, self.m_min, self.m_max)
        s = current_mass / t.mu  # M_sun formed
        n_b = rng.poisson(s * n_per_msun)
        mi_b = imf.sample(n_b, rng, m_lo=m_lo, m_hi=t.m_max_alive)
        n_ns = rng.poisson(s * t.n_ns) if t.ns_range[1] > t.ns_range[0] else 0
        mi_ns = imf.sample(n_ns, rng, m_lo=t.ns_range[0], m_hi=t.ns_range[1]) if n_ns else np.zeros(0)
        n_bh = rng.poisson(s * t.n_bh) if t.bh_range[1] > t.bh_range[0] else 0
        mi_bh = imf.sample(n_bh, rng, m_lo=t.bh_range[0], m_hi=t.bh_range[1]) if n_bh else np.zeros(0)
        ev = self.evolve(np.concatenate([mi_b, mi_ns, mi_bh]))
        return ev._take(np.cumsum(ev.current_mass) <= current_mass)

    def sample(
        self,
        current_mass: float,
        rng: np.random.Generator,
        max_faint_particles: int = 2000,
        min_stars_per_particle: float = 10.0,
    ) -> StarSample:
        """Sample a population of present-day mass ``current_mass`` (stars + retained remnants).

        Stars above the split mass and retained NS/BH are drawn one by one (Poisson numbers) and evolved
        with :meth:`evolve`; the rest (lower MS, WDs) becomes at most ``max_faint_particles`` particles,
        each covering a narrow initial-mass (hence current-mass) range and carrying the exact expected
        mass and light of the stars it stands for. ``sum(current_mass * weight) == current_mass`` unless
        the sampled bright stars alone exceed it (tiny clusters: then bright stars are kept while they fit).
        """
        if not isinstance(rng, np.random.Generator):
            raise GcsbiValueError("rng must be a numpy.random.Generator (explicit randomness)")
        if not (np.isfinite(current_mass) and current_mass > 0):
            raise GcsbiValueError(f"current_mass must be finite and > 0, got {current_mass}")
        if int(max_faint_particles) < 2 or min_stars_per_particle <= 0:
            raise GcsbiValueError("need max_faint_particles >= 2 and min_stars_per_particle > 0")
        t = self._t
        nf = len(self.filters)
        ind = self._sample_individual(current_mass, rng, m_lo=t.split, n_per_msun=t.n_bright)
        m_bright = ind.total_mass

        # faint particles
        s_f = max(current_mass - m_bright, 0.0) / t.faint_mass
        n_faint = s_f * (t.ms_cum[-1, 0] + t.wd_cum[-1, 0])
        n_part = int(np.clip(np.ceil(n_faint / min_stars_per_particle), 2, max_faint_particles)) if n_faint > 0 else 0
        f_wd = t.wd_cum[-1, 2] / t.faint_mass
        n_wd = 0 if t.wd_cum[-1, 0] == 0 or n_part == 0 else int(np.clip(round(n_part * f_wd), 1, n_part - 1))
        parts = []
        for edges, cum, n_p, code in (
            (t.ms_edges, t.ms_cum, n_part - n_wd, Phase.MS),
            (t.wd_edges, t.wd_cum, n_wd, Phase.WD),
        ):
            if n_p <= 0:
                continue
            be = np.geomspace(edges[0], edges[-1], n_p + 1)
            c = np.column_stack([np.interp(be, edges, cum[:, j]) for j in range(cum.shape[1])])
            d = np.diff(c, axis=0)
            ok = d[:, 0] > 0
            d = d[ok]
            parts.append((code, s_f * d[:, 0], d[:, 1] / d[:, 0], d[:, 2] / d[:, 0], _mag(s_f * d[:, 3:])))
        out = {key: [getattr(ind, key)] for key in ("initial_mass", "current_mass", "weight", "phase",
                                                    "log_teff", "log_g", "log_l", "abs_mag")}
        for code, wt, mi_p, mc_p, mag_p in parts:
            out["initial_mass"].append(mi_p)
            out["current_mass"].append(mc_p)
            out["weight"].append(wt)
            out["phase"].append(np.full(wt.size, code, dtype=np.int8))
            if code == Phase.MS:
                kk = np.clip(np.searchsorted(t.iso_mi, mi_p) - 1, 0, t.iso_mi.size - 2)
                ww = ((mi_p - t.iso_mi[kk]) / (t.iso_mi[kk + 1] - t.iso_mi[kk]))[:, None]
                pp = (1 - ww) * t.iso_props[kk] + ww * t.iso_props[kk + 1]
                rep = pp[:, 1], pp[:, 2], pp[:, 3]
            else:
                wl, wtf, wg = _white_dwarfs(mi_p, mc_p, self.age_gyr * 1e9, t.m_max_alive)
                rep = wtf, wg, wl
            for key, val in zip(("log_teff", "log_g", "log_l"), rep):
                out[key].append(val)
            out["abs_mag"].append(mag_p)
        arr = {key: np.concatenate(v) for key, v in out.items()}
        arr["abs_mag"] = arr["abs_mag"].reshape(-1, nf)
        arr["phase"] = arr["phase"].astype(np.int8)
        return StarSample(filters=self.filters, **arr)


def sample_every_star(pop: StellarPopulation, current_mass: float, rng: np.random.Generator) -> StarSample:
    """Reference (slow) scheme: draw every star from the IMF until ``current_mass`` is reached; no particles.

    Each star is evolved with :meth:`StellarPopulation.evolve`; NS/BH are kept with the population's
    retention probabilities.
    """
    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError("rng must be a numpy.random.Generator (explicit randomness)")
    t = pop._t
    imf = IMF(pop.imf, pop.m_min, pop.m_max)
    chunks, total = [], 0.0
    while total < current_mass:
        ev = pop.evolve(imf.sample(int(1.2 * (current_mass - total) / t.mu / imf.mean_mass) + 16, rng))
        p_keep = np.where(ev.phase == Phase.NS, pop.ns_retention, np.where(ev.phase == Phase.BH, pop.bh_retention, 1.0))
        idx = np.flatnonzero(rng.random(len(ev)) < p_keep)
        cum = total + np.cumsum(ev.current_mass[idx])
        stop = int(np.searchsorted(cum, current_mass, side="right")) + 1
        chunks.append(ev._take(idx[:stop]))
        total = float(cum[min(stop, cum.size) - 1])
    return StarSample(filters=pop.filters, **{
        f.name: np.concatenate([getattr(c, f.name) for c in chunks]) for f in fields(StarSample) if f.name != "filters"
    })
