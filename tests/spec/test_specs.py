"""Loading and validating simulator TOML specs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gcsbi.errors import GcsbiFileError, SpecError
from gcsbi.spec.simulator_spec import KNOWN_FILTERS, SimulatorSpec, list_simulator_specs, load_simulator_spec, simulator_dir


def _shipped_doc(name: str = "hst-phat") -> str:
    return (simulator_dir() / f"{name}.toml").read_text()


def test_shipped_specs_present_and_valid():
    names = list_simulator_specs()
    assert {"hst-phat", "hst-mw", "jwst-nircam"} <= set(names)
    for n in names:
        s = load_simulator_spec(n)
        assert isinstance(s, SimulatorSpec)
        assert s.name == n
        assert all(f in KNOWN_FILTERS for f in s.filters)
        assert min(s.observation.size) >= 16  # the embedding nets' minimum
        hash(s)  # usable as a cache key


def test_hst_phat_contents():
    s = load_simulator_spec("hst-phat")
    assert s.filters == ("F336W", "F475W", "F814W")
    assert s.instrument.pixel_scale_arcsec == pytest.approx(0.05)
    assert s.instrument.band("F336W").camera == "WFC3/UVIS"
    assert s.instrument.band("F814W").camera == "ACS/WFC"
    assert s.psf.diameter_m == pytest.approx(2.4) and s.psf.obscuration == pytest.approx(0.33)
    assert load_simulator_spec("jwst-nircam").instrument.pixel_scale_arcsec == pytest.approx(0.06)
    assert s.observation.size == (128, 128)


def test_hst_mw_is_the_pidoc_field_in_the_hst_phat_bands():
    mw, phat = load_simulator_spec("hst-mw"), load_simulator_spec("hst-phat")
    assert mw.observation.size == (160, 160) and mw.instrument.pixel_scale_arcsec == pytest.approx(0.25)
    assert mw.filters == phat.filters
    for f in mw.filters:  # 5x5-binned 0.05" pixels: sky x 25, read noise x 5, same zero points
        a, b = mw.instrument.band(f), phat.instrument.band(f)
        assert a.zeropoint_vega == b.zeropoint_vega
        assert a.sky_e_per_s == pytest.approx(25 * b.sky_e_per_s, rel=0.01)
        assert a.read_noise_e == pytest.approx(5 * b.read_noise_e)


def test_field_population_is_set_in_the_spec(tmp_path: Path):
    for name in ("hst-phat", "hst-mw"):  # hst-mw reuses the M31 field population as a placeholder
        bg = load_simulator_spec(name).background
        assert bg.kind == "field" and (bg.population_age_gyr, bg.population_feh) == (10.0, -0.2)
    text = _shipped_doc().replace("population_age_gyr = 10.0", "population_age_gyr = 12.5")
    p = tmp_path / "old_field.toml"
    p.write_text(text.replace("population_feh = -0.2", "population_feh = -1.0"))
    bg = load_simulator_spec(p).background
    assert (bg.population_age_gyr, bg.population_feh) == (12.5, -1.0)
    p.write_text(text.replace("population_age_gyr = 12.5", "population_age_gyr = -1.0"))
    with pytest.raises(SpecError, match="background.population_age_gyr must be > 0"):
        load_simulator_spec(p)
    p.write_text(text.replace("population_age_gyr = 12.5", 'population = "auto"'))
    with pytest.raises(SpecError, match="unknown key background.population .*population_age_gyr"):
        load_simulator_spec(p)


def test_left_out_keys_take_the_dataclass_defaults(tmp_path: Path):
    from gcsbi.spec.simulator_spec import BackgroundSpec, NoiseSpec, ObservationSpec, PSFSpec, TransformSpec

    p = tmp_path / "minimal.toml"
    p.write_text('[instrument]\ntelescope = "T"\npixel_scale_arcsec = 0.1\nfilters = ["V"]\n'
                 "[instrument.bands.V]\nwavelength_nm = 550.0\nzeropoint_vega = 25.0\nexposure_s = 100.0\n")
    s = load_simulator_spec(p)
    assert s.observation == ObservationSpec() and s.psf == PSFSpec() and s.noise == NoiseSpec()
    assert s.background == BackgroundSpec() and s.transforms == TransformSpec()
    band = s.instrument.band("V")
    assert (band.n_exposures, band.gain, band.read_noise_e, band.sky_e_per_s, band.extinction_coeff) == (1, 1.0, 0.0, 0.0, None)


def test_load_by_path_and_snapshot_passthrough(tmp_path: Path):
    doc = _shipped_doc()
    text = doc[: doc.index("[snapshot]")] + '[snapshot]\nsource = "limepy"\nn_particles = 5000\n[snapshot.extra]\nw0 = 7.0\n'

    p = tmp_path / "mine.toml"
    p.write_text(text)
    s = load_simulator_spec(p)
    assert s.source == str(p)
    assert dict(s.snapshot) == {"source": "limepy", "n_particles": 5000, "extra": {"w0": 7.0}}
    with pytest.raises(TypeError):
        s.snapshot["source"] = "x"  # read-only mapping


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('name = "hst-phat"', 'name = "hst-phat"\nfoo = 1', "foo"),
        ("[noise]\n", "[noise]\ncolour = true\n", "noise.colour"),
        ("exposure_s = 1900.0", "exposure_s = 1900.0\nexptime = 3.0", "instrument.bands.F475W.exptime"),
        ('filters = ["F336W", "F475W", "F814W"]', 'filters = ["F336W", "F475W", "F999W"]', "F999W"),
        ('cmd_mag_filter = "F814W"', 'cmd_mag_filter = "V"', "'V'"),
        ('kind = "field"', 'kind = "galaxy"', "background.kind"),
        ("size = [128, 128]", "size = [128, -4]", "observation.size"),
        ("exposure_s = 1715.0", "exposure_s = -1.0", "exposure_s"),
        ('colors = [["F336W", "F475W"], ["F475W", "F814W"]]', 'colors = [["F336W", "F336W"]]', "transforms.colors"),
    ],
)
def test_bad_specs_raise_spec_error(tmp_path: Path, old: str, new: str, needle: str):
    text = _shipped_doc()
    assert old in text
    p = tmp_path / "bad.toml"
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError, match=needle.replace(".", r"\.").replace("[", r"\[")):
        load_simulator_spec(p)


def test_unknown_key_message_lists_allowed(tmp_path: Path):
    p = tmp_path / "bad.toml"
    p.write_text(_shipped_doc().replace("[psf]\n", "[psf]\nwavelength = 3\n"))
    with pytest.raises(SpecError) as ei:
        load_simulator_spec(p)
    msg = str(ei.value)
    assert "psf.wavelength" in msg and "diameter_m" in msg and "obscuration" in msg


def test_unknown_filter_lists_allowed(tmp_path: Path):
    p = tmp_path / "bad.toml"
    p.write_text(_shipped_doc().replace('reference_filter = "F814W"', 'reference_filter = "F555W"'))
    with pytest.raises(SpecError, match="F555W.*F336W"):
        load_simulator_spec(p)


def test_missing_and_invalid_files(tmp_path: Path):
    with pytest.raises(SpecError, match="hst-phat"):
        load_simulator_spec("no-such-simulator")
    with pytest.raises(GcsbiFileError):
        load_simulator_spec(tmp_path / "absent.toml")
    p = tmp_path / "broken.toml"
    p.write_text("[instrument\n")
    with pytest.raises(SpecError, match="invalid TOML"):
        load_simulator_spec(p)


def test_psf_file_path_resolved_relative_to_spec(tmp_path: Path):
    text = _shipped_doc().replace(
        "[noise]\n", '[psf.bands.F814W]\npath = "psfs/f814w.fits"\npixel_scale_arcsec = 0.0495\n\n[noise]\n'
    )
    p = tmp_path / "withpsf.toml"
    p.write_text(text)
    s = load_simulator_spec(p)
    b = s.psf.for_band("F814W")
    assert b.model == "file" and Path(b.path) == tmp_path / "psfs" / "f814w.fits"
    assert s.psf.for_band("F475W").model == "optical"
    tomllib.loads(text)
