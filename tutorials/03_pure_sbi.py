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
# # gcsbi pieces in sbi's own workflow
#
# gcsbi's prior is a torch `Distribution`, its simulator an sbi simulator (θ (B, D) → x
# float32) and its embedding a plain `nn.Module`, so sbi's own `simulate_for_sbi` and
# `NPE(...).append_simulations(...).train()` take them as they are. The result goes back into
# gcsbi with `TrainedPosterior.from_sbi`, for `gcsbi.infer` (ArviZ output, OOD flags) and
# `gcsbi.calibrate` (coverage, SBC, TARP). The sizes here are tiny, to run in a minute or two;
# the shipped posteriors use tens of thousands of simulations (`scripts/train_shipped.py`).

# %%
import warnings

import torch
from sbi.inference import NPE, simulate_for_sbi
from sbi.neural_nets import posterior_nn
from torch import nn

import gcsbi
from gcsbi.inference import TrainConfig, TrainedPosterior, summary
from gcsbi.nets import ChannelStandardize, PiDocEmbedding

torch.set_num_threads(1)
sim = gcsbi.load_simulator("hst-phat", prior="m31-gc")

# %% [markdown]
# ## Simulations, the sbi way
# `seed=` makes `simulate_for_sbi` reproducible: sbi seeds torch, and gcsbi's simulator draws
# its own seed from torch's generator when it is given none.

# %%
theta, x = simulate_for_sbi(sim, sim.prior, 150, simulation_batch_size=50, seed=0, show_progress_bar=False)
theta_ref, x_ref = simulate_for_sbi(sim, sim.prior, 30, simulation_batch_size=30, seed=1,
                                    show_progress_bar=False)
print(theta.shape, x.shape, x.dtype)

# %% [markdown]
# ## sbi's NPE with the π-DOC-style embedding
# A small `PiDocEmbedding` (one branch per channel group of the hst-phat input: fluxes,
# colours, pixel-CMD), trained end to end with the flow by sbi. The input goes through gcsbi's
# `ChannelStandardize` (one mean and std per channel) instead of sbi's per-pixel z-scoring,
# which blows up the sparse pixel-CMD channel; so sbi's own z-scoring of x is off.

# %%
torch.manual_seed(0)
net = nn.Sequential(ChannelStandardize.from_data(x),
                    PiDocEmbedding(in_channels=x.shape[1], width=4, input_pool=4, features=16, hidden=(32,)))
estimator = posterior_nn("nsf", embedding_net=net, z_score_x="none", hidden_features=32, num_transforms=2)
npe = NPE(prior=sim.prior, density_estimator=estimator, show_progress_bars=False)
# sbi checks x for per-pixel z-scoring even with it off; empty pixel-CMD bins are constant by design
warnings.filterwarnings("ignore", message="Data has constant values")
npe.append_simulations(theta, x).train(max_num_epochs=15, stop_after_epochs=5, training_batch_size=32)
sbi_posterior = npe.build_posterior()

# %% [markdown]
# ## Back into gcsbi
# `from_sbi` needs what sbi does not keep: the simulator (prior and spec, stored in a
# checkpoint), the flow's architecture (`config`), and reference simulations for the
# out-of-distribution test.

# %%
post = TrainedPosterior.from_sbi(sbi_posterior, simulator=sim, reference_x=x_ref, inference=npe,
                                 config=TrainConfig(hidden_features=32, num_transforms=2, z_score_x="channel"))
print(post)
dt = gcsbi.infer(post, x_ref[0], num_samples=500, seed=0)
print(summary(dt))
print("OOD test:", dt.attrs["ood_test"], "flag:", dt.attrs["ood_flag"])

# %% [markdown]
# ## Calibration
# With so few mocks the verdict says how much finite-sample noise it cannot tell apart from
# miscalibration.

# %%
report = gcsbi.calibrate(post, sim, n_held_out=20, num_posterior_samples=100, seed=2, c2st=False)
print(report["verdict"], "max coverage deviation %.3f" % report["max_expected_coverage_deviation"])
