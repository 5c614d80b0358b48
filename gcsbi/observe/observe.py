"""The observation chain: star particles -> mock multi-band image (e-) + truth maps.

Build an :class:`ObservationModel` once from a :class:`~gcsbi.spec.SimulatorSpec`
(PSFs, sub-pixel kernels, FFT plans, background pool are all static) and call
it per mock::

    model = ObservationModel.from_spec(load_simulator_spec("hst-phat"))
    obs = model(positions_pc, abs_mag, filters, particle_mass,
                distance_kpc=780.0, ellipticity=0.1, position_angle_deg=30.0,
                ebv=0.1, background_level=21.5, rng=rng, return_truth=True)
    x = model.transform(obs.image)          # (C', H, W) float32

Per call: project (distance, ellipticity, PA; see :mod:`.instrument`),
magnitudes -> counts (distance modulus, extinction A_f = R_f E(B-V), zero
point, exposure), render cluster + resolved field stars through the PSF
(:mod:`.render`), add smooth field light, bank cutout and sky, then Poisson
and read noise (:mod:`.noise`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import astropy.units as u
import galsim
import numpy as np
import scipy.fft

from ..errors import GcsbiValueError
from ..spec.simulator_spec import SimulatorSpec, load_simulator_spec
from . import transforms as _tr
from .background import BackgroundBank, FieldBackground, FieldSampler, stellar_population_sampler
from .instrument import (
    distance_kpc_value,
    distance_modulus,
    magnitudes_to_counts,
    project_positions,
    select_bands,
    sky_to_pixels,
)
from .noise import add_noise
from .psf import build_subpixel_kernel, exact_profile, file_psf, load_psf_image, optical_psf
from .render import Renderer, mass_map

if TYPE_CHECKING:
    from ..clusters.footprint import Footprint
    from ..clusters.smooth_light import UnresolvedLight
    from .star_counts import UnresolvedPixels

__all__ = ["Observation", "ObservationModel", "get_observation_model", "transform"]


@dataclass(frozen=True, eq=False)
class Observation:
    """One mock observation.

    Attributes:
        image: (C, H, W) float32 noisy counts in e- (sky included, not subtracted).
        filters: band names of the C channels.
        sky: (C,) e- per pixel of sky added (subtract before photometry).
        clean: (C, H, W) float32 noiseless cluster-only image (e-), if truth requested.
        background: (C, H, W) float32 noiseless field + bank image without sky, if truth requested.
        mass_map: (H, W) float32 projected mass per pixel (Msun), if truth requested and masses given.
        pixel_scale_arcsec, distance_kpc: geometry of the stamp.
    """

    image: np.ndarray
    filters: tuple[str, ...]
    sky: np.ndarray
    pixel_scale_arcsec: float
    distance_kpc: float
    clean: np.ndarray | None = None
    background: np.ndarray | None = None
    mass_map: np.ndarray | None = None


def _band_psf(spec: SimulatorSpec, band: str) -> tuple[galsim.GSObject, bool, float]:
    """(profile, pixel_convolved, jitter) for one band from the spec."""
    ps = spec.psf
    bs = ps.for_band(band)
    if bs.model == "file":
        img, header_scale = load_psf_image(bs.path, index=bs.index)
        scale = bs.pixel_scale_arcsec or header_scale
        if scale is None:
            scale = spec.instrument.pixel_scale_arcsec / bs.oversampling
        return file_psf(img, pixel_scale_arcsec=scale), bs.pixel_convolved, 0.0
    b = spec.instrument.band(band)
    prof = optical_psf(
        wavelength_nm=b.wavelength_nm,
        diameter_m=ps.diameter_m,
        obscuration=ps.obscuration,
        nstruts=ps.nstruts,
        strut_thick=ps.strut_thick,
        strut_angle_deg=ps.strut_angle_deg,
        pupil=ps.pupil,
    )
    if bs.native_pixel_arcsec:  # e.g. WFC3/IR's 0.128" pixels drizzled onto the common grid
        prof = galsim.Convolve(prof, galsim.Pixel(scale=bs.native_pixel_arcsec))
    return prof, False, ps.jitter_sigma_arcsec


def _default_extinction(filters: Sequence[str]) -> np.ndarray:
    """A_f / E(B-V) per band from :func:`gcsbi.stars.extinction_coefficients`."""
    from ..stars import extinction_coefficients

    coeff = extinction_coefficients(tuple(filters))
    return np.asarray([coeff[f] for f in filters], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ObservationModel:
    """Static observation chain for one spec; call it per mock (see module docstring)."""

    spec: SimulatorSpec
    renderer: Renderer
    profiles: tuple[galsim.GSObject, ...]  # exact GalSim PSF per band (for reference drawing)
    pixel_convolved: tuple[bool, ...]
    zeropoints: np.ndarray
    exposure_s: np.ndarray
    sky_e: np.ndarray
    read_noise_e: np.ndarray
    extinction_coeff: np.ndarray
    field: FieldBackground | None
    bank: BackgroundBank | None

    @classmethod
    def from_spec(
        cls,
        spec: SimulatorSpec | str,
        *,
        field_sampler: FieldSampler | None = None,
        extinction_coeff: Sequence[float] | None = None,
    ) -> ObservationModel:
        """Build PSFs, kernels, FFT plans and the background pool once.

        ``field_sampler(n, rng) -> abs_mag (n, F)`` overrides the default field
        population; ``extinction_coeff`` (A_f / E(B-V) per spec band) overrides
        the spec's ``extinction_coeff`` values and ``gcsbi.stars.extinction_coefficients``.
        """
        if isinstance(spec, str):
            spec = load_simulator_spec(spec)
        inst, ps = spec.instrument, spec.psf
        filters = inst.filters
        profiles, pconv, kernels = [], [], []
        for f in filters:
            prof, pc, jit = _band_psf(spec, f)
            kernels.append(
                _cached_kernel(prof, inst.pixel_scale_arcsec, pc, jit, ps.radius_pix, ps.phases, ps.tol)
            )
            profiles.append(exact_profile(prof, jitter_sigma_arcsec=jit))
            pconv.append(pc)
        renderer = Renderer.build(kernels, shape=spec.observation.size)
        bands = inst.bands
        if extinction_coeff is not None:
            ext = np.asarray(extinction_coeff, dtype=np.float64)
            if ext.shape != (len(filters),) or not np.all(np.isfinite(ext)):
                raise GcsbiValueError(f"extinction_coeff must be {len(filters)} finite values for {filters}")
        elif all(b.extinction_coeff is not None for b in bands):
            ext = np.array([b.extinction_coeff for b in bands])
        else:
            ext = _default_extinction(filters)
        bg = spec.background
        field = bank = None
        if "field" in bg.kind:
            sampler = field_sampler or stellar_population_sampler(filters, age_gyr=bg.population_age_gyr,
                                                                  feh=bg.population_feh)
            field = FieldBackground.build(sampler, filters=filters, reference_filter=bg.reference_filter or filters[-1],
                                          pool_size=bg.pool_size)  # fmt: skip
        if "bank" in bg.kind:
            bank = BackgroundBank.from_files(bg.bank, n_bands=len(filters), scale=bg.bank_scale)
        return cls(
            spec=spec,
            renderer=renderer,
            profiles=tuple(profiles),
            pixel_convolved=tuple(pconv),
            zeropoints=np.array([b.zeropoint_vega for b in bands]),
            exposure_s=np.array([b.exposure_s for b in bands]),
            sky_e=_tr.sky_levels(spec),
            read_noise_e=np.array([b.read_noise_total_e if spec.noise.read_noise else 0.0 for b in bands]),
            extinction_coeff=ext,
            field=field,
            bank=bank,
        )

    @property
    def filters(self) -> tuple[str, ...]:
        return self.spec.filters

    @property
    def shape(self) -> tuple[int, int]:
        return self.spec.observation.size

    def extinction_mag(self, ebv: float, extinction_coeff: Sequence[float] | None = None) -> np.ndarray:
        """A_f (F,) for E(B-V) = ``ebv``."""
        ebv = float(ebv)
        if not (np.isfinite(ebv) and ebv >= 0):
            raise GcsbiValueError(f"ebv must be finite and >= 0, got {ebv}")
        coeff = self.extinction_coeff if extinction_coeff is None else np.asarray(extinction_coeff, dtype=float)
        if coeff.shape != (len(self.filters),):
            raise GcsbiValueError(f"extinction_coeff must have {len(self.filters)} entries")
        return coeff * ebv

    def psf_area_pixels(self) -> np.ndarray:
        """(F,) effective area 1 / sum(p^2) of each band's pixel-convolved PSF (phase-averaged), in pixels."""
        area = self.__dict__.get("_psf_area")
        if area is None:
            r = self.renderer
            out = []
            for ft in r._mean_ft:
                p = scipy.fft.irfft2(ft.astype(np.complex128), s=r.fft_shape)
                p = p / p.sum()
                out.append(1.0 / float(np.sum(p * p)))
            area = np.asarray(out)
            object.__setattr__(self, "_psf_area", area)  # cached: the model is immutable
        return area

    def footprint(self, *, distance_kpc: float, ebv: float = 0.0, ellipticity: float = 0.0,
                  detection_sigma: float = 5.0, extinction_coeff: Sequence[float] | None = None) -> Footprint:
        """What this observation sees of a cluster at ``distance_kpc`` (:class:`gcsbi.clusters.footprint.Footprint`):
        the line-of-sight cylinder (radius in the cluster's frame, pc) holding every position that projects
        onto the padded stamp after the projected ``ellipticity``, the pixel area there, counts per unit
        absolute flux, and the sky + read-noise variance and PSF area that set the detection limit."""
        from ..clusters.footprint import Footprint
        from .instrument import ARCSEC_PER_PC_AT_1KPC

        d = distance_kpc_value(distance_kpc)
        e = float(ellipticity)
        if not 0.0 <= e < 1.0:
            raise GcsbiValueError(f"ellipticity must be in [0, 1), got {ellipticity}")
        k = magnitudes_to_counts(np.zeros((1, len(self.filters))), zeropoints=self.zeropoints,
                                 exposure_s=self.exposure_s, distance_modulus=distance_modulus(d),
                                 extinction_mag=self.extinction_mag(ebv, extinction_coeff))[:, 0]
        h, w = self.shape
        pad = self.renderer.pad
        pix = self.spec.instrument.pixel_scale_arcsec
        pc_per_arcsec = d / ARCSEC_PER_PC_AT_1KPC
        half_arcsec = float(np.hypot(h / 2.0 + pad, w / 2.0 + pad)) * pix
        # sky = model (x sqrt(q), y / sqrt(q)) * s, rotated: a sky radius comes from at most radius / (s sqrt(q))
        return Footprint(radius_pc=half_arcsec * pc_per_arcsec / np.sqrt(1.0 - e),
                         pixel_area_pc2=(pix * pc_per_arcsec) ** 2, counts_per_flux=k,
                         noise_e2=self.sky_e + self.read_noise_e**2, psf_area=self.psf_area_pixels(),
                         detection_sigma=detection_sigma)

    def pixel_coordinates(
        self, positions_pc: np.ndarray, *, distance_kpc: float, ellipticity: float = 0.0,
        position_angle_deg: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Pixel coordinates (x, y) of the particles on the stamp."""
        xs, ys = project_positions(positions_pc, distance_kpc=distance_kpc, ellipticity=ellipticity,
                                   position_angle_deg=position_angle_deg)  # fmt: skip
        return sky_to_pixels(xs, ys, pixel_scale_arcsec=self.spec.instrument.pixel_scale_arcsec, shape=self.shape)

    def __call__(
        self,
        positions_pc: np.ndarray,
        abs_mag: np.ndarray,
        filters: Sequence[str],
        particle_mass: np.ndarray | None = None,
        *,
        distance_kpc: float | u.Quantity,
        rng: np.random.Generator,
        ellipticity: float = 0.0,
        position_angle_deg: float = 0.0,
        ebv: float = 0.0,
        background_level: float | None = None,
        extinction_coeff: Sequence[float] | None = None,
        return_truth: bool = False,
        unresolved: UnresolvedLight | None = None,
    ) -> Observation:
        """Mock observation of one cluster (see module docstring); ``background_level`` in mag/arcsec^2.

        ``unresolved`` (a :class:`gcsbi.clusters.smooth_light.UnresolvedLight`) adds the cluster's
        unresolved stars as Poisson star counts per pixel (:mod:`.unresolved`), drawn after the field.
        """
        if not isinstance(rng, np.random.Generator):
            raise GcsbiValueError("rng must be a numpy.random.Generator")
        d = distance_kpc_value(distance_kpc)
        mags = select_bands(abs_mag, filters, self.filters)
        pos = np.asarray(positions_pc, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[0] != mags.shape[0]:
            raise GcsbiValueError(f"positions_pc ({pos.shape}) and abs_mag ({mags.shape}) disagree in length")
        mu = distance_modulus(d)
        a_f = self.extinction_mag(ebv, extinction_coeff)
        x, y = self.pixel_coordinates(pos, distance_kpc=d, ellipticity=ellipticity,
                                      position_angle_deg=position_angle_deg)  # fmt: skip
        counts = magnitudes_to_counts(mags, zeropoints=self.zeropoints, exposure_s=self.exposure_s,
                                      distance_modulus=mu, extinction_mag=a_f)  # fmt: skip
        h, w = self.shape
        background = np.zeros((len(self.filters), h, w), dtype=np.float32)
        fx = fy = fcounts = None
        if self.field is not None:
            fx, fy, fcounts, smooth = self._field(rng, mu=mu, a_f=a_f, background_level=background_level)
            background += smooth[:, None, None]
        if self.bank is not None:
            background += self.bank.sample(rng, shape=(h, w))
        grid = None
        if unresolved is not None:
            grid = self._unresolved(unresolved, rng, mu=mu, a_f=a_f, distance_kpc=d, ellipticity=ellipticity,
                                    position_angle_deg=position_angle_deg)
        # The noisy image never depends on return_truth (same seed, same bytes): cluster and
        # field stars are rendered together (same PSF, linear); truth maps are extra renders.
        if fx is None:
            sources = self.renderer.render(x, y, counts, grid=grid)
        else:
            sources = self.renderer.render(np.concatenate([x, fx]), np.concatenate([y, fy]),
                                           np.concatenate([counts, fcounts], axis=1), grid=grid)  # fmt: skip
        clean = None
        if return_truth:
            clean = sources if fx is None else self.renderer.render(x, y, counts, grid=grid)
        truth_background = background
        if return_truth and fx is not None:
            truth_background = background + self.renderer.render(fx, fy, fcounts)
        expected = sources.astype(np.float64) + background + self.sky_e[:, None, None]
        image = add_noise(expected, read_noise_e=self.read_noise_e, rng=rng, poisson=self.spec.noise.poisson)
        truth = {}
        if return_truth:
            truth["clean"] = clean
            truth["background"] = truth_background
            if particle_mass is not None:
                m = np.asarray(particle_mass, dtype=np.float64).ravel()
                if m.shape != (pos.shape[0],) or not np.all(np.isfinite(m)):
                    raise GcsbiValueError("particle_mass must be finite with one entry per particle")
                truth["mass_map"] = mass_map(x, y, m, shape=(h, w))
                if grid is not None:
                    p = grid.pad
                    truth["mass_map"] = truth["mass_map"] + grid.mass[p:p + h, p:p + w].astype(np.float32)
        return Observation(image=image, filters=self.filters, sky=self.sky_e.astype(np.float32),
                           pixel_scale_arcsec=self.spec.instrument.pixel_scale_arcsec, distance_kpc=d,
                           **truth)  # fmt: skip

    def _unresolved(self, light: UnresolvedLight, rng: np.random.Generator, *, mu: float, a_f: np.ndarray,
                    distance_kpc: float, ellipticity: float, position_angle_deg: float) -> UnresolvedPixels:
        """The unresolved light of ``light`` on the renderer's padded grid (:func:`.unresolved.unresolved_pixels`)."""
        from .star_counts import unresolved_pixels

        missing = [f for f in self.filters if f not in light.filters]
        if missing:
            raise GcsbiValueError(f"unresolved light lacks bands {missing} (has {list(light.filters)})")
        idx = [light.filters.index(f) for f in self.filters]
        stars = dataclasses.replace(light.stars, flux=light.flux[:, idx], flux2=light.flux2[:, idx], filters=self.filters)
        light = dataclasses.replace(light, stars=stars)
        k = magnitudes_to_counts(np.zeros((1, len(self.filters))), zeropoints=self.zeropoints,
                                 exposure_s=self.exposure_s, distance_modulus=mu, extinction_mag=a_f)[:, 0]
        return unresolved_pixels(light, shape=self.shape, pad=self.renderer.pad,
                                 pixel_scale_arcsec=self.spec.instrument.pixel_scale_arcsec, distance_kpc=distance_kpc,
                                 counts_per_flux=k, rng=rng, phases=self.renderer.phases, ellipticity=ellipticity,
                                 position_angle_deg=position_angle_deg)

    def _field(
        self, rng: np.random.Generator, *, mu: float, a_f: np.ndarray, background_level: float | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Resolved field stars (x, y, counts (F, k)) over the padded stamp and smooth light (F,) e-/pixel."""
        bg = self.spec.background
        sb = bg.surface_brightness if background_level is None else float(background_level)
        h, w = self.shape
        r = self.renderer.pad
        p = self.spec.instrument.pixel_scale_arcsec
        area = (h + 2 * r) * (w + 2 * r) * p * p
        mags, smooth = self.field.sample(rng, surface_brightness=sb, resolved_mag_limit=bg.resolved_mag_limit,
                                         distance_modulus=mu, extinction_mag=a_f, area_arcsec2=area)  # fmt: skip
        n = mags.shape[0]
        fx = rng.uniform(-r - 0.5, w + r - 0.5, n)
        fy = rng.uniform(-r - 0.5, h + r - 0.5, n)
        counts = magnitudes_to_counts(mags, zeropoints=self.zeropoints, exposure_s=self.exposure_s,
                                      distance_modulus=mu, extinction_mag=a_f)  # fmt: skip
        # smooth light: sum 10^-0.4M per arcsec^2 -> e- per pixel
        smooth_e = smooth * 10.0 ** (-0.4 * (mu + a_f - self.zeropoints)) * self.exposure_s * p * p
        return fx, fy, counts, smooth_e.astype(np.float32)

    def transform(self, image: np.ndarray, *, sky: np.ndarray | float | None = None) -> np.ndarray:
        """:func:`gcsbi.observe.transforms.transform` with this model's spec."""
        return _tr.transform(image, self.spec, sky=sky)


_KERNELS: dict = {}


def _cached_kernel(prof: galsim.GSObject, pix: float, pc: bool, jit: float, radius: int, phases: int, tol: float):
    """Sub-pixel kernels are cached per process by value (GalSim profiles have a value-based repr)."""
    key = (repr(prof), pix, pc, jit, radius, phases, tol)
    if key not in _KERNELS:
        if len(_KERNELS) > 64:
            _KERNELS.clear()
        _KERNELS[key] = build_subpixel_kernel(prof, pixel_scale_arcsec=pix, pixel_convolved=pc,
                                              jitter_sigma_arcsec=jit, radius=radius, phases=phases, tol=tol)  # fmt: skip
    return _KERNELS[key]


_MODELS: dict = {}


def get_observation_model(spec: SimulatorSpec | str) -> ObservationModel:
    """A cached :class:`ObservationModel` for ``spec`` (by value; built on first use)."""
    if isinstance(spec, str):
        spec = load_simulator_spec(spec)
    try:
        key = hash(spec)
    except TypeError:
        return ObservationModel.from_spec(spec)
    m = _MODELS.get(key)
    if m is None or m.spec != spec:
        m = ObservationModel.from_spec(spec)
        _MODELS[key] = m
    return m


def transform(image: np.ndarray, spec: SimulatorSpec | str, *, sky: np.ndarray | float | None = None) -> np.ndarray:
    """Network input (C', H, W) float32 from a counts image; see :mod:`gcsbi.observe.transforms`."""
    if isinstance(spec, str):
        spec = load_simulator_spec(spec)
    return _tr.transform(image, spec, sky=sky)
