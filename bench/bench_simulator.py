"""End-to-end simulator throughput: theta -> snapshot -> mock image -> x (hst-phat, 128x128x3).

Times one process (1 thread) for 1e4, 1e5, 1e6 Msun clusters at M31 (everything included:
population, LIMEPY sampling, field stars, rendering, noise, transforms), the prior-averaged
rate over m31-gc, peak RSS, and writes the picture set of the issue (prior grid, distance and
age series) to bench/results/. Results: bench/results/simulator.json.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import torch

from gcsbi.simulator.cli import plot_grid, series_theta
from gcsbi.simulator.core import load_simulator

OUT = Path(__file__).resolve().parent / "results"


def main() -> dict:
    torch.set_num_threads(1)
    sim = load_simulator("hst-phat", "m31-gc")
    t0 = time.perf_counter()
    sim(sim.prior.sample((1,)), seed=0)  # build caches (PSFs, population tables, model grid)
    setup = time.perf_counter() - t0
    res = {"setup_s": setup, "by_mass": {}}
    for logm in (4.0, 5.0, 6.0):
        th = series_theta(sim.prior, "distance", base={"log10_mass": logm})[2:3].repeat(8, 1)
        th[:, sim.param_names.index("age_gyr")] = torch.linspace(8, 13, 8)
        sim(th[:1], seed=1)
        t0 = time.perf_counter()
        sim(th, seed=2)
        dt = (time.perf_counter() - t0) / len(th)
        res["by_mass"][f"1e{int(logm)}"] = {"ms_per_mock": 1e3 * dt, "mocks_per_s": 1.0 / dt}
        print(f"M = 1e{int(logm)} Msun: {1e3 * dt:.1f} ms per mock ({1 / dt:.1f} mocks/s, 1 process)")
    gen = torch.Generator().manual_seed(0)
    th = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((24, len(sim.param_names)), generator=gen)
    t0 = time.perf_counter()
    out = sim.simulate(th, seed=3, return_truth=True)
    dt = (time.perf_counter() - t0) / len(th)
    res["prior_average"] = {"ms_per_mock": 1e3 * dt, "mocks_per_s": 1.0 / dt, "n": len(th)}
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"m31-gc prior average: {1e3 * dt:.0f} ms per mock; max RSS {res['max_rss_mb']:.0f} MB")
    sky = sim.model.sky_e
    titles = [", ".join(f"{k} {v:.2f}" for k, v in zip(("d", "logM", "age"), row[:3].tolist())) for row in th[:9]]
    plot_grid(out["image"][:9].numpy(), sky, titles, OUT / "simulate_grid.png", suptitle="hst-phat / m31-gc",
              dpi=70)
    for name in ("distance", "age"):
        ts = series_theta(sim.prior, name)
        imgs = sim.simulate(ts, seed=4, return_truth=True)["image"].numpy()
        titles = [f"{name} = {v:.0f}" for v in ts[:, sim.param_names.index(
            "distance_kpc" if name == "distance" else "age_gyr")].tolist()]
        plot_grid(imgs, sky, titles, OUT / f"simulate_series_{name}.png", ncols=len(ts),
                  suptitle=f"12 Gyr-like 1e5 Msun cluster, {name} varied", dpi=70)
    return res


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    result = main()
    (OUT / "simulator.json").write_text(json.dumps(result, indent=2))
