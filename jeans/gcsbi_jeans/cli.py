"""``gcsbi-jeans {fit [freeform|jflow], baseline, mock}`` (also ``gcsbi jeans ...`` when gcsbi is installed):
the posterior of rho_DM(r) by the free-form route (the default of ``fit``) or JFlow, the parametric emcee baseline,
and galpy mocks.

Each route's own options are made from its config dataclass (:mod:`gcsbi_jeans.core.options`): ``--steps`` is
emcee steps for ``fit freeform`` and ``baseline``, and Adam optimiser steps per bootstrap fit for ``fit jflow``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from .errors import JeansError, JeansFileError, JeansValueError, JeansWarning

__all__ = ["main", "build_parser", "add_parser", "cmd_fit_freeform", "cmd_fit_jflow", "cmd_baseline", "cmd_mock",
           "ROUTES", "DEFAULT_ROUTE"]

#: The routes of ``fit``; a ``fit`` whose first token names none of them runs :data:`DEFAULT_ROUTE`.
ROUTES = ("freeform", "jflow")
DEFAULT_ROUTE = "freeform"


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(t) for t in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected 'RA,DEC' in degrees, got {text!r}") from exc
    return a, b


def _data_args(p: argparse.ArgumentParser, *, infer: bool = False) -> None:
    p.add_argument("data", help="star table: '# x y v verr p' text, Walker/GravSphere spec file, or Gaia Challenge")
    p.add_argument("--format", dest="fmt", default="auto", choices=["auto", "table", "walker", "gaia"],
                   help="format of DATA (default: auto, from its header or name)")
    p.add_argument("--distance", type=float, default=None, help="distance in kpc (Walker / RA-Dec tables)")
    p.add_argument("--centre", type=_pair, default=None, help="RA,DEC of the centre in degrees")
    p.add_argument("--verr", type=float, default=None, metavar="KMS",
                   help="velocity error of every star (km/s; 0 for exact velocities), required when the data "
                        "have no error column (Gaia Challenge mocks, tables without verr)")
    p.add_argument("--beta", default="iso", help="anisotropy: iso (default), const:B, om:R_A (kpc), "
                   "bvh:B0,BINF,R_A[,ETA]" + (", or 'infer' (Baes-van Hese with a prior)" if infer else ""))
    p.add_argument("--truth", default=None, help="truth JSON (from 'gcsbi-jeans mock') to overlay and score")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default=None, help="object name for the plot title (default: the galaxy of a Walker "
                   "file, e.g. car_... -> Carina, else the data file's name)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the fit (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")


def _route_first(args: list[str], prog: str) -> list[str]:
    """``fit``'s arguments with the route first: a first token that names no route (nor asks for help) gets
    :data:`DEFAULT_ROUTE` in front, or the route of a deprecated ``--method ROUTE``, which is removed."""
    if args and (args[0] in ROUTES or args[0] in ("-h", "--help")):
        return args
    route, rest, i = None, [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a == "--method" and i + 1 < len(args):
            route, i = args[i + 1], i + 2
            continue
        if a.startswith("--method="):
            route, i = a.partition("=")[2], i + 1
            continue
        rest.append(a)
        i += 1
    if route is not None:
        print(f"{prog}: warning: --method is deprecated; the route is a sub-command: '{prog} {route} DATA ...'",
              file=sys.stderr)
    return [route or DEFAULT_ROUTE, *rest]


class _FitParser(argparse.ArgumentParser):
    """The parser of ``fit``: runs :data:`DEFAULT_ROUTE` unless the first token names a route (other commands'
    parsers are of this class too, with no routes, and parse as usual)."""

    routes: tuple[str, ...] = ()

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self.routes and args is not None:
            args = _route_first(list(args), self.prog)
        return super().parse_known_args(args, namespace)


def add_parser(subparsers, *, prog: str = "gcsbi jeans") -> argparse.ArgumentParser:
    """Add the ``jeans`` command and its sub-commands to ``subparsers`` (how gcsbi's own CLI mounts it)."""
    jp = subparsers.add_parser("jeans", help="Jeans analysis of dwarf spheroidals (gcsbi-jeans): posterior of rho_DM(r), "
                                        "free-form by default; JFlow and a parametric baseline for comparison",
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


_FIT_DESCRIPTION = """Posterior of rho_DM(r). ROUTE is freeform (the default when left out: 'fit DATA ...' runs
'fit freeform DATA ...'; recommended) or jflow (experimental). 'fit ROUTE --help' lists a route's options."""


def _add_commands(jp: argparse.ArgumentParser, prog: str) -> None:
    from .baseline.model import BaselineConfig
    from .core.options import add_config_options
    from .freeform.model import FreeformConfig
    from .jflow.config import FitConfig, LightConfig

    jp.set_defaults(jeans_prog=prog)
    sub = jp.add_subparsers(dest="jeans_command", metavar="SUBCOMMAND", parser_class=_FitParser)

    f = sub.add_parser("fit", help="posterior of rho_DM(r): 'fit [freeform] DATA' (default) or 'fit jflow DATA'",
                       description=_FIT_DESCRIPTION)
    f.routes = ROUTES
    routes = f.add_subparsers(dest="jeans_route", metavar="ROUTE", parser_class=argparse.ArgumentParser)

    ff = routes.add_parser(
        "freeform", help="positive free-form rho_DM through the integral Jeans equation, sampled with emcee "
                         "(default, recommended; numpy only)",
        description="Free-form route: a positive, free-form rho_DM(r) (slopes at nodes in ln r) through the "
                    "integral Jeans equation, with a generalised-Gaussian velocity likelihood, sampled with emcee "
                    "until converged. --steps counts emcee steps per walker.")
    _data_args(ff, infer=True)
    g = ff.add_argument_group("free-form fit inputs")
    g.add_argument("--photometry", default=None, help="positions-only sample for the light profile (Walker "
                   "photometry file, Gaia Challenge file, or '# x y [p]' / '# R [p]' table in kpc)")
    g.add_argument("--phot-format", default="auto", choices=["auto", "walker", "gaia", "table"],
                   help="format of --photometry (default: auto)")
    g.add_argument("--stellar-mass", type=float, default=0.0, metavar="MSUN",
                   help="stellar mass (Msun) subtracted so that rho is dark matter only (default: 0)")
    g.add_argument("--jfactor", action="store_true", help="J(0.5 deg) per draw (needs --distance)")
    g.add_argument("--j-angle", type=float, action="append", default=None, metavar="DEG",
                   help="J-factor half-angle(s) in degrees (default 0.5; repeatable; implies --jfactor)")
    add_config_options(ff, FreeformConfig, title="free-form model, priors and sampler (FreeformConfig)",
                       exclude=("seed",), aliases={"steps": ("--mcmc-steps",)})
    add_config_options(ff, LightConfig, title="light profile from --photometry (LightConfig; default: the Plummer "
                       "sum; --light-model cnf: an ensemble of radial CNFs, cached, experimental)", prefix="light_")
    ff.set_defaults(func=cmd_fit_freeform)

    jf = routes.add_parser(
        "jflow", help="experimental: the paper's CNF + learned sigma_r, derivative route, bootstrap ensemble (torch)",
        description="JFlow route (experimental, Lim et al. 2025): n(r) from a radial CNF and sigma_r^2(r) from a "
                    "network, trained on a smeared likelihood; M(r) and rho(r) by automatic differentiation, "
                    "over a bootstrap ensemble. Members whose rho <= 0 or whose M(<r) falls within the data (5-95% "
                    "of the stars' projected radii) are dropped with a warning; the fit refuses when fewer than "
                    "half remain. --steps counts Adam optimiser steps per bootstrap fit.")
    _data_args(jf)
    g = jf.add_argument_group("JFlow ensemble")
    g.add_argument("--ensemble", type=int, default=8, metavar="N", help="number of bootstrap fits (default: 8)")
    g.add_argument("--bootstrap", action=argparse.BooleanOptionalAction, default=True,
                   help="fit each member to a bootstrap resample of the stars; --no-bootstrap: all to the same "
                        "stars (initialisation scatter only) (default: bootstrap)")
    add_config_options(jf, FitConfig, title="JFlow model and training (FitConfig)", exclude=("seed",),
                       aliases={"flow_variant": ("--variant",)})
    jf.set_defaults(func=cmd_fit_jflow)

    b = sub.add_parser("baseline", help="parametric Plummer + gNFW Jeans fit sampled with emcee",
                       description="Parametric baseline: Plummer light and a gNFW (Zhao) halo through the Jeans "
                                   "equation, sampled with emcee; a comparison for the free-form posterior. --steps "
                                   "counts emcee steps per walker.")
    _data_args(b)
    add_config_options(b, BaselineConfig, title="parametric model, priors and sampler (BaselineConfig)",
                       exclude=("seed",))
    b.set_defaults(func=cmd_baseline)

    m = sub.add_parser("mock", help="spherical mock (Plummer light in a Zhao halo) from galpy DFs, with truth")
    m.add_argument("--n", type=int, default=1000, help="number of stars (default: 1000)")
    m.add_argument("--halo", default="core", choices=["core", "cusp"], help="inner halo slope 0 or 1 (default: core)")
    m.add_argument("--rho0", type=float, default=4.0e8, help="halo scale density (Msun/kpc^3)")
    m.add_argument("--rs", type=float, default=1.0, help="halo scale radius (kpc)")
    m.add_argument("--light-a", type=float, default=0.25, help="Plummer scale radius of the stars (kpc)")
    m.add_argument("--anisotropy", default="iso", help="iso or om:R_A (default: iso)")
    m.add_argument("--verr", type=float, default=2.0, help="velocity error of every star, km/s (default: 2)")
    m.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
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


def _load(args, *, model_outliers: bool = False, config=None):
    """Read and check the stars (refusing samples too small to fit), the anisotropy, the truth and the files in
    --out, then build the route's config (``config()``, when given), then make the output folder: nothing is
    written for bad input. Returns (stars, beta, truth, out folder, config)."""
    from .core.beta import parse_beta
    from .core.io import check_fit_sample, read_stars
    from .core.mocks import load_truth, truth_profiles

    stars = read_stars(args.data, fmt=args.fmt, distance_kpc=args.distance, centre=args.centre, verr=args.verr)
    check_fit_sample(stars, model_outliers=model_outliers)
    if args.beta == "infer" and getattr(args, "jeans_route", None) != "freeform":
        raise JeansValueError("--beta infer needs the free-form route ('fit freeform', the default of 'fit')")
    beta = None if args.beta == "infer" else parse_beta(args.beta)
    truth = truth_profiles(load_truth(args.truth)) if args.truth else None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise JeansFileError(f"--out {out} is a file; give a folder")
    for name, head in _OUTPUT_FILES.items():  # before fitting: never over a user's file of another kind
        _check_target(out / name, head)
    cfg = config() if config is not None else None
    out.mkdir(parents=True, exist_ok=True)
    return stars, beta, truth, out, cfg


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
    from .core.export import save_datatree, truth_coverage
    from .core.plots import object_name, plot_profiles

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


def _freeform_config(args: argparse.Namespace):
    """The :class:`FreeformConfig` of the options given: thin (at most 10) and burn (half) follow --steps unless
    given, and a converging run may go on to at least --steps."""
    from .core.options import config_from_options, options_given
    from .freeform.model import FreeformConfig

    given = options_given(args, FreeformConfig, exclude=("seed",))
    steps = given.get("steps", FreeformConfig.steps)
    if "thin" not in given:
        given["thin"] = max(1, min(10, steps // 100))
        steps = given["steps"] = steps // given["thin"] * given["thin"]
    if "burn" not in given:
        given["burn"] = steps // 2 // given["thin"] * given["thin"]
    if given.get("converge", True):
        given["max_steps"] = max(given.get("max_steps", FreeformConfig.max_steps), steps)
    return config_from_options(FreeformConfig, given, seed=args.seed)


@_guard
def cmd_fit_freeform(args: argparse.Namespace) -> int:
    """Free-form posterior: write profiles (Zarr/NetCDF), plots and a summary."""
    import numpy as np

    from .core.export import profiles_to_datatree
    from .core.light import fit_light, read_photometry
    from .core.light_cache import cnf_light
    from .core.options import config_from_options, options_given
    from .core.sampling import mcmc_diagnostics
    from .freeform.posterior import fit_freeform
    from .jflow.config import LightConfig

    if (args.jfactor or args.j_angle) and args.distance is None:
        raise JeansValueError("--jfactor needs --distance (kpc)")
    cfg = _freeform_config(args)
    light_cfg = config_from_options(LightConfig, options_given(args, LightConfig, prefix="light_"))
    stars, beta, truth, out, _ = _load(args, model_outliers=cfg.outliers != "none")
    if args.photometry:
        R, w = read_photometry(args.photometry, distance_kpc=args.distance, fmt=args.phot_format)
        light = cnf_light(R, w, light_cfg, seed=args.seed) if light_cfg.model == "cnf" else \
            fit_light(R, w, seed=args.seed)
        light_src = args.photometry
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
               "light_from": light_src, "light": res.light.to_dict(), "light_config": light_cfg.to_dict(),
               "r_half_kpc": res.r_half,
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
def cmd_fit_jflow(args: argparse.Namespace) -> int:
    """JFlow bootstrap ensemble: write profiles (Zarr/NetCDF), plots and a summary."""
    from .core.export import profiles_to_datatree
    from .core.options import config_from_options, options_given
    from .jflow.config import FitConfig
    from .jflow.fit import fit_ensemble

    def config():
        if args.ensemble < 1:
            raise JeansValueError("--ensemble must be >= 1")
        return config_from_options(FitConfig, options_given(args, FitConfig, exclude=("seed",)), seed=args.seed)

    stars, beta, truth, out, cfg = _load(args, config=config)

    t0 = time.perf_counter()
    ens = fit_ensemble(stars, beta, cfg, members=args.ensemble, bootstrap=args.bootstrap,
                       progress=not args.no_progress)
    summary = {"method": "jflow", "n_stars": stars.n, "vsys": stars.vsys, "beta": beta.spec,
               "members": args.ensemble, "wall_s_total": time.perf_counter() - t0,
               "wall_s_per_fit": ens.wall_s.tolist(), "members_valid": ens.n_valid,
               "member_reason": ens.member_reason, "data_range_kpc": list(ens.data_range), "config": cfg.to_dict(),
               "warnings": args.jeans_warnings}
    dt = profiles_to_datatree(ens.profiles, radius=ens.radius, R=ens.R,
                              attrs={"method": "jflow", "beta": beta.spec, "config": cfg.to_dict()})
    _finish(out, f"JFlow ({cfg.flow.variant}, {ens.n_valid} of {args.ensemble} bootstrap fits)", ens.radius, ens.R,
            ens.profiles, stars, truth, summary, dt, args=args)
    return 0


@_guard
def cmd_baseline(args: argparse.Namespace) -> int:
    """Run the emcee baseline and write profiles, R-hat/ESS diagnostics, plots and a summary."""
    from .baseline.model import PARAM_NAMES, BaselineConfig, fit_baseline
    from .core.export import profiles_to_datatree
    from .core.grids import default_grids
    from .core.options import config_from_options, options_given
    from .core.sampling import mcmc_diagnostics

    stars, beta, truth, out, cfg = _load(args, config=lambda: config_from_options(
        BaselineConfig, options_given(args, BaselineConfig, exclude=("seed",)), seed=args.seed))
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


@_guard
def cmd_mock(args: argparse.Namespace) -> int:
    """Write a galpy mock table and its truth JSON."""
    from .core.io import write_table
    from .core.mocks import MockConfig, make_mock, save_truth

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
