# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # JFlow: Jeans analysis of a dwarf spheroidal with an equivariant flow
#
# Lim, Hayashi, Horigome, Matsumoto & Nojiri (2025, arXiv:2505.00763). From sky positions and
# line-of-sight velocities we learn f(r, v) = n(r) N(v; 0, Σ(r)) with the smeared likelihood and solve
# the spherical Jeans equation by autograd. Sizes here are small so the notebook runs in a few minutes
# on a laptop; `bench/jeans_bench.py` runs the full benchmarks.

# %%
import numpy as np
import torch

from gcsbi_jeans.baseline import BaselineConfig, fit_baseline
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.mocks import MockConfig, make_mock, truth_profiles
from gcsbi_jeans.core.plots import plot_profiles
from gcsbi_jeans.jflow.config import FitConfig
from gcsbi_jeans.jflow.fit import fit_ensemble

torch.set_num_threads(1)

# %% [markdown]
# A mock: 500 Plummer stars (a = 0.25 kpc) in a cored Zhao (1, 3, 0) halo, Osipkov–Merritt r_a = 0.25 kpc,
# drawn from galpy's Osipkov–Merritt DF, with 2 km/s velocity errors.

# %%
stars, truth = make_mock(MockConfig(n=500, halo="core", anisotropy="om:0.25", seed=0))
beta = parse_beta(truth["beta"])
print(stars.n, "stars; R_half =", round(stars.half_light_radius(), 3), "kpc")

# %% [markdown]
# Three bootstrap fits (use 8+ and 1000 steps for real work), then the emcee Plummer + gNFW baseline. JFlow is
# experimental: a member whose ρ ≤ 0 or whose M(<r) falls inside the data is dropped with a warning, and beyond
# the data such values become NaN (also with a warning), which short fits like these often trigger.

# %%
ens = fit_ensemble(stars, beta, FitConfig(steps=250, n_model=512), members=3)
base = fit_baseline(stars, beta, BaselineConfig(steps=600, burn=200), radius=ens.radius, R=ens.R)

# %%
png = plot_profiles({"JFlow": (ens.radius, ens.R, ens.profiles), "emcee": (ens.radius, ens.R, base.profiles)},
                    "jeans_tutorial.png", stars=stars, truth=truth_profiles(truth), title="mock")
rh = stars.half_light_radius()
j = np.argmin(np.abs(ens.radius - rh))
print("rho(R_half): JFlow", np.median(ens.profiles["rho"][:, j]), "emcee", np.median(base.profiles["rho"][:, j]),
      "truth", truth_profiles(truth)["rho"](ens.radius[j]))

# %% [markdown]
# ## The free-form posterior (the default of `gcsbi-jeans fit`)
#
# The derivative route above differentiates learned n(r) and σ_r²(r) twice to get ρ: a few per cent of
# wiggle become tens of per cent in ρ and can make it negative (`bench/jeans_diagnose.py`). The free-form
# model instead describes ρ_DM(r) by its log-slope at a few nodes (non-decreasing outwards, no halo
# family), solves the Jeans equation in integral form, and samples the posterior with emcee: ρ > 0 and
# M(r) increasing by construction, seconds to a minute instead of minutes. The light profile is a
# sum of Plummer spheres fitted to positions (a larger photometric sample when there is one).

# %%
from gcsbi_jeans.core.light import fit_light
from gcsbi_jeans.freeform import FreeformConfig, fit_freeform

light = fit_light(stars.R, stars.weight)
post = fit_freeform(stars, FreeformConfig(), beta=beta, light=light, radius=ens.radius, R=ens.R, distance_kpc=80.0,
                    progress=False)  # run until the walkers' R-hat <= 1.01 and bulk ESS >= 400
print("sampler:", {k: post.diagnostics[k] for k in ("steps", "rhat_max", "ess_bulk_min", "converged")})
print("rho(R_half): free-form", np.median(post.profiles["rho"][:, j]), "smallest rho draw", post.profiles["rho"].min())
print("log10 J(0.5 deg) at 80 kpc:", np.round(np.nanquantile(post.scalars["log10_J_0.5deg"], [0.16, 0.5, 0.84]), 2),
      f"({post.diagnostics['J_infinite_fraction']:.1%} of the draws have an infinite J and are left out)")
plot_profiles({"free-form": (ens.radius, ens.R, post.profiles), "emcee": (ens.radius, ens.R, base.profiles)},
              "jeans_tutorial_freeform.png", stars=stars, truth=truth_profiles(truth), title="mock")
