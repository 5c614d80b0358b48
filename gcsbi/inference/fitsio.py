"""Observation files for ``gcsbi infer``: the network input x of a posterior, from whatever the user has.

:func:`observation_for_posterior` tells two kinds of input apart:

* **x as trained on**: one ``.npy`` / ``.npz`` / ``.pt`` file, or one FITS file whose single
  image is a cube ``(C, H, W)`` (or a batch ``(B, C, H, W)``): taken as is. Its shape and size,
  as its headers declare them, are checked against the posterior's ``x_shape`` and
  :data:`MAX_X_BYTES` before any data are read or decompressed (:func:`read_array`).
* **per-band images** (every other FITS input): one 2D image per band, in one file per band or
  in one multi-extension file (every science image HDU is used, none is dropped), each band
  named by its FILTER / FILTER1 / FILTER2 keyword (or, for images without one, by ``bands`` in
  file and extension order). They are put in the order of the posterior's simulator spec and
  turned into x by the spec's transforms: :func:`gcsbi.observe.hst_images.observation_from_cutouts`,
  resampling around ``ra``/``dec`` when given, else taking the images as already on the
  simulator grid (raw simulator counts, or calibrated images rescaled to the spec's zero points).

Every failure is a :class:`~gcsbi.errors.GcsbiError` with a one-line message.
"""

from __future__ import annotations

import math
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npf

from ..errors import GcsbiError, GcsbiFileError, GcsbiValueError, GcsbiWarning
from ..observe.hst_images import check_expansion, format_bytes

__all__ = ["ARRAY_SUFFIXES", "MAX_X_BYTES", "observation_for_posterior", "posterior_simulator_spec", "read_array"]

#: Files holding x itself rather than images.
ARRAY_SUFFIXES = (".npy", ".npz", ".pt", ".pth")
#: Most array data one x file may declare: a batch of ~680 hst-phat observations (6, 128, 128) in
#: float32. ``gcsbi infer`` holds x a few times over (float32 copy, pooled, standardised), so this
#: keeps a hostile file's share of memory well under 1 GB.
MAX_X_BYTES = 256 << 20
#: Allowance for what an x file holds besides the array data (npy header, torch's pickle and records).
_OVERHEAD_BYTES = 1 << 20


def read_array(path: str | Path, x_shape: Sequence[int] | None = None) -> np.ndarray:
    """x from a ``.npy``, a ``.npz`` (its one array, or the one named ``x``) or a ``.pt`` tensor file.

    Shapes and sizes are checked before any array data are read or decompressed: a ``.npy``/``.npz``
    array header must declare a numeric array of ``x_shape`` (or a batch ``(B, *x_shape)``) of at
    most :data:`MAX_X_BYTES`; a ``.pt`` file (a ``torch.save`` zip archive) may hold at most that much.
    Compressed members may not declare more than ``MAX_EXPANSION`` x their stored size.
    """
    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"observation file not found: {path}")
    want = None if x_shape is None else tuple(int(n) for n in x_shape)
    try:
        if path.suffix in (".pt", ".pth"):
            obj = _read_torch(path, want)
        elif _starts_with(path, (b"PK\x03\x04", b"PK\x05\x06")):  # a zip archive is a .npz, as for np.load
            return np.asarray(_read_npz(path, want))
        else:
            return np.asarray(_read_npy(path, want))
    except GcsbiError:
        raise
    except Exception as exc:  # numpy/torch/zipfile raise many kinds for a corrupt file
        raise GcsbiFileError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    if isinstance(obj, dict):
        if "x" in obj:
            obj = obj["x"]
        elif len(obj) == 1:
            obj = next(iter(obj.values()))
        else:
            raise GcsbiValueError(f"{path}: holds {sorted(obj)}; store the observation alone or under the key 'x'")
    try:
        return np.asarray(obj.detach().cpu().numpy() if hasattr(obj, "detach") else obj)
    except (TypeError, ValueError) as exc:
        raise GcsbiValueError(f"{path}: does not hold a numeric array ({type(obj).__name__})") from exc


def _starts_with(path: Path, prefixes: tuple[bytes, ...]) -> bool:
    with open(path, "rb") as f:
        return f.read(4).startswith(prefixes)


def _expected(x_shape: tuple[int, ...] | None) -> str:
    if x_shape is None:
        return f"a numeric array of at most {format_bytes(MAX_X_BYTES)}"
    inner = ", ".join(map(str, x_shape))
    return f"x of shape {x_shape} or a batch (B, {inner}), at most {format_bytes(MAX_X_BYTES)}"


def _check_header(label: str, shape: tuple[int, ...], dtype: np.dtype, x_shape: tuple[int, ...] | None) -> int:
    """Bytes of array data an npy header declares, once its dtype, shape and size pass; else a one-line error."""
    declared = f"a {dtype} array of shape {shape}"
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.names is not None:
        raise GcsbiValueError(f"{label}: declares {declared}; expected {_expected(x_shape)} (real numbers)")
    if x_shape is not None and not (shape == x_shape or (len(shape) == len(x_shape) + 1 and shape[0] > 0
                                                         and shape[1:] == x_shape)):
        raise GcsbiValueError(f"{label}: declares {declared}, but the posterior takes {_expected(x_shape)}")
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes > MAX_X_BYTES:
        raise GcsbiFileError(f"{label}: declares {declared} ({format_bytes(nbytes)}); expected {_expected(x_shape)}: "
                             "split a larger batch over several files")
    return nbytes


def _read_header(f: Any, label: str) -> tuple[tuple[int, ...], np.dtype]:
    version = npf.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise GcsbiFileError(f"{label}: .npy format version {version} is not read (1.0 and 2.0 are; save x with "
                             "np.save)")
    shape, _, dtype = (npf.read_array_header_1_0 if version == (1, 0) else npf.read_array_header_2_0)(f)
    return tuple(int(n) for n in shape), dtype


def _read_npy(path: Path, x_shape: tuple[int, ...] | None) -> np.ndarray:
    """A .npy file, its header checked (and its declared size against the file's) before the data are read."""
    with open(path, "rb") as f:
        shape, dtype = _read_header(f, str(path))
        nbytes = _check_header(str(path), shape, dtype, x_shape)
        size = path.stat().st_size
        if f.tell() + nbytes > size:
            raise GcsbiFileError(f"{path}: truncated .npy file ({size} bytes, its header declares a {shape} {dtype} "
                                 f"array of {f.tell() + nbytes} bytes)")
        f.seek(0)
        return npf.read_array(f, allow_pickle=False)


def _read_npz(path: Path, x_shape: tuple[int, ...] | None) -> np.ndarray:
    """The x member of a .npz archive, its zip-declared size and npy header checked before it is decompressed."""
    with zipfile.ZipFile(path) as zf:
        members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in zf.infolist()}
        if "x" in members:
            info = members["x"]
        elif len(members) == 1:
            info = next(iter(members.values()))
        else:
            raise GcsbiValueError(f"{path}: holds {sorted(members)}; store the observation alone or under the key 'x'")
        label = f"{path}[{info.filename}]"
        with zf.open(info) as f:  # decompresses the first few KiB only
            shape, dtype = _read_header(f, label)
            header_len = f.tell()
        nbytes = _check_header(label, shape, dtype, x_shape)
        if header_len + nbytes != info.file_size:
            raise GcsbiFileError(f"{label}: corrupt archive member: its header declares a {shape} {dtype} array "
                                 f"({header_len + nbytes} bytes), the archive {info.file_size} bytes")
        if info.compress_type != zipfile.ZIP_STORED:
            check_expansion(label, info.file_size, info.compress_size, f"a {shape} {dtype} array",
                            remedy="if the data are genuine, save x with np.save (uncompressed)")
        with zf.open(info) as f:
            return npf.read_array(f, allow_pickle=False)


def _read_torch(path: Path, x_shape: tuple[int, ...] | None) -> Any:
    """A ``torch.save`` zip archive, its file size and zip-declared sizes capped before ``torch.load``."""
    size = path.stat().st_size
    if size > MAX_X_BYTES + _OVERHEAD_BYTES:
        raise GcsbiFileError(f"{path}: a {format_bytes(size)} file; expected {_expected(x_shape)}")
    if not zipfile.is_zipfile(path):
        raise GcsbiFileError(f"{path}: not a torch.save zip archive (the format of torch >= 1.6); save x with "
                             "torch.save or np.save")
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    declared, stored = sum(i.file_size for i in infos), sum(i.compress_size for i in infos)
    if declared > MAX_X_BYTES + _OVERHEAD_BYTES:
        raise GcsbiFileError(f"{path}: its archive members declare {format_bytes(declared)}; expected "
                             f"{_expected(x_shape)}")
    check_expansion(str(path), declared, stored, f"{len(infos)} archive members",
                    remedy="if the data are genuine, save x with torch.save (it does not compress)")
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def posterior_simulator_spec(posterior: Any) -> Any:
    """The ``SimulatorSpec`` a posterior was trained with, checked against its stored channels and shape."""
    from ..observe.transforms import channel_names
    from ..spec.simulator_spec import load_simulator_spec

    spec_dict = getattr(posterior, "spec", None)
    stored = spec_dict.get("simulator") if isinstance(spec_dict, dict) else None
    name = stored.get("name") if isinstance(stored, dict) else None
    if not isinstance(name, str):
        raise GcsbiValueError("per-band images need the posterior's simulator spec, but the posterior names none; "
                              "give x itself (C, H, W) as .npy/.pt or a FITS cube")
    try:
        spec = load_simulator_spec(name)
    except GcsbiError as exc:
        raise GcsbiValueError(f"per-band images need the posterior's simulator spec, but {name!r} does not load "
                              f"({exc}); give x itself (C, H, W) as .npy/.pt or a FITS cube") from exc
    channels, x_shape = stored.get("channels"), tuple(posterior.x_shape)
    if channels is not None and list(channels) != channel_names(spec):
        raise GcsbiValueError(f"the {name} spec now gives channels {channel_names(spec)}, but the posterior was "
                              f"trained on {list(channels)}")
    if (len(channel_names(spec)), *spec.observation.size) != x_shape:
        raise GcsbiValueError(f"the {name} spec gives x of shape ({len(channel_names(spec))}, "
                              f"{', '.join(map(str, spec.observation.size))}), the posterior takes {x_shape}")
    digest = stored.get("sha256")
    if digest:
        from ..simulator.core import spec_digest

        if spec_digest(spec) != digest:
            warnings.warn(f"the {name} simulator spec changed since this posterior was trained; per-band images "
                          "are transformed with the current one", GcsbiWarning, stacklevel=2)
    return spec


def observation_for_posterior(paths: Sequence[str | Path] | str | Path, posterior: Any, *,
                              bands: Sequence[str] | None = None, ra: float | None = None,
                              dec: float | None = None) -> np.ndarray:
    """x for ``posterior`` from observation files (module docstring for the two kinds of input)."""
    from ..observe.hst_images import observation_from_cutouts, read_fits_planes

    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise GcsbiValueError("no observation files given")
    arrays = [p for p in paths if p.suffix.lower() in ARRAY_SUFFIXES]
    given = [opt for opt, v in (("--bands", bands), ("--ra", ra), ("--dec", dec)) if v is not None]
    if arrays:
        if len(paths) > 1:
            raise GcsbiValueError(f"give one {'/'.join(ARRAY_SUFFIXES)} file holding x, or FITS images only "
                                  f"(got {len(paths)} files)")
        if given:
            raise GcsbiValueError(f"{paths[0]} holds x itself: {', '.join(given)} apply to per-band FITS images only")
        return read_array(paths[0], posterior.x_shape)
    if len(paths) == 1:
        layout = read_fits_planes(paths[0], load_data=False)  # headers only: cheap for large mosaics
        if len(layout) == 1 and len(layout[0].shape) >= 3:
            _check_cube(paths[0], layout[0], tuple(int(n) for n in posterior.x_shape), given)
            return read_fits_planes(paths[0])[0].data.astype(np.float32)
    spec = posterior_simulator_spec(posterior)
    return observation_from_cutouts(paths, ra, dec, simulator=spec, bands=bands)


def _check_cube(path: Path, plane: Any, x_shape: tuple[int, ...], given: list[str]) -> None:
    """A FITS cube taken as x: its declared shape and size (header only) against the posterior's x."""
    shape = tuple(plane.shape)
    declared = f"a {shape} cube (BITPIX {plane.header.get('BITPIX')}, {format_bytes(plane.nbytes)})"
    if given:
        raise GcsbiValueError(f"{path} holds {declared} taken as x itself: {', '.join(given)} apply to per-band "
                              "images only")
    if len(shape) == 3 and shape[0] != x_shape[0]:
        raise GcsbiValueError(f"{path}: declares {declared}, but the posterior takes x of shape {x_shape}; raw "
                              "images must come one 2D image per band (FILTER keyword), in separate files or image "
                              "extensions")
    if shape != x_shape and not (len(shape) == len(x_shape) + 1 and shape[1:] == x_shape):
        raise GcsbiValueError(f"{path}: declares {declared}, but the posterior takes {_expected(x_shape)}")
    if plane.nbytes > MAX_X_BYTES:
        raise GcsbiFileError(f"{path}: declares {declared}; expected {_expected(x_shape)}: split a larger batch "
                             "over several files")
