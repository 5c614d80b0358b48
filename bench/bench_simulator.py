"""End-to-end simulator throughput, old vs new in the same run: theta -> snapshot -> mock image -> x.

For each shipped spec (hst-phat/m31-gc, hst-mw/milky-way-gc, jwst-nircam/m31-gc) and both ways of
rendering the faint stars -- ``particles`` (before: mass-stratified particles) and ``smooth``
(now the default: unresolved light as Poisson counts per pixel, ``gcsbi.observe.star_counts``) --
times one process with one thread, on the same theta and seeds:

* 8 mocks each at 1e4, 1e5, 1e6 Msun (ages spread over the prior; the prior's top mass if lower);
* ``--n-prior`` prior draws, first pass (every mock builds its population tables, as in a bank or
  in sbi's rounds) and second pass (tables cached).

Then writes the picture set (prior grid, distance and age series) of the default spec to
bench/results/. Results: bench/results/simulator.json.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_simulator.py [--n-prior 48]``
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from gcsbi.simulator.cli import _title, picture_args, plot_grid, series_theta
from gcsbi.simulator.core import ClusterSimulator, load_simulator, with_snapshot

OUT = Path(__file__).resolve().parent / "results"
SPECS = (("hst-phat", "m31-gc"), ("hst-mw", "milky-way-gc"), ("jwst-nircam", "m31-gc"))


def speed(spec: str, prior: str, n_prior: int) -> dict:
    out = {}
    for mode in ("particles", "smooth"):
        sim = ClusterSimulator(with_snapshot(spec, faint_light=mode), prior)
        names = sim.param_names
        sim(sim.prior.sample((1,)), seed=0)  # PSFs, field pool
        by_mass = {}
        for logm in (4.0, 5.0, 6.0):
            th = ((sim.prior.low + sim.prior.high) / 2)[None].repeat(8, 1)
            th[:, names.index("log10_mass")] = min(logm, float(sim.prior.high[names.index("log10_mass")]))
            th[:, names.index("age_gyr")] = torch.linspace(float(sim.prior.low[names.index("age_gyr")]),
                                                           float(sim.prior.high[names.index("age_gyr")]), 8)
            sim(th[:1], seed=1)
            t0 = time.perf_counter()
            sim(th, seed=2)
            by_mass[f"1e{int(logm)}"] = 1e3 * (time.perf_counter() - t0) / len(th)
        gen = torch.Generator().manual_seed(0)
        th = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((n_prior, len(names)), generator=gen)
        t0 = time.perf_counter()
        sim(th, seed=3)
        first = 1e3 * (time.perf_counter() - t0) / n_prior
        t0 = time.perf_counter()
        sim(th, seed=4)
        second = 1e3 * (time.perf_counter() - t0) / n_prior
        out[mode] = {"ms_per_mock_by_mass": {k: round(v, 2) for k, v in by_mass.items()},
                     "prior_average_ms_first_pass": round(first, 2), "prior_average_ms_tables_cached": round(second, 2)}
        print(f"{spec}/{prior} {mode:9s}: by mass {out[mode]['ms_per_mock_by_mass']} ms; prior average "
              f"{first:.1f} ms (first pass), {second:.1f} ms (tables cached)", flush=True)
    out["speedup_prior_average_first_pass"] = round(
        out["particles"]["prior_average_ms_first_pass"] / out["smooth"]["prior_average_ms_first_pass"], 2)
    return out


def pictures(sim) -> None:
    gen = torch.Generator().manual_seed(0)
    th = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((9, len(sim.param_names)), generator=gen)
    out = sim.simulate(th, seed=3, return_truth=True)
    sky = sim.model.sky_e
    titles = [_title(sim.prior, row) for row in th]
    plot_grid(out["image"].numpy(), sky, titles, OUT / "simulate_grid.png", suptitle="hst-phat mocks, prior m31-gc",
              dpi=100, **picture_args(sim, th))
    for name in ("distance", "age"):
        ts = series_theta(sim.prior, name)
        imgs = sim.simulate(ts, seed=4, return_truth=True)["image"].numpy()
        titles = [_title(sim.prior, row) for row in ts]
        plot_grid(imgs, sky, titles, OUT / f"simulate_series_{name}.png", ncols=len(ts),
                  suptitle=f"hst-phat: one B165-like cluster, {name} varied", dpi=100, **picture_args(sim, ts))


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-prior", type=int, default=48, help="prior draws per spec and mode (default 48)")
    args = p.parse_args()
    torch.set_num_threads(1)
    res = {"threads": 1, "specs": {}}
    for spec, prior in SPECS:
        res["specs"][f"{spec}/{prior}"] = speed(spec, prior, args.n_prior)
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pictures(load_simulator("hst-phat", "m31-gc"))
    return res


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    result = main()
    (OUT / "simulator.json").write_text(json.dumps(result, indent=2))
