"""gcsbi_jeans: spherical Jeans analysis of dwarf spheroidals (distribution ``gcsbi-jeans``).

Stand-alone: it needs torch, numpy, scipy, emcee, galpy, torchdiffeq and ArviZ, and none of gcsbi's image
stack (gcsbi mounts its CLI as ``gcsbi jeans`` when both are installed). Public names are loaded lazily.

Layout: :mod:`.core` holds what every route shares (data I/O and checks, grids, beta(r) models, the light
profile, J-factors, export, plots, mocks; numpy only); one subpackage per route: :mod:`.freeform` (recommended),
:mod:`.baseline` (parametric, emcee) and :mod:`.jflow` (torch, experimental). Only :mod:`.jflow` imports torch.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.3.0"

__all__ = [
    "JeansError", "JeansValueError", "JeansFileError", "JeansRuntimeError",
    "FlowConfig", "RadialCNF", "JeansFlowModel", "parse_beta", "ConstantBeta", "OsipkovMerrittBeta",
    "BaesVanHeseBeta", "StarTable", "read_stars", "read_walker", "read_gaia_challenge", "read_table",
    "smeared_log_likelihood", "jeans_profiles", "projected_profiles", "FitConfig", "fit_model", "fit_ensemble",
    "BaselineConfig", "fit_baseline", "MockConfig", "make_mock", "truth_profiles", "PLUMCOREOM_TRUTH",
    "profiles_to_datatree", "save_datatree", "load_datatree", "truth_coverage", "plot_profiles",
    "RadialFlowDistribution", "LightProfile", "fit_light", "read_photometry", "FreeformConfig", "JeansKernel",
    "FreeformResult", "fit_freeform", "j_factor", "TabulatedLight", "LightEnsemble", "cnf_light", "LightConfig",
    "fit_cnf_light",
]

_WHERE = {
    "JeansError": "errors", "JeansValueError": "errors", "JeansFileError": "errors", "JeansRuntimeError": "errors",
    "JeansWarning": "errors",
    "StarTable": "core.io", "read_stars": "core.io", "read_walker": "core.io", "read_gaia_challenge": "core.io",
    "read_table": "core.io", "parse_beta": "core.beta", "ConstantBeta": "core.beta",
    "OsipkovMerrittBeta": "core.beta", "BaesVanHeseBeta": "core.beta", "LightProfile": "core.light",
    "fit_light": "core.light", "read_photometry": "core.light", "j_factor": "core.jfactor",
    "MockConfig": "core.mocks", "make_mock": "core.mocks", "truth_profiles": "core.mocks",
    "PLUMCOREOM_TRUTH": "core.mocks", "profiles_to_datatree": "core.export", "save_datatree": "core.export",
    "load_datatree": "core.export", "truth_coverage": "core.export", "plot_profiles": "core.plots",
    "FreeformConfig": "freeform.model", "JeansKernel": "freeform.model", "FreeformResult": "freeform.posterior",
    "fit_freeform": "freeform.posterior", "BaselineConfig": "baseline.model", "fit_baseline": "baseline.model",
    "FlowConfig": "jflow.config", "RadialCNF": "jflow.cnf", "RadialFlowDistribution": "jflow.cnf",
    "JeansFlowModel": "jflow.model", "smeared_log_likelihood": "jflow.loss", "jeans_profiles": "jflow.solve",
    "projected_profiles": "jflow.solve", "FitConfig": "jflow.config", "fit_model": "jflow.fit",
    "fit_ensemble": "jflow.fit", "TabulatedLight": "core.light_table", "LightEnsemble": "core.light_table",
    "cnf_light": "core.light_cache", "LightConfig": "jflow.config", "fit_cnf_light": "jflow.light",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
