"""Locate the declarative TOML specs shipped with gcsbi (``simulators/``, ``priors/``) or given by path."""

from __future__ import annotations

import codecs
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import GcsbiFileError, SpecError

__all__ = ["spec_folders", "find_spec", "read_toml", "available_specs"]

_KINDS = ("simulators", "priors")


def spec_folders(kind: str) -> list[Path]:
    """Folders searched for shipped specs of ``kind``: the source tree, then the installed wheel."""
    if kind not in _KINDS:
        raise SpecError(f"unknown spec kind {kind!r}; expected one of {_KINDS}")
    here = Path(__file__).resolve().parent
    folders = [here.parents[1] / kind, Path(str(resources.files("gcsbi"))) / "_specs" / kind]
    unique = []
    for f in folders:
        if f.is_dir() and f.resolve() not in [u.resolve() for u in unique]:
            unique.append(f)
    return unique


def available_specs(kind: str) -> list[str]:
    return sorted({p.stem for folder in spec_folders(kind) for p in folder.glob("*.toml")})


def find_spec(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a shipped spec name (``"m31-gc"``) or a path to a user TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise GcsbiFileError(f"{kind[:-1]} spec file not found: {path}")
        return path
    for folder in spec_folders(kind):
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    raise SpecError(
        f"unknown {kind[:-1]} spec {str(name_or_path)!r}; shipped: {available_specs(kind)} "
        f"(or give a path to a .toml file)"
    )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; an unreadable file is a :class:`GcsbiFileError`, bad content a :class:`SpecError`.

    TOML is UTF-8 text (a leading byte-order mark is skipped), so a binary file or one in another
    encoding is refused, naming the first offending byte.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise GcsbiFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a TOML file: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
