"""The parametric baseline route (``gcsbi-jeans baseline``): Plummer light and a gNFW/Zhao halo sampled with emcee
(:mod:`.model`), a comparison for the free-form posterior. numpy only: no torch."""

from __future__ import annotations

from .model import PARAM_NAMES, BaselineConfig, BaselineResult, fit_baseline

__all__ = ["BaselineConfig", "BaselineResult", "fit_baseline", "PARAM_NAMES"]
