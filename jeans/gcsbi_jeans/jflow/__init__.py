"""The JFlow route (experimental; ``gcsbi-jeans fit jflow``), after Lim et al. (2025), in torch: n(r) from a
radial continuous normalizing flow (:mod:`.cnf`), sigma_r^2(r) from a small network (:mod:`.sigma`), the
phase-space model (:mod:`.model`), its smeared likelihood (:mod:`.loss`), training and bootstrap ensembles
(:mod:`.fit`), and M(r), rho(r) by automatic differentiation (:mod:`.solve`). The settings (:mod:`.config`)
load no torch. Public names are loaded lazily."""

from __future__ import annotations

import importlib

_WHERE = {
    "VARIANTS": "config", "FlowConfig": "config", "FitConfig": "config", "RadialCNF": "cnf",
    "RadialFlowDistribution": "cnf", "SigmaRNet": "sigma", "JeansFlowModel": "model",
    "smeared_log_likelihood": "loss", "FitResult": "fit", "EnsembleResult": "fit", "fit_model": "fit",
    "fit_ensemble": "fit", "screen_members": "fit", "jeans_profiles": "solve", "projected_profiles": "solve",
    "profile_validity": "solve",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
