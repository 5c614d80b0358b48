"""Real M31 clusters in catalogue mode: B165 and the PHAT x Caldwell+2011 sample vs the literature.

    .venv/bin/python bench/m31_real.py [--posterior PATH] [--num-samples 2000] [--all-phat]

Writes to bench/results/:
* ``m31_b165.json`` / ``m31_b165.png`` - posterior of B165 (= APID 166) with Caldwell's values marked;
* ``m31_caldwell_results.ecsv`` (and ``.fits``) - the batch-mode table (percentiles, OOD flags);
* ``m31_caldwell_comparison.json`` / ``.png`` - median offset, scatter, 68%/95% coverage for
  log M, [Fe/H], E(B-V) and the out-of-distribution fraction;
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
from gcsbi.catalogue.inference import infer_catalogue, load_catalogue_posterior
from gcsbi.errors import GcsbiWarning
from gcsbi.inference import infer

RESULTS = Path(__file__).resolve().parent / "results"
CALDWELL_B165 = {"log10_mass": 5.61, "feh": -2.04, "ebv": 0.15, "age_gyr": 14.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posterior", type=Path, default=None)
    p.add_argument("--num-samples", type=int, default=2000)
    p.add_argument("--all-phat", action="store_true", help="also measure the OOD fraction of all PHAT clusters")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    post = load_catalogue_posterior(a.posterior)

    # ---- B165
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GcsbiWarning)
        dt = infer(post, "B165", num_samples=5 * a.num_samples, seed=0)
    b165 = {"cluster": dt.attrs["cluster"], "catalogue_values": dt.attrs["catalogue_values"],
            "ood_pvalue": dt.attrs.get("ood_pvalue"), "ood_flag": dt.attrs.get("ood_flag"),
            "range_flag": dt.attrs.get("range_flag"), "warnings": [str(w.message) for w in caught],
            "caldwell2011": CALDWELL_B165, "posterior": {}}
    for n in post.param_names:
        d = np.asarray(dt["posterior"][n].values).ravel()
        q = np.percentile(d, [2.5, 16, 50, 84, 97.5])
        b165["posterior"][n] = {"median": float(q[2]), "p16": float(q[1]), "p84": float(q[3]),
                                "p2.5": float(q[0]), "p97.5": float(q[4])}
    (RESULTS / "m31_b165.json").write_text(json.dumps(b165, indent=1))
    plot_cluster_posterior(dt, CALDWELL_B165, RESULTS / "m31_b165.png", title="B165-G218 (APID 166), PHAT catalogue mode")
    print("B165 (APID 166):")
    for n in ("log10_mass", "age_gyr", "feh", "ebv"):
        s = b165["posterior"][n]
        print(f"  {n:11s} {s['median']:7.2f} [{s['p16']:.2f}, {s['p84']:.2f}]  (95%: {s['p2.5']:.2f}-{s['p97.5']:.2f})"
              f"   Caldwell {CALDWELL_B165[n]}")

    # ---- Caldwell sample
    table = caldwell_matched()
    res = infer_catalogue(table, post, num_samples=a.num_samples, seed=0, out=RESULTS / "m31_caldwell_results.ecsv")
    res.write(RESULTS / "m31_caldwell_results.fits", overwrite=True)
    stats = compare_with_caldwell(res)
    stats["wall_time_s"] = round(time.time() - t0, 1)
    (RESULTS / "m31_caldwell_comparison.json").write_text(json.dumps(stats, indent=1))
    plot_comparison(res, RESULTS / "m31_caldwell_comparison.png", stats=stats)
    print(f"Caldwell sample: {stats['n_used']} of {stats['n_clusters']} used, OOD fraction {stats['ood_fraction']:.1%} "
          f"(MMD {stats['n_ood_mmd']}, range {stats['n_ood_range']})")
    for sel in ("all", "in_distribution"):
        for n, s in stats[sel].items():
            if s.get("n"):
                print(f"  {sel:16s} {n:11s} n={s['n']:3d} offset {s['median_offset']:+.3f} scatter(MAD) "
                      f"{s['scatter_mad']:.3f} (std {s['scatter_std']:.3f}) cov68 {s['coverage_68']:.2f} "
                      f"cov95 {s['coverage_95']:.2f}")

    if a.all_phat:  # flags only (no posterior sampling: 2753 clusters), same tests as infer's
        from gcsbi.catalogue.catalogues import catalogue_values
        from gcsbi.catalogue.inference import _model, range_check
        from gcsbi.catalogue.model import features
        from gcsbi.inference.infer import ood_pvalues

        phat = read_phat_catalogue()
        xs, young = [], []
        for row in phat:
            try:
                v = catalogue_values(row, model=_model(post))
            except Exception:
                continue
            xs.append(features(v["mag"][None], v["err"][None], np.array([v["reff"]]), np.array([v["rap"]]))[0])
        x = np.stack(xs)
        rflag = np.array([bool(r) for r in range_check(post, x)])
        pv = np.array(ood_pvalues(post, torch.from_numpy(x), seed=0, n_shuffle=100))
        mflag = pv < 0.01
        out = {"n_catalogue": int(len(phat)), "n_with_3_bands": int(len(x)),
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
