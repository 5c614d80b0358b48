"""Spherical mocks with known truth from galpy's distribution functions (Eddington / Osipkov-Merritt), offline."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import JeansFileError, JeansValueError
from .io import StarTable
from .parametric import G_KPC_KMS2_MSUN, zhao_density, zhao_mass
from .beta import BetaModel, ConstantBeta, OsipkovMerrittBeta, parse_beta

__all__ = ["MockConfig", "make_mock", "plummer_positions", "truth_profiles", "save_truth", "load_truth", "PLUMCOREOM_TRUTH"]

HALOS = {"core": 0.0, "cusp": 1.0}

# Gaia Challenge PlumCoreOm (Walker & Penarrubia 2011 DFs; Read et al. 2021)
PLUMCOREOM_TRUTH = {
    "halo": {"rho0": 4.0e8, "rs": 1.0, "alpha": 1.0, "beta": 3.0, "gamma": 0.0},
    "light": {"kind": "zhao", "a": 0.25, "alpha": 2.0, "beta": 5.0, "gamma": 0.1},
    "beta": "om:0.25",
}


@dataclass(frozen=True)
class MockConfig:
    """A Plummer tracer (scale ``light_a`` kpc) in a Zhao (1, 3, gamma) halo; gamma = 0 (core) or 1 (cusp)."""

    n: int = 1000
    halo: str = "core"
    rho0: float = 4.0e8
    rs: float = 1.0
    light_a: float = 0.25
    anisotropy: str = "iso"
    verr: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.halo not in HALOS:
            raise JeansValueError(f"halo must be one of {tuple(HALOS)}, got {self.halo!r}")
        if self.n < 2:
            raise JeansValueError(f"n must be >= 2, got {self.n}")
        for name in ("rho0", "rs", "light_a"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise JeansValueError(f"{name} must be finite and > 0, got {v}")
        if not (math.isfinite(self.verr) and self.verr >= 0):
            raise JeansValueError(f"verr must be >= 0, got {self.verr}")
        b = parse_beta(self.anisotropy)
        if not isinstance(b, (ConstantBeta, OsipkovMerrittBeta)) or (isinstance(b, ConstantBeta) and b.beta0 != 0):
            raise JeansValueError("mocks support anisotropy 'iso' or 'om:R_A' (galpy Eddington / OM DFs)")

    def truth(self) -> dict:
        return {"halo": {"rho0": self.rho0, "rs": self.rs, "alpha": 1.0, "beta": 3.0, "gamma": HALOS[self.halo]},
                "light": {"kind": "plummer", "a": self.light_a}, "beta": parse_beta(self.anisotropy).spec,
                "mock": asdict(self)}


def make_mock(config: MockConfig) -> tuple[StarTable, dict]:
    """Draw ``config.n`` stars (x, y, v_z) projected along z, with Gaussian velocity errors; returns (table, truth).

    Natural units of galpy are taken as kpc and km/s (so G = 1 and masses are G M in kpc (km/s)^2).
    galpy samples with numpy's global generator: it is seeded here and restored afterwards.
    """
    from galpy.df import eddingtondf, osipkovmerrittdf
    from galpy.potential import PlummerPotential, TwoPowerSphericalPotential

    gamma = HALOS[config.halo]
    amp = 4.0 * math.pi * config.rho0 * config.rs**3 * G_KPC_KMS2_MSUN
    pot = TwoPowerSphericalPotential(amp=amp, a=config.rs, alpha=gamma, beta=3.0)
    light = PlummerPotential(amp=1.0, b=config.light_a)
    beta = parse_beta(config.anisotropy)
    rmax = 200.0 * max(config.rs, config.light_a)
    state = np.random.get_state()
    try:
        np.random.seed(config.seed)
        if isinstance(beta, OsipkovMerrittBeta):
            df = osipkovmerrittdf(pot=pot, denspot=light, ra=beta.r_a, rmax=rmax)
        else:
            df = eddingtondf(pot=pot, denspot=light, rmax=rmax)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Rc, vR, vT, z, vz, phi = (np.asarray(a, float) for a in df.sample(n=config.n, return_orbit=False))
    finally:
        np.random.set_state(state)
    if not all(np.all(np.isfinite(a)) for a in (Rc, vR, vT, z, vz, phi)):
        raise JeansValueError("galpy returned non-finite samples; check the mock parameters")
    rng = np.random.default_rng(config.seed + 1)
    x, y = Rc * np.cos(phi), Rc * np.sin(phi)
    verr = np.full(config.n, config.verr)
    v = vz + rng.normal(0.0, 1.0, config.n) * verr
    stars = StarTable(x=x, y=y, v=v, verr=verr, weight=np.ones(config.n), vsys=0.0,
                      meta={"source": "gcsbi_jeans.core.mocks", "true_xyz_v": np.column_stack([x, y, z, vz])})
    return stars, config.truth()


def plummer_positions(n: int, a: float, *, seed: int) -> np.ndarray:
    """Projected radii (kpc) of ``n`` stars drawn from a Plummer sphere of scale ``a``: a positions-only
    (photometric) sample for the light profile, independent of the kinematic mock."""
    if n < 1 or not (math.isfinite(a) and a > 0):
        raise JeansValueError("n must be >= 1 and a > 0")
    u = np.random.default_rng(seed).uniform(0.0, 1.0, n)
    return a * np.sqrt(u / (1.0 - u))  # inverse of the projected enclosed fraction R^2 / (R^2 + a^2)


def _light_density(light: dict) -> Callable[[np.ndarray], np.ndarray]:
    kind = light.get("kind", "plummer")
    a = float(light["a"])
    if kind == "plummer":
        return lambda r: 3.0 / (4.0 * math.pi * a**3) * (1.0 + (np.asarray(r) / a) ** 2) ** -2.5
    if kind == "zhao":
        al, be, ga = float(light["alpha"]), float(light["beta"]), float(light["gamma"])
        norm = float(zhao_mass(1e6 * a, 1.0, a, al, be, ga))
        return lambda r: zhao_density(r, 1.0 / norm, a, al, be, ga)
    raise JeansValueError(f"unknown light profile kind {kind!r}")


def truth_profiles(truth: dict) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Callables of r (kpc): rho, mass, slope, n (one-star normalisation), beta, and sigma_los_R (of R)."""
    from .parametric import sigma_los_parametric

    h = truth["halo"]
    rho0, rs, al, be, ga = (float(h[k]) for k in ("rho0", "rs", "alpha", "beta", "gamma"))
    nu = _light_density(truth["light"])
    beta: BetaModel = parse_beta(truth["beta"])

    def slope(r):
        x = (np.asarray(r) / rs) ** al
        return -ga - (be - ga) * x / (1.0 + x)

    def sigma_los(R):
        return sigma_los_parametric(np.asarray(R, float), nu=nu, mass=lambda r: zhao_mass(r, rho0, rs, al, be, ga),
                                    beta=beta, r_min=1e-4, r_max=500.0)[1]

    return {"rho": lambda r: zhao_density(r, rho0, rs, al, be, ga),
            "mass": lambda r: zhao_mass(r, rho0, rs, al, be, ga), "slope": slope, "n": nu,
            "beta": lambda r: beta(np.asarray(r, float)), "sigma_los_R": sigma_los}


def save_truth(path: str | Path, truth: dict) -> None:
    Path(path).write_text(json.dumps(truth, indent=2))


def load_truth(path: str | Path) -> dict:
    p = Path(path)
    try:
        t = json.loads(p.read_text())
    except FileNotFoundError as exc:
        raise JeansFileError(f"no such truth file: {p}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise JeansFileError(f"cannot read truth file {p}: {exc}") from exc
    if not isinstance(t, dict) or not {"halo", "light", "beta"} <= set(t):
        raise JeansFileError(f"{p}: truth JSON needs 'halo', 'light' and 'beta' keys")
    return t
