"""What a simulation is: simulator specs (``simulators/*.toml``) and priors (``priors/*.toml``).

``resources`` (finding and reading the TOML files), ``simulator_spec`` (the typed, validated
simulator spec) and ``priors`` (named box priors as torch Distributions, and the named
reference clusters of a prior file, :func:`reference_cluster`).
"""

from __future__ import annotations

from .priors import NamedBoxPrior, ParameterSpec, load_prior, reference_cluster
from .resources import available_specs, find_spec, read_toml
from .simulator_spec import SimulatorSpec, load_simulator_spec

__all__ = ["NamedBoxPrior", "ParameterSpec", "load_prior", "reference_cluster", "SimulatorSpec", "load_simulator_spec",
           "available_specs", "find_spec", "read_toml"]
