"""The JFlow route (experimental; ``gcsbi-jeans fit jflow``), after Lim et al. (2025), in torch: n(r) from a
radial continuous normalizing flow (:mod:`.cnf`), sigma_r^2(r) from a small network (:mod:`.sigma`), the
phase-space model (:mod:`.model`), its smeared likelihood (:mod:`.loss`), training and bootstrap ensembles
(:mod:`.fit`), and M(r), rho(r) by automatic differentiation (:mod:`.solve`). The settings (:mod:`.config`)
load no torch. Public names are loaded lazily."""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "VARIANTS": "config", "FlowConfig": "config", "FitConfig": "config", "RadialCNF": "cnf",
    "RadialFlowDistribution": "cnf", "SigmaRNet": "sigma", "JeansFlowModel": "model",
    "smeared_log_likelihood": "loss", "FitResult": "fit", "EnsembleResult": "fit", "fit_model": "fit",
    "fit_ensemble": "fit", "screen_members": "fit", "jeans_profiles": "solve", "projected_profiles": "solve",
    "profile_validity": "solve", "LightConfig": "config", "fit_cnf_light": "light",
    "radial_smeared_log_likelihood": "light",
}
__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
