"""A cache of fitted CNF light ensembles, one entry per photometric sample and settings (numpy only).

Key: SHA-256 of the sample's bytes (projected radii and weights as little-endian float64), the footprint, the
seed and the fit settings (:meth:`~gcsbi_jeans.jflow.config.LightConfig.fit_settings`, canonical JSON).
Entry: ``<key>.npz`` (float64 arrays only, read with ``allow_pickle=False``: never unpickled) and ``<key>.json``
(sizes, the npz's SHA-256, the fit's metadata), the JSON written last (its presence commits the entry). On
read, the npz's hash, the array names, dtypes, shapes and finiteness are checked; an entry that fails any check
is ignored with a :class:`~gcsbi_jeans.errors.JeansWarning` and the ensemble refitted (and rewritten).

Files are written only inside a folder gcsbi-jeans created itself: ``<root>/light-cnf-v1``, made with a marker
file; a folder of that name without the marker is never written to (a warning; the fit goes uncached). The root
is ``cache_dir`` when given, else ``$GCSBI_JEANS_CACHE``, else ``$XDG_CACHE_HOME/gcsbi-jeans`` (``~/.cache``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import JeansWarning
from .light_table import LightEnsemble, TabulatedLight

__all__ = ["cache_folder", "cache_key", "load_ensemble", "save_ensemble", "cnf_light", "CACHE_VERSION"]

CACHE_VERSION = 1
_SUBDIR = f"light-cnf-v{CACHE_VERSION}"
_MARKER = ".gcsbi-jeans-cache"
_MARKER_TEXT = "gcsbi-jeans light-profile cache; every file here is written by gcsbi_jeans.core.light_cache\n"
_ARRAYS = ("ln_r", "ln_n", "background")
#: largest entry read back (members x grid points)
_MAX_VALUES = 10_000_000


def _root(cache_dir: str = "") -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("GCSBI_JEANS_CACHE"):
        return Path(os.environ["GCSBI_JEANS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "gcsbi-jeans"


def cache_folder(cache_dir: str = "", *, create: bool = False) -> Path | None:
    """The cache's own folder, or None when it is missing (and not ``create``) or not one gcsbi-jeans made."""
    folder = _root(cache_dir) / _SUBDIR
    marker = folder / _MARKER
    if folder.is_dir():
        ok = marker.is_file() and marker.read_text(errors="replace") == _MARKER_TEXT
        if not ok:
            warnings.warn(JeansWarning(f"{folder} exists but gcsbi-jeans did not create it (no {_MARKER}); the "
                                       f"light-profile cache is not used"), stacklevel=3)
        return folder if ok else None
    if not create:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=False)
        marker.write_text(_MARKER_TEXT)
    except OSError as exc:
        warnings.warn(JeansWarning(f"cannot create the light-profile cache {folder}: {exc}; not cached"),
                      stacklevel=3)
        return None
    return folder


def cache_key(R: np.ndarray, w: np.ndarray, settings: dict, *, R_max: float | None, seed: int) -> str:
    """SHA-256 (hex) of the sample's bytes and the settings."""
    h = hashlib.sha256(f"gcsbi-jeans light cache v{CACHE_VERSION}\0".encode())
    for a in (R, w):
        arr = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
        h.update(str(arr.size).encode() + b"\0")
        h.update(arr.tobytes())
    meta = {"settings": settings, "R_max": None if R_max is None else float(R_max), "seed": int(seed)}
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _bad(path: Path, why: str) -> None:
    warnings.warn(JeansWarning(f"light-profile cache entry {path.name} is unusable ({why}); refitting"),
                  stacklevel=3)


def load_ensemble(folder: Path, key: str) -> LightEnsemble | None:
    """The cached ensemble of ``key``, or None (missing, or failing an integrity check: then a warning)."""
    meta_path, npz_path = folder / f"{key}.json", folder / f"{key}.npz"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        blob = npz_path.read_bytes()
    except (OSError, ValueError) as exc:
        _bad(meta_path, f"unreadable: {exc}")
        return None
    if not (isinstance(meta, dict) and meta.get("version") == CACHE_VERSION and meta.get("key") == key):
        _bad(meta_path, "wrong version or key")
        return None
    K, P = meta.get("members"), meta.get("points")
    if not (isinstance(K, int) and isinstance(P, int) and 1 <= K and 16 <= P and K * P <= _MAX_VALUES):
        _bad(meta_path, f"bad sizes members={K!r}, points={P!r}")
        return None
    if hashlib.sha256(blob).hexdigest() != meta.get("npz_sha256"):
        _bad(npz_path, "its SHA-256 does not match")
        return None
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            if sorted(z.files) != sorted(_ARRAYS):
                _bad(npz_path, f"arrays {sorted(z.files)}, expected {sorted(_ARRAYS)}")
                return None
            arrays = {name: z[name] for name in _ARRAYS}
    except (OSError, ValueError) as exc:
        _bad(npz_path, f"not a valid npz: {exc}")
        return None
    shapes = {"ln_r": (K, P), "ln_n": (K, P), "background": (K,)}
    for name, arr in arrays.items():
        if arr.dtype != np.float64 or arr.shape != shapes[name] or not np.all(np.isfinite(arr)):
            _bad(npz_path, f"{name} has dtype {arr.dtype}, shape {arr.shape} (want float64 {shapes[name]}) or "
                           f"non-finite values")
            return None
    info = meta.get("info", {})
    try:
        members = tuple(TabulatedLight(arrays["ln_r"][k], arrays["ln_n"][k],
                                       background_fraction=float(arrays["background"][k])) for k in range(K))
        return LightEnsemble(members, info={**(info if isinstance(info, dict) else {}), "cache": "hit",
                                            "cache_key": key})
    except ValueError as exc:
        _bad(npz_path, str(exc))
        return None


def save_ensemble(folder: Path, key: str, ensemble: LightEnsemble) -> Path:
    """Write the entry of ``key`` (npz, then JSON) atomically; returns the JSON's path."""
    ln_r = np.stack([m.ln_r for m in ensemble.members]).astype(np.float64)
    ln_n = np.stack([m.ln_n for m in ensemble.members]).astype(np.float64)
    bg = np.array([m.background_fraction for m in ensemble.members], dtype=np.float64)
    buf = io.BytesIO()
    np.savez(buf, ln_r=ln_r, ln_n=ln_n, background=bg)
    blob = buf.getvalue()
    info = {k: v for k, v in ensemble.info.items() if k not in ("cache", "cache_key")}
    meta = {"version": CACHE_VERSION, "key": key, "members": int(ln_r.shape[0]), "points": int(ln_r.shape[1]),
            "npz_sha256": hashlib.sha256(blob).hexdigest(), "info": info}
    text = json.dumps(meta, indent=1, default=lambda o: float(o) if isinstance(o, np.floating) else str(o))
    for suffix, data in ((".npz", blob), (".json", text.encode())):
        tmp = folder / f".{key}{suffix}.tmp{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, folder / f"{key}{suffix}")
    return folder / f"{key}.json"


def cnf_light(R, weight=None, config=None, *, R_max: float | None = None, seed: int = 0) -> LightEnsemble:
    """The CNF light ensemble of a photometric sample: from the cache when an intact entry exists (no torch
    loaded), else fitted (:func:`gcsbi_jeans.jflow.light.fit_cnf_light`, torch) and cached.
    ``config``: a :class:`~gcsbi_jeans.jflow.config.LightConfig` (default settings when None)."""
    from ..jflow.config import LightConfig

    config = LightConfig() if config is None else config
    R = np.asarray(R, float)
    w = np.ones_like(R) if weight is None else np.asarray(weight, float)
    key = cache_key(R, w, config.fit_settings(), R_max=R_max, seed=seed)
    folder = cache_folder(config.cache_dir) if config.cache else None
    if folder is not None:
        hit = load_ensemble(folder, key)
        if hit is not None:
            return hit
    from ..jflow.light import fit_cnf_light

    ens = fit_cnf_light(R, w, config, R_max=R_max, seed=seed)
    info = {**ens.info, "cache_key": key, "cache": "off"}
    if config.cache:
        folder = folder or cache_folder(config.cache_dir, create=True)
        if folder is not None:
            try:
                save_ensemble(folder, key, ens)
                info["cache"] = "written"
            except OSError as exc:
                warnings.warn(JeansWarning(f"cannot write the light-profile cache in {folder}: {exc}"), stacklevel=2)
    return LightEnsemble(ens.members, info=info)
