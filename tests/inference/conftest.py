"""Shared tiny posterior for the inference tests (trained once per session, ~5 s)."""

from __future__ import annotations

import pytest
import torch

from gcsbi.inference import SmallCNN, TrainConfig, simulate, train
from gcsbi.testing import ToyImageSimulator


@pytest.fixture(scope="session")
def toy_sim() -> ToyImageSimulator:
    return ToyImageSimulator(size=16)


@pytest.fixture(scope="session")
def toy_posterior(toy_sim):
    with torch.random.fork_rng():
        theta, x = simulate(toy_sim, 500, seed=0)
        config = TrainConfig(hidden_features=32, num_transforms=2, max_num_epochs=25, stop_after_epochs=5,
                             batch_size=64, learning_rate=2e-3, seed=0)
        return train(theta, x, simulator=toy_sim, embedding_net=SmallCNN(3, features=8, channels=4), config=config)
