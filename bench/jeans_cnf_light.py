"""Known answers of the CNF light profile (gcsbi_jeans.jflow.light, issue 26 item 2) and its fit time on one core.

Usage (repo root):
    OMP_NUM_THREADS=1 .venv/bin/python bench/jeans_cnf_light.py [--n 10000] [--cases plummer,zhao0.1,zhao1,field30]
Writes bench/results/jeans_cnf_light.json.

Cases (10^4 stars each, default LightConfig, seed 0): Plummer, Zhao (alpha 2, beta 5, gamma 0.1 and 1) tracers
(targets: |log10 n_fit / n_true| <= 0.03 over 0.1-5 R_1/2), and a Plummer sample inside a disc of 8 scale radii
with 30% of the stars a uniform field (target: R_1/2 within 5%). The Plummer sum (core.light.fit_light) is
scored on the same samples for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gcsbi_jeans.core.light import fit_light  # noqa: E402
from gcsbi_jeans.core.mocks import plummer_positions  # noqa: E402
from gcsbi_jeans.core.parametric import plummer_density, zhao_density  # noqa: E402
from gcsbi_jeans.jflow.config import LightConfig  # noqa: E402
from gcsbi_jeans.jflow.light import fit_cnf_light  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "jeans_cnf_light.json"
A = 0.25  # kpc


def zhao_sample(n: int, a: float, gamma: float, seed: int) -> tuple[np.ndarray, callable, float]:
    """Projected radii of n stars from a Zhao (2, 5, gamma) tracer, its normalised n(r) and projected R_1/2."""
    r = a * np.geomspace(1e-5, 1e4, 20001)
    nu = zhao_density(r, 1.0, a, 2.0, 5.0, gamma)
    lr = np.log(r)
    dm = 4 * math.pi * r**3 * nu
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dm[1:] + dm[:-1]) * np.diff(lr))])
    norm = cdf[-1]
    rng = np.random.default_rng(seed)
    r3 = np.exp(np.interp(rng.uniform(0, 1, n) * norm, cdf, lr))
    cos_t = rng.uniform(-1, 1, n)
    R = r3 * np.sqrt(1 - cos_t**2)
    # projected half radius of the truth: by a large Monte Carlo sample (the 3D-to-2D ratio is profile dependent)
    big = np.exp(np.interp(np.random.default_rng(seed + 99).uniform(0, 1, 2_000_000) * norm, cdf, lr))
    R_big = big * np.sqrt(1 - np.random.default_rng(seed + 98).uniform(-1, 1, big.size) ** 2)
    return R, (lambda x: zhao_density(x, 1.0 / norm, a, 2.0, 5.0, gamma)), float(np.median(R_big))


def score(prof, truth, r_half: float) -> dict:
    r = r_half * np.geomspace(0.1, 5.0, 40)
    d = np.log10(prof.density(r) / truth(r))
    return {"max_abs_dex_0.1_5_Rhalf": float(np.max(np.abs(d))), "median_abs_dex": float(np.median(np.abs(d))),
            "dex_at_0.1_0.5_1_2_5_Rhalf": [float(np.interp(math.log(x), np.log(r / r_half), d))
                                             for x in (0.1, 0.5, 1, 2, 5)],
            "r_half_rel_err": prof.half_light_radius() / r_half - 1.0}


def run_case(name: str, n: int, cfg: LightConfig) -> dict:
    R_max = None
    if name == "plummer":
        R, truth, r_half = plummer_positions(n, A, seed=5), (lambda x: plummer_density(x, A)), A
    elif name.startswith("zhao"):
        R, truth, r_half = zhao_sample(n, A, float(name[4:]), seed=7)
    elif name == "field30":
        rng = np.random.default_rng(11)
        edge = 8 * A
        members = plummer_positions(int(round(0.7 * n / 0.985)), A, seed=11)
        members = members[members < edge]
        n_field = int(round(0.3 / 0.7 * members.size))
        R = rng.permutation(np.concatenate([members, edge * np.sqrt(rng.uniform(0, 1, n_field))]))
        truth, r_half, R_max = (lambda x: plummer_density(x, A)), A, edge
    else:
        raise SystemExit(f"unknown case {name}")
    t0 = time.perf_counter()
    ens = fit_cnf_light(R, None, cfg, R_max=R_max, seed=0)
    wall = time.perf_counter() - t0
    out = {"n_stars": int(R.size), "fit_wall_s": wall, "cnf": score(ens, truth, r_half),
           "cnf_members": [score(m, truth, r_half)["max_abs_dex_0.1_5_Rhalf"] for m in ens.members],
           "info": ens.info, "background_fraction": ens.background_fraction}
    t0 = time.perf_counter()
    pl = fit_light(R, R_max=R_max, seed=0)
    out["plummer_sum"] = {**score(pl, truth, r_half), "fit_wall_s": time.perf_counter() - t0,
                          "background_fraction": pl.background_fraction}
    if name == "field30":
        out["target"] = "R_1/2 within 5%"
        out["pass"] = abs(out["cnf"]["r_half_rel_err"]) <= 0.05
    else:
        out["target"] = "max |dlog10 n| <= 0.03 over 0.1-5 R_1/2"
        out["pass"] = out["cnf"]["max_abs_dex_0.1_5_Rhalf"] <= 0.03
    out["time_pass"] = wall <= 300.0
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--cases", default="plummer,zhao0.1,zhao1,field30")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = LightConfig()
    res = {"settings": cfg.to_dict(), "threads": torch.get_num_threads(), "machine": platform.platform(),
           "cpu_count": os.cpu_count(), "note": "one core (OMP_NUM_THREADS=1, torch threads 1), nice 10, with "
           "another heavy job on the machine's other core", "cases": {}}
    for name in args.cases.split(","):
        res["cases"][name] = run_case(name, args.n, cfg)
        print(name, json.dumps({k: res["cases"][name][k] for k in ("fit_wall_s", "cnf", "pass")}), flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
