"""The free-form route (recommended; ``gcsbi-jeans fit freeform``): a positive free-form rho_DM(r) through the
integral Jeans equation (:mod:`.model`), sampled with emcee (:mod:`.posterior`). numpy only: no torch."""

from __future__ import annotations

from .model import FreeformConfig, JeansKernel
from .posterior import FreeformResult, fit_freeform, profiles_at

__all__ = ["FreeformConfig", "JeansKernel", "FreeformResult", "fit_freeform", "profiles_at"]
