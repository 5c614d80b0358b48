"""Settings of the JFlow route: the radial CNF (:class:`FlowConfig`) and one fit (:class:`FitConfig`).

No torch here: the command line builds its options from these dataclasses without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.options import option
from ..errors import JeansValueError

__all__ = ["VARIANTS", "FlowConfig", "FitConfig", "LightConfig", "LIGHT_MODELS", "LIGHT_VARIANTS", "LIGHT_BACKGROUNDS"]

VARIANTS = ("plain", "cored", "cusp")


@dataclass(frozen=True)
class FlowConfig:
    """Architecture of the radial CNF (all lengths in the scaled units r / L).

    ``variant``: 'cored' (default; regular centre), 'cusp' (cored + learnable power-law radial map) or 'plain'
    (the bare field x_hat f(|x|, t); it need not vanish at r = 0, so trajectories can reach the origin and the
    density is then not exactly normalised: kept for comparison only).
    """

    variant: str = option("cored", "CNF variant: cored (regular centre), cusp (cored + a learnable power-law "
                          "radial map) or plain (the bare field, for comparison)", choices=VARIANTS)
    hidden: int = option(16, "hidden units per layer of the CNF's field")
    layers: int = option(2, "hidden layers of the CNF's field")
    ode_steps: int = option(16, "RK4 steps of the CNF's ODE")
    r0: float = option(0.3, "core radius of the cored field, in units of the half-number radius")
    cusp_init: float = option(0.1, "initial cusp exponent c of the cusp variant")

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise JeansValueError(f"flow variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.hidden < 1 or self.layers < 1 or self.ode_steps < 1:
            raise JeansValueError("hidden, layers and ode_steps must be >= 1")
        if not (self.r0 > 0 and self.cusp_init > 0):
            raise JeansValueError("r0 and cusp_init must be > 0")



@dataclass(frozen=True)
class FitConfig:
    """Settings of one JFlow fit; bandwidths are fractions of the data's half-number radius / velocity spread."""

    flow: FlowConfig = option(default_factory=FlowConfig, help="the radial CNF of n(r)")
    sigma_hidden: int = option(16, "hidden units per layer of the sigma_r^2(r) network")
    sigma_layers: int = option(2, "hidden layers of the sigma_r^2(r) network")
    steps: int = option(1000, "Adam optimiser steps per fit (per bootstrap member)")
    lr: float = option(1e-2, "Adam's initial learning rate (cosine-annealed)")
    lr_final_frac: float = option(0.05, "final learning rate as a fraction of --lr")
    n_model: int = option(1024, "model samples per step in the smeared likelihood")
    n_kernel: int = option(1, "kernel draws per star per step in the smeared likelihood")
    h_pos_frac: float = option(0.15, "positional kernel width, as a fraction of the half-number radius")
    h_vel_frac: float = option(0.1, "velocity kernel width, as a fraction of the velocity dispersion")
    positions_only: bool = option(False, "fit n(r) from the positions (x, y) only")
    rao_blackwell: bool = option(True, "integrate the model's v_los draw analytically (less Monte Carlo noise)")
    seed: int = option(0, "seed of the network initialisations, the likelihood's draws and the bootstrap")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.n_model < 2 or self.n_kernel < 1:
            raise JeansValueError("steps >= 1, n_model >= 2 and n_kernel >= 1 are required")
        if not (self.lr > 0 and 0 < self.lr_final_frac <= 1):
            raise JeansValueError("lr must be > 0 and 0 < lr_final_frac <= 1")
        if not (self.h_pos_frac > 0 and self.h_vel_frac >= 0):
            raise JeansValueError("h_pos_frac must be > 0 and h_vel_frac >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


#: tracer-profile models of the free-form route's photometric sample
LIGHT_MODELS = ("cnf", "plummer")
#: CNF light variants: 'auto' fits both and keeps the cusp only when the data ask for it
LIGHT_VARIANTS = ("auto", "cored", "cusp")
#: uniform-field options of the light fit (as core.light.BACKGROUND_OPTIONS)
LIGHT_BACKGROUNDS = ("auto", "fit", "none")


@dataclass(frozen=True)
class LightConfig:
    """The tracer density n(r) fitted to a photometric sample (``--photometry``); no torch here.

    ``model``: 'plummer' (default) -- the maximum-likelihood sum of three Plummer spheres
    (:func:`~gcsbi_jeans.core.light.fit_light`); 'cnf' (experimental) -- an ensemble of ``members``
    equivariant radial CNFs (:mod:`.light`), each trained with the smeared-KDE loss on a bootstrap resample
    of the projected positions, with membership weights and a uniform field of fitted fraction. The CNF is
    not the default because it does not yet meet its known answers (0.03 dex over 0.1-5 R_1/2 from 10^4
    Plummer or Zhao stars: 0.10 and 0.06 dex measured, ``bench/jeans_cnf_light.py``). Without a photometric sample the free-form route fits
    the Plummer sum to the spectroscopic sample's positions whatever ``model`` says (too few stars for a CNF).
    Lengths are fractions of the sample's weighted median projected radius.
    """

    model: str = option("plummer", "tracer density fitted to --photometry: plummer (a sum of three Plummer "
                        "spheres; numpy only; default) or cnf (an ensemble of radial CNFs; experimental, see "
                        "the README)", choices=LIGHT_MODELS)
    variant: str = option("auto", "CNF variant: auto (fit cored and cusp, keep the cusp only if the exact "
                          "likelihood gains >= --light-cusp-delta-chi2), cored or cusp", choices=LIGHT_VARIANTS)
    members: int = option(4, "CNFs in the ensemble (bootstrap resamples); the posterior marginalises over them")
    pretrain_steps: int = option(300, "Adam steps regressing each flow's radius map on the Plummer-sum fit's "
                                 "(a start; the smeared likelihood then decides)")
    steps: int = option(400, "Adam steps of the first CNF fit (smeared likelihood)")
    member_steps: int = option(250, "Adam steps of each further ensemble member (warm-started from the first)")
    lr: float = option(2e-2, "Adam's initial learning rate (cosine-annealed to 5% of it)")
    bins: int = option(256, "bins in ln R the stars are gathered in (each bin's stars at their weighted mean "
                       "radius; the loss then costs the same for any sample size)")
    n_smear: int = option(4, "kernel draws per bin and step in the smeared likelihood")
    n_model: int = option(1024, "CNF samples per step in the smeared likelihood")
    h_pos_frac: float = option(0.1, "positional kernel width at the centre, as a fraction of the median radius")
    debias: bool = option(True, "correct the smeared likelihood's ln(kernel mean) for its leading Monte Carlo "
                          "bias, -CV^2 / 2n (which otherwise inflates the central density)")
    hidden: int = option(16, "hidden units per layer of the CNF's field")
    layers: int = option(2, "hidden layers of the CNF's field")
    ode_steps: int = option(8, "RK4 steps of the CNF's ODE")
    fit_quantile: float = option(0.99, "the fit uses the stars inside the radius enclosing this (weighted) fraction "
                                 "of the sample, as a footprint: the smeared likelihood of a few isolated outermost "
                                 "stars, with no model sample near them, would otherwise dominate the loss")
    cusp_delta_chi2: float = option(6.63, "2 Delta ln L (exact likelihood) the cusp variant must gain over the "
                                    "cored one to be kept by --light-variant auto (chi2_1's p = 0.01)")
    background: str = option("auto", "uniform field of non-members: auto (fitted when the Plummer-sum fit finds "
                             "one, see fit_light), fit (always) or none", choices=LIGHT_BACKGROUNDS)
    cache: bool = option(True, "cache the fitted CNF ensemble per photometric sample and settings "
                         "(--no-light-cache: always refit)")
    cache_dir: str = option("", "cache folder (gcsbi-jeans creates and owns it; default $GCSBI_JEANS_CACHE or "
                            "$XDG_CACHE_HOME/gcsbi-jeans/light)", shown="see help")

    def __post_init__(self) -> None:
        for name, allowed in (("model", LIGHT_MODELS), ("variant", LIGHT_VARIANTS),
                              ("background", LIGHT_BACKGROUNDS)):
            if getattr(self, name) not in allowed:
                raise JeansValueError(f"light {name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("members", "pretrain_steps", "steps", "member_steps", "bins", "n_smear", "n_model", "hidden", "layers",
                     "ode_steps"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise JeansValueError(f"light {name} must be an integer >= 1, got {v!r}")
        if self.n_model < 16 or self.bins < 16:
            raise JeansValueError(f"light n_model and bins must be >= 16, got {self.n_model} and {self.bins}")
        for name in ("lr", "h_pos_frac"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v < 10):
                raise JeansValueError(f"light {name} must be in (0, 10), got {v!r}")
        if not (isinstance(self.fit_quantile, (int, float)) and 0.5 <= self.fit_quantile <= 1.0):
            raise JeansValueError(f"light fit_quantile must be in [0.5, 1], got {self.fit_quantile!r}")
        if not (isinstance(self.cusp_delta_chi2, (int, float)) and self.cusp_delta_chi2 >= 0):
            raise JeansValueError(f"light cusp_delta_chi2 must be >= 0, got {self.cusp_delta_chi2!r}")
        if not isinstance(self.cache_dir, str):
            raise JeansValueError(f"light cache_dir must be a string, got {self.cache_dir!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def fit_settings(self) -> dict:
        """The settings that change a fitted ensemble (the cache key's part; not model, cache or cache_dir)."""
        return {k: v for k, v in asdict(self).items() if k not in ("model", "cache", "cache_dir")}
