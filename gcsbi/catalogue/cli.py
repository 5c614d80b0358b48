"""``gcsbi m31``: posteriors for real M31 clusters from the PHAT catalogue (catalogue mode).

    gcsbi m31 infer B165 [--out DIR]            one cluster (name / APID): summary, corner-style plot
    gcsbi m31 batch --out results.fits          every PHAT cluster matched to Caldwell+2011 (or --sample all)
    gcsbi m31 compare results.fits --out DIR    offsets / scatter / coverage vs Caldwell+2011, plots

Priors: the posterior's training prior by default (the shipped one: ``m31-clusters``, log age
7 - 10.15, E(B-V) 0 - 1); ``--prior old`` is the ``m31-old`` prior (8 - 14 Gyr, >= 10^4 Msun; the
shipped posterior trained on it, else the all-ages one reweighted); ``--age-range``, ``--ebv-range``
and ``--ebv-prior MEAN,SD`` (a Gaussian, e.g. from a dust map) change it further. Every output
names the prior it used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("m31", help="posteriors for real M31 clusters from the PHAT catalogue",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="m31_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--posterior", type=Path, default=None, help="catalogue-mode checkpoint (default: shipped)")
    common.add_argument("--catalogue", type=Path, default=None, help="PHAT FITS table (default: the shipped Johnson+2015 catalogue)")
    common.add_argument("--num-samples", type=int, default=2000)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--prior", choices=("training", "old"), default="training",
                        help="prior preset: the posterior's training prior, or old clusters (8-14 Gyr)")
    common.add_argument("--age-range", type=_pair, default=None, metavar="LO,HI", help="age range in Gyr")
    common.add_argument("--ebv-range", type=_pair, default=None, metavar="LO,HI", help="E(B-V) range")
    common.add_argument("--ebv-prior", type=_pair, default=None, metavar="MEAN,SD", help="Gaussian E(B-V) prior")

    a = sub.add_parser("infer", parents=[common], help="posterior of one cluster")
    a.add_argument("cluster", help="name in AltID (B165, G218) or APID (166)")
    a.add_argument("--out", type=Path, default=None, help="folder for summary.csv, posterior.png, posterior.nc")
    a.set_defaults(func=_infer)

    b = sub.add_parser("batch", parents=[common], help="posteriors for a whole sample")
    b.add_argument("--sample", choices=("caldwell", "all"), default="caldwell")
    b.add_argument("--caldwell", type=Path, default=None, help="Caldwell+2011 table (default: the shipped copy)")
    b.add_argument("--out", type=Path, required=True, help="results table (.fits or .ecsv)")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_batch)

    c = sub.add_parser("compare", help="compare batch results with Caldwell+2011")
    c.add_argument("results", type=Path)
    c.add_argument("--out", type=Path, default=None, help="folder for comparison.json and comparison.png")
    c.set_defaults(func=_compare)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers A,B, got {text!r}") from None
    return a, b


def _prior(args: argparse.Namespace) -> Any:
    from .priors import prior_choice

    return prior_choice(args.prior, age_gyr=args.age_range, ebv=args.ebv_range, ebv_gaussian=args.ebv_prior)


def _post(args: argparse.Namespace) -> Any:
    from .inference import load_catalogue_posterior

    return load_catalogue_posterior(args.posterior, prior=args.prior)


def _infer(args: argparse.Namespace) -> int:
    import warnings

    from ..inference import summary
    from .catalogues import read_phat_catalogue, resolve_cluster
    from .compare import plot_cluster_posterior
    from .inference import infer_cluster

    table = read_phat_catalogue(args.catalogue)
    row = resolve_cluster(args.cluster, table)
    choice = _prior(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt = infer_cluster(row, _post(args), prior=choice, num_samples=args.num_samples, seed=args.seed)
    for w in caught:
        print(f"warning: {w.message}")
    s = summary(dt)
    print(f"APID {int(row['APID'])} {str(row['AltID']).strip()}: ood_flag={dt.attrs.get('ood_flag')} "
          f"range_flag={dt.attrs.get('range_flag')}")
    print(f"prior: {dt.attrs['prior']} (kept {dt.attrs['prior_kept_fraction']:.0%} of the posterior)")
    print(s.to_string())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        s.to_csv(args.out / "summary.csv")
        plot_cluster_posterior(dt, out=args.out / "posterior.png", title=f"APID {int(row['APID'])}")
        print(f"wrote {args.out}/summary.csv, posterior.png")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from .catalogues import caldwell_matched, read_phat_catalogue
    from .inference import infer_catalogue

    table = caldwell_matched(args.catalogue, args.caldwell) if args.sample == "caldwell" else read_phat_catalogue(args.catalogue)
    res = infer_catalogue(table, _post(args), num_samples=args.num_samples, seed=args.seed,
                          progress=not args.no_progress, out=args.out, prior=_prior(args))
    print(f"prior: {res.meta['PRIOR']}")
    used = [s.startswith("ok") for s in res["status"]]
    print(f"{sum(used)} of {len(res)} clusters inferred, {int(res['any_ood'][used].sum())} flagged out of "
          f"distribution; wrote {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from astropy.table import Table

    from .compare import compare_with_caldwell, plot_comparison

    res = Table.read(args.results)
    stats = compare_with_caldwell(res)
    print(json.dumps(stats, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "comparison.json").write_text(json.dumps(stats, indent=1))
        plot_comparison(res, args.out / "comparison.png", stats=stats)
        print(f"wrote {args.out}/comparison.json, comparison.png")
    return 0
