"""``gcsbi-jeans {fit, baseline, mock}`` (also ``gcsbi jeans ...`` when gcsbi is installed): Jeans fits, the emcee
baseline and galpy mocks from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path


from .errors import JeansError, JeansFileError, JeansValueError, JeansWarning

__all__ = ["main", "build_parser", "add_parser", "cmd_fit", "cmd_baseline", "cmd_mock"]


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(t) for t in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected 'RA,DEC' in degrees, got {text!r}") from exc
    return a, b


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="star table: '# x y v verr p' text, Walker/GravSphere spec file, or Gaia Challenge")
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "table", "walker", "gaia"])
    p.add_argument("--distance", type=float, default=None, help="distance in kpc (Walker / RA-Dec tables)")
    p.add_argument("--centre", type=_pair, default=None, help="RA,DEC of the centre in degrees")
    p.add_argument("--verr", type=float, default=None, metavar="KMS",
                   help="velocity error of every star (km/s; 0 for exact velocities), required when the data "
                        "have no error column (Gaia Challenge mocks, tables without verr)")
    p.add_argument("--beta", default="iso", help="anisotropy: iso, const:B, om:R_A (kpc), bvh:B0,BINF,R_A[,ETA], "
                   "or 'infer' (Baes-van Hese with a prior; fit --method freeform only)")
    p.add_argument("--truth", default=None, help="truth JSON (from 'gcsbi jeans mock') to overlay and score")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default=None, help="object name for the plot title (default: the galaxy of a Walker "
                   "file, e.g. car_... -> Carina, else the data file's name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")


def add_parser(subparsers, *, prog: str = "gcsbi jeans") -> argparse.ArgumentParser:
    """Add the ``jeans`` command and its sub-commands to ``subparsers`` (how gcsbi's own CLI mounts it)."""
    jp = subparsers.add_parser("jeans", help="Jeans analysis of dwarf spheroidals (gcsbi-jeans): posterior of rho_DM(r), "
                                        "free-form by default; parametric baseline and JFlow for comparison",
                               description=__doc__)
    _add_commands(jp, prog)
    return jp


def build_parser(prog: str = "gcsbi-jeans") -> argparse.ArgumentParser:
    """The stand-alone parser of ``gcsbi-jeans``."""
    from . import __version__

    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    _add_commands(parser, prog)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gcsbi-jeans``: exit 0 success, 1 a one-line error, 2 usage, 130 Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{args.jeans_prog} {getattr(args, 'jeans_command', '')}: interrupted", file=sys.stderr)
        return 130


def _add_commands(jp: argparse.ArgumentParser, prog: str) -> None:
    jp.set_defaults(jeans_prog=prog)
    sub = jp.add_subparsers(dest="jeans_command", metavar="SUBCOMMAND")

    f = sub.add_parser("fit", help="posterior of rho_DM(r): free-form Jeans model (default) or the JFlow ensemble")
    _data_args(f)
    f.add_argument("--method", default="freeform", choices=["freeform", "jflow"],
                   help="freeform: positive free-form rho_DM through the integral Jeans equation, sampled with "
                        "emcee (default, recommended); jflow: experimental, the paper's CNF + learned sigma_r, "
                        "derivative route; drops bootstrap members whose rho <= 0 or whose M(<r) falls within the "
                        "data (5-95%% of the stars' projected radii), with a warning, and refuses when fewer than "
                        "half remain")
    f.add_argument("--photometry", default=None, help="positions-only sample for the light profile (Walker "
                   "photometry file, Gaia Challenge file, or '# x y [p]' / '# R [p]' table in kpc)")
    f.add_argument("--phot-format", default="auto", choices=["auto", "walker", "gaia", "table"])
    f.add_argument("--stellar-mass", type=float, default=0.0, metavar="MSUN",
                   help="stellar mass (Msun) subtracted so that rho is dark matter only (freeform)")
    f.add_argument("--jfactor", action="store_true", help="J(0.5 deg) per draw (needs --distance; freeform)")
    f.add_argument("--j-angle", type=float, action="append", default=None, metavar="DEG",
                   help="J-factor half-angle(s) in degrees (default 0.5; repeatable)")
    f.add_argument("--walkers", type=int, default=48, help="emcee walkers (freeform)")
    f.add_argument("--mcmc-steps", type=int, default=10000, help="emcee steps, half of them burn-in (freeform)")
    f.add_argument("--max-steps", type=int, default=40000,
                   help="the run is extended by --mcmc-steps at a time until the largest walker R-hat is <= 1.01 "
                        "and the smallest bulk ESS >= 400, up to this many steps; then a warning (freeform)")
    f.add_argument("--no-converge", action="store_true",
                   help="stop after --mcmc-steps whatever R-hat and ESS say (a quick look; summary.json still "
                        "reports them and 'converged': false)")
    f.add_argument("--nodes", type=int, default=9, help="slope nodes of the free-form rho_DM (freeform)")
    f.add_argument("--slope-prior", default="smooth", choices=["smooth", "sorted"],
                   help="smooth: a random walk between nodes, each slope nearly uniform in [0, 4] (default); sorted: "
                        "non-decreasing outwards (GravSphere-like; its order-statistics prior narrows the bands)")
    f.add_argument("--velocity-shape", default="inferred", choices=["inferred", "tempered", "mixture", "gaussian"],
                   help="LOS velocity distribution: a generalised Gaussian whose shape (kurtosis) is inferred at "
                        "three radii (default), a Gaussian with kurtosis-tempered weights, a free two-Gaussian "
                        "mixture, or a plain Gaussian")
    f.add_argument("--outliers", default="auto", choices=["auto", "uniform", "none"],
                   help="contamination component (freeform): eps x uniform over the observed velocity range, eps "
                        "uniform in [0, 0.5]; auto (default): only when the data hold gross velocity outliers; "
                        "none: refuse them (jflow and baseline always refuse them)")
    f.add_argument("--variant", default="cored", choices=["plain", "cored", "cusp"], help="CNF variant (jflow)")
    f.add_argument("--ensemble", type=int, default=8, help="number of bootstrap fits (jflow)")
    f.add_argument("--steps", type=int, default=1000, help="optimiser steps per fit (jflow)")
    f.add_argument("--n-model", type=int, default=1024)
    f.add_argument("--n-kernel", type=int, default=1)
    f.add_argument("--positions-only", action="store_true", help="fit n(r) from (x, y) only (jflow)")
    f.add_argument("--no-bootstrap", action="store_true", help="ensemble on the same data (init scatter only)")
    f.set_defaults(func=cmd_fit)

    b = sub.add_parser("baseline", help="parametric Plummer + gNFW Jeans fit sampled with emcee")
    _data_args(b)
    b.add_argument("--walkers", type=int, default=32)
    b.add_argument("--steps", type=int, default=1500)
    b.add_argument("--burn", type=int, default=500)
    b.add_argument("--thin", type=int, default=10)
    b.set_defaults(func=cmd_baseline)

    m = sub.add_parser("mock", help="spherical mock (Plummer light in a Zhao halo) from galpy DFs, with truth")
    m.add_argument("--n", type=int, default=1000)
    m.add_argument("--halo", default="core", choices=["core", "cusp"])
    m.add_argument("--rho0", type=float, default=4.0e8, help="halo scale density (Msun/kpc^3)")
    m.add_argument("--rs", type=float, default=1.0, help="halo scale radius (kpc)")
    m.add_argument("--light-a", type=float, default=0.25, help="Plummer scale radius of the stars (kpc)")
    m.add_argument("--anisotropy", default="iso", help="iso or om:R_A")
    m.add_argument("--verr", type=float, default=2.0)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True, help="output table path (truth goes to <out>.truth.json)")
    m.set_defaults(func=cmd_mock)

    jp.set_defaults(func=lambda a: (jp.print_help(), 2)[1])


def _guard(fn):
    def wrapped(args: argparse.Namespace) -> int:
        prog = f"{getattr(args, 'jeans_prog', 'gcsbi-jeans')} {getattr(args, 'jeans_command', '')}"
        args.jeans_warnings = []
        try:
            with warnings.catch_warnings():
                show = warnings.showwarning

                def one_line(message, category, filename, lineno, file=None, line=None):
                    if not issubclass(category, JeansWarning):
                        return show(message, category, filename, lineno, file, line)
                    if str(message) not in args.jeans_warnings:  # the same check may run twice (CLI, then fit)
                        args.jeans_warnings.append(str(message))
                        print(f"{prog}: warning: {message}", file=sys.stderr)

                warnings.simplefilter("always", JeansWarning)
                warnings.showwarning = one_line
                return int(fn(args) or 0)
        except JeansError as exc:
            print(f"{getattr(args, 'jeans_prog', 'gcsbi-jeans')} {getattr(args, 'jeans_command', '')}: error: {exc}",
                  file=sys.stderr)
            return 1
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _load(args):
    """Read and check the stars (refusing samples too small to fit), the anisotropy and the truth, then make
    the output folder: nothing is written for bad input."""
    from .fit import check_fit_sample
    from .io import read_stars
    from .mocks import load_truth, truth_profiles
    from .velocity import parse_beta

    stars = read_stars(args.data, fmt=args.fmt, distance_kpc=args.distance, centre=args.centre, verr=args.verr)
    check_fit_sample(stars, model_outliers=getattr(args, "method", None) == "freeform" and args.outliers != "none")
    if args.beta == "infer" and getattr(args, "method", None) != "freeform":
        raise JeansValueError("--beta infer needs 'fit --method freeform'")
    beta = None if args.beta == "infer" else parse_beta(args.beta)
    truth = truth_profiles(load_truth(args.truth)) if args.truth else None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise JeansFileError(f"--out {out} is a file; give a folder")
    for name, head in _OUTPUT_FILES.items():  # before fitting: never over a user's file of another kind
        _check_target(out / name, head)
    out.mkdir(parents=True, exist_ok=True)
    return stars, beta, truth, out


#: Files the fit writes into --out, with the leading bytes of what they hold.
_OUTPUT_FILES = {"profiles.png": b"\x89PNG", "summary.json": b"{"}


def _check_target(path: Path, head: bytes) -> None:
    """Refuse to overwrite ``path`` unless it is missing, empty, or already holds that kind of file."""
    if not path.exists():
        return
    if not path.is_file():
        raise JeansFileError(f"{path} exists and is not a regular file; choose another --out folder")
    with open(path, "rb") as fh:
        first = fh.read(16).lstrip()
    if first and not first.startswith(head):
        raise JeansFileError(f"{path} exists and is not a {path.suffix} file gcsbi-jeans wrote; it is not "
                             "overwritten: choose another --out folder")


def _finish(out: Path, label: str, radius, R, profiles, stars, truth, summary: dict, dt, *, args,
            photometry=None, r_half: float | None = None) -> None:
    from .export import save_datatree, truth_coverage
    from .plots import object_name, plot_profiles

    if truth is not None:
        summary["truth"] = {k: truth_coverage(profiles[k], truth[k](radius)) for k in ("rho", "mass")}
    for name, head in _OUTPUT_FILES.items():
        _check_target(out / name, head)
    paths = save_datatree(dt, out)
    png = plot_profiles({label: (radius, R, profiles)}, out / "profiles.png", stars=stars, truth=truth, title=label,
                        name=object_name(args.data, args.name), photometry=photometry, r_half=r_half)
    summary["files"] = [str(p) for p in (*paths.values(), png)]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(json.dumps({k: v for k, v in summary.items() if k != "truth"}, indent=2, default=float))


@_guard
def cmd_fit(args: argparse.Namespace) -> int:
    """Fit (free-form posterior or JFlow ensemble) and write profiles (Zarr/NetCDF), plots and a summary."""
    if args.method == "freeform":
        return _fit_freeform(args)
    from .export import profiles_to_datatree
    from .fit import FitConfig, fit_ensemble
    from .flows import FlowConfig

    stars, beta, truth, out = _load(args)
    if args.ensemble < 1:
        raise JeansValueError("--ensemble must be >= 1")
    cfg = FitConfig(flow=FlowConfig(variant=args.variant), steps=args.steps, n_model=args.n_model,
                    n_kernel=args.n_kernel, positions_only=args.positions_only, seed=args.seed)
    t0 = time.perf_counter()
    ens = fit_ensemble(stars, beta, cfg, members=args.ensemble, bootstrap=not args.no_bootstrap,
                       progress=not args.no_progress)
    summary = {"method": "jflow", "n_stars": stars.n, "vsys": stars.vsys, "beta": beta.spec,
               "members": args.ensemble, "wall_s_total": time.perf_counter() - t0,
               "wall_s_per_fit": ens.wall_s.tolist(), "members_valid": ens.n_valid,
               "member_reason": ens.member_reason, "data_range_kpc": list(ens.data_range), "config": cfg.to_dict(),
               "warnings": args.jeans_warnings}
    dt = profiles_to_datatree(ens.profiles, radius=ens.radius, R=ens.R,
                              attrs={"method": "jflow", "beta": beta.spec, "config": cfg.to_dict()})
    _finish(out, f"JFlow ({args.variant}, {ens.n_valid} of {args.ensemble} bootstrap fits)", ens.radius, ens.R,
            ens.profiles, stars, truth, summary, dt, args=args)
    return 0


def _fit_freeform(args: argparse.Namespace) -> int:
    import numpy as np

    from .export import profiles_to_datatree
    from .freeform import FreeformConfig
    from .light import fit_light, read_photometry
    from .posterior import fit_freeform

    if (args.jfactor or args.j_angle) and args.distance is None:
        raise JeansValueError("--jfactor needs --distance (kpc)")
    thin = max(1, min(10, args.mcmc_steps // 100))
    steps = args.mcmc_steps // thin * thin
    conv = {} if args.no_converge else {"max_steps": max(args.max_steps, steps)}
    cfg = FreeformConfig(walkers=args.walkers, steps=steps, burn=steps // 2 // thin * thin, thin=thin,
                         nodes=args.nodes, slope_prior=args.slope_prior, velocity_shape=args.velocity_shape,
                         outliers=args.outliers, converge=not args.no_converge, seed=args.seed, **conv)
    stars, beta, truth, out = _load(args)
    if args.photometry:
        R, w = read_photometry(args.photometry, distance_kpc=args.distance, fmt=args.phot_format)
        light, light_src = fit_light(R, w, seed=args.seed), args.photometry
    else:
        light, light_src = fit_light(stars.R, stars.weight, seed=args.seed), "the spectroscopic sample"
    angles = tuple(args.j_angle or (0.5,))
    res = fit_freeform(stars, cfg, beta=beta, light=light, stellar_mass=args.stellar_mass,
                       distance_kpc=args.distance if (args.jfactor or args.j_angle) else None, j_angles_deg=angles,
                       progress=not args.no_progress)
    spec = res.beta_spec
    dt = profiles_to_datatree(res.profiles, radius=res.radius, R=res.R, chain=res.chain,
                              param_names=tuple(res.names), scalars=res.scalars,
                              attrs={"method": "freeform", "beta": spec, "config": cfg.to_dict(),
                                     "light": res.light.to_dict(), "stellar_mass": args.stellar_mass})
    summary = {"method": "freeform", "n_stars": stars.n, "vsys": stars.vsys, "beta": spec,
               "light_from": light_src, "light": res.light.to_dict(), "r_half_kpc": res.r_half,
               "stellar_mass": args.stellar_mass, "wall_s": res.wall_s, "acceptance": res.acceptance,
               "rhat_max": res.diagnostics["rhat_max"], "ess_bulk_min": res.diagnostics["ess_bulk_min"],
               "converged": res.diagnostics["converged"], "sampler": res.diagnostics,
               "diagnostics": mcmc_diagnostics(dt), "velocity_shape": res.velocity_shape, "outliers": res.outliers,
               "warnings": args.jeans_warnings, "config": cfg.to_dict()}
    for k, v in res.scalars.items():  # rho_dm_150pc, mass_r_half, beta_r_half, log10_J_*: NaN draws excluded
        summary[k] = dict(zip(["q16", "median", "q84"], np.nanquantile(v, [0.16, 0.5, 0.84]).tolist())) \
            if np.isfinite(v).any() else None
    _finish(out, f"free-form Jeans ({spec})", res.radius, res.R, res.profiles, stars, truth, summary, dt, args=args,
            photometry=(R, w) if args.photometry else None, r_half=res.r_half)
    return 0


@_guard
def cmd_baseline(args: argparse.Namespace) -> int:
    """Run the emcee baseline and write profiles, R-hat/ESS diagnostics, plots and a summary."""
    from .baseline import PARAM_NAMES, BaselineConfig, fit_baseline
    from .export import profiles_to_datatree
    from .fit import default_grids

    stars, beta, truth, out = _load(args)
    cfg = BaselineConfig(walkers=args.walkers, steps=args.steps, burn=args.burn, thin=args.thin, seed=args.seed)
    radius, R = default_grids(stars)
    res = fit_baseline(stars, beta, cfg, radius=radius, R=R, progress=not args.no_progress)
    dt = profiles_to_datatree(res.profiles, radius=radius, R=R, chain=res.chain, param_names=PARAM_NAMES,
                              attrs={"method": "emcee", "beta": beta.spec})
    diag = mcmc_diagnostics(dt)
    summary = {"method": "emcee", "n_stars": stars.n, "vsys": stars.vsys, "beta": beta.spec, "wall_s": res.wall_s,
               "acceptance": res.acceptance, "diagnostics": diag, "warnings": args.jeans_warnings,
               "config": cfg.to_dict()}
    _finish(out, "emcee Plummer + gNFW", radius, R, res.profiles, stars, truth, summary, dt, args=args)
    return 0


def mcmc_diagnostics(dt) -> dict:
    """R-hat and bulk ESS per parameter (walkers as chains) from the ``mcmc`` group."""
    from arviz_stats import ess, rhat

    g = dt["mcmc"]
    r = rhat(g.to_dataset() if hasattr(g, "to_dataset") else g)
    e = ess(g.to_dataset() if hasattr(g, "to_dataset") else g)
    return {k: {"rhat": float(r[k]), "ess_bulk": float(e[k])} for k in g.data_vars}


@_guard
def cmd_mock(args: argparse.Namespace) -> int:
    """Write a galpy mock table and its truth JSON."""
    from .io import write_table
    from .mocks import MockConfig, make_mock, save_truth

    cfg = MockConfig(n=args.n, halo=args.halo, rho0=args.rho0, rs=args.rs, light_a=args.light_a,
                     anisotropy=args.anisotropy, verr=args.verr, seed=args.seed)
    stars, truth = make_mock(cfg)
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    write_table(out, stars)
    save_truth(Path(str(out) + ".truth.json"), truth)
    print(f"wrote {stars.n} stars to {out} (truth: {out}.truth.json)")
    return 0
