"""Input transforms: finite float32 for any finite input, same transform for real data."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi.errors import GcsbiValueError
from gcsbi.observe import channel_names, noise_sigma, pixel_cmd, sky_levels, transform
from gcsbi.spec.simulator_spec import load_simulator_spec


@pytest.fixture(scope="module")
def spec():
    return load_simulator_spec("hst-phat")


@pytest.mark.parametrize("case", ["zeros", "sky_only", "single_bright", "negative", "huge", "tiny_stamp"])
def test_extremes_finite(spec, case):
    sky = sky_levels(spec)[:, None, None]
    img = {
        "zeros": np.zeros((3, 16, 16)),
        "sky_only": np.broadcast_to(sky, (3, 16, 16)),
        "negative": np.full((3, 16, 16), -1e6),
        "huge": np.full((3, 16, 16), 1e35),
        "tiny_stamp": np.ones((3, 1, 1)),
    }.get(case)
    if case == "single_bright":
        img = np.broadcast_to(sky, (3, 16, 16)).copy()
        img[:, 8, 8] += 1e12
    x = transform(img, spec)
    assert x.dtype == np.float32 and x.shape == (len(channel_names(spec)),) + img.shape[1:]
    assert np.all(np.isfinite(x))


def test_channels_values(spec):
    rng = np.random.default_rng(0)
    sky = sky_levels(spec)
    img = sky[:, None, None] + rng.uniform(0, 1e4, (3, 32, 32))
    x = transform(img, spec)
    sig = noise_sigma(spec)
    np.testing.assert_allclose(x[0], np.arcsinh((img[0] - sky[0]) / sig[0]), rtol=1e-5)
    np.testing.assert_allclose(x[3], x[0] - x[1], rtol=1e-5, atol=1e-5)  # colour F336W - F475W
    hist = pixel_cmd(img, spec)
    assert hist.shape == (32, 32) and hist.sum() == pytest.approx(1.0)  # every pixel positive in all bands
    assert x[-1].mean() == pytest.approx(hist.mean(), rel=1e-5)  # upsampled CMD channel
    # same transform for 'real' data given its own sky
    x2 = transform(img + 5.0, spec, sky=sky + 5.0)
    np.testing.assert_allclose(x2, x, rtol=1e-5, atol=1e-6)


def test_bad_images(spec):
    with pytest.raises(GcsbiValueError):
        transform(np.zeros((2, 8, 8)), spec)
    bad = np.zeros((3, 8, 8))
    bad[0, 0, 0] = np.nan
    with pytest.raises(GcsbiValueError, match="NaN"):
        transform(bad, spec)
