"""Seeds: torch blocks that leave the caller's RNG alone, per-purpose seed streams, seeded simulation.

Every random step of gcsbi (training simulations, calibration mocks, posterior-predictive draws,
inference) takes its seed from :func:`stream_seed` with its own purpose tag, so two purposes
never share a random stream whatever the user seed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError

__all__ = ["seeded", "stream_seed", "simulate", "SEED_STREAMS"]

#: Purpose tags mixed into seeds so training and calibration simulations never share a stream.
SEED_STREAMS: dict[str, int] = {"train": 0, "calibration": 1, "ppc": 2, "inference": 3}


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu") -> Iterator[None]:
    """Run a block with torch seeded to ``seed`` without touching the caller's RNG state."""
    devices = [torch.device(device)] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def stream_seed(seed: int, stream: str, *extra: int) -> int:
    """A 63-bit seed for purpose ``stream`` (and sub-keys ``extra``) derived from the user seed.

    Distinct (stream, extra) keys give independent seeds (``numpy.random.SeedSequence``).
    """
    ss = np.random.SeedSequence([int(seed), SEED_STREAMS[stream], *[int(e) for e in extra]])
    return int(ss.generate_state(1, dtype=np.uint64)[0]) % 2**63


def simulate(simulator: Any, num_simulations: int, *, seed: int, stream: str = "train",
             batch_size: int = 256, progress: bool = False,
             desc: str = "simulating") -> tuple[torch.Tensor, torch.Tensor]:
    """Draw theta from ``simulator.prior`` and simulate, on seed stream ``stream``; same seed -> same bytes.

    The prior draw and each simulation batch get their own derived seed (never the same seed
    twice, so simulator noise is independent of theta). ``progress``: a bar ``desc`` over the
    simulations on stderr, advanced per mock when the simulator's call takes a ``progress``
    keyword (gcsbi's simulators), else per batch.
    """
    from tqdm.auto import tqdm

    n = int(num_simulations)
    if n < 1:
        raise GcsbiValueError(f"num_simulations must be >= 1, got {num_simulations}")
    with seeded(stream_seed(seed, stream, 0)):
        theta = simulator.prior.sample((n,)).to(torch.float32)
    xs = []
    per_mock = bool(progress) and _takes_progress(simulator)
    with tqdm(total=n, desc=desc, unit="mock", disable=not progress) as bar:
        for k, start in enumerate(range(0, n, int(batch_size))):
            batch_seed = stream_seed(seed, stream, 1, k)
            batch = theta[start:start + int(batch_size)]
            extra = {"progress": bar} if per_mock else {}
            xs.append(torch.as_tensor(simulator(batch, seed=batch_seed, **extra)))
            if not per_mock:
                bar.update(len(batch))
    return theta, torch.cat(xs).to(torch.float32)


def _takes_progress(simulator: Any) -> bool:
    """Whether calling ``simulator`` accepts a ``progress`` keyword (a tqdm bar to advance per mock)."""
    import inspect

    try:
        return "progress" in inspect.signature(simulator).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
