"""The README's main job: simulate a cluster, summarise its light and structure, write plots.

Run as ``python -m gcsbi.demo --out demo-output`` (``make demo``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _plot(snap, distance_modulus: float, path: Path) -> None:
    import matplotlib

    from .clusters.profiles import surface_brightness_profile

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = {name: i for i, name in enumerate(snap.filters)}
    single = snap.weight == 1
    mag_i = snap.abs_mag[:, f["F814W"]] + distance_modulus
    with np.errstate(invalid="ignore"):  # dark remnants: inf - inf
        colour = snap.abs_mag[:, f["F475W"]] - snap.abs_mag[:, f["F814W"]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    flux = 10 ** (-0.4 * snap.abs_mag[:, f["F814W"]])
    ax.hist2d(
        snap.positions[:, 0], snap.positions[:, 1], bins=200, weights=flux,
        range=[[-30, 30], [-30, 30]], cmap="magma", norm=matplotlib.colors.LogNorm(),
    )
    ax.set(xlabel="x [pc] (East)", ylabel="y [pc] (North)", title="F814W light, projected")
    ax.set_aspect("equal")
    ax = axes[1]
    ok = single & np.isfinite(mag_i) & np.isfinite(colour)
    ax.scatter(colour[ok], mag_i[ok], s=1, c="k", alpha=0.3, rasterized=True)
    ax.set(xlim=(-0.5, 3.0), ylim=(mag_i[ok].max() if ok.any() else 30, mag_i[ok].min() - 0.5 if ok.any() else 15),
           xlabel="F475W - F814W", ylabel=f"F814W (m-M = {distance_modulus:.2f})",
           title="individually sampled stars")
    ax = axes[2]
    mid, sb = surface_brightness_profile(snap, band="V", edges_pc=np.geomspace(0.05, 100, 30))
    ax.plot(mid, sb, "o-")
    ax.set(xscale="log", xlabel="R [pc]", ylabel="V [mag arcsec$^{-2}$]", title="surface brightness")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gcsbi.demo", description=__doc__)
    parser.add_argument("--out", default="demo-output", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mass", type=float, default=1e5)
    parser.add_argument("--distance-kpc", type=float, default=780.0)
    args = parser.parse_args(argv)

    from .clusters.models import ClusterParams, sample_cluster

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = ClusterParams(mass=args.mass, half_mass_radius=4.0, age_gyr=12.0, feh=-1.5,
                           w0=7.0, segregation=0.3, ellipticity=0.1, position_angle=30.0)
    print(f"Simulating an M31-like globular cluster: {params}")
    t0 = time.perf_counter()
    snap = sample_cluster(params, rng=np.random.default_rng(args.seed))
    elapsed = time.perf_counter() - t0
    mu = 5 * np.log10(args.distance_kpc * 100.0)
    mags = snap.integrated_abs_mag()
    print(f"{snap}  sampled in {elapsed * 1e3:.0f} ms ({len(snap)} particles for {snap.n_stars:.3g} stars)")
    print(f"3D / projected half-mass radius: {snap.half_mass_radius():.2f} / "
          f"{snap.half_mass_radius(projected=True):.2f} pc, virial ratio {snap.virial_ratio():.3f}")
    print(f"{'filter':>7} {'M (abs)':>8} {'m at ' + str(int(args.distance_kpc)) + ' kpc':>14}")
    for name, value in mags.items():
        print(f"{name:>7} {value:8.3f} {value + mu:14.3f}")
    summary = {"params": params.__dict__, "seconds": elapsed, "integrated_abs_mag": mags,
               "distance_modulus": mu}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(snap, mu, out / "cluster.png")
    print(f"wrote {out / 'summary.json'} and {out / 'cluster.png'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
