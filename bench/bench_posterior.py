"""Posterior sampling speed of the shipped posteriors on this machine (one CPU thread).

For each shipped image posterior (``hst-phat_m31-gc``, ``hst-mw_milky-way-gc``): 10^4 samples
for one cluster, then 500 clusters in one batch (sbi's ``sample_batched``: the embedding runs
once per observation) with 200 samples each (500 x 10^4 draws are 50x more flow evaluations:
estimated 5-20 min per posterior on one CPU thread, so not run here). The 500 clusters are fresh
simulations (seeded). Writes bench/results/posterior.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from gcsbi.inference import load_posterior, shipped_posteriors
from gcsbi.simulator.core import load_simulator

OUT = Path(__file__).resolve().parent / "results"
N_CLUSTERS = 500


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_one(name: str) -> dict:
    post = load_posterior(name)
    sim = load_simulator(post.spec["simulator"]["name"], post.spec["prior"]["name"])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theta = sim.prior.sample((N_CLUSTERS,))
    x = sim(theta, seed=99)
    res = {"n_clusters": N_CLUSTERS, "x_shape": list(x.shape[1:]), "x_pool": post.config.x_pool,
           "one_cluster_1e4_samples_s": _timed(lambda: post.sample(10_000, x[0], seed=0))}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        res["batch_500_clusters_200_samples_s"] = _timed(lambda: post.sample_batched((200,), x))
    res["per_cluster_in_batch_ms"] = 1e3 * res["batch_500_clusters_200_samples_s"] / N_CLUSTERS
    return res


def main() -> dict:
    torch.set_num_threads(1)
    names = [n for n in ("hst-phat_m31-gc", "hst-mw_milky-way-gc") if n in shipped_posteriors()]
    result = {"threads": 1, **{name: bench_one(name) for name in names}}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "posterior.json").write_text(json.dumps(main(), indent=2))
