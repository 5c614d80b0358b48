"""Integrity of the model files gcsbi loads: size caps, zip CRCs and one SHA-256 over metadata and weights.

Every model file (image and catalogue posteriors, map models) is a ``torch.save`` archive of
plain containers: a dict with ``format``, ``format_version``, a JSON ``meta`` string, tensors
(``state_dict`` and others) and ``sha256``. The digest covers everything else in the dict --
metadata included, so a file cannot be edited to name other code, other shapes or other
settings without failing the check. Reading a file:

1. its size, and the uncompressed sizes its zip directory declares, must stay under
   :data:`MAX_MODEL_BYTES` (checked before anything is decompressed or unpickled);
2. every zip member's CRC-32 must match (flipped bytes anywhere);
3. it is unpickled with ``torch.load(weights_only=True)`` (no code objects);
4. ``sha256`` must be present and match :func:`payload_digest`.

A file without a digest (written before digests covered metadata) is refused unless the user
trusts it explicitly: ``trust_unverified=True`` in the Python API or the environment variable
``GCSBI_TRUST_UNVERIFIED=1``. Saving it again stamps it. A digest that does not match is refused
whatever the trust setting.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import GcsbiFileError

__all__ = ["MAX_MODEL_BYTES", "TRUST_ENV", "DIGEST_KEY", "payload_digest", "stamp", "read_model_file",
           "trusts_unverified", "json_digest", "write_json_model", "read_json_model"]

#: Largest model file gcsbi reads (the shipped ones are a few MB).
MAX_MODEL_BYTES = 1 << 30
#: Environment variable that lets files without a digest load (value ``1``).
TRUST_ENV = "GCSBI_TRUST_UNVERIFIED"
DIGEST_KEY = "sha256"


def trusts_unverified(trust_unverified: bool | None = None) -> bool:
    """The explicit argument if given, else whether ``GCSBI_TRUST_UNVERIFIED`` is set to 1/true/yes."""
    if trust_unverified is not None:
        return bool(trust_unverified)
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")


def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged serialisation of ``obj`` to the hash."""
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"T|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        keys = sorted(obj, key=str)
        h.update(f"D|{len(keys)}|".encode())
        for k in keys:
            key = str(k).encode()
            h.update(f"K|{len(key)}|".encode() + key)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L|{len(obj)}|".encode())
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, str):
        b = obj.encode()
        h.update(f"S|{len(b)}|".encode() + b)
    elif obj is None or isinstance(obj, (bool, int, float)):
        h.update(f"V|{json.dumps(obj, allow_nan=True)}|".encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}")


def payload_digest(payload: Mapping[str, Any]) -> str:
    """Hex SHA-256 over every entry of ``payload`` except ``sha256`` (names, types, shapes, bytes)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != DIGEST_KEY})
    return h.hexdigest()


def stamp(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its :func:`payload_digest` stored under ``sha256`` (in place; returned)."""
    payload[DIGEST_KEY] = payload_digest(payload)
    return payload


def _check_archive(path: Path, what: str, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise GcsbiFileError(f"{path}: {what} is {size} bytes, more than the {max_bytes} bytes gcsbi reads")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            declared = sum(int(i.file_size) for i in infos)
            if declared > max_bytes:
                raise GcsbiFileError(f"{path}: {what} declares {declared} bytes of content, more than the "
                                     f"{max_bytes} bytes gcsbi reads (decompression bomb?)")
            bad = zf.testzip()
    except GcsbiFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise GcsbiFileError(f"{path}: not a readable {what} (corrupt or truncated zip archive?): {exc}") from exc
    except OSError as exc:
        raise GcsbiFileError(f"{path}: cannot read {what}: {exc}") from exc
    if bad is not None:
        raise GcsbiFileError(f"{path}: {what} is corrupt: member {bad!r} fails its CRC-32 or header check "
                             "(damaged in transfer or on disk?); restore the file")


def read_model_file(path: str | Path, *, fmt: str, what: str, trust_unverified: bool | None = None,
                    max_bytes: int = MAX_MODEL_BYTES) -> dict[str, Any]:
    """The verified payload of a gcsbi model file of format ``fmt`` (see the module docstring).

    ``what`` names the kind of file in messages ("posterior checkpoint", "map model").
    Raises :class:`GcsbiFileError` on any failure, in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"{what} not found: {path}")
    _check_archive(path, what, max_bytes)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, ... from a damaged or foreign file
        msg = " ".join(str(exc).split())[:200]
        raise GcsbiFileError(f"{path}: not a readable {what} (corrupt or truncated?): {type(exc).__name__}: "
                             f"{msg}") from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise GcsbiFileError(f"{path}: not a {what} (format {fmt!r})")
    stored = payload.get(DIGEST_KEY)
    if stored is None:
        if not trusts_unverified(trust_unverified):
            raise GcsbiFileError(
                f"{path}: {what} carries no SHA-256 over its weights and metadata (older gcsbi, or the digest was "
                f"removed), so it cannot be verified; if you trust it, set {TRUST_ENV}=1 (Python: "
                "trust_unverified=True) and save it again to stamp it")
        return payload
    try:
        actual = payload_digest(payload)
    except TypeError as exc:
        raise GcsbiFileError(f"{path}: {what} holds an entry of an unexpected type: {exc}") from exc
    if not isinstance(stored, str) or stored != actual:
        raise GcsbiFileError(f"{path}: {what} is corrupt or was modified: its content does not match the SHA-256 "
                             "stored at save time")
    return payload


def json_digest(content: Any) -> str:
    """Hex SHA-256 of ``content`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_json_model(path: str | Path, key: str, content: dict[str, Any]) -> Path:
    """Write ``{key: content, "sha256": ...}`` atomically; refuses to replace a file that is not one of these."""
    path = Path(path)
    if path.exists():
        try:
            json.loads(path.read_text())[key]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is someone else's
            raise GcsbiFileError(f"{path}: exists and is not a gcsbi {key} file; not overwriting") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({key: content, DIGEST_KEY: json_digest(content)}, separators=(",", ":")))
    tmp.replace(path)
    return path


def read_json_model(path: str | Path, key: str, *, max_bytes: int, parse: Any = None) -> Any:
    """The ``key`` content of a file written by :func:`write_json_model`, after its size and SHA-256 checks.

    ``parse`` (e.g. a ``from_dict``) turns the content into an object; its ``ValueError``/``KeyError``/
    ``TypeError`` become a :class:`GcsbiFileError` naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise GcsbiFileError(f"{path}: cannot read the {key} file ({exc.strerror})") from exc
    if size > max_bytes:
        raise GcsbiFileError(f"{path}: {size} bytes, more than a {key} file may have ({max_bytes})")
    try:
        doc = json.loads(path.read_text())
        content, digest = doc[key], doc[DIGEST_KEY]
    except (ValueError, KeyError, TypeError) as exc:
        raise GcsbiFileError(f"{path}: not a gcsbi {key} file (JSON with {key!r} and 'sha256')") from exc
    if not isinstance(content, dict) or json_digest(content) != digest:
        raise GcsbiFileError(f"{path}: SHA-256 of the content does not match the stored one; the file was changed")
    if parse is None:
        return content
    try:
        return parse(content)
    except (KeyError, TypeError, ValueError) as exc:  # GcsbiValueError is a ValueError
        raise GcsbiFileError(f"{path}: invalid {key} file: {exc}") from exc
