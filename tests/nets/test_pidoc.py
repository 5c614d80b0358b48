"""π-DOC-style embedding net: a parametrized contract over configurations, plus specifics."""

from __future__ import annotations

import json
import time

import pytest
import torch

from gcsbi.errors import GcsbiValueError
from gcsbi.nets import PiDocConfig, PiDocEmbedding

# (constructor kwargs, input H, W): single/multi group, odd sizes, minimum size, non-square
CONFIGS = [
    ({"in_channels": 1}, (32, 32)),
    ({"in_channels": 3, "features": 8, "width": 4, "hidden": (16,)}, (16, 16)),
    ({"in_channels": 6, "groups": {"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}, "width": 4}, (24, 20)),
    ({"in_channels": 4, "groups": {"a": [3, 0], "b": [1, 2]}, "kernel_sizes": (3, 3), "pool_output": 2,
      "width": 8, "spatial_dropout": 0.1, "dropout": 0.0}, (33, 17)),
    ({"in_channels": 2, "kernel_sizes": (3, 3, 3, 3, 3), "width": 4, "image_size": 16}, (16, 16)),
]


@pytest.mark.parametrize("kwargs, hw", CONFIGS)
def test_contract(kwargs, hw, torch_seed):
    net = PiDocEmbedding(**kwargs)
    x = torch.randn(5, kwargs["in_channels"], *hw)
    # shape and dtype
    y = net(x)
    assert y.shape == (5, net.output_dim) and y.dtype == torch.float32 and torch.isfinite(y).all()
    # gradients reach every parameter and the input
    x.requires_grad_(True)
    net(x).square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0
    # eval mode: deterministic and per-sample (no batch coupling through BatchNorm)
    net.eval()
    with torch.no_grad():
        a, b = net(x), net(x)
        single = net(x[2:3])
    assert torch.equal(a, b)
    torch.testing.assert_close(single[0], a[2], rtol=1e-4, atol=1e-5)
    # rebuilding from the (JSON-able, hashable) config gives the same architecture
    clone = PiDocEmbedding.from_config(net.config)
    clone.load_state_dict(net.state_dict())
    clone.eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x), a)
    hash(net.config)
    json.dumps(net.config.__dict__)


def test_default_is_small_and_timed(torch_seed):
    net = PiDocEmbedding(in_channels=6, groups={"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}, image_size=128)
    n_single = sum(p.numel() for p in PiDocEmbedding(in_channels=6).parameters())
    n_multi = sum(p.numel() for p in net.parameters())
    assert n_single <= 1_000_000 and n_multi <= 1_000_000
    assert n_multi > 2 * n_single  # each group really has its own branch
    assert net.output_dim == 64 and net.config.width == 16
    x = torch.randn(8, 6, 128, 128)
    net.eval()
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        net(x)
        dt = time.perf_counter() - t0
    print(f"PiDocEmbedding 3 groups: {n_multi} params, {dt / 8 * 1e3:.1f} ms per 128x128 image (1 CPU thread)")


def test_groups_see_only_their_channels(torch_seed):
    net = PiDocEmbedding(in_channels=3, groups={"a": [0], "b": [1, 2]}, width=4).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        feats = net.branches["a"](x[:, [0]])
        x2 = x.clone()
        x2[:, 1:] = torch.randn(2, 2, 16, 16)
        torch.testing.assert_close(net.branches["a"](x2[:, [0]]), feats)
        assert not torch.allclose(net(x2), net(x))
    # channel order inside a group is respected
    net2 = PiDocEmbedding(in_channels=2, groups={"g": [1, 0]}, width=4).eval()
    conv = net2.branches["g"][0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, 0] = 1.0  # only the group's first channel = input channel 1
        a = net2(torch.stack([torch.zeros(16, 16), torch.ones(16, 16)])[None])
        b = net2(torch.stack([torch.ones(16, 16), torch.ones(16, 16)])[None])
    torch.testing.assert_close(a, b)


def test_training_mode_uses_dropout(torch_seed):
    net = PiDocEmbedding(in_channels=1, width=4, dropout=0.5)
    x = torch.randn(4, 1, 16, 16)
    assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"in_channels": 0}, "in_channels"),
    ({"in_channels": 2, "groups": {"a": [0]}}, "unused"),
    ({"in_channels": 2, "groups": {"a": [0, 1], "b": [1]}}, "duplicated"),
    ({"in_channels": 2, "groups": {"a": [0, 2]}}, "out of range"),
    ({"in_channels": 2, "groups": {"a b": [0, 1]}}, "identifiers"),
    ({"in_channels": 1, "kernel_sizes": (4,)}, "odd"),
    ({"in_channels": 1, "dropout": 1.0}, "dropout"),
    ({"in_channels": 1, "image_size": 8}, "image_size"),
])
def test_bad_configuration(kwargs, match):
    with pytest.raises(GcsbiValueError, match=match):
        PiDocEmbedding(**kwargs)


def test_bad_inputs():
    net = PiDocEmbedding(in_channels=2, width=4, image_size=(32, 32))
    for x, match in [(torch.zeros(2, 3, 32, 32), "expected input"), (torch.zeros(2, 32, 32), "expected input"),
                     (torch.zeros(2, 2, 8, 32), "at least"), (torch.zeros(2, 2, 16, 16), "configured")]:
        with pytest.raises(GcsbiValueError, match=match):
            net(x)
    assert isinstance(net.config, PiDocConfig)


def test_mirrors_published_pidoc_layout(shared_data):
    """Default widths and the block pattern follow π-DOC's published Keras model."""
    layers = json.loads((shared_data / "pidoc" / "CNN.json").read_text())["config"]["layers"]
    filters = [lay["config"]["filters"] for lay in layers if lay["class_name"] == "Conv2D"]
    assert sum(lay["class_name"] == "MaxPooling2D" for lay in layers) == len(filters) == 4
    net = PiDocEmbedding(in_channels=1)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == filters  # 16, 32, 64, 128
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 4


def test_single_sample_in_training_mode(torch_seed):
    """sbi probes embedding nets with ``x[:1]`` in training mode; BatchNorm must cope."""
    net = PiDocEmbedding(in_channels=2, width=4, kernel_sizes=(3, 3, 3, 3, 3))  # 1x1 maps at the end
    dense_bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    before = [m.running_mean.clone() for m in dense_bn]
    assert net(torch.randn(1, 2, 16, 16)).shape == (1, 64)
    # one value per channel: normalised with (and not polluting) the running statistics
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, dense_bn, strict=True))
    net(torch.randn(4, 2, 16, 16))
    assert not torch.equal(dense_bn[-1].running_mean, before[-1])


@pytest.mark.filterwarnings("ignore:Maximum number of epochs")
def test_trains_inside_sbi(torch_seed):
    sbi_inference = pytest.importorskip("sbi.inference")
    from sbi.neural_nets import posterior_nn

    from gcsbi.testing.toy import ToyImageSimulator

    sim = ToyImageSimulator(size=16)
    theta = sim.prior.sample((64,))
    x = sim(theta, seed=0)
    net = PiDocEmbedding(in_channels=3, groups={"flux": [1], "colour": [0, 2]}, width=4, features=8)
    from gcsbi.inference.sbi_compat import MemoryTracker  # no sbi-logs/ folder in the working directory

    inference = sbi_inference.NPE(prior=sim.prior, density_estimator=posterior_nn("maf", embedding_net=net),
                                  show_progress_bars=False, tracker=MemoryTracker())
    inference.append_simulations(theta, x).train(max_num_epochs=2, training_batch_size=16,
                                                 show_train_summary=False)
    samples = inference.build_posterior().sample((20,), x=x[0], show_progress_bars=False)
    assert samples.shape == (20, 3) and torch.isfinite(samples).all()
