"""The sbi internals gcsbi relies on (gcsbi/inference/sbi_compat.py) were checked for one sbi version."""

from __future__ import annotations

import sbi
import torch
from torch import nn

from gcsbi.inference.sbi_compat import SBI_VERSION, MemoryTracker, split_standardization


def test_sbi_version_is_the_one_sbi_compat_was_written_for():
    assert sbi.__version__ == SBI_VERSION, (
        f"sbi {sbi.__version__} is installed, but gcsbi/inference/sbi_compat.py was checked against sbi "
        f"{SBI_VERSION}: re-check every function there against the new sbi source, then update SBI_VERSION")


def test_memory_tracker_and_standardization_layout():
    from sbi.utils.sbiutils import standardizing_net

    from gcsbi.nets.standardize import ChannelStandardize

    tracker = MemoryTracker()
    tracker.log_metrics({"loss": 1.0})
    tracker.log_metric("loss", 2, step=1)
    assert tracker.metrics == {"loss": [1.0, 2.0]} and tracker.log_dir is None
    x = torch.randn(20, 2, 4, 4)
    net = nn.Flatten()
    assert split_standardization(nn.Sequential(standardizing_net(x), net)) == ("independent", net)
    assert split_standardization(nn.Sequential(standardizing_net(x, structured_dims=True), net)) == ("structured", net)
    assert split_standardization(nn.Sequential(ChannelStandardize.from_data(x), net)) == ("channel", net)
    assert split_standardization(net) == ("none", net)
