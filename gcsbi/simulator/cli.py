"""``gcsbi simulate``: draw parameters from a prior, simulate mocks, plot RGB grids and series, and write
the mocks as theta and x (``--out``) or as per-band FITS images (``--fits``, :mod:`.fits_images`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..spec.priors import reference_cluster
from .plots import plot_grid

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
                              description="Simulate mocks from a spec and prior; write RGB composites, theta and x "
                                          "(.npz), or per-band FITS images that gcsbi infer reads.")
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
    p.add_argument("--fits", metavar="DIR", help="write each mock as per-band FITS images, DIR/mock000_<FILTER>.fits "
                   "(e- with the sky subtracted, WCS, theta and seed in the header), for gcsbi infer")
    p.add_argument("--ra", type=float, help="RA in degrees of the FITS images' centre (default: a placeholder, 0)")
    p.add_argument("--dec", type=float, help="Dec in degrees of the FITS images' centre, with --ra")
    p.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")
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


def _title(prior, row: torch.Tensor) -> str:
    """Two short lines (they fit a 2.6-inch panel at 7.5 pt): distance, mass, age / [Fe/H], E(B-V)."""
    d = dict(zip(prior.names, row.tolist()))
    parts = []
    for key, fmt in (("distance_kpc", "{:.0f} kpc"), ("log10_mass", "log M/M☉ {:.2f}"), ("age_gyr", "{:.1f} Gyr"),
                     ("feh", "[Fe/H] {:+.1f}"), ("ebv", "E(B−V) {:.2f}")):
        if key in d:
            parts.append(fmt.format(d[key]))
    return "\n".join(line for line in (", ".join(parts[:3]), ", ".join(parts[3:])) if line)


def picture_args(sim, theta: torch.Tensor) -> dict:
    """Keywords of :func:`plot_grid` that label the mocks of ``sim``: bands, pixel scale, distance of each."""
    return {"bands": tuple(sim.sim_spec.filters), "pixel_scale_arcsec": sim.sim_spec.instrument.pixel_scale_arcsec,
            "distance_kpc": [sim._values(np.asarray(row, float))["distance_kpc"] for row in theta]}


def _series_path(plot: str, name: str) -> Path:
    return Path(plot).with_name(f"{Path(plot).stem}_{name}.png")


def _check_targets(args: argparse.Namespace) -> None:
    """Before simulating: every file to write is new or of the kind written (never a user's other file)."""
    from ..outputs import check_file_target

    if args.out:  # numpy adds .npz to a name without it
        check_file_target(args.out if str(args.out).endswith(".npz") else f"{args.out}.npz")
    if args.plot:
        check_file_target(args.plot)
        for name in args.series:
            check_file_target(_series_path(args.plot, name))


def _check_fits_args(args: argparse.Namespace) -> tuple[float, float] | None:
    """Before simulating: the --fits folder may be written, and --ra/--dec come together with --fits."""
    from ..errors import GcsbiValueError
    from ..outputs import check_output_dir
    from .fits_images import check_position

    given = [opt for opt, v in (("--ra", args.ra), ("--dec", args.dec)) if v is not None]
    if given and not args.fits:
        raise GcsbiValueError(f"{' and '.join(given)} place the FITS images on the sky: use with --fits DIR")
    if len(given) == 1:
        raise GcsbiValueError(f"give both --ra and --dec (got only {given[0]})")
    if args.fits:
        check_output_dir(args.fits)
    return check_position(args.ra, args.dec) if given else None


def _write_fits(args: argparse.Namespace, sim, theta: torch.Tensor, images: np.ndarray,
                position: tuple[float, float] | None) -> None:
    """The mocks as per-band FITS images in the folder --fits (written as a whole, see gcsbi.outputs)."""
    from ..outputs import output_dir
    from .fits_images import write_fits_images

    ra, dec = position if position is not None else (None, None)
    with output_dir(args.fits, kind="gcsbi simulate --fits") as tmp:
        write_fits_images(tmp, images, theta.numpy(), spec=sim.sim_spec, names=sim.prior.names,
                          units=sim.prior.units, seed=args.seed, prior_name=sim.prior.name, ra=ra, dec=dec)


def run(args: argparse.Namespace) -> int:
    from ..errors import GcsbiValueError
    from .core import load_simulator

    if not (isinstance(args.n, int) and args.n >= 1):
        raise GcsbiValueError(f"-n must be a positive integer, got {args.n!r}")
    _check_targets(args)
    position = _check_fits_args(args)
    sim = load_simulator(args.spec, args.prior, workers=args.workers)
    gen = torch.Generator().manual_seed(args.seed)
    low, high = sim.prior.low, sim.prior.high
    theta = low + (high - low) * torch.rand((args.n, len(low)), generator=gen)
    t0 = time.perf_counter()
    out = sim.simulate(theta, seed=args.seed, return_truth=True, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    sky = sim.model.sky_e
    summary = {"spec": sim.sim_spec.name, "prior": sim.prior.name, "n": args.n, "x_shape": list(out["x"].shape),
               "channels": list(sim.channel_names), "seconds": elapsed, "mocks_per_second": args.n / elapsed,
               "files": []}
    if args.out:
        np.savez_compressed(args.out, theta=theta.numpy(), x=out["x"].numpy(), names=np.array(sim.param_names))
        summary["files"].append(str(args.out))
    if args.fits:
        _write_fits(args, sim, theta, out["image"].numpy(), position)
        summary["files"].append(str(args.fits))
    if args.plot:
        titles = [_title(sim.prior, row) for row in theta]
        summary["files"].append(str(plot_grid(out["image"].numpy(), sky, titles, args.plot,
                                              suptitle=f"{sim.sim_spec.name} mocks, prior {sim.prior.name}",
                                              **picture_args(sim, theta))))
        for name in args.series:
            th = series_theta(sim.prior, name)
            imgs = sim.simulate(th, seed=args.seed, return_truth=True, progress=not args.no_progress)["image"]
            path = _series_path(args.plot, name)
            titles = [_title(sim.prior, row) for row in th]
            summary["files"].append(str(plot_grid(imgs.numpy(), sky, titles, path, ncols=len(th),
                                                  suptitle=f"{sim.sim_spec.name}: one B165-like cluster, {name} varied",
                                                  **picture_args(sim, th))))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"simulated {args.n} mocks x{tuple(out['x'].shape[1:])} in {elapsed:.1f} s "
              f"({args.n / elapsed:.2f} mocks/s); wrote {', '.join(summary['files']) or 'nothing'}")
    return 0
