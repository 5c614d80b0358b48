"""JFlow's tracer density: equivariant (radial) continuous normalizing flows for a spherical n(r) in 3D."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint

from ..errors import JeansValueError
from .config import VARIANTS, FlowConfig

__all__ = ["FlowConfig", "RadialField", "RadialCNF", "RadialFlowDistribution", "VARIANTS"]

_LOG_2PI = math.log(2.0 * math.pi)


def tanh_mlp(n_in: int, *, hidden: int, layers: int) -> nn.Sequential:
    """``layers`` tanh layers of ``hidden`` units from ``n_in`` inputs to one output, the last layer scaled
    down 10x (so a flow starts near the identity and a dispersion near its initial bias)."""
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    mods.append(nn.Linear(width, 1))
    net = nn.Sequential(*mods)
    with torch.no_grad():
        net[-1].weight.mul_(0.1)
    return net


class RadialField(nn.Module):
    """Radial speed f(r, t) of the vector field dx/dt = x_hat * f(|x|, t) (times tanh(r/r0) if cored).

    The network sees (ln(1 + r), t). In the cored variant its output is multiplied by tanh(r/r0) (regular
    centre) and by (r0 + r), so the flow acts multiplicatively at large radii and can turn the Gaussian
    tail of the base into the power-law tails of real tracer profiles.
    """

    def __init__(self, *, hidden: int, layers: int, cored: bool, r0: float) -> None:
        super().__init__()
        self.net = tanh_mlp(2, hidden=hidden, layers=layers)
        with torch.no_grad():  # start close to the identity map
            self.net[-1].bias.zero_()
        self.cored = cored
        self.r0 = r0

    def forward(self, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        tt = torch.as_tensor(t, dtype=r.dtype).expand_as(r)
        f = self.net(torch.stack([torch.log1p(r), tt], dim=-1)).squeeze(-1)
        if self.cored:
            f = f * torch.tanh(r / self.r0) * (self.r0 + r)
        return f

    def divergence(self, t: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, div) with div(x_hat f) = df/dr + 2 f / r, exact by autograd in the radius."""
        with torch.enable_grad():
            rr = r if r.requires_grad else r.detach().requires_grad_(True)
            f = self.forward(t, rr)
            dfdr = torch.autograd.grad(f.sum(), rr, create_graph=True)[0]
        return f, dfdr + 2.0 * f / r


class _Radius(nn.Module):
    def __init__(self, field: RadialField) -> None:
        super().__init__()
        self.field = field

    def forward(self, t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.field(t, r)


class _RadiusLogDet(nn.Module):
    def __init__(self, field: RadialField) -> None:
        super().__init__()
        self.field = field

    def forward(self, t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        f, div = self.field.divergence(t, state[0])
        return f, -div


class RadialCNF(nn.Module):
    """Spherical density in 3D: a standard-normal base pushed by a radial CNF (plus a power-law map for cusps).

    Because the field is x_hat * f(|x|, t), directions are conserved and only the radius and the log-density
    change, so the 3D ODE reduces exactly to (dr/dt, dlogp/dt) = (f, -(f' + 2 f / r)).
    The cusp variant then maps s -> r = s^(1+c), c >= 0 learnable, so n(r) ~ r^(-3c/(1+c)) near the centre.
    """

    def __init__(self, config: FlowConfig = FlowConfig()) -> None:
        super().__init__()
        self.config = config
        self.field = RadialField(
            hidden=config.hidden, layers=config.layers, cored=config.variant != "plain", r0=config.r0
        )
        self._fwd = _Radius(self.field)
        self._fwd_ld = _RadiusLogDet(self.field)
        if config.variant == "cusp":
            self.raw_c = nn.Parameter(torch.tensor(math.log(math.expm1(config.cusp_init))))
        else:
            self.register_parameter("raw_c", None)

    # ------------------------------------------------------------------ helpers
    @property
    def cusp_c(self) -> torch.Tensor:
        """Cusp exponent c >= 0 (zero for the plain and cored variants)."""
        if self.raw_c is None:
            return torch.zeros(())
        return nn.functional.softplus(self.raw_c)

    def _times(self, forward: bool) -> torch.Tensor:
        t = torch.linspace(0.0, 1.0, 2)
        return t if forward else t.flip(0)

    def _opts(self) -> dict:
        return {"method": "rk4", "options": {"step_size": 1.0 / self.config.ode_steps}}

    def vector_field(self, t: float, x: torch.Tensor) -> torch.Tensor:
        """The 3D field dx/dt = x_hat f(|x|, t) (for checks; the solver integrates the radius only)."""
        r = x.norm(dim=-1)
        return x / r.unsqueeze(-1) * self.field(torch.tensor(t), r).unsqueeze(-1)

    # ------------------------------------------------------------------ radius maps
    def push_radius(self, s0: torch.Tensor) -> torch.Tensor:
        """Base radius |z| -> model radius (differentiable in the parameters)."""
        s1 = odeint(self._fwd, s0, self._times(True), **self._opts())[-1]
        if self.raw_c is not None:
            s1 = s1.clamp_min(1e-12) ** (1.0 + self.cusp_c)
        return s1

    def log_prob_radius(self, r: torch.Tensor) -> torch.Tensor:
        """log density per unit volume (3D, normalised to 1) at radius r (scaled units); differentiable in r."""
        ld = torch.zeros_like(r)
        s = r
        if self.raw_c is not None:
            c = self.cusp_c
            s = r.clamp_min(1e-12) ** (1.0 / (1.0 + c))
            # n_r = n_s * (s/r)^2 * ds/dr
            ld = 2.0 * (torch.log(s) - torch.log(r)) + torch.log(s / ((1.0 + c) * r))
        z, int_div = odeint(self._fwd_ld, (s, torch.zeros_like(s)), self._times(False), **self._opts())
        z, int_div = z[-1], int_div[-1]
        # backward integration of dl/dt = -div from t=1 to 0 gives l(0) = +int_0^1 div dt
        log_pz = -0.5 * z**2 - 1.5 * _LOG_2PI
        return log_pz - int_div + ld

    # ------------------------------------------------------------------ density estimator API
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log n(x) for points x of shape (..., 3), scaled units."""
        if x.shape[-1] != 3:
            raise JeansValueError(f"log_prob expects points of shape (..., 3), got {tuple(x.shape)}")
        return self.log_prob_radius(x.norm(dim=-1))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n points (n, 3) in scaled units; differentiable with respect to the parameters."""
        if n < 1:
            raise JeansValueError(f"number of samples must be >= 1, got {n}")
        z = torch.randn(n, 3, generator=generator)
        s0 = z.norm(dim=-1)
        r = self.push_radius(s0)
        return z / s0.unsqueeze(-1) * r.unsqueeze(-1)


class RadialFlowDistribution(torch.distributions.Distribution):
    """A radial CNF as a ``torch.distributions.Distribution`` over 3D positions (event shape (3,)).

    ``scale`` maps the flow's scaled units to physical ones (x = scale * flow sample), so ``log_prob`` is a
    density per physical volume. It plugs into torch code like any flow: ``sample(sample_shape)``,
    ``log_prob(x)``, ``rsample`` (differentiable in the flow's parameters).
    """

    arg_constraints: dict = {}
    support = torch.distributions.constraints.real_vector
    has_rsample = True

    def __init__(self, flow: RadialCNF, *, scale: float = 1.0, validate_args: bool | None = None) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise JeansValueError(f"scale must be finite and > 0, got {scale}")
        self.flow = flow
        self.scale = float(scale)
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size([3]), validate_args=validate_args)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self.flow.log_prob(value / self.scale) - 3.0 * math.log(self.scale)

    def rsample(self, sample_shape: torch.Size = torch.Size(), *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        x = self.flow.sample(max(int(shape.numel()), 1), generator=generator) * self.scale
        return x.reshape(*shape, 3)

    def sample(self, sample_shape: torch.Size = torch.Size(), *,
               generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator)
