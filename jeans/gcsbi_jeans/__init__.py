"""gcsbi_jeans: spherical Jeans analysis of dwarf spheroidals (distribution ``gcsbi-jeans``).

Stand-alone: it needs torch, numpy, scipy, emcee, galpy, torchdiffeq and ArviZ, and none of gcsbi's image
stack (gcsbi mounts its CLI as ``gcsbi jeans`` when both are installed). Public names are loaded lazily.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

__all__ = [
    "JeansError", "JeansValueError", "JeansFileError", "JeansRuntimeError",
    "FlowConfig", "RadialCNF", "JeansFlowModel", "parse_beta", "ConstantBeta", "OsipkovMerrittBeta",
    "BaesVanHeseBeta", "StarTable", "read_stars", "read_walker", "read_gaia_challenge", "read_table",
    "smeared_log_likelihood", "jeans_profiles", "projected_profiles", "FitConfig", "fit_model", "fit_ensemble",
    "BaselineConfig", "fit_baseline", "MockConfig", "make_mock", "truth_profiles", "PLUMCOREOM_TRUTH",
    "profiles_to_datatree", "save_datatree", "load_datatree", "truth_coverage", "plot_profiles",
    "RadialFlowDistribution", "LightProfile", "fit_light", "read_photometry", "FreeformConfig", "JeansKernel",
    "FreeformResult", "fit_freeform", "j_factor",
]

_WHERE = {
    "JeansError": "errors", "JeansValueError": "errors", "JeansFileError": "errors", "JeansRuntimeError": "errors",
    "JeansWarning": "errors",
    "FlowConfig": "flows", "RadialCNF": "flows", "JeansFlowModel": "model", "parse_beta": "velocity",
    "ConstantBeta": "velocity", "OsipkovMerrittBeta": "velocity", "BaesVanHeseBeta": "velocity",
    "StarTable": "io", "read_stars": "io", "read_walker": "io", "read_gaia_challenge": "io", "read_table": "io",
    "smeared_log_likelihood": "loss", "jeans_profiles": "solve", "projected_profiles": "solve",
    "FitConfig": "fit", "fit_model": "fit", "fit_ensemble": "fit", "BaselineConfig": "baseline",
    "fit_baseline": "baseline", "MockConfig": "mocks", "make_mock": "mocks", "truth_profiles": "mocks",
    "PLUMCOREOM_TRUTH": "mocks", "profiles_to_datatree": "export", "save_datatree": "export",
    "load_datatree": "export", "truth_coverage": "export", "plot_profiles": "plots",
    "RadialFlowDistribution": "flows", "LightProfile": "light", "fit_light": "light", "read_photometry": "light",
    "FreeformConfig": "freeform", "JeansKernel": "freeform", "FreeformResult": "posterior",
    "fit_freeform": "posterior", "j_factor": "jfactor",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
