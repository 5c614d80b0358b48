"""The on-disk format of a simulation bank: its stored config and opening the Zarr group."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GcsbiFileError
from .factory import one_line

__all__ = ["FORMAT_VERSION", "BankConfig", "open_group", "read_config", "truth_array"]

FORMAT_VERSION = 1
_ATTR = "gcsbi_bank"
_ARRAYS = ("theta", "x", "failed", "message", "done")
_MAX_LOG = 1000
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class BankConfig:
    """Everything needed to (re)compute any chunk of a bank, stored in the Zarr attributes."""

    simulator_factory: str
    factory_kwargs: dict[str, Any]
    n: int
    chunk_size: int
    seed: int
    param_names: tuple[str, ...]
    output_shape: tuple[int, ...]
    prior: dict[str, Any]
    simulator_spec: dict[str, Any]
    gcsbi_version: str
    format_version: int = FORMAT_VERSION
    truth: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (name, row shape) of stored truth maps

    @property
    def truth_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.truth)

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.n / self.chunk_size)

    def chunk_bounds(self, chunk: int) -> tuple[int, int]:
        """Row range [lo, hi) of chunk ``chunk``."""
        lo = chunk * self.chunk_size
        return lo, min(lo + self.chunk_size, self.n)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["param_names"], d["output_shape"] = list(self.param_names), list(self.output_shape)
        d["truth"] = [[name, list(shape)] for name, shape in self.truth]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BankConfig:
        """Parse stored attributes, checking every type (a bank file is untrusted input)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - set(d) - {"format_version", "truth"}
        if missing:
            raise GcsbiFileError(f"bank config is missing keys {sorted(missing)}")
        kw = {k: d[k] for k in fields if k in d}

        def bad(key: str, what: str) -> GcsbiFileError:
            return GcsbiFileError(f"bank config {key!r} must be {what}, got {one_line(repr(kw[key]), 80)}")

        def is_int(v: Any, minimum: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= minimum

        for key in ("simulator_factory", "gcsbi_version"):
            if not isinstance(kw[key], str):
                raise bad(key, "a string")
        for key in ("factory_kwargs", "prior", "simulator_spec"):
            if not isinstance(kw[key], dict):
                raise bad(key, "a JSON object")
        for key, minimum in (("n", 1), ("chunk_size", 1), ("seed", 0)):
            if not is_int(kw[key], minimum):
                raise bad(key, f"an integer >= {minimum}")
        if not (isinstance(kw["param_names"], list) and all(isinstance(s, str) for s in kw["param_names"])):
            raise bad("param_names", "a list of strings")
        if not (isinstance(kw["output_shape"], list) and all(is_int(s, 1) for s in kw["output_shape"])):
            raise bad("output_shape", "a list of positive integers")
        kw["param_names"] = tuple(kw["param_names"])
        kw["output_shape"] = tuple(kw["output_shape"])
        truth = kw.pop("truth", [])
        ok = isinstance(truth, list) and all(
            isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and t[0].isidentifier()
            and isinstance(t[1], list) and all(is_int(s, 1) for s in t[1]) for t in truth)
        if not ok:
            raise GcsbiFileError(f"bank config 'truth' must be a list of [name, shape], got {one_line(repr(truth), 80)}")
        kw["truth"] = tuple((str(name), tuple(shape)) for name, shape in truth)
        return cls(**kw)


def _why(exc: BaseException) -> str:
    """An exception for an error message (one line)."""
    return one_line(_fmt(exc))


def open_group(path: str | Path, *, mode: str) -> Any:
    import zarr

    p = Path(path)
    if not p.exists():
        raise GcsbiFileError(f"simulation bank not found: {p} (create it with SimulationBank.create)")
    try:
        return zarr.open_group(str(p), mode=mode)
    except Exception as exc:
        raise GcsbiFileError(f"{p} is not a readable Zarr v3 simulation bank: {_why(exc)}") from exc


def read_config(group: Any, path: str | Path) -> BankConfig:
    raw = group.attrs.get(_ATTR)
    if not isinstance(raw, dict):
        raise GcsbiFileError(f"{path} is a Zarr group but not a gcsbi simulation bank (no '{_ATTR}' attribute)")
    if raw.get("format_version") != FORMAT_VERSION:
        raise GcsbiFileError(f"{path}: unsupported bank format {raw.get('format_version')!r} (expected {FORMAT_VERSION})")
    cfg = BankConfig.from_json(raw)
    expected = {"theta": (cfg.n, len(cfg.param_names)), "x": (cfg.n, *cfg.output_shape),
                "failed": (cfg.n,), "message": (cfg.n,), "done": (cfg.n_chunks,)}
    expected |= {truth_array(name): (cfg.n, *shape) for name, shape in cfg.truth}
    for name, shape in expected.items():
        try:
            arr = group[name]
        except Exception as exc:
            raise GcsbiFileError(f"{path}: bank array '{name}' is missing or unreadable ({_why(exc)})") from exc
        if tuple(arr.shape) != shape:
            raise GcsbiFileError(f"{path}: bank array '{name}' has shape {tuple(arr.shape)}, expected {shape}")
    return cfg


def truth_array(name: str) -> str:
    """The Zarr array holding truth map ``name`` of every row."""
    return f"truth_{name}"


def _fmt(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_MESSAGE]
