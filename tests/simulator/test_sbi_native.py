"""gcsbi's simulators used the way an sbi user would: ``simulate_for_sbi`` with a seed."""

from __future__ import annotations

import pytest
import torch
from sbi.inference import simulate_for_sbi

import gcsbi


@pytest.fixture(scope="module")
def hst_sim():
    return gcsbi.load_simulator("hst-phat", prior="m31-gc")


def _run(sim, n: int, seed: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return simulate_for_sbi(sim, sim.prior, n, simulation_batch_size=batch, seed=seed, show_progress_bar=False)


def test_simulate_for_sbi_is_reproducible(hst_sim):
    theta1, x1 = _run(hst_sim, 3, seed=0, batch=2)
    theta2, x2 = _run(hst_sim, 3, seed=0, batch=2)
    assert x1.shape == (3, *hst_sim.output_shape) and x1.dtype == torch.float32
    assert theta1.numpy().tobytes() == theta2.numpy().tobytes()
    assert x1.numpy().tobytes() == x2.numpy().tobytes()
    theta3, x3 = _run(hst_sim, 3, seed=1, batch=2)
    assert not torch.equal(theta1, theta3) and not torch.equal(x1, x3)


def test_seed_none_draws_from_torch_global_generator(hst_sim):
    theta = hst_sim.prior.sample((1,))
    torch.manual_seed(5)
    a = hst_sim(theta)
    torch.manual_seed(5)
    b = hst_sim(theta)
    c = hst_sim(theta)  # the generator moved on: a new seed, new noise
    assert torch.equal(a, b)
    assert not torch.equal(b, c)


def test_toy_simulator_is_reproducible_through_sbi():
    from gcsbi.testing.toy import ToyImageSimulator

    sim = ToyImageSimulator(size=8)
    _, x1 = _run(sim, 6, seed=3, batch=4)
    _, x2 = _run(sim, 6, seed=3, batch=4)
    assert x1.numpy().tobytes() == x2.numpy().tobytes()
