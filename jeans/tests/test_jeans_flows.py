"""Radial CNF: normalisation, sampling vs density, exact divergence, cusp slope, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from gcsbi_jeans.errors import JeansValueError
from gcsbi_jeans.jflow.cnf import RadialCNF
from gcsbi_jeans.jflow.config import FlowConfig


def _random_flow(variant: str, seed: int = 0, scale: float = 4.0) -> RadialCNF:
    torch.manual_seed(seed)
    flow = RadialCNF(FlowConfig(variant=variant, hidden=16, ode_steps=12, cusp_init=0.5))
    with torch.no_grad():  # move away from the identity map so the checks are not trivial
        for p in flow.field.net.parameters():
            p.mul_(scale)
    return flow


@pytest.mark.parametrize("variant", ["cored", "cusp"])
def test_density_is_normalised_and_matches_samples(variant, torch_seed):
    flow = _random_flow(variant)
    r = torch.logspace(-5, 2.5, 3000)
    with torch.no_grad():
        dens = 4 * math.pi * r**3 * flow.log_prob_radius(r).exp()
    total = torch.trapezoid(dens, torch.log(r))
    assert float(total) == pytest.approx(1.0, abs=5e-3)
    m = r < 1.0
    frac_model = float(torch.trapezoid(dens[m], torch.log(r[m])))
    with torch.no_grad():
        x = flow.sample(20000, generator=torch.Generator().manual_seed(3))
    frac_sample = float((x.norm(dim=-1) < 1.0).float().mean())
    assert frac_sample == pytest.approx(frac_model, abs=0.015)  # binomial sd ~ 0.0035
    # the flow changed the density: a standard normal has 19.9% of its mass inside r = 1
    assert abs(frac_model - 0.1987) > 0.03


def test_divergence_matches_3d_autograd(torch_seed):
    flow = _random_flow("cored")
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    flow = flow.double()
    t = torch.tensor(0.3, dtype=torch.float64)
    v = flow.vector_field(0.3, x)
    div3 = sum(torch.autograd.grad(v[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(3))
    _, div_r = flow.field.divergence(t, x.norm(dim=-1))
    torch.testing.assert_close(div_r, div3)


def test_cusp_inner_slope(torch_seed):
    flow = _random_flow("cusp")
    c = float(flow.cusp_c.detach())
    r = torch.tensor([1e-6, 1e-5], dtype=torch.float32)
    with torch.no_grad():
        lp = flow.log_prob_radius(r)
    slope = float((lp[1] - lp[0]) / math.log(10.0))
    assert slope == pytest.approx(-3 * c / (1 + c), abs=0.03)
    cored = _random_flow("cored")
    with torch.no_grad():
        lpc = cored.log_prob_radius(r)
    assert abs(float(lpc[1] - lpc[0])) < 1e-3


def test_same_seed_same_bytes():
    a = _random_flow("cusp", seed=5).sample(64, generator=torch.Generator().manual_seed(9)).detach()
    b = _random_flow("cusp", seed=5).sample(64, generator=torch.Generator().manual_seed(9)).detach()
    assert a.numpy().tobytes() == b.numpy().tobytes()


def test_bad_inputs():
    flow = RadialCNF(FlowConfig())
    with pytest.raises(JeansValueError):
        flow.log_prob(torch.zeros(4, 2))
    with pytest.raises(JeansValueError):
        flow.sample(0)
    with pytest.raises(JeansValueError):
        FlowConfig(variant="nfw")
    with pytest.raises(JeansValueError):
        FlowConfig(ode_steps=0)


def test_log_prob_is_differentiable_in_r(torch_seed):
    flow = _random_flow("cored").double()
    r = torch.tensor([0.3, 1.0], dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(flow.log_prob_radius(r).sum(), r)[0]
    h = 1e-5
    with torch.no_grad():
        fd = (flow.log_prob_radius(r + h) - flow.log_prob_radius(r - h)) / (2 * h)
    torch.testing.assert_close(g, fd, rtol=1e-4, atol=1e-6)


def test_flow_is_a_torch_distribution(torch_seed):
    import torch

    from gcsbi_jeans.core.beta import parse_beta
    from gcsbi_jeans.jflow.cnf import RadialCNF, RadialFlowDistribution
    from gcsbi_jeans.jflow.config import FlowConfig
    from gcsbi_jeans.jflow.model import JeansFlowModel

    model = JeansFlowModel(beta=parse_beta("iso"), length_scale=0.3, velocity_scale=10.0,
                           flow=FlowConfig(variant="cusp", ode_steps=4))
    dist = model.position_distribution()
    assert isinstance(dist, torch.distributions.Distribution) and dist.event_shape == (3,)
    x = dist.sample((2, 5), generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 5, 3) and not x.requires_grad
    lp = dist.log_prob(x)
    assert lp.shape == (2, 5)
    torch.testing.assert_close(lp, model.log_n(x.norm(dim=-1)))  # the same density as the Jeans model's n(r)
    y = dist.rsample((4,))
    assert y.requires_grad  # differentiable in the flow's parameters
    with pytest.raises(Exception):
        RadialFlowDistribution(RadialCNF(), scale=-1.0)
