# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # Real M31 clusters from the PHAT catalogue (catalogue mode)
#
# No HST pixel cutouts of M31 clusters are available offline, so the real test goes through what the
# PHAT cluster catalogue (Johnson et al. 2015, ApJ 802, 127) measured for each cluster: aperture
# magnitudes in its six bands (F275W, F336W, F475W, F814W, F110W, F160W) in the catalogue's
# apertures `Rap`, their errors (or upper limits), and the effective radius `Reff`.
# `gcsbi.catalogue` turns the *same* image simulator (spec `hst-phat6`) into exactly these numbers
# (aperture photometry with a local background annulus, the catalogue's own error-vs-magnitude
# distribution, 3-sigma upper limits, bands missing as often as in the catalogue, rounding) and a
# small NPE posterior was trained on them under the `m31-clusters` prior (log age 7 - 10.15:
# young to old; `scripts/train_catalogue.py`, shipped as `hst-phat6_m31-clusters_catalogue.pt`).
#
# Steps: one simulated catalogue entry -> the posterior of B165 (= APID 166) next to Caldwell et al.
# (2011), under the old-cluster prior -> all ~100 old PHAT clusters that Caldwell measured, with
# offsets, scatter, coverage and out-of-distribution flags -> reading real HST cutouts (image mode)
# for users who have them.

# %%
import warnings

import numpy as np
import torch

import gcsbi
from gcsbi.catalogue import CatalogueSimulator, data_dir, load_catalogue_posterior
from gcsbi.catalogue.compare import compare_with_caldwell, plot_cluster_posterior, plot_comparison
from gcsbi.catalogue.model import catalogue_values_from_features
from gcsbi.errors import OutOfDistributionWarning, PriorEdgeWarning
from gcsbi.inference import summary

torch.set_num_threads(1)
HAVE_DATA = (data_dir() / "phat_ap_clusters_johnson2015.fits").is_file()
print("PHAT/Caldwell data found:", HAVE_DATA, data_dir())
post = load_catalogue_posterior()
print(post)
print("trained on", post.history["bank"])

# %% [markdown]
# ## One simulated catalogue entry
# `CatalogueSimulator` keeps the `sbi` simulator contract (`prior`, `param_names`, `output_shape`,
# `spec`, `sim(theta, seed=)`), so `gcsbi.bank`, `train`, `infer` and `calibrate` work unchanged.
# Its output is the 14 network features: six magnitudes - 18, their log10 errors, log10 Reff,
# log10 Rap (a missing band is (0, 1), an upper limit has log10 error 0).
# (A smaller stamp than the 256 px used in training keeps this cell fast; it limits Rap to 1.4".)

# %%
from gcsbi.catalogue.model import CatalogueModel

sim = CatalogueSimulator(stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)))
truth = {"distance_kpc": 780.0, "log10_mass": 5.0, "log10_age_yr": 10.08, "feh": -1.5, "log10_r_half": 0.4,
         "w0": 7.0, "segregation": 0.1, "ellipticity": 0.05, "position_angle": 30.0, "ebv": 0.1,
         "background_sb": 22.0}
x = sim(sim.prior.from_dict(truth), seed=1)
print(sim.feature_names)
print("features:", x.numpy().round(3))
print("as catalogue values:", {k: np.round(v, 2).tolist() for k, v in catalogue_values_from_features(x.numpy()).items()})

# %% [markdown]
# ## B165 (= APID 166): posterior vs Caldwell et al. (2011)
# `gcsbi.infer` accepts a cluster name from the catalogue's `AltID` column (or an APID, or a catalogue
# row) for a catalogue-mode posterior; `infer_cluster` does the same under a prior choice. B165 is
# an old globular cluster, so we use the old-cluster prior (age 8 - 14 Gyr; the posterior's draws
# are reweighted, see `gcsbi.catalogue.priors`). Caldwell: log M = 5.61, [Fe/H] = -2.04,
# E(B-V) = 0.15 (age ~14 Gyr, marked uncertain).

# %%
if HAVE_DATA:
    from gcsbi.catalogue import infer_cluster
    from gcsbi.catalogue.priors import prior_choice

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        warnings.simplefilter("ignore", PriorEdgeWarning)
        dt = infer_cluster("B165", post, prior=prior_choice("old"), num_samples=4000, seed=0)
    print(dt.attrs["cluster"], dt.attrs["catalogue_values"])
    print("prior:", dt.attrs["prior"])
    print("OOD: MMD p-value %.3g (flag %s), features outside training range: %s"
          % (dt.attrs["ood_pvalue"], dt.attrs["ood_flag"], dt.attrs["features_out_of_range"]))
    caldwell = {"log10_mass": 5.61, "feh": -2.04, "ebv": 0.15, "log10_age_yr": 9.0 + np.log10(14.0)}
    table = summary(dt)
    table.insert(0, "Caldwell2011", [caldwell.get(n, np.nan) for n in table.index])
    print(table.loc[["log10_mass", "log10_age_yr", "feh", "ebv"]])
    plot_cluster_posterior(dt, caldwell, "b165_posterior.png", title="B165 (APID 166)")

# %% [markdown]
# ## The Caldwell-matched sample (batch mode)
# All PHAT clusters within 1" of a Caldwell et al. (2011) cluster older than 8 Gyr, under the old
# prior. `infer_catalogue` returns a table with posterior percentiles and flags (`ood_flag`:
# embedding-MMD test of `infer`; `range_flag`: a feature outside the range of the training
# simulations; `any_ood`: either, or the posterior leaving the prior box); a cluster missing a band
# is inferred from the bands it has, and `status` says which were missing. `res.meta["PRIOR"]`
# names the prior used.

# %%
if HAVE_DATA:
    from gcsbi.catalogue import caldwell_matched, infer_catalogue

    sample = caldwell_matched()
    sample = sample[~(np.asarray(sample["caldwell_age"], float) < 8.0)]
    res = infer_catalogue(sample, post, num_samples=500, seed=0, progress=False, out="m31_caldwell.ecsv",
                          prior=prior_choice("old"))
    print("prior:", res.meta["PRIOR"])
    stats = compare_with_caldwell(res)
    print(f"{stats['n_used']} of {stats['n_clusters']} clusters used; OOD fraction {stats['ood_fraction']:.0%}")
    for p, s in stats["all"].items():
        print(f"{p:11s} n={s['n']:3d} median offset {s['median_offset']:+.2f}  scatter {s['scatter_mad']:.2f} "
              f"(MAD) / {s['scatter_std']:.2f} (std)  in 68%: {s['coverage_68']:.0%}  in 95%: {s['coverage_95']:.0%}")
    plot_comparison(res, "m31_caldwell_comparison.png", stats=stats)

# %% [markdown]
# ## Image mode with real HST cutouts
# Users with PHAT (or other) drizzled cutouts can put them on the simulator's grid:
# `read_hst_cutouts({band: path}, ra, dec)` reads `_drz`/`_drc` files (BUNIT e-/s x EXPTIME, Vega
# zero point from PHOTFLAM/PHOTPLAM or a ZP keyword, WCS), resamples them with `reproject` to
# 0.05"/pix north-up around (RA, Dec), and rescales them to the simulator's zero points and exposure;
# `observation_from_cutouts` then applies the image-mode transform for `gcsbi.infer` with the image
# posterior. Here with a small synthetic ACS file written with HST header conventions:

# %%
from astropy.io import fits
from astropy.wcs import WCS

from gcsbi.observe.hst_images import read_hst_image

ra, dec = 10.825944, 41.181870
w = WCS(naxis=2)
w.wcs.ctype, w.wcs.crval, w.wcs.crpix = ["RA---TAN", "DEC--TAN"], [ra, dec], [100.5, 100.5]
w.wcs.cd = np.array([[-0.05, 0.0], [0.0, 0.05]]) / 3600
sci = fits.ImageHDU(np.random.default_rng(0).normal(0, 0.01, (200, 200)).astype(np.float32), header=w.to_header(), name="SCI")
sci.header.update(BUNIT="ELECTRONS/S", PHOTFLAM=7.0331e-20, PHOTPLAM=8057.0, PHOTZPT=-21.1)
primary = fits.PrimaryHDU(header=fits.Header({"TELESCOP": "HST", "INSTRUME": "ACS", "DETECTOR": "WFC",
                                              "FILTER1": "CLEAR1L", "FILTER2": "F814W", "EXPTIME": 1715.0}))
fits.HDUList([primary, sci]).writeto("demo_f814w_drc.fits", overwrite=True)
img = read_hst_image("demo_f814w_drc.fits")
print(img.band, img.exptime, round(img.zeropoint_vega, 3), round(img.pixel_scale_arcsec, 4), img.notes)
