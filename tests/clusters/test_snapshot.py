"""Snapshot: validation, immutability, geometry, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.clusters.snapshot import Snapshot, random_rotation, virial_ratio
from gcsbi.errors import GcsbiFileError, GcsbiValueError


def make_snapshot(n: int = 50, seed: int = 0, **changes) -> Snapshot:
    rng = np.random.default_rng(seed)
    kwargs = dict(
        positions=rng.normal(size=(n, 3)),
        velocities=rng.normal(size=(n, 3)),
        initial_mass=rng.uniform(0.1, 1.0, n),
        current_mass=rng.uniform(0.1, 1.0, n),
        weight=np.ones(n),
        phase=np.zeros(n, np.int8),
        log_teff=np.full(n, 3.7),
        log_g=np.full(n, 4.5),
        log_l=np.zeros(n),
        abs_mag=rng.uniform(0, 10, (n, 2)),
        filters=("V", "I"),
        age_gyr=12.0,
        feh=-1.5,
        source="test",
        meta={"a": 1},
    )
    kwargs.update(changes)
    return Snapshot(**kwargs)


def test_arrays_are_read_only():
    s = make_snapshot()
    with pytest.raises(ValueError):
        s.positions[0, 0] = 1.0
    with pytest.raises(AttributeError):
        s.age_gyr = 1.0  # frozen


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"positions": np.zeros((50, 2))}, "positions"),
        ({"velocities": np.zeros((49, 3))}, "velocities"),
        ({"current_mass": -np.ones(50)}, "current_mass"),
        ({"abs_mag": np.full((50, 2), np.nan)}, "NaN"),
        ({"abs_mag": np.zeros((50, 3))}, "abs_mag"),
        ({"positions": np.full((50, 3), np.nan)}, "finite"),
    ],
)
def test_bad_input_raises_clear_error(changes, match):
    with pytest.raises(GcsbiValueError, match=match):
        make_snapshot(**changes)


def test_rotation_preserves_radii_and_energy():
    s = make_snapshot(n=200)
    r = s.random_view(np.random.default_rng(3))
    np.testing.assert_allclose(np.linalg.norm(r.positions, axis=1), np.linalg.norm(s.positions, axis=1))
    assert abs(r.virial_ratio() - s.virial_ratio()) < 1e-10
    assert not np.allclose(r.positions, s.positions)
    with pytest.raises(GcsbiValueError):
        s.rotated(np.ones((3, 3)))


def test_random_rotation_is_orthogonal_and_seeded():
    a = random_rotation(np.random.default_rng(1))
    np.testing.assert_allclose(a @ a.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(a), 1.0)
    np.testing.assert_array_equal(a, random_rotation(np.random.default_rng(1)))


def test_virial_ratio_of_a_plummer_sphere():
    """Known answer: a Plummer sphere with its isotropic dispersion profile has Q = 1/2."""
    rng = np.random.default_rng(0)
    n, a, mass, g = 200_000, 1.0, 1e5, 4.300917270e-3
    r = a / np.sqrt(rng.random(n) ** (-2.0 / 3.0) - 1.0)
    u = rng.normal(size=(n, 3))
    pos = r[:, None] * u / np.linalg.norm(u, axis=1, keepdims=True)
    sigma = np.sqrt(g * mass / (6.0 * np.sqrt(r**2 + a**2)))
    vel = rng.normal(size=(n, 3)) * sigma[:, None]
    assert virial_ratio(pos, vel, np.full(n, mass / n)) == pytest.approx(0.5, abs=0.01)


def test_half_mass_radius_and_integrated_light():
    s = make_snapshot(n=1001, abs_mag=np.full((1001, 2), 5.0), current_mass=np.ones(1001))
    r3 = np.linalg.norm(s.positions, axis=1)
    r2 = np.linalg.norm(s.positions[:, :2], axis=1)
    assert s.half_mass_radius() == pytest.approx(np.median(r3), rel=0.01)
    assert s.half_mass_radius(projected=True) == pytest.approx(np.median(r2), rel=0.01)
    mags = s.integrated_abs_mag()
    assert mags["V"] == pytest.approx(5.0 - 2.5 * np.log10(1001))


def test_save_load_round_trip(tmp_path):
    s = make_snapshot()
    path = s.save(tmp_path / "snap")
    t = Snapshot.load(path)
    for name in ("positions", "velocities", "current_mass", "phase", "abs_mag"):
        np.testing.assert_array_equal(getattr(t, name), getattr(s, name))
    assert (t.filters, t.age_gyr, t.feh, t.source, t.meta) == (s.filters, s.age_gyr, s.feh, s.source, s.meta)
    assert not list(tmp_path.glob("*.tmp"))


def test_corrupt_or_missing_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(GcsbiFileError, match="cannot read"):
        Snapshot.load(bad)
    with pytest.raises(GcsbiFileError, match="not found"):
        Snapshot.load(tmp_path / "missing.npz")
    s = make_snapshot()
    path = s.save(tmp_path / "ok.npz")
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(GcsbiFileError):
        Snapshot.load(path)
