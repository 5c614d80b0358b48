"""What every route shares, in numpy (no torch): the star tables and their checks (:mod:`.io`), radius grids
(:mod:`.grids`), anisotropy models beta(r) (:mod:`.beta`), Plummer/Zhao formulas (:mod:`.parametric`), the light
profile (:mod:`.light`), J-factors (:mod:`.jfactor`), emcee settings and chain diagnostics (:mod:`.sampling`),
the DataTree export (:mod:`.export`), plots (:mod:`.plots`), galpy mocks (:mod:`.mocks`) and the command-line
options made from config dataclasses (:mod:`.options`). Public names are loaded lazily.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "StarTable": "io", "read_stars": "io", "read_walker": "io", "read_gaia_challenge": "io", "read_table": "io",
    "write_table": "io", "check_fit_sample": "io", "MIN_STARS": "io",
    "default_grids": "grids", "data_radius_range": "grids", "DATA_QUANTILES": "grids",
    "BetaModel": "beta", "ConstantBeta": "beta", "OsipkovMerrittBeta": "beta", "BaesVanHeseBeta": "beta",
    "parse_beta": "beta", "G_KPC_KMS2_MSUN": "parametric",
    "LightProfile": "light", "fit_light": "light", "read_photometry": "light", "j_factor": "jfactor",
    "check_sampler_settings": "sampling", "chain_diagnostics": "sampling", "mcmc_diagnostics": "sampling",
    "profiles_to_datatree": "export", "save_datatree": "export", "load_datatree": "export",
    "truth_coverage": "export", "plot_profiles": "plots",
    "TabulatedLight": "light_table", "LightEnsemble": "light_table", "cnf_light": "light_cache",
    "MockConfig": "mocks", "make_mock": "mocks", "truth_profiles": "mocks", "PLUMCOREOM_TRUTH": "mocks",
}
__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
