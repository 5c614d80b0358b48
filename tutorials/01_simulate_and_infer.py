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
# # Simulate an M31 globular cluster and infer its parameters
#
# The whole gcsbi chain in a few lines: a prior (`priors/m31-gc.toml`), the `hst-phat`
# simulator (`simulators/hst-phat.toml`: WFC3/UVIS F336W + ACS/WFC F475W, F814W as in PHAT),
# the shipped neural posterior, and an ArviZ summary.

# %%
import torch

import gcsbi
from gcsbi.demo.run import SHIPPED_POSTERIOR
from gcsbi.inference import summary

torch.set_num_threads(1)
prior = gcsbi.load_prior("m31-gc")
sim = gcsbi.load_simulator("hst-phat", prior=prior)
print(sim)
print(prior)

# %% [markdown]
# ## One cluster, seeded
# `sim(theta, seed=...)` is an `sbi` simulator: theta (B, D) float32 in, x (B, C, H, W)
# float32 out; the same seed gives the same bytes. `simulate(..., return_truth=True)` also
# returns the noisy counts, the noiseless cluster image and the projected mass map.

# %%
truth = {"distance_kpc": 780.0, "log10_mass": 5.5, "age_gyr": 12.0, "feh": -1.2, "log10_r_half": 0.5,
         "w0": 7.0, "segregation": 0.1, "ellipticity": 0.05, "position_angle": 10.0, "ebv": 0.1,
         "background_sb": 22.5}
theta = prior.from_dict(truth)
out = sim.simulate(theta, seed=42, return_truth=True)
print({k: tuple(v.shape) for k, v in out.items()})
print("mass on the stamp: %.3g Msun" % out["mass_map"].sum())
assert torch.equal(out["x"], sim(theta, seed=42))

# %% [markdown]
# ## Posterior
# The shipped posterior was trained by `scripts/train_shipped.py`; `infer` returns an ArviZ
# DataTree with named parameters and units, and flags observations unlike the training set.

# %%
post = gcsbi.load_posterior(SHIPPED_POSTERIOR, expected_spec=sim.spec)
dt = gcsbi.infer(post, out["x"][0], num_samples=500, seed=0)
table = summary(dt)
table.insert(0, "truth", [truth[n] for n in table.index])
print(table)
print("OOD flag:", dt.attrs["ood_flag"])

# %% [markdown]
# ## Mass map, decontaminated image and derived quantities
# `maps=True` runs the map heads shipped with this posterior (a U-Net decoder on its own
# encoder): per-pixel mass and clean cluster light with uncertainties (group `maps`), and
# posterior draws of the enclosed mass, M/L and the mass-segregation ratio (group `derived`).
# The simulator's truths are there to compare with.

# %%
import numpy as np

from gcsbi.maps.infer import find_map_model
from gcsbi.maps.targets import summaries

dtm = gcsbi.infer(post, out["x"][0], num_samples=500, seed=0, maps=True)
maps = dtm["maps"].to_dataset()
print("predicted mass on the stamp: %.3g Msun (truth %.3g)" % (float(maps["mass"].sum()), float(out["mass_map"].sum())))
der = dtm["derived"].to_dataset()
model = find_map_model(post)
true = summaries(out["mass_map"].numpy(), out["clean"].numpy(), distance_kpc=[truth["distance_kpc"]],
                 ebv=[truth["ebv"]], photometry=model.photometry)[0]
for k, name in enumerate(der.data_vars):
    lo, med, hi = np.quantile(der[name].values, [0.16, 0.5, 0.84])
    known = f"{true[k]:.3f}" if k < len(true) else f"{10 ** true[-1]:.3f}"
    print(f"{name:>26}: {med:.3f} [{lo:.3f}, {hi:.3f}]  truth {known}")
