"""Anisotropy profiles beta(r) given by the user (or drawn by a route): numpy arrays and torch tensors alike.

No torch import: a torch tensor passed in selects torch's functions (torch is then loaded already)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import JeansValueError

__all__ = [
    "BetaModel",
    "ConstantBeta",
    "OsipkovMerrittBeta",
    "BaesVanHeseBeta",
    "parse_beta",
]


class BetaModel:
    """Anisotropy beta(r) = 1 - sigma_t^2 / sigma_r^2; works on numpy arrays and torch tensors (r in kpc)."""

    spec: str = ""

    def __call__(self, r: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_g(self, r: Any) -> Any:
        """ln g(r) with g = exp(int 2 beta / r dr): the integrating factor of the Jeans equation."""
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class ConstantBeta(BetaModel):
    """Constant anisotropy beta(r) = beta0 (beta0 = 0: isotropic)."""

    beta0: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.beta0) or self.beta0 >= 1.0:
            raise JeansValueError(f"constant beta must be finite and < 1, got {self.beta0}")

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"const:{self.beta0:g}"

    def __call__(self, r: Any) -> Any:
        return 0.0 * r + self.beta0

    def log_g(self, r: Any) -> Any:
        lib = _lib(r)
        return 2.0 * self.beta0 * lib.log(r)


@dataclass(frozen=True)
class OsipkovMerrittBeta(BetaModel):
    """Osipkov-Merritt anisotropy beta(r) = r^2 / (r^2 + r_a^2)."""

    r_a: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.r_a) and self.r_a > 0):
            raise JeansValueError(f"Osipkov-Merritt r_a must be finite and > 0 kpc, got {self.r_a}")

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"om:{self.r_a:g}"

    def __call__(self, r: Any) -> Any:
        return r**2 / (r**2 + self.r_a**2)

    def log_g(self, r: Any) -> Any:
        lib = _lib(r)
        return lib.log(r**2 + self.r_a**2)


@dataclass(frozen=True)
class BaesVanHeseBeta(BetaModel):
    """Baes & van Hese (2007): beta(r) = (beta0 + beta_inf (r/r_a)^eta) / (1 + (r/r_a)^eta)."""

    beta0: float
    beta_inf: float
    r_a: float
    eta: float = 2.0

    def __post_init__(self) -> None:
        vals = (self.beta0, self.beta_inf, self.r_a, self.eta)
        if not all(math.isfinite(v) for v in vals):
            raise JeansValueError(f"Baes-van Hese parameters must be finite, got {vals}")
        if self.beta0 >= 1 or self.beta_inf >= 1 or self.r_a <= 0 or self.eta <= 0:
            raise JeansValueError(
                "Baes-van Hese needs beta0 < 1, beta_inf < 1, r_a > 0, eta > 0; got " f"{vals}"
            )

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"bvh:{self.beta0:g},{self.beta_inf:g},{self.r_a:g},{self.eta:g}"

    def __call__(self, r: Any) -> Any:
        x = (r / self.r_a) ** self.eta
        return (self.beta0 + self.beta_inf * x) / (1.0 + x)

    def log_g(self, r: Any) -> Any:
        lib = _lib(r)
        x = (r / self.r_a) ** self.eta
        return 2.0 * self.beta0 * lib.log(r) + 2.0 * (self.beta_inf - self.beta0) / self.eta * lib.log1p(x)


def _lib(r: Any) -> Any:
    """The array library of ``r``: torch for a torch tensor (imported only then: it is loaded already), else numpy."""
    if type(r).__module__.split(".")[0] == "torch":
        import torch

        return torch
    return np


def parse_beta(spec: str) -> BetaModel:
    """Parse 'iso', 'const:B', 'om:R_A' (kpc) or 'bvh:B0,BINF,R_A[,ETA]' into a :class:`BetaModel`."""
    if not isinstance(spec, str) or not spec.strip():
        raise JeansValueError(f"beta spec must be a non-empty string, got {spec!r}")
    name, _, args = spec.strip().lower().partition(":")
    try:
        vals = [float(a) for a in args.split(",")] if args else []
    except ValueError as exc:
        raise JeansValueError(f"cannot parse numbers in beta spec {spec!r}") from exc
    if name in ("iso", "isotropic") and not vals:
        return ConstantBeta(beta0=0.0)
    if name in ("const", "constant") and len(vals) == 1:
        return ConstantBeta(beta0=vals[0])
    if name in ("om", "osipkov-merritt") and len(vals) == 1:
        return OsipkovMerrittBeta(r_a=vals[0])
    if name in ("bvh", "baes") and len(vals) in (3, 4):
        return BaesVanHeseBeta(*vals)
    raise JeansValueError(
        f"unknown beta spec {spec!r}; use 'iso', 'const:B', 'om:R_A' or 'bvh:B0,BINF,R_A[,ETA]'"
    )
