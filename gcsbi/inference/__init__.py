"""Neural posterior estimation for gcsbi simulators (an ``sbi`` plugin).

``train`` (NPE with an image embedding net, options in a ``TrainConfig``) -> ``TrainedPosterior``
(or ``TrainedPosterior.from_sbi`` for a posterior trained with sbi's own ``NPE``) ->
``save_posterior`` / ``load_posterior`` (weights + specs, no pickled objects) -> ``infer``
(ArviZ DataTree, OOD flags) and ``calibrate`` (SBC, TARP, expected coverage, accuracy on fresh
simulations). Heavy dependencies (sbi, arviz) are imported when the functions are called.

Modules: ``config`` (TrainConfig, building the estimator), ``seeding`` (seed streams, ``simulate``),
``posterior`` (TrainedPosterior), ``train``, ``serialize`` / ``checkpoint`` (writing / reading),
``sbi_compat`` (every use of sbi internals), ``infer``, ``calibrate``, ``arviz``, ``plots``,
``fitsio`` (observations from FITS) and ``cli`` (``gcsbi train | infer | calibrate``).
"""

from __future__ import annotations

from .arviz import calibration_datatree, open_datatree, posterior_datatree, save_datatree, summary
from .calibrate import calibrate, coverage_from_ranks, coverage_noise
from .checkpoint import load_posterior, save_posterior, shipped_posteriors
from ..nets.small import SmallCNN
from .infer import check_observation, infer, posterior_predictive, read_observation
from .config import TrainConfig
from .posterior import TrainedPosterior
from .seeding import simulate
from .train import train

__all__ = [
    "train", "TrainConfig", "TrainedPosterior", "simulate", "SmallCNN",
    "save_posterior", "load_posterior", "shipped_posteriors",
    "infer", "summary", "check_observation", "read_observation", "posterior_predictive", "posterior_datatree",
    "calibrate", "coverage_from_ranks", "coverage_noise", "calibration_datatree", "save_datatree", "open_datatree",
]
