"""SnapshotLibrary: a folder of N-body / Monte Carlo snapshots indexed by (age, mass, [Fe/H], model).

Layout and metadata::

    models/
        library.toml            optional: defaults and per-file settings (see below)
        library_index.json      written by the library: cached metadata for fast rescans
        run1/snap.40_0.h5part
        run1/snap.40_0.h5part.json   optional per-file sidecar (same keys as a [files] entry)
        cmc/N8-RV1/initial.snap0391.dat.gz
        cmc/N8-RV1/initial.conv.sh

``library.toml``::

    [defaults]                  # applies to every file
    feh = -1.5
    [files."run1/snap.40_0.h5part"]
    age_gyr = 12.0
    model = "king-w6"
    read = { units = "nbody", length_scale_pc = 2.0, mass_scale_msun = 2e5 }

Metadata of a file come, in order of priority, from its ``<file>.json`` sidecar, its
``[files."relative/path"]`` entry, ``[defaults]``, and the file itself (snapshot
time for the age, Z for [Fe/H]; the mass is always the snapshot's total current
mass). The model name defaults to the file's parent folder (the file stem at the
top level). ``read`` holds keyword arguments of :func:`read_snapshot`.

Files with snapshot-like names (``.npz .h5 .hdf5 .h5part .fits .ecsv .csv .dat
.dat.gz``, PeTar ``data.N``, anything listed in ``library.toml``) are indexed; a file
that cannot be read or has no age/[Fe/H] is skipped with a ``GcsbiWarning`` and
listed in :attr:`SnapshotLibrary.skipped`. :meth:`SnapshotLibrary.get` returns the
nearest real snapshot under a random viewing angle; it never rescales masses or
radii to the requested parameters.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiError, GcsbiFileError, GcsbiValueError, GcsbiWarning
from .nbody import read_snapshot
from .snapshot import Snapshot

__all__ = ["LibraryEntry", "SnapshotLibrary", "INDEX_NAME", "CONFIG_NAME"]

INDEX_NAME = "library_index.json"
CONFIG_NAME = "library.toml"
_INDEX_VERSION = 1
_SUFFIXES = (".npz", ".h5", ".hdf5", ".h5part", ".fits", ".fit", ".fits.gz", ".ecsv", ".csv", ".dat", ".dat.gz")
_META_KEYS = {"age_gyr", "feh", "model", "format", "read"}
_READ_KEYS = {
    "format", "units", "length_scale_pc", "mass_scale_msun", "velocity_scale_kms", "step", "conv",
    "table_path", "recentre", "x", "y", "z", "vx", "vy", "vz", "mass", "initial_mass", "kstar",
    "luminosity", "log_l", "teff", "log_teff", "radius", "log_g",
}  # fmt: skip


@dataclass(frozen=True)
class LibraryEntry:
    """One indexed snapshot file."""

    relpath: str
    format: str
    model: str
    age_gyr: float
    mass_msun: float
    feh: float
    n_particles: int
    r_half_pc: float
    read_kwargs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _is_candidate(path: Path) -> bool:
    name = path.name.lower()
    if name.startswith(".") or name in (INDEX_NAME, CONFIG_NAME):
        return False
    return name.endswith(_SUFFIXES) or re.match(r"^data\.\d+$", name) is not None


def _check_meta(meta: Any, where: str) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise GcsbiValueError(f"{where}: expected a table/object of settings, got {type(meta).__name__}")
    unknown = set(meta) - _META_KEYS
    if unknown:
        raise GcsbiValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed {sorted(_META_KEYS)}")
    read = meta.get("read", {})
    if not isinstance(read, dict) or set(read) - _READ_KEYS:
        raise GcsbiValueError(f"{where}: bad 'read' settings {read!r}; allowed keys {sorted(_READ_KEYS)}")
    return dict(meta)


class SnapshotLibrary:
    """Index of the snapshot files under ``folder`` (recursively).

    Args:
        folder: the library root.
        write_index: cache per-file metadata in ``library_index.json`` (skipped
            silently when the folder is read-only); entries are reused while the
            file's size, modification time and metadata settings are unchanged.
        cache_size: number of recently read snapshots kept in memory (CMC snapshots,
            whose 3D realisation depends on ``rng``, are never cached).
    """

    def __init__(self, folder: str | Path, *, write_index: bool = True, cache_size: int = 2) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise GcsbiFileError(f"snapshot library folder not found: {self.folder}")
        self._write_index = bool(write_index)
        self._cache_size = max(0, int(cache_size))
        self._cache: dict[str, Snapshot] = {}
        self.entries: tuple[LibraryEntry, ...] = ()
        self.skipped: tuple[tuple[str, str], ...] = ()
        self.rescan()

    # ------------------------------------------------------------------ scanning
    def _config(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        cfg_path = self.folder / CONFIG_NAME
        if not cfg_path.is_file():
            return {}, {}
        try:
            cfg = tomllib.loads(cfg_path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise GcsbiFileError(f"{cfg_path}: malformed TOML: {exc}") from exc
        unknown = set(cfg) - {"defaults", "files"}
        if unknown:
            raise GcsbiValueError(f"{cfg_path}: unknown section(s) {sorted(unknown)}; expected [defaults], [files]")
        defaults = _check_meta(cfg.get("defaults", {}), f"{cfg_path} [defaults]")
        files = {str(k): _check_meta(v, f"{cfg_path} [files.{k!r}]") for k, v in cfg.get("files", {}).items()}
        return defaults, files

    def _settings(self, path: Path, rel: str, defaults: dict, files: dict) -> dict[str, Any]:
        meta = {k: v for k, v in defaults.items() if k != "read"}
        read = dict(defaults.get("read", {}))
        layers = [files.get(rel, {})]
        sidecar = path.with_name(path.name + ".json")
        if sidecar.is_file():
            try:
                layers.append(_check_meta(json.loads(sidecar.read_text()), str(sidecar)))
            except json.JSONDecodeError as exc:
                raise GcsbiFileError(f"{sidecar}: malformed JSON: {exc}") from exc
        for layer in layers:
            meta.update({k: v for k, v in layer.items() if k != "read"})
            read.update(layer.get("read", {}))
        if "format" in meta:
            read["format"] = meta.pop("format")
        meta["read"] = read
        return meta

    def rescan(self) -> None:
        """(Re)build the index; unreadable files are skipped with a warning."""
        defaults, files = self._config()
        paths = {p for p in self.folder.rglob("*") if p.is_file() and _is_candidate(p)}
        paths |= {self.folder / rel for rel in files if (self.folder / rel).is_file()}
        index = self._load_index()
        new_index: dict[str, Any] = {}
        entries: list[LibraryEntry] = []
        skipped: list[tuple[str, str]] = []
        for path in sorted(paths):
            rel = path.relative_to(self.folder).as_posix()
            key: dict[str, Any] | None = None
            try:
                settings = self._settings(path, rel, defaults, files)
                stat = path.stat()
                key = json.loads(json.dumps(
                    {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "settings": settings}, default=str
                ))  # fmt: skip
                cached = index.get(rel)
                if cached and cached.get("key") == key and "error" in cached:
                    raise GcsbiFileError(cached["error"])  # known bad, unchanged since: not re-read
                if cached and cached.get("key") == key:
                    entry = LibraryEntry(**cached["entry"])
                else:
                    entry = self._make_entry(path, rel, settings)
                new_index[rel] = {"key": key, "entry": asdict(entry)}
                entries.append(entry)
            except (GcsbiError, OSError, TypeError, KeyError) as exc:
                skipped.append((rel, str(exc)))
                if key is not None:
                    new_index[rel] = {"key": key, "error": str(exc)}
                warnings.warn(f"snapshot library: skipping {rel}: {exc}", GcsbiWarning, stacklevel=2)
        self.entries, self.skipped = tuple(entries), tuple(skipped)
        self._cache.clear()
        if self._write_index:
            self._save_index(new_index)

    def _make_entry(self, path: Path, rel: str, settings: dict[str, Any]) -> LibraryEntry:
        read = dict(settings["read"])
        snap = read_snapshot(
            path,
            age_gyr=settings.get("age_gyr"),
            feh=settings.get("feh"),
            rng=np.random.default_rng(0),  # only CMC needs angles; r_half is angle-independent
            **read,
        )
        if not (math.isfinite(snap.age_gyr) and math.isfinite(snap.feh)):
            raise GcsbiValueError(
                f"no age_gyr/feh (got {snap.age_gyr}, {snap.feh}); give them in {rel}.json or {CONFIG_NAME}"
            )
        model = settings.get("model") or (Path(rel).parent.as_posix() if "/" in rel else Path(rel).name.split(".")[0])
        read.setdefault("format", snap.meta.get("format") or _format_of(path, read))
        return LibraryEntry(
            relpath=rel,
            format=str(read["format"]),
            model=str(model),
            age_gyr=float(snap.age_gyr),
            mass_msun=snap.total_mass,
            feh=float(snap.feh),
            n_particles=len(snap),
            r_half_pc=snap.half_mass_radius(),
            read_kwargs=read,
        )

    def _load_index(self) -> dict[str, Any]:
        path = self.folder / INDEX_NAME
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
            if data.get("version") == _INDEX_VERSION and isinstance(data.get("files"), dict):
                return data["files"]
        except (OSError, ValueError, AttributeError):
            pass
        warnings.warn(f"snapshot library: ignoring unreadable index {path}", GcsbiWarning, stacklevel=3)
        return {}

    def _save_index(self, files: dict[str, Any]) -> None:
        path = self.folder / INDEX_NAME
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps({"version": _INDEX_VERSION, "files": files}, indent=1, default=str))
            tmp.replace(path)
        except OSError:  # read-only library: scanning still works, just not cached
            tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"SnapshotLibrary({str(self.folder)!r}, n={len(self)}, skipped={len(self.skipped)})"

    @property
    def table(self):  # -> astropy.table.Table
        """The index as an astropy Table (one row per snapshot)."""
        from astropy.table import Table

        names = ("relpath", "format", "model", "age_gyr", "mass_msun", "feh", "n_particles", "r_half_pc")
        dtypes = (str, str, str, float, float, float, int, float)
        rows = [tuple(getattr(e, n) for n in names) for e in self.entries]
        if not rows:
            return Table(names=names, dtype=dtypes)
        return Table(rows=rows, names=names)

    def models(self) -> tuple[str, ...]:
        return tuple(sorted({e.model for e in self.entries}))

    def nearest(
        self,
        *,
        age_gyr: float | None = None,
        mass: float | None = None,
        feh: float | None = None,
        model: str | None = None,
    ) -> LibraryEntry:
        """Entry closest to the requested parameters.

        Distance: sqrt(sum of squared differences in log10 mass, age and [Fe/H], each
        divided by its range across the library — or by 1 (dex, Gyr, dex) when the
        library does not span it). Parameters left None do not count; ``model``
        restricts to entries of that model. Ties go to the first entry by path.
        """
        if not self.entries:
            detail = f"; skipped: {[s[0] for s in self.skipped]}" if self.skipped else ""
            raise GcsbiValueError(f"snapshot library {self.folder} is empty{detail}")
        cands = [e for e in self.entries if model is None or e.model == model]
        if not cands:
            raise GcsbiValueError(f"no snapshots of model {model!r}; models: {self.models()}")
        query = {"mass": mass, "age": age_gyr, "feh": feh}
        for name, value in query.items():
            if value is not None and not (math.isfinite(float(value)) and (name != "mass" or value > 0)):
                raise GcsbiValueError(f"{name} must be finite{' and > 0' if name == 'mass' else ''}, got {value}")
        cols = {
            "mass": np.log10([e.mass_msun for e in self.entries]),
            "age": np.array([e.age_gyr for e in self.entries]),
            "feh": np.array([e.feh for e in self.entries]),
        }
        target = {"mass": None if mass is None else math.log10(mass), "age": age_gyr, "feh": feh}
        dist = np.zeros(len(cands))
        pos = {id(e): i for i, e in enumerate(self.entries)}
        idx = np.array([pos[id(e)] for e in cands])
        for name, col in cols.items():
            if target[name] is None:
                continue
            span = float(col.max() - col.min())
            dist += ((col[idx] - float(target[name])) / (span if span > 0 else 1.0)) ** 2
        return cands[int(np.argmin(dist))]

    def read(self, entry: LibraryEntry, *, rng: np.random.Generator | None = None) -> Snapshot:
        """Read an entry's snapshot (no rotation); ``rng`` is needed for CMC files."""
        uses_rng = entry.format == "cmc"
        if not uses_rng and entry.relpath in self._cache:
            return self._cache[entry.relpath]
        snap = read_snapshot(
            self.folder / entry.relpath, age_gyr=entry.age_gyr, feh=entry.feh, rng=rng, **entry.read_kwargs
        )
        meta = dict(snap.meta, library_model=entry.model, library_relpath=entry.relpath)
        snap = snap.replace(meta=meta)
        if not uses_rng and self._cache_size:
            self._cache[entry.relpath] = snap
            while len(self._cache) > self._cache_size:
                self._cache.pop(next(iter(self._cache)))
        return snap

    def get(
        self,
        *,
        age_gyr: float | None = None,
        mass: float | None = None,
        feh: float | None = None,
        model: str | None = None,
        rng: np.random.Generator,
        random_view: bool = True,
    ) -> Snapshot:
        """The nearest real snapshot (see :meth:`nearest`), under a random viewing angle.

        No rescaling: the snapshot keeps its own mass, size, age and [Fe/H] (its
        ``age_gyr``/``feh`` are the library's values for that file). ``rng`` draws the
        rotation (and the CMC angles); the same seed gives identical arrays.
        """
        if not isinstance(rng, np.random.Generator):
            raise GcsbiValueError("rng must be a numpy.random.Generator")
        entry = self.nearest(age_gyr=age_gyr, mass=mass, feh=feh, model=model)
        snap = self.read(entry, rng=rng)
        return snap.random_view(rng) if random_view else snap


def _format_of(path: Path, read: dict[str, Any]) -> str:
    from .nbody import detect_format

    return str(read.get("format") or detect_format(path))
