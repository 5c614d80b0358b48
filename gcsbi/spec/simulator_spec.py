"""Simulator specifications: load and validate ``simulators/*.toml`` files.

A spec names the instrument (bands, zero points, exposure, detector), the
output stamp, the PSF model, noise and background choices, the input
transforms and the snapshot source. Every table is validated into a frozen
dataclass; unknown keys, filters or values raise :class:`~gcsbi.errors.SpecError`
naming the key and the allowed ones. ``[snapshot]`` is passed through as a
(read-only) mapping for :mod:`gcsbi.simulator`.

Layout (see ``simulators/hst-phat.toml`` for a commented example)::

    name = "hst-phat"                  # optional, defaults to the file stem
    description = "..."
    [instrument]    telescope, pixel_scale_arcsec, filters = [...]
    [instrument.bands.<FILTER>]        camera, wavelength_nm, zeropoint_vega,
                                       exposure_s, n_exposures, gain,
                                       read_noise_e, sky_e_per_s, extinction_coeff
    [observation]   size = [H, W]
    [psf]           model, diameter_m, obscuration, nstruts, strut_thick,
                    strut_angle_deg, pupil, jitter_sigma_arcsec, radius_pix, phases, tol
    [psf.bands.<FILTER>]               per-band override (model = "file", path, ...; or
                                       native_pixel_arcsec for an optical band seen by coarser pixels)
    [noise]         poisson, read_noise, sky
    [background]    kind, surface_brightness, reference_filter, resolved_mag_limit,
                    population_age_gyr, population_feh, pool_size, bank, bank_scale
    [transforms]    log_flux, softening, colors, cmd, cmd_bins, cmd_mag_filter,
                    cmd_color, cmd_mag_range, cmd_color_range
    [snapshot]      free-form, passed through

A key left out takes the default of its dataclass field (the one place defaults are
written); the allowed keys of a table are its dataclass's fields. Relative paths (PSF files,
background bank) are resolved against the spec file's folder.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import SpecError
from .resources import available_specs, find_spec, read_toml, spec_folders

__all__ = [
    "KNOWN_FILTERS",
    "BandSpec",
    "InstrumentSpec",
    "ObservationSpec",
    "PSFBandSpec",
    "PSFSpec",
    "NoiseSpec",
    "BackgroundSpec",
    "TransformSpec",
    "SimulatorSpec",
    "simulator_dir",
    "list_simulator_specs",
    "load_simulator_spec",
    "parse_simulator_spec",
]

#: Filters the stellar-population stage provides absolute magnitudes for.
KNOWN_FILTERS: tuple[str, ...] = ("F275W", "F336W", "F475W", "F814W", "F110W", "F160W", "F070W", "F115W", "F356W",
                                  "U", "B", "V", "R", "I")


@dataclass(frozen=True)
class BandSpec:
    """One band: detector/filter properties. Counts are electrons (e-)."""

    filter: str
    camera: str
    wavelength_nm: float
    zeropoint_vega: float  # Vega mag giving 1 e-/s (infinite aperture)
    exposure_s: float
    n_exposures: int = 1
    gain: float = 1.0  # e-/DN, informative (images are in e-)
    read_noise_e: float = 0.0  # per exposure and pixel
    sky_e_per_s: float = 0.0  # per output pixel
    extinction_coeff: float | None = None  # A_band / E(B-V)

    @property
    def sky_e(self) -> float:
        """Sky level in e- per pixel over the whole exposure."""
        return self.sky_e_per_s * self.exposure_s

    @property
    def read_noise_total_e(self) -> float:
        """Read noise of the combined image (n_exposures reads added in quadrature)."""
        return self.read_noise_e * self.n_exposures**0.5


@dataclass(frozen=True)
class InstrumentSpec:
    telescope: str
    pixel_scale_arcsec: float
    bands: tuple[BandSpec, ...]
    name: str = ""

    @property
    def filters(self) -> tuple[str, ...]:
        return tuple(b.filter for b in self.bands)

    def band(self, name: str) -> BandSpec:
        for b in self.bands:
            if b.filter == name:
                return b
        raise SpecError(f"filter {name!r} not in instrument; allowed: {list(self.filters)}")


@dataclass(frozen=True)
class ObservationSpec:
    size: tuple[int, int] = (128, 128)


@dataclass(frozen=True)
class PSFBandSpec:
    """PSF of one band: ``model='optical'`` (telescope model) or ``'file'`` (image)."""

    model: str = "optical"
    path: str | None = None
    pixel_scale_arcsec: float | None = None  # of the PSF image; None: header PIXSCALE or instrument/oversampling
    oversampling: float = 1.0  # PSF pixel = instrument pixel / oversampling (when no scale given)
    pixel_convolved: bool = True  # file PSFs (TinyTim, ePSF) include the pixel response
    index: int | None = None  # for 3D PSF grids; None -> mean
    native_pixel_arcsec: float | None = None  # optical model: the band's own detector pixel (box), resampled


@dataclass(frozen=True)
class PSFSpec:
    model: str = "optical"
    diameter_m: float = 2.4
    obscuration: float = 0.0
    nstruts: int = 0
    strut_thick: float = 0.05
    strut_angle_deg: float = 0.0
    pupil: str = "circular"
    jitter_sigma_arcsec: float = 0.0
    radius_pix: int = 16
    phases: int = 16
    tol: float = 3e-3
    bands: tuple[tuple[str, PSFBandSpec], ...] = ()

    def for_band(self, name: str) -> PSFBandSpec:
        for f, b in self.bands:
            if f == name:
                return b
        return PSFBandSpec(model=self.model)


@dataclass(frozen=True)
class NoiseSpec:
    poisson: bool = True
    read_noise: bool = True
    sky: bool = True


@dataclass(frozen=True)
class BackgroundSpec:
    kind: str = "none"  # none | field | bank | field+bank
    surface_brightness: float = 22.0  # mag/arcsec^2 in reference_filter (default of background_level)
    reference_filter: str | None = None  # default: last instrument filter
    resolved_mag_limit: float = 28.0  # apparent mag in reference_filter; fainter -> smooth light
    population_age_gyr: float = 10.0  # field stars: a gcsbi.stars.StellarPopulation of this age ...
    population_feh: float = -0.2  # ... and [Fe/H]
    pool_size: int = 20000  # field stars drawn once per model; each mock resamples this pool
    bank: tuple[str, ...] = ()
    bank_scale: float = 1.0


@dataclass(frozen=True)
class TransformSpec:
    log_flux: str = "asinh"  # asinh | log10 | none
    softening: float = 1.0  # asinh scale / log10 floor, in units of the band's sky+read noise sigma
    colors: tuple[tuple[str, str], ...] = ()
    cmd: bool = False
    cmd_bins: int = 32
    cmd_mag_filter: str | None = None
    cmd_color: tuple[str, str] | None = None
    cmd_mag_range: tuple[float, float] = (18.0, 30.0)
    cmd_color_range: tuple[float, float] = (-1.0, 4.0)


@dataclass(frozen=True)
class SimulatorSpec:
    name: str
    instrument: InstrumentSpec
    observation: ObservationSpec
    psf: PSFSpec
    noise: NoiseSpec
    background: BackgroundSpec
    transforms: TransformSpec
    snapshot: Mapping[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""
    source: str | None = None  # file it was loaded from

    @property
    def filters(self) -> tuple[str, ...]:
        return self.instrument.filters


# ----------------------------------------------------------------------------- helpers


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(table, Mapping):
        raise SpecError(f"[{where}] must be a table, got {table!r:.60}")
    for k in table:
        if k not in allowed:
            raise SpecError(f"unknown key {where}.{k!s} (allowed in [{where}]: {', '.join(allowed)})")


def _keys(cls: type, *, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The TOML keys of a table: the fields of its dataclass ``cls`` (in order), less ``exclude``."""
    return tuple(f.name for f in fields(cls) if f.name not in exclude)


def _getter(table: Mapping[str, Any], cls: type):
    """``get(key)``: ``table[key]``, else the default of the field ``key`` of the dataclass ``cls``."""
    defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    def get(key: str) -> Any:
        return table[key] if key in table else defaults[key]

    return get


def _req(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise SpecError(f"missing required key {where}.{key}")
    return table[key]


def _num(v: Any, key: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"{key} must be a number, got {v!r}")
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        raise SpecError(f"{key} must be finite, got {v}")
    if positive and not v > 0:
        raise SpecError(f"{key} must be > 0, got {v}")
    if nonneg and v < 0:
        raise SpecError(f"{key} must be >= 0, got {v}")
    return v


def _int(v: Any, key: str, *, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(f"{key} must be an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise SpecError(f"{key} must be >= {minimum}, got {v}")
    return int(v)


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise SpecError(f"{key} must be true or false, got {v!r}")
    return v


def _choice(v: Any, key: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise SpecError(f"{key} = {v!r} not allowed; allowed: {', '.join(map(repr, allowed))}")
    return str(v)


def _filter(v: Any, key: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise SpecError(f"unknown filter {v!r} in {key}; allowed: {', '.join(allowed)}")
    return str(v)


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    t = doc.get(key, {})
    if not isinstance(t, Mapping):
        raise SpecError(f"[{key}] must be a table")
    return t


def _resolve(path: str, base: Path | None) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


# ----------------------------------------------------------------------------- tables

_BAND_KEYS = _keys(BandSpec, exclude=("filter",))


def _parse_instrument(t: Mapping[str, Any]) -> InstrumentSpec:
    _check_keys(t, ("name", "telescope", "pixel_scale_arcsec", "filters", "bands"), "instrument")
    filters = _req(t, "filters", "instrument")
    if not isinstance(filters, list) or not filters:
        raise SpecError("instrument.filters must be a non-empty list of filter names")
    for f in filters:
        _filter(f, "instrument.filters", KNOWN_FILTERS)
    if len(set(filters)) != len(filters):
        raise SpecError(f"instrument.filters has duplicates: {filters}")
    bands_t = _req(t, "bands", "instrument")
    if not isinstance(bands_t, Mapping):
        raise SpecError("[instrument.bands] must be a table of per-filter tables")
    for f in bands_t:
        if f not in filters:
            raise SpecError(f"[instrument.bands.{f}] is not in instrument.filters; allowed: {', '.join(filters)}")
    bands = []
    for f in filters:
        if f not in bands_t:
            raise SpecError(f"missing table [instrument.bands.{f}]")
        b = bands_t[f]
        w = f"instrument.bands.{f}"
        _check_keys(b, _BAND_KEYS, w)
        get = _getter(b, BandSpec)
        ext = get("extinction_coeff")
        bands.append(
            BandSpec(
                filter=f,
                camera=str(b.get("camera", "")),
                wavelength_nm=_num(_req(b, "wavelength_nm", w), f"{w}.wavelength_nm", positive=True),
                zeropoint_vega=_num(_req(b, "zeropoint_vega", w), f"{w}.zeropoint_vega"),
                exposure_s=_num(_req(b, "exposure_s", w), f"{w}.exposure_s", positive=True),
                n_exposures=_int(get("n_exposures"), f"{w}.n_exposures", minimum=1),
                gain=_num(get("gain"), f"{w}.gain", positive=True),
                read_noise_e=_num(get("read_noise_e"), f"{w}.read_noise_e", nonneg=True),
                sky_e_per_s=_num(get("sky_e_per_s"), f"{w}.sky_e_per_s", nonneg=True),
                extinction_coeff=None if ext is None else _num(ext, f"{w}.extinction_coeff", nonneg=True),
            )
        )
    return InstrumentSpec(
        name=str(_getter(t, InstrumentSpec)("name")),
        telescope=str(_req(t, "telescope", "instrument")),
        pixel_scale_arcsec=_num(_req(t, "pixel_scale_arcsec", "instrument"), "instrument.pixel_scale_arcsec",
                                positive=True),  # fmt: skip
        bands=tuple(bands),
    )


def _parse_observation(t: Mapping[str, Any]) -> ObservationSpec:
    _check_keys(t, _keys(ObservationSpec), "observation")
    size = _getter(t, ObservationSpec)("size")
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size, size]
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise SpecError(f"observation.size must be [H, W] or an integer, got {size!r}")
    h, w = (_int(s, "observation.size", minimum=8) for s in size)
    if h > 4096 or w > 4096:
        raise SpecError(f"observation.size {size} too large (max 4096)")
    return ObservationSpec(size=(h, w))


_PSF_KEYS = _keys(PSFSpec)
_PSF_BAND_KEYS = _keys(PSFBandSpec)


def _parse_psf(t: Mapping[str, Any], filters: tuple[str, ...], base: Path | None) -> PSFSpec:
    _check_keys(t, _PSF_KEYS, "psf")
    get = _getter(t, PSFSpec)
    model = _choice(get("model"), "psf.model", ("optical",))
    obsc = _num(get("obscuration"), "psf.obscuration", nonneg=True)
    if obsc >= 1:
        raise SpecError(f"psf.obscuration must be < 1, got {obsc}")
    phases = _int(get("phases"), "psf.phases", minimum=2)
    if phases % 2:
        raise SpecError(f"psf.phases must be even, got {phases}")
    tol = _num(get("tol"), "psf.tol", positive=True)
    bands_t = t.get("bands", {})
    if not isinstance(bands_t, Mapping):
        raise SpecError("[psf.bands] must be a table of per-filter tables")
    bands = []
    for f, b in bands_t.items():
        if f not in filters:
            raise SpecError(f"unknown filter {f!r} in [psf.bands]; allowed: {', '.join(filters)}")
        w = f"psf.bands.{f}"
        if not isinstance(b, Mapping):
            raise SpecError(f"[{w}] must be a table")
        _check_keys(b, _PSF_BAND_KEYS, w)
        bget = _getter(b, PSFBandSpec)
        bm = _choice(b.get("model", "file" if "path" in b else model), f"{w}.model", ("optical", "file"))
        path = bget("path")
        if bm == "file" and not isinstance(path, str):
            raise SpecError(f"{w}.path (a FITS or .npy file) is required for model = 'file'")
        ps = bget("pixel_scale_arcsec")
        idx = bget("index")
        native = bget("native_pixel_arcsec")
        if native is not None and bm != "optical":
            raise SpecError(f"{w}.native_pixel_arcsec applies to model = 'optical' only (file PSFs carry their pixel)")
        bands.append(
            (
                f,
                PSFBandSpec(
                    model=bm,
                    path=None if path is None else _resolve(path, base),
                    pixel_scale_arcsec=None if ps is None else _num(ps, f"{w}.pixel_scale_arcsec", positive=True),
                    oversampling=_num(bget("oversampling"), f"{w}.oversampling", positive=True),
                    pixel_convolved=_bool(bget("pixel_convolved"), f"{w}.pixel_convolved"),
                    index=None if idx is None else _int(idx, f"{w}.index"),
                    native_pixel_arcsec=None if native is None else _num(native, f"{w}.native_pixel_arcsec",
                                                                          positive=True),
                ),
            )
        )
    return PSFSpec(
        model=model,
        diameter_m=_num(get("diameter_m"), "psf.diameter_m", positive=True),
        obscuration=obsc,
        nstruts=_int(get("nstruts"), "psf.nstruts", minimum=0),
        strut_thick=_num(get("strut_thick"), "psf.strut_thick", nonneg=True),
        strut_angle_deg=_num(get("strut_angle_deg"), "psf.strut_angle_deg"),
        pupil=_choice(get("pupil"), "psf.pupil", ("circular", "jwst_hex")),
        jitter_sigma_arcsec=_num(get("jitter_sigma_arcsec"), "psf.jitter_sigma_arcsec", nonneg=True),
        radius_pix=_int(get("radius_pix"), "psf.radius_pix", minimum=2),
        phases=phases,
        tol=tol,
        bands=tuple(bands),
    )


def _parse_noise(t: Mapping[str, Any]) -> NoiseSpec:
    _check_keys(t, _keys(NoiseSpec), "noise")
    get = _getter(t, NoiseSpec)
    return NoiseSpec(**{key: _bool(get(key), f"noise.{key}") for key in _keys(NoiseSpec)})


def _parse_background(t: Mapping[str, Any], filters: tuple[str, ...], base: Path | None) -> BackgroundSpec:
    _check_keys(t, _keys(BackgroundSpec), "background")
    get = _getter(t, BackgroundSpec)
    kind = _choice(get("kind"), "background.kind", ("none", "field", "bank", "field+bank"))
    ref = get("reference_filter")
    if ref is not None:
        _filter(ref, "background.reference_filter", filters)
    bank = get("bank")
    if isinstance(bank, str):
        bank = [bank]
    if not isinstance(bank, (list, tuple)) or not all(isinstance(b, str) for b in bank):
        raise SpecError("background.bank must be a list of FITS file paths")
    if "bank" in kind and not bank:
        raise SpecError(f"background.kind = {kind!r} needs background.bank (a list of FITS cutouts)")
    return BackgroundSpec(
        kind=kind,
        surface_brightness=_num(get("surface_brightness"), "background.surface_brightness"),
        reference_filter=ref,
        resolved_mag_limit=_num(get("resolved_mag_limit"), "background.resolved_mag_limit"),
        population_age_gyr=_num(get("population_age_gyr"), "background.population_age_gyr", positive=True),
        population_feh=_num(get("population_feh"), "background.population_feh"),
        pool_size=_int(get("pool_size"), "background.pool_size", minimum=10),
        bank=tuple(_resolve(b, base) for b in bank),
        bank_scale=_num(get("bank_scale"), "background.bank_scale", nonneg=True),
    )


def _pair(v: Any, key: str, filters: tuple[str, ...]) -> tuple[str, str]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise SpecError(f"{key} entries must be [filter1, filter2], got {v!r}")
    a, b = (_filter(f, key, filters) for f in v)
    if a == b:
        raise SpecError(f"{key}: a colour needs two different filters, got {v!r}")
    return (a, b)


def _range(v: Any, key: str) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise SpecError(f"{key} must be [lo, hi], got {v!r}")
    lo, hi = (_num(x, key) for x in v)
    if not hi > lo:
        raise SpecError(f"{key} must have hi > lo, got {v!r}")
    return (lo, hi)


def _parse_transforms(t: Mapping[str, Any], filters: tuple[str, ...]) -> TransformSpec:
    _check_keys(t, _keys(TransformSpec), "transforms")
    get = _getter(t, TransformSpec)
    colors = get("colors")
    if not isinstance(colors, (list, tuple)):
        raise SpecError("transforms.colors must be a list of [filter1, filter2] pairs")
    cmd = _bool(get("cmd"), "transforms.cmd")
    log_flux = _choice(get("log_flux"), "transforms.log_flux", ("asinh", "log10", "none"))
    if log_flux == "none" and (colors or cmd):
        raise SpecError("transforms.colors / transforms.cmd need transforms.log_flux = 'asinh' or 'log10'")
    mag_f = get("cmd_mag_filter")
    cmd_color = get("cmd_color")
    if cmd:
        if len(filters) < 2:
            raise SpecError("transforms.cmd needs at least two filters")
        mag_f = _filter(mag_f if mag_f is not None else filters[-1], "transforms.cmd_mag_filter", filters)
        cmd_color = _pair(cmd_color if cmd_color is not None else [filters[-2], filters[-1]],
                          "transforms.cmd_color", filters)  # fmt: skip
    return TransformSpec(
        log_flux=log_flux,
        softening=_num(get("softening"), "transforms.softening", positive=True),
        colors=tuple(_pair(c, "transforms.colors", filters) for c in colors),
        cmd=cmd,
        cmd_bins=_int(get("cmd_bins"), "transforms.cmd_bins", minimum=2),
        cmd_mag_filter=mag_f if cmd else None,
        cmd_color=cmd_color if cmd else None,
        cmd_mag_range=_range(get("cmd_mag_range"), "transforms.cmd_mag_range"),
        cmd_color_range=_range(get("cmd_color_range"), "transforms.cmd_color_range"),
    )


_TOP_KEYS = ("name", "description", "instrument", "observation", "psf", "noise", "background", "transforms",
             "snapshot")  # fmt: skip


def parse_simulator_spec(doc: Mapping[str, Any], *, name: str = "", base_dir: Path | None = None,
                         source: str | None = None) -> SimulatorSpec:  # fmt: skip
    """Validate a parsed TOML document into a :class:`SimulatorSpec`."""
    _check_keys(doc, _TOP_KEYS, "<top level>")
    if "instrument" not in doc:
        raise SpecError("missing required table [instrument]")
    inst = _parse_instrument(_table(doc, "instrument"))
    filters = inst.filters
    snap = _table(doc, "snapshot")
    return SimulatorSpec(
        name=str(doc.get("name", name)),
        description=str(doc.get("description", "")),
        instrument=inst,
        observation=_parse_observation(_table(doc, "observation")),
        psf=_parse_psf(_table(doc, "psf"), filters, base_dir),
        noise=_parse_noise(_table(doc, "noise")),
        background=_parse_background(_table(doc, "background"), filters, base_dir),
        transforms=_parse_transforms(_table(doc, "transforms"), filters),
        snapshot=MappingProxyType(dict(snap)),
        source=source,
    )


def simulator_dir() -> Path:
    """Folder of the shipped specs (the repo's ``simulators/``, or the copy inside the wheel)."""
    return spec_folders("simulators")[0]


def list_simulator_specs() -> list[str]:
    """Names of the shipped simulator specs."""
    return available_specs("simulators")


def load_simulator_spec(name_or_path: str | Path) -> SimulatorSpec:
    """Load a spec by shipped name (``"hst-phat"``) or from a TOML file path."""
    p = find_spec("simulators", Path(str(name_or_path)).expanduser() if str(name_or_path).endswith(".toml") else name_or_path)
    doc = read_toml(p)
    try:
        return parse_simulator_spec(doc, name=p.stem, base_dir=p.parent.resolve(), source=str(p))
    except SpecError as exc:
        raise SpecError(f"{p.name}: {exc}") from None
