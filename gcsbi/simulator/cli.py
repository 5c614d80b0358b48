"""``gcsbi simulate``: draw parameters from a prior, simulate mocks, plot RGB grids and series."""

from __future__ import annotations

import argparse
import textwrap
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..spec.priors import reference_cluster

__all__ = ["add_parser", "run", "plot_grid", "series_theta"]

#: Distance and age series of the pi-DOC papers (same cluster, one parameter varied).
SERIES = {"distance": ("distance_kpc", (700.0, 740.0, 780.0, 820.0, 850.0)),
          "age": ("age_gyr", (1.0, 2.0, 4.0, 8.0, 13.0))}


def _count(minimum: int, maximum: int | None = None):
    """argparse ``type=`` for integers in [minimum, maximum] (a bad value is argparse's usual error)."""
    word = "positive" if minimum == 1 else "non-negative"
    below = "" if maximum is None else f" <= {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be a {word} integer{below}, got {text!r}")
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("simulate", help="simulate mock images and plot them",
                              description="Simulate mocks from a spec and prior; write RGB composites.")
    p.add_argument("--spec", default="hst-phat", help="simulator spec name or TOML path")
    p.add_argument("--prior", default=None, help="prior name or TOML path (default: the spec's)")
    p.add_argument("-n", type=_count(1), default=16, help="number of mocks drawn from the prior (>= 1)")
    p.add_argument("--seed", type=_count(0, 2**63 - 1), default=0, help="random seed (0 <= seed < 2**63)")
    p.add_argument("--workers", type=_count(1), default=1, help="simulation processes (>= 1)")
    p.add_argument("--plot", help="PNG of RGB composites of the n mocks")
    p.add_argument("--series", choices=sorted(SERIES), action="append", default=[],
                   help="also plot a series of one cluster (distance or age varied) next to --plot")
    p.add_argument("--out", help="save theta and x to this .npz")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)
    return p


def series_theta(prior, name: str, *, base: dict[str, float] | None = None) -> torch.Tensor:
    """theta rows for a series: the B165-like reference cluster with one parameter varied.

    The cluster is :func:`gcsbi.spec.reference_cluster` ``("B165")`` (``priors/m31-gc.toml``),
    updated with ``base`` and clipped to the prior box; parameters it lacks take the middle of
    the prior. The varied parameter takes the values of :data:`SERIES` when they all lie inside
    the prior, else as many values evenly spread over its range (the M31 distances of the
    distance series are far outside a Milky Way prior).
    """
    column, values = SERIES[name]
    if column in prior.names:
        spec = prior.specs[prior.names.index(column)]
        if not all(spec.low <= v <= spec.high for v in values):
            values = tuple(float(v) for v in np.linspace(spec.low, spec.high, len(values)))
    mid = {s.name: 0.5 * (s.low + s.high) for s in prior.specs}
    ref = {**reference_cluster("B165"), **(base or {})}
    row = {n: float(np.clip(ref.get(n, mid[n]), s.low, s.high)) for n, s in zip(prior.names, prior.specs)}
    rows = []
    for v in values:
        if column in row:
            rows.append({**row, column: float(v)})
    return prior.from_dict({k: [r[k] for r in rows] for k in prior.names})


def plot_grid(images: np.ndarray, sky: np.ndarray, titles: list[str], path: str | Path, *,
              ncols: int | None = None, suptitle: str = "", dpi: int = 110) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..observe.composite import rgb_composite

    n = len(images)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.8 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        ax.imshow(rgb_composite(img, sky=sky), origin="lower")
        ax.set_title(textwrap.fill(title, 40), fontsize=7)  # ~40 characters fit a 2.6-inch panel
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _title(prior, row: torch.Tensor) -> str:
    d = dict(zip(prior.names, row.tolist()))
    parts = []
    for key, fmt in (("distance_kpc", "{:.0f} kpc"), ("log10_mass", "logM {:.2f}"), ("age_gyr", "{:.1f} Gyr"),
                     ("feh", "[Fe/H] {:+.1f}"), ("ebv", "E(B-V) {:.2f}")):
        if key in d:
            parts.append(fmt.format(d[key]))
    return "\n".join([", ".join(parts[:3]), ", ".join(parts[3:])])


def run(args: argparse.Namespace) -> int:
    from ..errors import GcsbiValueError
    from .core import load_simulator

    if not (isinstance(args.n, int) and args.n >= 1):
        raise GcsbiValueError(f"-n must be a positive integer, got {args.n!r}")
    sim = load_simulator(args.spec, args.prior, workers=args.workers)
    gen = torch.Generator().manual_seed(args.seed)
    low, high = sim.prior.low, sim.prior.high
    theta = low + (high - low) * torch.rand((args.n, len(low)), generator=gen)
    t0 = time.perf_counter()
    out = sim.simulate(theta, seed=args.seed, return_truth=True, progress=not args.json)
    elapsed = time.perf_counter() - t0
    sky = sim.model.sky_e
    summary = {"spec": sim.sim_spec.name, "prior": sim.prior.name, "n": args.n, "x_shape": list(out["x"].shape),
               "channels": list(sim.channel_names), "seconds": elapsed, "mocks_per_second": args.n / elapsed,
               "files": []}
    if args.out:
        np.savez_compressed(args.out, theta=theta.numpy(), x=out["x"].numpy(), names=np.array(sim.param_names))
        summary["files"].append(str(args.out))
    if args.plot:
        titles = [_title(sim.prior, row) for row in theta]
        summary["files"].append(str(plot_grid(out["image"].numpy(), sky, titles, args.plot,
                                              suptitle=f"{sim.sim_spec.name} / {sim.prior.name}")))
        for name in args.series:
            th = series_theta(sim.prior, name)
            imgs = sim.simulate(th, seed=args.seed, return_truth=True)["image"]
            path = Path(args.plot).with_name(f"{Path(args.plot).stem}_{name}.png")
            titles = [_title(sim.prior, row) for row in th]
            summary["files"].append(str(plot_grid(imgs.numpy(), sky, titles, path, ncols=len(th),
                                                  suptitle=f"same cluster, {name} varied")))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"simulated {args.n} mocks x{tuple(out['x'].shape[1:])} in {elapsed:.1f} s "
              f"({args.n / elapsed:.2f} mocks/s); wrote {', '.join(summary['files']) or 'nothing'}")
    return 0
