"""Cluster snapshots: star particles with positions and velocities, from models or N-body outputs.

* :mod:`.snapshot` - :class:`Snapshot` (immutable particles; save/load, projections, virial ratio);
* :mod:`.models` - :func:`sample_cluster`: a multi-mass LIMEPY model populated by a stellar population;
* :mod:`.smooth_light` - :func:`sample_cluster_light`: the same with the faint stars as projected profiles;
* :mod:`.limepy_grid` - the precomputed LIMEPY tables the models sample from;
* :mod:`.nbody` / :mod:`.readers` - real N-body outputs (NBODY6++, CMC, PeTar, tables) as snapshots;
* :mod:`.library` - :class:`SnapshotLibrary`: a folder of snapshots a simulator draws from;
* :mod:`.profiles` - surface-brightness profiles and half-light radii.

Names are imported on first use (the model modules load LIMEPY tables).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Snapshot": ".snapshot", "virial_ratio": ".snapshot", "random_rotation": ".snapshot",
    "ClusterParams": ".models", "sample_cluster": ".models",
    "UnresolvedLight": ".smooth_light", "sample_cluster_light": ".smooth_light",
    "LimepyGrid": ".limepy_grid",
    "read_snapshot": ".nbody", "attach_photometry": ".nbody",
    "SnapshotLibrary": ".library",
    "surface_brightness_profile": ".profiles", "half_light_radius": ".profiles",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gcsbi.clusters' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
