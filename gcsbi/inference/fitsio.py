"""Observation files for ``gcsbi infer``: the network input x of a posterior, from whatever the user has.

:func:`observation_for_posterior` tells two kinds of input apart:

* **x as trained on**: one ``.npy`` / ``.npz`` / ``.pt`` file, or one FITS file whose single
  image is a cube ``(C, H, W)`` (or a batch ``(B, C, H, W)``): taken as is; ``gcsbi.infer``
  checks its shape against the posterior's.
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

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiError, GcsbiFileError, GcsbiValueError, GcsbiWarning

__all__ = ["ARRAY_SUFFIXES", "observation_for_posterior", "posterior_simulator_spec", "read_array"]

#: Files holding x itself rather than images.
ARRAY_SUFFIXES = (".npy", ".npz", ".pt", ".pth")


def read_array(path: str | Path) -> np.ndarray:
    """x from a ``.npy``, a ``.npz`` (its one array, or the one named ``x``) or a ``.pt`` tensor file."""
    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"observation file not found: {path}")
    try:
        if path.suffix in (".pt", ".pth"):
            import torch

            obj = torch.load(path, map_location="cpu", weights_only=True)
        else:
            obj = np.load(path, allow_pickle=False)
            if isinstance(obj, np.lib.npyio.NpzFile):
                with obj:
                    obj = {k: obj[k] for k in obj.files}
    except GcsbiError:
        raise
    except Exception as exc:  # numpy/torch/pickle raise many kinds for a corrupt file
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
        return read_array(paths[0])
    if len(paths) == 1:
        layout = read_fits_planes(paths[0], load_data=False)  # headers only: cheap for large mosaics
        if len(layout) == 1 and len(layout[0].shape) >= 3:
            cube = read_fits_planes(paths[0])[0].data.astype(np.float32)
            if given:
                raise GcsbiValueError(f"{paths[0]} holds a {layout[0].shape} cube taken as x itself: "
                                      f"{', '.join(given)} apply to per-band images only")
            n_ch = int(posterior.x_shape[0])
            if cube.ndim == 3 and cube.shape[0] != n_ch:
                raise GcsbiValueError(f"{paths[0]}: a {cube.shape} cube, but the posterior takes x with {n_ch} "
                                      "channels; raw images must come one 2D image per band (FILTER keyword), "
                                      "in separate files or image extensions")
            return cube
    spec = posterior_simulator_spec(posterior)
    return observation_from_cutouts(paths, ra, dec, simulator=spec, bands=bands)
