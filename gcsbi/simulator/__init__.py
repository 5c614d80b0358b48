"""The ``sbi`` simulator: theta -> cluster snapshot -> mock observation -> network input x.

``core`` (:class:`ClusterSimulator`, :func:`load_simulator`), ``parameters`` (parameter names,
the ``[snapshot]`` table, :func:`spec_digest`), ``seeds``, ``pool`` (worker processes),
``processes`` (their policy) and ``cli`` (``gcsbi simulate``, RGB grids and parameter series).
"""

from __future__ import annotations

from .core import (PARAMETERS, ClusterSimulator, SnapshotSource, check_seed, load_simulator, resolve_seed, spec_digest,
                   with_snapshot)

__all__ = ["PARAMETERS", "SnapshotSource", "ClusterSimulator", "load_simulator", "spec_digest", "check_seed", "resolve_seed",
           "with_snapshot"]
