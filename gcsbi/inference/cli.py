"""``gcsbi train | infer | calibrate``: thin command-line wrappers around gcsbi.inference.

Registered in ``gcsbi/cli.py`` as ``"train": "gcsbi.inference.cli:add_train_parser"`` etc.
Simulators: ``--spec toy`` (the test toy), ``--spec module:Factory`` (import path), or a spec
name/path resolved by ``gcsbi.simulator.load_simulator(spec, prior=...)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import GcsbiDependencyError, GcsbiValueError

__all__ = ["add_train_parser", "add_infer_parser", "add_calibrate_parser", "resolve_simulator",
           "resolve_embedding"]


def resolve_simulator(spec: str, *, prior: str | None = None, kwargs: dict[str, Any] | None = None) -> Any:
    """``toy`` | ``module:Factory`` | a simulator spec for ``gcsbi.simulator.load_simulator``."""
    kwargs = dict(kwargs or {})
    if spec == "toy":
        from ..testing.toy import ToyImageSimulator

        return ToyImageSimulator(**kwargs)
    if ":" in spec and not Path(spec).exists():
        mod, _, name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError) as exc:
            raise GcsbiValueError(f"cannot import simulator factory {spec!r}: {exc}") from exc
        return factory(**kwargs)
    try:
        from ..simulator.core import load_simulator  # type: ignore[attr-defined]
    except ImportError as exc:
        raise GcsbiDependencyError("gcsbi.simulator.load_simulator is not available in this build; "
                                   "use --spec toy or --spec module:Factory") from exc
    return load_simulator(spec, prior=prior, **kwargs) if prior else load_simulator(spec, **kwargs)


def resolve_embedding(name: str, *, in_channels: int, features: int) -> Any:
    """``small-cnn`` | ``pidoc`` (gcsbi.nets.pidoc, when present) | ``module:Class`` (kwargs in_channels)."""
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
    try:
        bank_mod = importlib.import_module("gcsbi.bank")
    except ImportError as exc:
        raise GcsbiDependencyError("gcsbi.bank (the Zarr simulation bank) is not available in this build; "
                                   "use --simulations N with --spec") from exc
    bank = bank_mod.SimulationBank.open(path)
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
    from .train import simulate, train

    if (args.bank is None) == (args.simulations is None):
        raise GcsbiValueError("give either a bank path or --simulations N (with --spec)")
    if args.bank is not None:
        theta, x, prior, spec = _load_bank(args.bank)
    else:
        if not args.spec:
            raise GcsbiValueError("--simulations needs --spec")
        sim = resolve_simulator(args.spec, prior=args.prior, kwargs=_kw(args.sim_kwargs))
        theta, x = simulate(sim, args.simulations, seed=args.seed, stream="train")
        prior, spec = sim.prior, sim.spec
    emb = None if args.init_from else resolve_embedding(args.embedding, in_channels=int(x.shape[1]),
                                                        features=args.features)
    post = train(theta, x, prior=prior, embedding_net=emb, spec=spec, density_estimator=args.density_estimator,
                 hidden_features=args.hidden_features, num_transforms=args.num_transforms, num_bins=args.num_bins,
                 max_num_epochs=args.max_epochs, stop_after_epochs=args.stop_after_epochs,
                 batch_size=args.batch_size, learning_rate=args.learning_rate, x_pool=args.x_pool,
                 refine_learning_rates=args.refine_lr, dropout=args.dropout, init_from=args.init_from,
                 train_embedding=not args.flow_only,
                 seed=args.seed, device=args.device, out=args.out, verbose=args.verbose)
    h = post.history
    print(f"trained {post.config.density_estimator} on {h['n_simulations']} simulations: {h['epochs_trained']} epochs, "
          f"best validation loss {h['best_validation_loss']:.4f}; wrote {args.out}")
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from .checkpoint import load_posterior
    from .fitsio import observation_for_posterior
    from .infer import infer, summary

    post = load_posterior(args.checkpoint)
    bands = [b for b in args.bands.split(",") if b.strip()] if args.bands else None
    obs = observation_for_posterior(args.observation, post, bands=bands, ra=args.ra, dec=args.dec)
    dt = infer(post, obs, num_samples=args.num_samples, seed=args.seed)
    table = summary(dt, round_to=4)
    if args.json:
        print(json.dumps({"summary": json.loads(table.to_json(orient="index")),
                          "attrs": {k: v for k, v in dt.attrs.items()}}, indent=2, default=str))
    else:
        print(table.to_string())
        for key in ("ood_pvalue", "ood_flag", "posterior_mass_in_prior", "prior_edge_params"):
            if key in dt.attrs:
                print(f"{key}: {dt.attrs[key]}")
    if args.out:  # Zarr keeps the DataTree groups and needs no netCDF library
        dt.to_zarr(args.out, mode="w")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate
    from .checkpoint import load_posterior

    post = load_posterior(args.checkpoint)
    spec = args.spec or str(post.spec.get("simulator", {}).get("name", ""))
    sim = resolve_simulator(spec, prior=args.prior, kwargs=_kw(args.sim_kwargs))
    report = calibrate(post, sim, n_held_out=args.n_held_out, num_posterior_samples=args.num_posterior_samples,
                       seed=args.seed, c2st=not args.no_c2st, out=args.out)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(f"max expected-coverage deviation: {report['max_expected_coverage_deviation']:.4f} "
              f"({report['verdict']}); TARP ATC {report['tarp_atc']:+.4f}")
        for name, p in report["parameters"].items():
            print(f"  {name:>16}: {p['verdict']:<13} KS p={p['sbc_ks_pvalue']:.3f} "
                  f"MAE={p['median_abs_error']:.4g} bias={p['bias']:+.4g}")
    return 0


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
    p.add_argument("--embedding", default="pidoc", help="pidoc (default) | small-cnn | module:Class")
    p.add_argument("--features", type=int, default=64, help="embedding output size")
    p.add_argument("--density-estimator", default="nsf")
    p.add_argument("--hidden-features", type=int, default=50, help="width of the flow's conditioner nets")
    p.add_argument("--num-transforms", type=int, default=5, help="number of flow transforms")
    p.add_argument("--num-bins", type=int, default=10, help="spline bins per transform (nsf)")
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--stop-after-epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--x-pool", type=int, default=1, help="average-pool the images by this factor first (memory)")
    p.add_argument("--refine-lr", type=float, nargs="*", default=[], metavar="LR",
                   help="learning rates of extra stages, each resumed after early stopping (e.g. 3e-4 1e-4)")
    p.add_argument("--dropout", type=float, default=None,
                   help="dropout probability of every dropout layer while training (default: the net's own)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune this posterior (path or shipped name): its weights and architecture")
    p.add_argument("--flow-only", action="store_true",
                   help="with --init-from: keep its embedding fixed and train the flow only (on fresh simulations)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--verbose", action="store_true")
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
    p.add_argument("--out", help="write the ArviZ DataTree to this Zarr folder (e.g. posterior.zarr)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
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
