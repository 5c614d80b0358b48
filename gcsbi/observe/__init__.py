"""gcsbi.observe: mock HST/JWST images of star clusters.

snapshot arrays -> :class:`ObservationModel` (projection, photometry, PSF
rendering, background, noise) -> :class:`Observation` -> :func:`transform`
(network inputs). Specs: :mod:`gcsbi.spec`.
"""

from __future__ import annotations

from .background import BackgroundBank, FieldBackground, luminosity_function_sampler, stellar_population_sampler
from .instrument import distance_modulus, magnitudes_to_counts, project_positions, sky_to_pixels
from .noise import add_noise
from .observe import Observation, ObservationModel, get_observation_model, transform
from .psf import SubpixelKernel, build_subpixel_kernel, exact_profile, file_psf, load_psf_image, optical_psf
from .render import Renderer, mass_map, render_exact
from .transforms import channel_names, log_flux, noise_sigma, pixel_cmd, sky_levels

__all__ = [
    "Observation",
    "ObservationModel",
    "get_observation_model",
    "transform",
    "channel_names",
    "log_flux",
    "pixel_cmd",
    "noise_sigma",
    "sky_levels",
    "Renderer",
    "render_exact",
    "mass_map",
    "SubpixelKernel",
    "build_subpixel_kernel",
    "optical_psf",
    "file_psf",
    "load_psf_image",
    "exact_profile",
    "add_noise",
    "BackgroundBank",
    "FieldBackground",
    "stellar_population_sampler",
    "luminosity_function_sampler",
    "distance_modulus",
    "project_positions",
    "sky_to_pixels",
    "magnitudes_to_counts",
]
