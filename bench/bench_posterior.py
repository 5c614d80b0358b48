"""Posterior sampling speed of the shipped posterior (hst-phat / m31-gc) on this machine.

10^4 samples for one cluster, and 200 samples each for 500 clusters in one batch (sbi's
``sample_batched``: the embedding runs once per observation). Writes bench/results/posterior.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from gcsbi.bank import SimulationBank
from gcsbi.demo import SHIPPED_POSTERIOR
from gcsbi.inference import load_posterior

OUT = Path(__file__).resolve().parent / "results"
BANK = Path(__file__).resolve().parents[1] / "runs" / "phat-m31.zarr"


def main(bank: Path = BANK) -> dict:
    torch.set_num_threads(1)
    post = load_posterior(SHIPPED_POSTERIOR)
    if bank.exists():
        _, x = SimulationBank.open(bank).load()
        x = x[:500]
    else:  # no bank: simulate 500 fresh clusters
        from gcsbi.simulator import load_simulator

        sim = load_simulator("hst-phat", "m31-gc")
        x = sim(sim.prior.sample((500,)), seed=99)
    t0 = time.perf_counter()
    post.sample(10_000, x[0], seed=0)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        post.sample_batched((200,), x)
    batch = time.perf_counter() - t0
    res = {"threads": 1, "one_cluster_1e4_samples_s": one, "batch_500_clusters_200_samples_s": batch,
           "per_cluster_in_batch_ms": 1e3 * batch / len(x), "n_clusters": int(len(x))}
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    import sys

    OUT.mkdir(parents=True, exist_ok=True)
    result = main(Path(sys.argv[1]) if len(sys.argv) > 1 else BANK)
    (OUT / "posterior.json").write_text(json.dumps(result, indent=2))
