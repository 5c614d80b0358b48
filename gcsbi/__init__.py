"""gcsbi: simulation-based inference for star clusters and dwarf galaxies.

Stages (data flows one way): ``stars`` (IMF, isochrones, photometry) -> ``clusters``
(snapshots) -> ``observe`` (mock images) -> ``simulator`` -> ``inference`` (NPE, calibration).
``gcsbi.jeans`` stands alone (spherical Jeans analysis with flows) and imports nothing else
from gcsbi, which is why every name here is imported lazily.

Public API: ``load_prior``, ``load_simulator``, ``train``, ``load_posterior`` (a file or one of
``shipped_posteriors()``), ``infer``,
``calibrate`` and the exception and warning classes of :mod:`gcsbi.errors`.
``__version__`` is the installed distribution's version (``pyproject.toml`` is its one source).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_prior": "gcsbi.spec",
    "load_simulator": "gcsbi.simulator",
    "train": "gcsbi.inference",
    "TrainConfig": "gcsbi.inference",
    "TrainedPosterior": "gcsbi.inference",
    "load_posterior": "gcsbi.inference",
    "shipped_posteriors": "gcsbi.inference",
    "infer": "gcsbi.inference",
    "calibrate": "gcsbi.inference",
    "GcsbiError": "gcsbi.errors",
    "GcsbiValueError": "gcsbi.errors",
    "GcsbiFileError": "gcsbi.errors",
    "GcsbiDependencyError": "gcsbi.errors",
    "GcsbiRuntimeError": "gcsbi.errors",
    "SpecError": "gcsbi.errors",
    "UnknownFilterError": "gcsbi.errors",
    "GcsbiWarning": "gcsbi.errors",
    "OutOfDistributionWarning": "gcsbi.errors",
    "PriorEdgeWarning": "gcsbi.errors",
}

__all__ = ["__version__", *_LAZY]


def _version() -> str:
    """The installed version from package metadata; ``0+unknown`` when run from an uninstalled tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gcsbi")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gcsbi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
