"""Declarative priors (``priors/*.toml``) as torch Distributions with named parameters.

A prior file holds ``name``, ``description``, one ``[parameters.<name>]`` table per parameter
(``low``, ``high``, ``unit``, ``description``) and, optionally, ``[reference_clusters.<name>]``
tables: named points inside the box (a value for every parameter, plus an optional
``description``), read with :func:`reference_cluster`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.distributions import Independent, Uniform, constraints

from ..errors import GcsbiValueError, SpecError
from .resources import find_spec, read_toml

__all__ = ["ParameterSpec", "NamedBoxPrior", "load_prior", "reference_cluster"]

_TOP_KEYS = {"name", "description", "parameters", "reference_clusters"}
_PARAM_KEYS = {"low", "high", "unit", "description"}


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    low: float
    high: float
    unit: str = ""
    description: str = ""


class NamedBoxPrior(Independent):
    """Independent uniform prior over a box, with named parameters (float32).

    It is a ``torch.distributions.Independent(Uniform)``, like ``sbi.utils.BoxUniform``, so
    sbi's prior checks accept it; ``support`` is the box. Extra attributes: ``names``,
    ``units``, ``specs``, ``name`` and helpers to move between tensors and dicts.
    """

    def __init__(self, specs: tuple[ParameterSpec, ...], *, name: str = "prior",
                 description: str = "", device: str | torch.device = "cpu") -> None:
        if not specs:
            raise SpecError("a prior needs at least one parameter")
        low = torch.tensor([s.low for s in specs], dtype=torch.float32, device=device)
        high = torch.tensor([s.high for s in specs], dtype=torch.float32, device=device)
        super().__init__(Uniform(low, high, validate_args=False), 1, validate_args=False)
        self.specs = tuple(specs)
        self.name = name
        self.description = description

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    @property
    def units(self) -> dict[str, str]:
        return {s.name: s.unit for s in self.specs}

    @property
    def low(self) -> torch.Tensor:
        return self.base_dist.low

    @property
    def high(self) -> torch.Tensor:
        return self.base_dist.high

    @constraints.dependent_property(is_discrete=False, event_dim=1)
    def support(self):
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=torch.float32, device=self.low.device)
        inside = ((value >= self.low) & (value <= self.high)).all(-1)
        lp = -torch.log(self.high - self.low).sum()
        return torch.where(inside, lp, torch.tensor(-math.inf, device=value.device))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return super().sample(sample_shape).to(torch.float32)

    def in_support(self, theta: torch.Tensor) -> torch.Tensor:
        """Boolean mask (batch) of parameter vectors inside the prior box."""
        theta = self.check(theta)
        return ((theta >= self.low) & (theta <= self.high)).all(-1)

    def check_in_support(self, theta: Any, *, hint: str = "") -> torch.Tensor:
        """:meth:`check`, then require every value inside the box (bounds included).

        Raises :class:`~gcsbi.errors.GcsbiValueError` naming the first value outside (row, parameter,
        value, bounds) and how many more there are; ``hint`` is appended to the message.
        """
        t = self.check(theta)
        low, high = self.low.to(t.device), self.high.to(t.device)
        outside = (t < low) | (t > high)
        if bool(outside.any()):
            rows, cols = torch.nonzero(outside, as_tuple=True)
            i, j = int(rows[0]), int(cols[0])
            s = self.specs[j]
            more = int(outside.sum()) - 1
            msg = (f"theta row {i}: {s.name} = {float(t[i, j]):g} is outside the prior {self.name!r} "
                   f"bounds [{s.low:g}, {s.high:g}]")
            if more:
                msg += f" ({more} more value{'s' if more > 1 else ''} outside)"
            raise GcsbiValueError(msg + hint)
        return t

    def check(self, theta: Any) -> torch.Tensor:
        """Validate a (B, D) or (D,) parameter array: shape, finiteness; returns float32 (B, D)."""
        t = torch.as_tensor(theta, dtype=torch.float32)
        if t.ndim == 1:
            t = t[None]
        if t.ndim != 2 or t.shape[1] != len(self.specs):
            raise GcsbiValueError(
                f"theta must have shape (B, {len(self.specs)}) for parameters {self.names}, "
                f"got {tuple(torch.as_tensor(theta).shape)}"
            )
        if not torch.isfinite(t).all():
            raise GcsbiValueError("theta contains NaN or inf")
        return t

    def to_dict(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        t = self.check(theta)
        return {name: t[:, i] for i, name in enumerate(self.names)}

    def from_dict(self, values: dict[str, Any]) -> torch.Tensor:
        missing = [n for n in self.names if n not in values]
        unknown = [k for k in values if k not in self.names]
        if missing or unknown:
            raise GcsbiValueError(f"missing parameters {missing}, unknown {unknown}; expected {self.names}")
        cols = [torch.as_tensor(values[n], dtype=torch.float32).reshape(-1) for n in self.names]
        return self.check(torch.stack(torch.broadcast_tensors(*cols), dim=-1))

    def __repr__(self) -> str:
        body = ", ".join(f"{s.name}∈[{s.low:g}, {s.high:g}]" for s in self.specs)
        return f"NamedBoxPrior({self.name}: {body})"


def _parse(data: dict[str, Any],
           source: str) -> tuple[str, str, tuple[ParameterSpec, ...], dict[str, dict[str, float]]]:
    """(name, description, parameters, reference clusters) of a prior document."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise SpecError(f"{source}: unknown keys {sorted(unknown)}; allowed {sorted(_TOP_KEYS)}")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SpecError(f"{source}: needs a [parameters.<name>] table per parameter")
    specs = []
    for name, entry in params.items():
        if not isinstance(entry, dict):
            raise SpecError(f"{source}: parameters.{name} must be a table")
        bad = set(entry) - _PARAM_KEYS
        if bad:
            raise SpecError(f"{source}: parameters.{name}: unknown keys {sorted(bad)}; allowed {sorted(_PARAM_KEYS)}")
        bounds = [entry.get("low"), entry.get("high")]
        if any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds):
            raise SpecError(f"{source}: parameters.{name} needs numeric 'low' and 'high', got {bounds}")
        low, high = float(bounds[0]), float(bounds[1])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise SpecError(f"{source}: parameters.{name}: need finite low < high, got [{low}, {high}]")
        specs.append(ParameterSpec(name, low, high, str(entry.get("unit", "")), str(entry.get("description", ""))))
    refs = _parse_references(data.get("reference_clusters", {}), tuple(specs), source)
    return str(data.get("name", source)), str(data.get("description", "")), tuple(specs), refs


def _parse_references(tables: Any, specs: tuple[ParameterSpec, ...], source: str) -> dict[str, dict[str, float]]:
    """``[reference_clusters.<name>]``: a value inside the box for every parameter (+ description)."""
    if not isinstance(tables, dict):
        raise SpecError(f"{source}: reference_clusters must be a table of [reference_clusters.<name>] tables")
    names = [s.name for s in specs]
    out: dict[str, dict[str, float]] = {}
    for ref, entry in tables.items():
        where = f"{source}: reference_clusters.{ref}"
        if not isinstance(entry, dict):
            raise SpecError(f"{where} must be a table")
        if not isinstance(entry.get("description", ""), str):
            raise SpecError(f"{where}.description must be a string")
        values = {k: v for k, v in entry.items() if k != "description"}
        missing, unknown = [n for n in names if n not in values], [k for k in values if k not in names]
        if missing or unknown:
            raise SpecError(f"{where}: missing parameters {missing}, unknown keys {unknown}; needs {names} "
                            "(and optionally description)")
        for s in specs:
            v = values[s.name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not s.low <= v <= s.high:
                raise SpecError(f"{where}.{s.name} = {v!r} must be a number in the prior's [{s.low:g}, {s.high:g}]")
        out[ref] = {n: float(values[n]) for n in names}
    return out


def load_prior(name_or_path: str | Path, *, device: str | torch.device = "cpu") -> NamedBoxPrior:
    """Load a shipped prior (``"m31-gc"``, ``"milky-way-gc"``) or a user TOML file."""
    path = find_spec("priors", name_or_path)
    name, description, specs, _ = _parse(read_toml(path), str(path))
    return NamedBoxPrior(specs, name=name, description=description, device=device)


def reference_cluster(name: str, prior: str | Path = "m31-gc") -> dict[str, float]:
    """The parameters of the reference cluster ``name`` of ``prior`` (``[reference_clusters.<name>]``).

    ``reference_cluster("B165")``: the B165-like M31 globular cluster of ``priors/m31-gc.toml``, a
    dict ``{parameter: value}`` in the prior's parameter order (feed it to ``prior.from_dict``).
    """
    path = find_spec("priors", prior)
    refs = _parse(read_toml(path), str(path))[3]
    if name not in refs:
        raise SpecError(f"{path}: no reference cluster {name!r}; it has {sorted(refs) or 'none'}")
    return refs[name]
