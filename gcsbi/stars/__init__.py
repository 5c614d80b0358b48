"""Stellar populations: IMF, MIST isochrones, remnants, HST/JWST/Johnson photometry, fast sampling."""

from __future__ import annotations

from .filters import FILTERS, extinction_coefficients, solar_absolute_magnitudes
from .imf import IMF
from .population import Phase, StarSample, StellarPopulation
from .remnants import RemnantModel

__all__ = [
    "FILTERS",
    "IMF",
    "Phase",
    "RemnantModel",
    "StarSample",
    "StellarPopulation",
    "extinction_coefficients",
    "solar_absolute_magnitudes",
]
