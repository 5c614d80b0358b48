"""``gcsbi m31``: posteriors for real M31 clusters from the PHAT catalogue (catalogue mode).

    gcsbi m31 infer B165 [--out DIR]            one cluster (name / APID): summary printed; with --out,
                                                DIR/summary.csv, DIR/posterior.png (corner plot) and
                                                DIR/posterior.nc (the ArviZ DataTree, NetCDF4:
                                                xr.open_datatree("DIR/posterior.nc"))
    gcsbi m31 batch --out results.fits          every PHAT cluster matched to Caldwell+2011 (or --sample all):
                                                one results table (.fits or .ecsv), a status per cluster
    gcsbi m31 batch --names B165,B107 --out r.fits   only the clusters named (AltID names or APIDs), or
                                                --names @list.txt: one or more per line, '#' comments
    gcsbi m31 compare results.fits --out DIR    offsets / scatter / coverage vs Caldwell+2011 printed; with
                                                --out, DIR/comparison.json and DIR/comparison.png

Priors (``--prior``): by default ``box``, the posterior's training box (shipped: log age 7 - 10.15)
with E(B-V) >= the Milky Way foreground (0.055 mag; Schlafly & Finkbeiner 2011); ``population``
(experimental) is the population of M31's clusters learnt from the PHAT catalogue itself (age,
mass, [Fe/H] and E(B-V) jointly, in three disc-radius bins; ``gcsbi.catalogue.population``); ``old`` is the
``m31-old`` prior (8 - 14 Gyr, >= 10^4 Msun; the shipped posterior trained on it, else the all-ages
one reweighted) with the same floor; ``training`` is the training prior unchanged (E(B-V) from 0).
``--age-range``, ``--ebv-range``
and ``--ebv-prior MEAN,SD`` (a Gaussian, e.g. from a dust map) change it further. They must lie
inside the posterior's training prior (a range reaching outside it, or a Gaussian mean outside it,
is refused with the allowed range). Every output names the prior it used.

Catalogue rows with unphysical values (Reff or Rap <= 0, an infinite magnitude, an infinite or
negative error) are refused by ``infer`` and skipped by ``batch`` with the reason in the ``status``
column; this holds for a user table (``--catalogue``) too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..outputs import check_file_target, check_output_dir, output_dir, printable

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
    common.add_argument("--prior", choices=("population", "box", "old", "training"), default=None,
                        help="prior preset: box (default: the training box with E(B-V) >= the Milky Way foreground "
                             "0.055), population (experimental: learnt from the PHAT catalogue), old (8-14 Gyr, "
                             ">= 1e4 Msun, same floor), training (unchanged, E(B-V) from 0)")
    common.add_argument("--age-range", type=_pair, default=None, metavar="LO,HI", help="age range in Gyr, inside the training prior (shipped: 0.01-14.1 Gyr)")
    common.add_argument("--ebv-range", type=_pair, default=None, metavar="LO,HI", help="E(B-V) range in mag, inside the training prior (shipped: 0-1)")
    common.add_argument("--ebv-prior", type=_pair, default=None, metavar="MEAN,SD", help="Gaussian E(B-V) prior; MEAN inside the training prior's E(B-V) range, SD > 0")
    common.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")

    a = sub.add_parser("infer", parents=[common], help="posterior of one cluster")
    a.add_argument("cluster", help="name in AltID (B165, G218) or APID (166)")
    a.add_argument("--out", type=Path, default=None, help="folder for summary.csv, posterior.png and posterior.nc "
                   "(the ArviZ DataTree as NetCDF4) (new, empty, or an earlier output of this command, which it "
                   "replaces)")
    a.add_argument("--ppc", type=int, default=32, metavar="N",
                   help="posterior-predictive check of the cluster's magnitudes from N draws (one image simulation "
                        "each, ~0.2 s; default 32; 0: none)")
    a.set_defaults(func=_infer)

    b = sub.add_parser("batch", parents=[common], help="posteriors for a whole sample")
    b.add_argument("--sample", choices=("caldwell", "all"), default=None,
                   help="the PHAT clusters matched to Caldwell+2011 (default), or all of them (default with --names)")
    b.add_argument("--names", default=None, metavar="NAMES|@FILE",
                   help="only these clusters: comma-separated AltID names or APIDs (B165,B107,166), or @FILE "
                        "with one or more per line ('#' starts a comment)")
    b.add_argument("--caldwell", type=Path, default=None, help="Caldwell+2011 table (default: the shipped copy)")
    b.add_argument("--out", type=Path, required=True, help="results table (.fits or .ecsv)")
    b.add_argument("--ppc", type=int, default=0, metavar="N",
                   help="posterior-predictive check per cluster from N draws (~0.2 s per draw: 32 draws take "
                        "~6 s per cluster; default 0: none, ppc_pvalue is NaN)")
    b.set_defaults(func=_batch)

    c = sub.add_parser("compare", help="compare batch results with Caldwell+2011")
    c.add_argument("results", type=Path, help="results table written by m31 batch (.fits or .ecsv)")
    c.add_argument("--out", type=Path, default=None, help="folder for comparison.json and comparison.png (new, "
                   "empty, or an earlier output of this command, which it replaces)")
    c.set_defaults(func=_compare)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p


def _name_list(text: str) -> list[str]:
    """Cluster names of ``--names``: comma-separated, or ``@FILE`` (one or more per line, '#' comments)."""
    from ..errors import GcsbiFileError, GcsbiValueError

    if text.startswith("@"):
        path, limit = Path(text[1:]), 1 << 20  # a list of names, not a catalogue: at most 1 MiB
        try:
            with open(path, "rb") as fh:
                raw = fh.read(limit + 1)
            lines = raw.decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a UTF-8 text file"
            raise GcsbiFileError(f"--names {printable(text)}: cannot read the list of names: {why}") from exc
        if len(raw) > limit:
            raise GcsbiFileError(f"--names {printable(text)}: more than 1 MiB; give one cluster name per line")
        where = f"the file {printable(path)}"
    else:
        lines, where = [text], "--names"
    names = [n.strip() for line in lines for n in line.split("#", 1)[0].split(",") if n.strip()]
    if not names:
        raise GcsbiValueError(f"{where} lists no cluster name (give e.g. --names B165,B107 or @FILE)")
    return names


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers A,B, got {text!r}") from None
    return a, b


def _prior(args: argparse.Namespace) -> Any:
    from .priors import DEFAULT_PRESET, prior_choice

    return prior_choice(args.prior or DEFAULT_PRESET, age_gyr=args.age_range, ebv=args.ebv_range,
                        ebv_gaussian=args.ebv_prior)


def _post(args: argparse.Namespace) -> Any:
    from .inference import load_catalogue_posterior

    return load_catalogue_posterior(args.posterior, prior=args.prior or "box")


def _infer(args: argparse.Namespace) -> int:
    import warnings

    from ..inference import summary
    from .catalogues import read_phat_catalogue, resolve_cluster
    from .compare import literature_values
    from .plots import cluster_title, plot_cluster_posterior
    from .inference import infer_cluster

    if args.out:
        check_output_dir(args.out)  # before the work: refuse a folder of the user's at once
    table = read_phat_catalogue(args.catalogue)
    row = resolve_cluster(args.cluster, table)
    post = _post(args)
    choice = _prior(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dt = infer_cluster(row, post, prior=choice, num_samples=args.num_samples, seed=args.seed,
                           ppc_draws=args.ppc, progress=not args.no_progress)
    for w in caught:
        print(f"warning: {printable(w.message)}")
    s = summary(dt)
    # names come from the catalogue and the checkpoint (files): printed escaped
    print(f"APID {int(row['APID'])} {printable(str(row['AltID']).strip())}: ood_flag={dt.attrs.get('ood_flag')} "
          f"range_flag={dt.attrs.get('range_flag')}")
    if "ppc_note" in dt.attrs:
        print(printable(dt.attrs["ppc_note"]))
    if "ppc_pvalue" in dt.attrs:
        verdict = "the model misses this cluster's magnitudes" if dt.attrs["ppc_flag"] else "consistent"
        print(f"posterior-predictive check ({dt.attrs['ppc_draws']} draws): p = {dt.attrs['ppc_pvalue']:.2f} "
              f"({verdict}); observed - predicted (mag): {printable(dt.attrs['ppc_residual_mag'])}")
    print(f"prior: {printable(dt.attrs['prior'])} (kept {dt.attrs['prior_kept_fraction']:.0%} of the posterior, "
          f"{dt.attrs['prior_ess']:.0f} effective draws)")
    print(printable(s.to_string(), newlines=True))
    if args.out:
        with output_dir(args.out, kind="gcsbi m31 infer") as tmp:
            s.to_csv(tmp / "summary.csv")
            plot_cluster_posterior(dt, literature_values(row, args.catalogue), tmp / "posterior.png",
                                   title=f"{cluster_title(row)}: PHAT catalogue-mode posterior")
            dt.to_netcdf(tmp / "posterior.nc", engine="h5netcdf")
        print(f"wrote {args.out}/summary.csv, posterior.png, posterior.nc")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from .catalogues import caldwell_matched, read_phat_catalogue, select_clusters
    from .inference import infer_catalogue

    check_file_target(args.out)  # a results table (or nothing) there: never a file of another kind
    names = _name_list(args.names) if args.names is not None else None
    sample = args.sample or ("all" if names is not None else "caldwell")
    table = (caldwell_matched(args.catalogue, args.caldwell) if sample == "caldwell"
             else read_phat_catalogue(args.catalogue))
    if names is not None:
        where = ("the Caldwell+2011-matched sample (--sample caldwell; --sample all takes any PHAT cluster)"
                 if sample == "caldwell" else "the PHAT catalogue")
        table = select_clusters(table, names, catalogue=read_phat_catalogue(args.catalogue), sample=where)
    post = _post(args)
    res = infer_catalogue(table, post, num_samples=args.num_samples, seed=args.seed,
                          progress=not args.no_progress, out=args.out, prior=_prior(args), ppc_draws=args.ppc)
    print(f"prior: {res.meta['PRIOR']}")
    used = [s.startswith("ok") for s in res["status"]]
    print(f"{sum(used)} of {len(res)} clusters inferred, {int(res['any_ood'][used].sum())} flagged out of "
          f"distribution; wrote {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from astropy.table import Table

    from .compare import compare_with_caldwell, plot_comparison

    if args.out:
        check_output_dir(args.out)
    res = Table.read(args.results)
    stats = compare_with_caldwell(res)
    print(json.dumps(stats, indent=1))
    if args.out:
        with output_dir(args.out, kind="gcsbi m31 compare") as tmp:
            (tmp / "comparison.json").write_text(json.dumps(stats, indent=1))
            plot_comparison(res, tmp / "comparison.png", stats=stats)
        print(f"wrote {args.out}/comparison.json, comparison.png")
    return 0
