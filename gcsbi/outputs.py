"""Writing output folders and files without destroying the user's data, and printing untrusted text safely.

Output folders (``gcsbi infer --out``, the demo, ``gcsbi m31 ... --out``) are written by
:func:`output_dir`: into a fresh hidden sibling ``.NAME.tmp-<pid>`` first, then renamed into
place, so an interrupted run leaves the target as it was. The target may be new, an empty
folder, or a folder gcsbi wrote before. gcsbi recognises its own folders by a marker that
records the kind of output and the top-level names it wrote: the file ``.gcsbi-output.json``,
or, when the folder is itself a Zarr store, the root attribute ``gcsbi_output`` in its
``zarr.json`` (a stray file would make Zarr warn on every read), as JSON text (a dict attribute
would keep the DataTree read from the store from being written as NetCDF). Anything else (a folder of the
user's, a gcsbi folder holding files gcsbi did not write, a regular file, the current working
folder) is refused with a one-line :class:`~gcsbi.errors.GcsbiFileError` and nothing is touched.

Single output files named by the user are checked by :func:`check_file_target`: gcsbi
overwrites a file only when it already holds the kind of file gcsbi writes there.

:func:`printable` escapes control characters in text read from files (bank failure messages,
names stored in checkpoints) so that printing it cannot drive the terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import GcsbiFileError

__all__ = ["MARKER", "ZARR_ATTR", "output_dir", "check_output_dir", "read_marker", "check_file_target",
           "printable"]

MARKER = ".gcsbi-output.json"
ZARR_ATTR = "gcsbi_output"
_FORMAT = "gcsbi-output"
_HOW = "choose a new or empty folder"

# Leading bytes of each kind of file gcsbi writes, by suffix (after leading whitespace for text).
_MAGIC: dict[str, tuple[bytes, ...]] = {
    ".png": (b"\x89PNG\r\n\x1a\n",), ".pdf": (b"%PDF",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",),
    ".svg": (b"<?xml", b"<svg"), ".eps": (b"%!PS",), ".ps": (b"%!PS",),
    ".fits": (b"SIMPLE  =",), ".fit": (b"SIMPLE  =",), ".fts": (b"SIMPLE  =",),
    ".npz": (b"PK\x03\x04", b"PK\x05\x06"), ".ecsv": (b"# %ECSV",), ".json": (b"{",),
    ".pt": (b"PK\x03\x04",),  # torch.save archives: posteriors, map models
    ".nc": (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02"),  # NetCDF4 (HDF5) or NetCDF3: DataTrees
}

# C0, DEL, C1 (ESC, BEL, CR, CSI/OSC starters among them), bidirectional and invisible format
# characters (text that displays other than it reads), line separators, lone surrogates.
_UNSAFE = "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff"
_UNSAFE_RE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_BUT_NEWLINE_RE = re.compile(f"(?!\n)[{_UNSAFE}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: object, *, newlines: bool = False) -> str:
    """``str(text)`` with control and invisible format characters escaped visibly (ESC as ``\\x1b``).

    Use it for every string read from a file before printing it. ``newlines=True`` keeps
    ``\\n`` (multi-line tables); every other control character is still escaped.
    """
    return (_UNSAFE_BUT_NEWLINE_RE if newlines else _UNSAFE_RE).sub(_escape, str(text))


def _names(entries: list[str], limit: int = 5) -> str:
    shown = ", ".join(printable(e) for e in entries[:limit])
    return shown + (f", ... ({len(entries)} in all)" if len(entries) > limit else "")


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of an output folder gcsbi wrote (``kind``, ``names``), or None if it has none."""
    folder = Path(folder)
    try:
        if (folder / MARKER).is_file():
            marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        elif (folder / "zarr.json").is_file():
            meta = json.loads((folder / "zarr.json").read_text(encoding="utf-8"))
            marker = meta.get("attributes", {}).get(ZARR_ATTR) if isinstance(meta, dict) else None
            if isinstance(marker, str):  # JSON text (a dict attribute would not store as NetCDF)
                marker = json.loads(marker)
        else:
            return None
    except (OSError, ValueError, AttributeError):
        return None
    ok = (isinstance(marker, dict) and marker.get("format") == _FORMAT and isinstance(marker.get("kind"), str)
          and isinstance(marker.get("names"), list) and all(isinstance(n, str) for n in marker["names"]))
    return marker if ok else None


def check_output_dir(path: str | Path) -> Path:
    """The resolved folder ``path`` if :func:`output_dir` may write it; else GcsbiFileError.

    Allowed: a path that does not exist, an empty folder, or a folder gcsbi wrote (its marker
    lists every top-level entry). Refused: anything else, a file, and the current working
    folder or a folder holding it (replacing it would pull the folder from under the shell).
    """
    target = Path(path).resolve()
    if target.parent == target:
        raise GcsbiFileError(f"{path}: cannot write an output folder over the filesystem root; {_HOW}")
    if not target.exists():
        return target
    if not target.is_dir():
        raise GcsbiFileError(f"{path} exists and is not a folder; gcsbi writes its output as a folder and does not "
                             f"overwrite files: {_HOW}")
    try:
        entries = sorted(os.listdir(target))
    except OSError as exc:
        raise GcsbiFileError(f"cannot list the output folder {path}: {exc.strerror or exc}") from exc
    if entries:
        marker = read_marker(target)
        if marker is None:
            raise GcsbiFileError(f"{path} is not empty and was not written by gcsbi (it holds {_names(entries)}); "
                                 f"gcsbi does not write into or replace such a folder: {_HOW}")
        foreign = [e for e in entries if e not in marker["names"] and e != MARKER]
        if foreign:
            raise GcsbiFileError(f"{path} is a gcsbi output but also holds files gcsbi did not write "
                                 f"({_names(foreign)}); move them out, or {_HOW}")
    cwd = Path.cwd().resolve()
    if cwd == target or target in cwd.parents:
        raise GcsbiFileError(f"{path} is the current working folder or holds it; gcsbi replaces its output folder "
                             f"as a whole: {_HOW} (e.g. {Path(path) / 'gcsbi-output'})")
    return target


def _sibling(target: Path, tag: str, *, create: bool) -> Path:
    """A new name ``.NAME.<tag>-<pid>[-k]`` next to ``target`` (a new empty folder if ``create``)."""
    for k in range(1000):
        candidate = target.with_name(f".{target.name}.{tag}-{os.getpid()}" + (f"-{k}" if k else ""))
        if create:
            with contextlib.suppress(FileExistsError):
                candidate.mkdir()
                return candidate
        elif not os.path.lexists(candidate):
            return candidate
    raise GcsbiFileError(f"cannot find a free temporary name next to {target}")


def _write_marker(folder: Path, kind: str) -> None:
    import importlib.metadata

    names = sorted(e for e in os.listdir(folder) if e != MARKER)
    try:
        version = importlib.metadata.version("gcsbi")
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    marker = {"format": _FORMAT, "kind": kind, "names": names, "gcsbi_version": version}
    meta_path = folder / "zarr.json"
    if meta_path.is_file():  # a Zarr store: the marker goes into the root attributes
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        # JSON text, not a dict: the DataTree read from the store then stores as NetCDF as it is
        meta.setdefault("attributes", {})[ZARR_ATTR] = json.dumps(marker)
        meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    else:
        (folder / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")


def _swap(tmp: Path, target: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``target`` (absent, empty, or a checked gcsbi output)."""
    if not target.exists() or not any(target.iterdir()):
        os.rename(tmp, target)  # rename(2) replaces an empty folder atomically
        return
    old = _sibling(target, "old", create=False)
    os.rename(target, old)
    try:
        check_output_dir(old)  # still only gcsbi's entries now that it is out of reach
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old)  # gcsbi's own previous output: its marker listed every entry


@contextlib.contextmanager
def output_dir(path: str | Path, *, kind: str) -> Iterator[Path]:
    """Write the output folder ``path`` safely: yields a fresh temporary folder to fill.

    On leaving the block without an error, gcsbi's marker (``kind`` and the top-level names
    written) goes into the folder and it replaces ``path``; an old gcsbi output there is removed
    only then. On an error or Ctrl-C the temporary folder is removed and ``path`` is untouched.
    ``path`` is checked on entry and again before the swap (:func:`check_output_dir`).
    """
    target = check_output_dir(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _sibling(target, "tmp", create=True)
    except OSError as exc:
        raise GcsbiFileError(f"cannot create the output folder {path}: {exc.strerror or exc}") from exc
    try:
        yield tmp
        _write_marker(tmp, kind)
        target = check_output_dir(path)  # it may have changed while the output was computed
        _swap(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, GcsbiFileError):
            raise
        raise GcsbiFileError(f"cannot write the output folder {path}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_file_target(path: str | Path) -> Path:
    """``Path(path)`` if gcsbi may write the file there; else GcsbiFileError.

    Allowed: a new name, an empty file, or a file that already holds the kind of file its
    suffix names (PNG, PDF, FITS, .npz, ...: one gcsbi or the user wrote the same way). A
    folder, a special file, a file of another kind or of a suffix gcsbi cannot check is refused.
    """
    p = Path(path)
    if p.is_dir():
        raise GcsbiFileError(f"{path} is a folder; give a file name for this output")
    if not p.exists():
        return p
    if not p.is_file():
        raise GcsbiFileError(f"{path} exists and is not a regular file; give another file name")
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise GcsbiFileError(f"cannot read {path} to check what it holds: {exc.strerror or exc}") from exc
    magic = _MAGIC.get(p.suffix.lower())
    if not head or (magic and head.lstrip().startswith(magic)):
        return p
    what = f"is not a {p.suffix.lower()} file" if magic else f"has a suffix gcsbi cannot check ({p.suffix!r})"
    raise GcsbiFileError(f"{path} exists and {what}; gcsbi does not overwrite it: give another file name or "
                         "remove it first")
