"""``gcsbi snapshot``: sample an embedded cluster model and save or summarise it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "snapshot",
        help="sample a multi-mass LIMEPY cluster model with stellar light",
        description="Sample a cluster snapshot from the embedded multi-mass model.",
    )
    p.add_argument("--mass", type=float, required=True, help="present-day mass, Msun")
    p.add_argument("--rh", type=float, default=3.0, help="3D half-mass radius, pc (default 3)")
    p.add_argument("--age", type=float, default=12.0, help="age, Gyr (default 12)")
    p.add_argument("--feh", type=float, default=-1.5, help="[Fe/H] (default -1.5)")
    p.add_argument("--w0", type=float, default=7.0, help="central potential W0 (default 7)")
    p.add_argument("--delta", type=float, default=0.0, help="mass segregation 0..0.5 (default 0)")
    p.add_argument("--ellipticity", type=float, default=0.0)
    p.add_argument("--pa", type=float, default=0.0, help="position angle, degrees E of N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the snapshot to this .npz file")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .models import ClusterParams, sample_cluster

    if args.out:  # before sampling: the .npz to write is new or an .npz, never a user's other file
        from ..outputs import check_file_target

        out = Path(args.out)
        check_file_target(out if out.suffix == ".npz" or not out.name else out.with_suffix(out.suffix + ".npz"))
    params = ClusterParams(
        mass=args.mass,
        half_mass_radius=args.rh,
        age_gyr=args.age,
        feh=args.feh,
        w0=args.w0,
        segregation=args.delta,
        ellipticity=args.ellipticity,
        position_angle=args.pa,
    )
    t0 = time.perf_counter()
    snap = sample_cluster(params, rng=np.random.default_rng(args.seed))
    elapsed = time.perf_counter() - t0
    summary = {
        "particles": len(snap),
        "stars": snap.n_stars,
        "mass_msun": snap.total_mass,
        "half_mass_radius_pc": snap.half_mass_radius(),
        "projected_half_mass_radius_pc": snap.half_mass_radius(projected=True),
        "virial_ratio": snap.virial_ratio(),
        "integrated_abs_mag": snap.integrated_abs_mag(),
        "seconds": elapsed,
    }
    if args.out:
        summary["file"] = str(snap.save(args.out))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            if isinstance(value, dict):
                print(key + ": " + ", ".join(f"{k}={v:.3f}" for k, v in value.items()))
            else:
                print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return 0
