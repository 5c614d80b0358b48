"""Settings of the JFlow route: the radial CNF (:class:`FlowConfig`) and one fit (:class:`FitConfig`).

No torch here: the command line builds its options from these dataclasses without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.options import option
from ..errors import JeansValueError

__all__ = ["VARIANTS", "FlowConfig", "FitConfig"]

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
