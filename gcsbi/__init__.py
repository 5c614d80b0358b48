"""gcsbi: simulation-based inference for star clusters and dwarf galaxies.

Stages (data flows one way): ``stars`` (IMF, isochrones, photometry) ->
``clusters`` (snapshots) -> ``observe`` (mock images) -> inference.
``gcsbi.jeans`` stands alone (spherical Jeans analysis with flows).
"""

from __future__ import annotations

from .errors import (
    GcsbiDependencyError,
    GcsbiError,
    GcsbiFileError,
    GcsbiRuntimeError,
    GcsbiValueError,
    OutOfDistributionWarning,
    SpecError,
    UnknownFilterError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "GcsbiError",
    "GcsbiValueError",
    "GcsbiFileError",
    "GcsbiDependencyError",
    "GcsbiRuntimeError",
    "SpecError",
    "UnknownFilterError",
    "OutOfDistributionWarning",
]
