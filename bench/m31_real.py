"""Real M31 clusters in catalogue mode vs the literature: B165, Caldwell+2011 old clusters, Johnson+2016 young ones.

    .venv/bin/python bench/m31_real.py [--posterior PATH] [--prior PRESET] [--num-samples 2000] [--all-phat]

B165, the Caldwell old clusters and the Johnson+2016 young clusters under the prior ``gcsbi m31`` uses
when none is named (``--prior``, default: ``gcsbi.catalogue.priors.DEFAULT_PRESET``); Caldwell's old
clusters also under the other presets: the learnt population (``population``), ``old`` (age 8 - 14 Gyr,
mass >= 10^4 Msun, the posterior trained on ``m31-old``), ``box`` and the unchanged training prior.
E(B-V) is inferred, never fixed to a literature value. Writes to bench/results/:
* ``m31_b165.json`` / ``m31_b165.png`` - posterior of B165 (= APID 166) with Caldwell's values marked;
* ``m31_caldwell_results.ecsv`` (and ``.fits``) - the batch-mode table (percentiles, OOD flags);
* ``m31_caldwell_comparison.json`` / ``.png`` - median offset, scatter, 68%/95% coverage and
  posterior widths for log M, [Fe/H], E(B-V) (every prior preset), E(B-V) of the outer
  (projected R > 8 kpc, halo-like) clusters, and the out-of-distribution fraction;
* ``m31_johnson2016_results.ecsv``, ``m31_johnson2016_comparison.json`` / ``.png`` - log age and log M
  of the young clusters vs Johnson et al. (2016, ApJ 827, 33) CMD fits;
* with ``--all-phat``: ``m31_phat_ood.json`` - OOD fraction over the whole PHAT catalogue.
Needs the shared data (../shared/data/m31) and the catalogue posterior (shipped).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from gcsbi.catalogue.catalogues import caldwell_matched, read_phat_catalogue
from gcsbi.catalogue.compare import compare_with_caldwell, plot_cluster_posterior, plot_comparison
from gcsbi.catalogue.inference import infer_catalogue, infer_cluster, load_catalogue_posterior
from gcsbi.catalogue.priors import DEFAULT_PRESET, PRESETS, prior_choice
from gcsbi.errors import GcsbiWarning

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "m31"
CALDWELL_B165 = {"log10_mass": 5.61, "feh": -2.04, "ebv": 0.15, "age_gyr": 14.0}
#: M31's centre (RA, Dec in degrees) and distance (kpc) for projected radii.
M31_CENTRE, M31_KPC = (10.6847, 41.2690), 780.0
OUTER_KPC = 8.0


def projected_radius_kpc(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Projected distance from M31's centre in kpc."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    c = SkyCoord(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)
    return c.separation(SkyCoord(*M31_CENTRE, unit="deg")).radian * M31_KPC


def robust(d: np.ndarray) -> dict:
    d = d[np.isfinite(d)]
    if not d.size:
        return {"n": 0}
    med = float(np.median(d))
    return {"n": int(d.size), "median_offset": med, "scatter_mad": float(1.4826 * np.median(np.abs(d - med))),
            "scatter_std": float(np.std(d, ddof=1)) if d.size > 1 else float("nan")}


def ebv_given_diagnostic(table, post, num_samples: int, sd: float = 0.05) -> dict:
    """[Fe/H] offset when each cluster's E(B-V) prior is Caldwell's value +- ``sd`` (a diagnostic only).

    Shows how much of the [Fe/H] offset is the metallicity-reddening degeneracy of integrated
    colours; not a result (Caldwell's E(B-V) are not truth, and were not used for the prior choice).
    """
    d, w = [], []
    for row in table:
        cal_feh, cal_ebv = float(row["caldwell_feh"]), float(row["caldwell_ebv"])
        if not (np.isfinite(cal_feh) and np.isfinite(cal_ebv)):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dt = infer_cluster(row, post, prior=prior_choice(ebv_gaussian=(cal_ebv, sd)),
                                   num_samples=num_samples, seed=0, check_ood=False)
        except Exception:  # no photometry at all
            continue
        f = np.asarray(dt["posterior"]["feh"].values).ravel()
        d.append(np.median(f) - cal_feh)
        w.append(np.subtract(*np.percentile(f, [84, 16])))
    out = robust(np.array(d))
    out.update(median_posterior_width_68=float(np.median(w)), ebv_prior_sd=sd,
               note="diagnostic: E(B-V) prior centred on Caldwell's value; not a prior choice of the results")
    return out


def johnson2016(post, num_samples: int, preset: str) -> dict:
    """Young clusters: our log age and log M (prior ``preset``) vs Johnson et al. (2016) CMD fits."""
    from astropy.table import Table, join

    j16 = Table.read(DATA / "phat_young_cluster_ages_masses_johnson2016.fits")
    j16 = Table({c: np.asarray(j16[c]) for c in ("APID", "logAge", "b_logAge", "B_logAge", "logMass",
                                                  "b_logMass", "B_logMass")})
    table = join(read_phat_catalogue(), j16, keys="APID")
    res = infer_catalogue(table, post, num_samples=num_samples, seed=0, progress=True, prior=prior_choice(preset),
                          out=RESULTS / "m31_johnson2016_results.ecsv")
    used = np.char.startswith(np.asarray(res["status"]).astype(str), "ok")
    out: dict = {"n_johnson2016": int(len(j16)), "n_matched": int(len(table)), "n_used": int(used.sum()),
                 "prior": res.meta["PRIOR"], "ood_fraction": float(np.asarray(res["any_ood"])[used].mean())}
    for ours, theirs in (("log10_age_yr", "logAge"), ("log10_mass", "logMass")):
        ref = np.asarray(table[theirs], float)
        med = np.asarray(res[f"{ours}_p50"], float)
        lo68, hi68 = np.asarray(res[f"{ours}_p16"], float), np.asarray(res[f"{ours}_p84"], float)
        lo95, hi95 = np.asarray(res[f"{ours}_p2.5"], float), np.asarray(res[f"{ours}_p97.5"], float)
        ok = used & np.isfinite(ref) & np.isfinite(med)
        s = robust(med[ok] - ref[ok])
        s.update(coverage_68=float(np.mean((ref[ok] >= lo68[ok]) & (ref[ok] <= hi68[ok]))),
                 coverage_95=float(np.mean((ref[ok] >= lo95[ok]) & (ref[ok] <= hi95[ok]))),
                 median_posterior_width_68=float(np.median(hi68[ok] - lo68[ok])),
                 johnson2016_median_width=float(np.median(np.asarray(table["B_" + theirs], float)[ok]
                                                          - np.asarray(table["b_" + theirs], float)[ok])))
        out[ours] = s
    _plot_pairs(res, table, RESULTS / "m31_johnson2016_comparison.png", out)
    return out


def _plot_pairs(res, table, path: Path, stats: dict) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (ours, theirs, label) in zip(axes, (("log10_age_yr", "logAge", "log10 age [yr]"),
                                                ("log10_mass", "logMass", "log10 M [Msun]"))):
        ref = np.asarray(table[theirs], float)
        med = np.asarray(res[f"{ours}_p50"], float)
        lo, hi = np.asarray(res[f"{ours}_p16"], float), np.asarray(res[f"{ours}_p84"], float)
        ok = np.isfinite(ref) & np.isfinite(med)
        jit = np.random.default_rng(0).uniform(-0.03, 0.03, ok.sum())  # J16 ages are on a 0.1 dex grid
        ax.errorbar(ref[ok] + jit, med[ok], yerr=[med[ok] - lo[ok], hi[ok] - med[ok]], fmt="o", ms=2, alpha=0.3, lw=0.5)
        a, b = np.nanmin(ref[ok]) - 0.3, np.nanmax(ref[ok]) + 0.3
        ax.plot([a, b], [a, b], "k--", lw=0.8)
        s = stats[ours]
        ax.set_title(f"offset {s['median_offset']:+.2f}, scatter {s['scatter_mad']:.2f}, "
                     f"68%: {s['coverage_68']:.0%}", fontsize=9)
        ax.set_xlabel(f"Johnson+2016 {label}")
        ax.set_ylabel(f"gcsbi {label}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posterior", type=Path, default=None)
    p.add_argument("--prior", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                   help=f"the prior of B165, Johnson+2016 and the main Caldwell table (default {DEFAULT_PRESET!r}, "
                        "what gcsbi m31 uses)")
    p.add_argument("--num-samples", type=int, default=2000)
    p.add_argument("--num-samples-young", type=int, default=1000, help="posterior draws per Johnson+2016 cluster")
    p.add_argument("--all-phat", action="store_true", help="also measure the OOD fraction of all PHAT clusters")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    post = load_catalogue_posterior(a.posterior)
    post_old = load_catalogue_posterior(a.posterior, prior="old")  # trained on m31-old when shipped

    # ---- B165 (an old GC) under the default prior
    main_prior = a.prior
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GcsbiWarning)
        dt = infer_cluster("B165", post, prior=prior_choice(main_prior), num_samples=5 * a.num_samples, seed=0)
    b165 = {"cluster": json.loads(dt.attrs["cluster"]), "catalogue_values": json.loads(dt.attrs["catalogue_values"]),
            "prior": dt.attrs["prior"],  # cluster / catalogue_values are JSON text in the DataTree (NetCDF-safe)
            "ood_pvalue": dt.attrs.get("ood_pvalue"), "ood_flag": dt.attrs.get("ood_flag"),
            "range_flag": dt.attrs.get("range_flag"), "warnings": [str(w.message) for w in caught],
            "caldwell2011": CALDWELL_B165, "prior_ess": dt.attrs.get("prior_ess"),
            "disc_radius_kpc": dt.attrs.get("disc_radius_kpc"), "posterior": {}}
    for n in post.param_names:
        d = np.asarray(dt["posterior"][n].values).ravel()
        q = np.percentile(d, [2.5, 16, 50, 84, 97.5])
        b165["posterior"][n] = {"median": float(q[2]), "p16": float(q[1]), "p84": float(q[3]),
                                "p2.5": float(q[0]), "p97.5": float(q[4])}
    (RESULTS / "m31_b165.json").write_text(json.dumps(b165, indent=1))
    plot_cluster_posterior(dt, CALDWELL_B165, RESULTS / "m31_b165.png",
                           title=f"B165-G218 (APID 166), PHAT catalogue mode; prior: {dt.attrs['prior']}")
    print(f"B165 (APID 166), prior {dt.attrs['prior']}:")
    for n in ("log10_mass", "log10_age_yr", "feh", "ebv"):
        if n in b165["posterior"]:
            s = b165["posterior"][n]
            print(f"  {n:12s} {s['median']:7.2f} [{s['p16']:.2f}, {s['p84']:.2f}]  (95%: {s['p2.5']:.2f}-{s['p97.5']:.2f})")

    # ---- Caldwell old clusters
    table = caldwell_matched()
    age = np.asarray(table["caldwell_age"], float)
    table = table[~(age < 8.0)]  # Caldwell: blank or >= 8 Gyr = old
    stats = {"selection": "Caldwell+2011 x PHAT (<= 1 arcsec), Caldwell age blank or >= 8 Gyr",
             "default_prior": main_prior}
    presets = [main_prior] + [q for q in ("population", "box", "old", "training") if q != main_prior]
    labels = [f"{q}_prior" for q in presets]
    for label, preset in zip(labels, presets):
        model = post_old if preset == "old" else post
        res = infer_catalogue(table, model, num_samples=a.num_samples, seed=0, prior=prior_choice(preset),
                              out=RESULTS / "m31_caldwell_results.ecsv" if preset == main_prior else None)
        st = compare_with_caldwell(res)
        st["prior"] = res.meta["PRIOR"]
        r_kpc = projected_radius_kpc(np.asarray(table["RAdeg"], float), np.asarray(table["DEdeg"], float))
        outer = np.asarray(r_kpc > OUTER_KPC)
        used = np.char.startswith(np.asarray(res["status"]).astype(str), "ok")
        ebv = np.asarray(res["ebv_p50"], float)
        st["ebv_ours"] = {"all": robust(ebv[used]), f"outer_R>{OUTER_KPC:g}kpc": robust(ebv[used & outer]),
                          "note": "median_offset here is the median E(B-V) itself; Milky Way foreground ~0.06"}
        cal = np.asarray(res["caldwell_ebv"], float)
        st["ebv_caldwell"] = {"all": robust(cal[used]), f"outer_R>{OUTER_KPC:g}kpc": robust(cal[used & outer])}
        stats[label] = st
        if preset == main_prior:
            res.write(RESULTS / "m31_caldwell_results.fits", overwrite=True)
            plot_comparison(res, RESULTS / "m31_caldwell_comparison.png", stats=st)
    stats["diagnostic_ebv_prior_from_caldwell"] = ebv_given_diagnostic(table, post_old, a.num_samples)
    stats["wall_time_s"] = round(time.time() - t0, 1)
    print(f"Caldwell old clusters: {stats[labels[0]]['n_used']} of {stats[labels[0]]['n_clusters']} used")
    for label in labels:
        for n, s in stats[label]["all"].items():
            if s.get("n"):
                print(f"  {label:15s} {n:11s} n={s['n']:3d} offset {s['median_offset']:+.3f} scatter(MAD) "
                      f"{s['scatter_mad']:.3f} cov68 {s['coverage_68']:.2f} cov95 {s['coverage_95']:.2f} "
                      f"width68 {s['median_posterior_width_68']:.2f}")

    dg = stats["diagnostic_ebv_prior_from_caldwell"]
    print(f"  diagnostic, E(B-V) prior = Caldwell +- 0.05: [Fe/H] offset {dg['median_offset']:+.3f} "
          f"scatter(MAD) {dg['scatter_mad']:.3f} width68 {dg['median_posterior_width_68']:.2f}")

    # ---- Johnson+2016 young clusters
    stats_j16 = johnson2016(post, a.num_samples_young, main_prior)
    stats_j16["wall_time_s"] = round(time.time() - t0, 1)
    (RESULTS / "m31_johnson2016_comparison.json").write_text(json.dumps(stats_j16, indent=1))
    (RESULTS / "m31_caldwell_comparison.json").write_text(json.dumps(stats, indent=1))
    for n in ("log10_age_yr", "log10_mass"):
        s = stats_j16[n]
        print(f"  Johnson+2016 {n:12s} n={s['n']} offset {s['median_offset']:+.3f} scatter(MAD) {s['scatter_mad']:.3f} "
              f"cov68 {s['coverage_68']:.2f} cov95 {s['coverage_95']:.2f}")

    if a.all_phat:  # flags only (no posterior sampling: 2753 clusters), same tests as infer's
        from gcsbi.catalogue.catalogues import catalogue_values
        from gcsbi.catalogue.inference import _bands, _model, range_check
        from gcsbi.catalogue.model import features
        from gcsbi.inference.infer import ood_pvalues

        phat = read_phat_catalogue()
        xs = []
        for row in phat:
            try:
                v = catalogue_values(row, model=_model(post), bands=_bands(post))
            except Exception:
                continue
            xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
        x = np.stack(xs)
        rflag = np.array([bool(r) for r in range_check(post, x)])
        pv = np.array(ood_pvalues(post, torch.from_numpy(x), seed=0, n_shuffle=100))
        mflag = pv < 0.01
        out = {"n_catalogue": int(len(phat)), "n_with_photometry": int(len(x)),
               "ood_fraction": float((rflag | mflag).mean()), "ood_mmd_fraction": float(mflag.mean()),
               "ood_range_fraction": float(rflag.mean()),
               "note": "flags without posterior sampling (range check + embedding MMD, alpha 0.01, 100 shuffles); "
                       "the prior-box leakage flag of infer is not included"}
        (RESULTS / "m31_phat_ood.json").write_text(json.dumps(out, indent=1))
        print("all PHAT:", out)
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
