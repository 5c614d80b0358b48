"""``gcsbi train | infer | calibrate``: thin command-line wrappers around gcsbi.inference.

Registered in ``gcsbi/cli.py`` as ``"train": "gcsbi.inference.cli:add_train_parser"`` etc.
Simulators: ``--spec module:Factory`` (an import path, e.g. ``gcsbi.testing.toy:ToyImageSimulator``)
or a spec name/path resolved by ``gcsbi.simulator.load_simulator(spec, prior=...)``.
The training options of ``gcsbi train`` are the fields of :class:`TrainConfig`
(:func:`add_config_arguments`, also used by ``scripts/train_shipped.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import GcsbiDependencyError, GcsbiValueError
from .config import TrainConfig

__all__ = ["add_train_parser", "add_infer_parser", "add_calibrate_parser", "resolve_simulator", "stored_simulator",
           "resolve_embedding", "add_config_arguments", "config_from_args"]

#: Other names of some options: TrainConfig field -> extra option strings.
TRAIN_ALIASES: dict[str, tuple[str, ...]] = {"max_num_epochs": ("--max-epochs",),
                                             "refine_learning_rates": ("--refine-lr",)}
#: Switches that set a bool field to a fixed value: option -> (field, value, help).
TRAIN_SWITCHES: dict[str, tuple[str, Any, str]] = {
    "--flow-only": ("train_embedding", False, "same as --no-train-embedding (with --init-from)")}


class _NoneValue:
    """Parsed value of ``none`` for an optional field (``None`` itself means "not given")."""

    def __repr__(self) -> str:
        return "none"


NONE = _NoneValue()


def _or_none(kind: type) -> Any:
    def parse(text: str) -> Any:
        return NONE if text.strip().lower() in ("none", "null") else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse


def _argument_kwargs(hint: Any) -> dict[str, Any]:
    """``add_argument`` keywords for a field annotation: int, float, str, bool, X | None, tuple[X, ...]."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if hint in (int, float, str):
        return {"type": hint, "metavar": hint.__name__.upper()}
    if origin in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        kind = next(a for a in args if a is not type(None))
        return {"type": _or_none(kind), "metavar": f"{kind.__name__.upper()}|none"}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": args[0], "nargs": "*", "metavar": args[0].__name__.upper()}
    raise TypeError(f"no command-line form for a TrainConfig field of type {hint!r}")


def add_config_arguments(parser: argparse.ArgumentParser, *, defaults: Mapping[str, Any] | None = None,
                         aliases: Mapping[str, Sequence[str]] = TRAIN_ALIASES,
                         switches: Mapping[str, tuple[str, Any, str]] = TRAIN_SWITCHES,
                         exclude: Sequence[str] = (), title: str = "training options (TrainConfig)") -> None:
    """One option per :class:`TrainConfig` field: ``--name-with-dashes``, typed from its annotation,
    helped by its ``metadata["help"]``; bools as ``--flag/--no-flag``, tuples as lists of values.

    Options default to None (not given: TrainConfig's default), except those in ``defaults``;
    :func:`config_from_args` builds the config from the given ones.
    """
    defaults = dict(defaults or {})
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(TrainConfig):
        if f.name in exclude:
            continue
        kw = _argument_kwargs(hints[f.name])
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
            kw.pop("metavar", None)
        shown = defaults.get(f.name, f.default)
        if isinstance(shown, tuple):
            shown = " ".join(map(str, shown)) or None
        text = f"{f.metadata.get('help', '')} (default: {'none' if shown is None else shown})"
        group.add_argument(f"--{f.name.replace('_', '-')}", *aliases.get(f.name, ()), dest=f.name,
                           default=defaults.get(f.name), help=text.replace("%", "%%"), **kw)
    for option, (name, value, text) in switches.items():
        if name not in exclude:
            group.add_argument(option, dest=name, action="store_const", const=value, help=text)


def config_from_args(args: argparse.Namespace, *, exclude: Sequence[str] = (), **fixed: Any) -> TrainConfig:
    """``TrainConfig`` of the options given on the command line (but ``exclude``), plus ``fixed`` fields."""
    given = {}
    for f in dataclasses.fields(TrainConfig):
        value = None if f.name in exclude else getattr(args, f.name, None)
        if value is not None:
            given[f.name] = None if value is NONE else tuple(value) if isinstance(value, list) else value
    return TrainConfig(**{**given, **fixed})


def resolve_simulator(spec: str, *, prior: str | None = None, kwargs: dict[str, Any] | None = None) -> Any:
    """``module:Factory`` (called with ``kwargs``) | a simulator spec for ``gcsbi.simulator.load_simulator``."""
    kwargs = dict(kwargs or {})
    if ":" in spec and not Path(spec).exists():
        mod, _, name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError) as exc:
            raise GcsbiValueError(f"cannot import simulator factory {spec!r}: {exc}") from exc
        return factory(**kwargs)
    from ..simulator import load_simulator

    return load_simulator(spec, prior=prior, **kwargs) if prior else load_simulator(spec, **kwargs)


def stored_simulator(post: Any, *, where: str, prior: str | None = None,
                     kwargs: dict[str, Any] | None = None) -> Any:
    """The simulator a checkpoint was trained on, rebuilt only from gcsbi's own registered specs.

    A name read from a file never selects code to import: it must be one of the shipped
    simulator specs (and the stored prior one of the shipped priors, unless ``prior`` is given),
    and the rebuilt spec must equal the stored one; anything else is a one-line GcsbiFileError.
    """
    from ..errors import GcsbiFileError
    from ..simulator import load_simulator
    from ..spec.resources import available_specs
    from .checkpoint import spec_differences

    stored = post.spec.get("simulator", {}) if isinstance(post.spec, dict) else {}
    name = stored.get("name") if isinstance(stored, dict) else None
    known = available_specs("simulators")
    if not isinstance(name, str) or name not in known:
        shown = repr(name).encode("unicode_escape").decode()[:80]
        raise GcsbiFileError(f"{where}: the checkpoint names simulator {shown}, not one of gcsbi's specs "
                             f"({', '.join(known)}); pass the simulator with --spec")
    own_prior = prior is not None  # the user's prior: only the simulator part must match
    if prior is None:
        prior = getattr(post.prior, "name", None)
        if prior not in available_specs("priors"):
            raise GcsbiFileError(f"{where}: the checkpoint's prior is not one of gcsbi's priors; pass --prior")
    sim = load_simulator(name, prior=prior, **dict(kwargs or {}))
    diff = spec_differences(stored, dict(sim.spec).get("simulator", {})) if own_prior else \
        spec_differences(post.spec, dict(sim.spec))
    if diff:
        raise GcsbiFileError(f"{where}: the stored simulator spec differs from gcsbi's {name!r} in "
                             f"{', '.join(diff[:5])}; pass the simulator with --spec")
    return sim


def resolve_embedding(name: str, *, in_channels: int, features: int) -> Any:
    """``small-cnn`` | ``pidoc`` (:class:`gcsbi.nets.PiDocEmbedding`) | ``module:Class``, each built with
    ``in_channels`` and ``features``."""
    from ..nets.small import SmallCNN

    if name == "small-cnn":
        return SmallCNN(in_channels=in_channels, features=features)
    target = {"pidoc": "gcsbi.nets.pidoc:PiDocEmbedding"}.get(name, name)
    mod, _, cls = target.partition(":")
    try:
        factory = getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError) as exc:
        raise GcsbiDependencyError(f"embedding {name!r} ({target}) is not available: {exc}") from exc
    return factory(in_channels=in_channels, features=features)


def _load_bank(path: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    from ..bank import SimulationBank

    bank = SimulationBank.open(path)
    theta, x = bank.load()
    sim = bank.simulator()  # rebuilt from the stored factory: gives the prior and the spec
    return theta, x, sim.prior, dict(sim.spec)


def _kw(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        out = json.loads(text)
    except ValueError as exc:
        raise GcsbiValueError(f"--sim-kwargs must be a JSON object: {exc}") from exc
    if not isinstance(out, dict):
        raise GcsbiValueError("--sim-kwargs must be a JSON object")
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from .seeding import simulate
    from .train import train

    config = config_from_args(args)
    if (args.bank is None) == (args.simulations is None):
        raise GcsbiValueError("give either a bank path or --simulations N (with --spec)")
    if args.bank is not None:
        given = [o for o, v in (("--spec", args.spec), ("--prior", args.prior), ("--sim-kwargs", args.sim_kwargs)) if v]
        if given:
            raise GcsbiValueError(f"{', '.join(given)}: not used with a bank, which stores its simulator; leave out")
        theta, x, prior, spec = _load_bank(args.bank)
    else:
        if not args.spec:
            raise GcsbiValueError("--simulations needs --spec")
        sim = resolve_simulator(args.spec, prior=args.prior, kwargs=_kw(args.sim_kwargs))
        theta, x = simulate(sim, args.simulations, seed=config.seed, stream="train", progress=not args.no_progress)
        prior, spec = sim.prior, sim.spec
    if args.init_from:
        if args.embedding is not None or args.features is not None:
            raise GcsbiValueError("--embedding/--features do not apply with --init-from: the embedding comes from "
                                  "the checkpoint")
        emb = None
    else:
        emb = resolve_embedding(args.embedding or "pidoc", in_channels=int(x.shape[1]), features=args.features or 64)
    post = train(theta, x, prior=prior, spec=spec, embedding_net=emb, config=config, init_from=args.init_from,
                 out=args.out, verbose=args.verbose, progress=not args.no_progress)
    h = post.history
    print(f"trained {post.config.density_estimator} on {h['n_simulations']} simulations: {h['epochs_trained']} epochs, "
          f"best validation loss {h['best_validation_loss']:.4f}; wrote {args.out}")
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from .checkpoint import load_posterior
    from .fitsio import observation_for_posterior
    from .infer import infer, summary

    from ..outputs import check_file_target, check_output_dir, printable

    out_check = check_file_target if args.out and _is_netcdf(args.out) else check_output_dir
    for target, check in ((args.out, out_check), (args.maps_fits, check_file_target),
                          (args.maps_plot, check_file_target)):
        if target:  # refused before any work, not after sampling
            check(target)
    post = load_posterior(args.checkpoint)
    bands = [b for b in args.bands.split(",") if b.strip()] if args.bands else None
    obs = observation_for_posterior(args.observation, post, bands=bands, ra=args.ra, dec=args.dec)
    maps = args.maps_model or bool(args.maps or args.maps_fits or args.maps_plot)
    dt = infer(post, obs, num_samples=args.num_samples, seed=args.seed, maps=maps, progress=not args.no_progress)
    table = summary(dt, round_to=4)
    if args.json:
        extra = {"derived": _derived_quantiles(dt)} if maps else {}
        print(json.dumps({"summary": json.loads(table.to_json(orient="index")),
                          "attrs": {k: v for k, v in dt.attrs.items()}, **extra}, indent=2, default=str))
    else:
        print(printable(table.to_string(), newlines=True))  # parameter names come from the checkpoint
        for key in ("ood_pvalue", "ood_flag", "posterior_mass_in_prior", "prior_edge_params"):
            if key in dt.attrs:
                print(f"{key}: {printable(dt.attrs[key])}")
    if maps:
        _report_maps(dt, args, post, obs)
    if args.out and _is_netcdf(args.out):  # NetCDF4 (groups kept); only over a NetCDF/HDF5 file
        from .arviz import write_netcdf

        write_netcdf(dt, args.out)
    elif args.out:  # a Zarr folder, with consolidated metadata (opens without a warning); never over a user's folder
        from ..outputs import output_dir
        from .arviz import write_zarr

        with output_dir(args.out, kind="gcsbi infer") as tmp:
            write_zarr(dt, tmp, mode="w")
    return 0


def _is_netcdf(path: str) -> bool:
    return str(path).lower().endswith(".nc")


def _derived_quantiles(dt: Any) -> dict[str, list[float]]:
    """[16th, 50th, 84th] percentiles of each derived quantity of the first observation."""
    import numpy as np

    der = dt["derived"].to_dataset()
    out = {}
    for name in der.data_vars:
        v = der[name].isel(observation=0) if "observation" in der[name].dims else der[name]
        out[str(name)] = [float(q) for q in np.quantile(np.asarray(v.values).reshape(-1), [0.16, 0.5, 0.84])]
    return out


def _report_maps(dt: Any, args: argparse.Namespace, post: Any, obs: Any) -> None:
    """Print the derived quantities of ``infer(..., maps=True)`` and write the map FITS file / plot."""
    import numpy as np

    from ..maps.infer import map_wcs, write_maps_fits

    if not args.json:
        print("derived from the maps (median [16th, 84th percentile]):")
        for name, (lo, med, hi) in _derived_quantiles(dt).items():
            print(f"  {name:>26}: {med:.3f} [{lo:.3f}, {hi:.3f}]")
    if args.maps_fits:
        shape = tuple(dt["maps"].to_dataset()["mass"].shape[-2:])
        wcs = map_wcs(args.observation, ra=args.ra, dec=args.dec, shape=shape,
                      pixel_scale_arcsec=float(dt["maps"].attrs["pixel_scale_arcsec"]))
        print(f"wrote {write_maps_fits(dt, args.maps_fits, wcs=wcs)}" + ("" if wcs is not None else " (no WCS: "
              "the input had none)"))
    if args.maps_plot:
        from ..maps.infer import resolve_map_model
        from ..maps.plots import plot_examples

        model = resolve_map_model(post, args.maps_model or True)
        x = np.asarray(obs, dtype=np.float32)
        plot_examples(model, x[None] if x.ndim == 3 else x[:1], path=args.maps_plot,
                      title=f"{Path(args.observation[0]).name}: maps from {Path(str(args.checkpoint)).stem} "
                            f"(prior {getattr(post.prior, 'name', '?')})")
        print(f"wrote {args.maps_plot}")


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate
    from .checkpoint import load_posterior

    post = load_posterior(args.checkpoint)
    if args.spec:  # the user's own choice on the command line
        sim = resolve_simulator(args.spec, prior=args.prior, kwargs=_kw(args.sim_kwargs))
    else:
        sim = stored_simulator(post, where=args.checkpoint, prior=args.prior, kwargs=_kw(args.sim_kwargs))
    report = calibrate(post, sim, n_held_out=args.n_held_out, num_posterior_samples=args.num_posterior_samples,
                       seed=args.seed, c2st=not args.no_c2st, out=args.out, progress=not args.no_progress)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        from ..outputs import printable

        noise = report["max_deviation_if_calibrated"]["q95"]
        print(f"max expected-coverage deviation: {report['max_expected_coverage_deviation']:.4f} against "
              f"{noise:.4f} for an exactly calibrated posterior from {report['n_held_out']} mocks (95th percentile): "
              f"{report['verdict']}; TARP ATC {report['tarp_atc']:+.4f}")
        if report["sbc_ks_flagged"]:
            print(f"  SBC ranks not uniform (KS, Holm-corrected p < 0.05): {', '.join(report['sbc_ks_flagged'])}")
        for name, p in report["parameters"].items():
            print(f"  {printable(name):>16}: {p['verdict']:<13} KS p={p['sbc_ks_pvalue']:.3f} "
                  f"MAE={p['median_abs_error']:.4g} bias={p['bias']:+.4g}")
    return 0


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--no-progress``, as every gcsbi command with progress bars has it (the bars go to stderr)."""
    p.add_argument("--no-progress", action="store_true", help="show no progress bars (they go to stderr)")


def _common_sim(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", help="simulator spec (name or TOML path), or module:Factory")
    p.add_argument("--prior", help="prior name or TOML path (default: the simulator's)")
    p.add_argument("--sim-kwargs", help=argparse.SUPPRESS)


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a neural posterior (NPE)",
                              description="Train NPE on a simulation bank or on fresh simulations.")
    p.add_argument("bank", nargs="?", help="Zarr simulation bank (gcsbi.bank)")
    p.add_argument("--simulations", type=int, help="simulate N training examples instead of reading a bank")
    _common_sim(p)
    p.add_argument("--out", required=True, help="checkpoint path to write (.pt)")
    p.add_argument("--embedding", default=None, help="pidoc (default) | small-cnn | module:Class")
    p.add_argument("--features", type=int, default=None, help="embedding output size (default 64)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune this posterior (path or shipped name): its weights and architecture")
    p.add_argument("--verbose", action="store_true", help="sbi's own training printout (stdout) instead of the bar")
    add_progress_argument(p)
    add_config_arguments(p)
    p.set_defaults(func=_cmd_train)
    return p


def add_infer_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "infer", help="posterior for an observed image",
        description="Sample the posterior for an observation: x itself (.npy/.npz/.pt, or a FITS cube with the "
                    "posterior's channels), or per-band FITS images (one file per band, or one multi-extension "
                    "file), each band named by its FILTER keyword and turned into x by the simulator spec's "
                    "transforms. Images on the simulator grid are used as they are: without BUNIT/PHOTFLAM/ZP "
                    "keywords as the simulator's counts (e-, sky included), else rescaled to the spec's zero "
                    "points and exposures; larger images need --ra/--dec to be cut out and resampled.")
    p.add_argument("checkpoint", help="posterior checkpoint (.pt) or a shipped name (hst-phat_m31-gc)")
    p.add_argument("observation", nargs="+",
                   help="x as .npy/.npz/.pt or FITS cube; or FITS images, one per band (any order) or one MEF")
    p.add_argument("--bands", help="comma-separated band of each image, in file and extension order, for images "
                                   "without a FILTER keyword (e.g. F336W,F475W,F814W)")
    p.add_argument("--ra", type=float, help="target RA (deg): cut a stamp around it and resample it to the grid")
    p.add_argument("--dec", type=float, help="target Dec (deg), with --ra")
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the ArviZ DataTree: a NetCDF4 file for a name ending in .nc (posterior.nc), "
                                 "else a Zarr folder (posterior.zarr); read either with xr.open_datatree(path)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_progress_argument(p)
    p.add_argument("--maps", action="store_true",
                   help="also predict the mass map and decontaminated image (groups 'maps' and 'derived')")
    p.add_argument("--maps-model", default=None, metavar="PATH", help="map model (default: the shipped one of "
                   "this posterior)")
    p.add_argument("--maps-fits", default=None, metavar="PATH",
                   help="write the maps as FITS (with the input's WCS when it had one); implies --maps")
    p.add_argument("--maps-plot", default=None, metavar="PNG", help="input | mass map | uncertainty | clean image; "
                   "implies --maps")
    p.set_defaults(func=_cmd_infer)
    return p


def add_calibrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("calibrate", help="SBC / TARP / coverage on fresh simulations",
                              description="Calibrate a trained posterior on held-out simulations.")
    p.add_argument("checkpoint")
    _common_sim(p)
    p.add_argument("--n-held-out", type=int, default=300)
    p.add_argument("--num-posterior-samples", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-c2st", action="store_true", help="skip sbi's (slow) classifier tests")
    p.add_argument("--out", help="folder for calibration.json and figures")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    add_progress_argument(p)
    p.set_defaults(func=_cmd_calibrate)
    return p


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience for python -m
    parser = argparse.ArgumentParser(prog="gcsbi-inference")
    sub = parser.add_subparsers(dest="command")
    for add in (add_train_parser, add_infer_parser, add_calibrate_parser):
        add(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
