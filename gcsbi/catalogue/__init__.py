"""Real M31 clusters: catalogue mode (PHAT photometry + size -> posterior) and real HST cutouts.

Catalogue mode (Johnson et al. 2015 PHAT cluster catalogue, all six bands F275W - F160W):

* :mod:`.photometry` - aperture photometry with a local background annulus, curves of growth, Reff;
* :mod:`.model` - the catalogue observation model (Rap, catalogue-level errors, upper limits,
  missing bands, rounding) and the network features (2 per band + Reff + Rap);
* :mod:`.simulator` - :class:`ProfileSimulator` (images -> curves of growth, banked) and
  :class:`CatalogueSimulator` (theta -> catalogue features; ``sbi``/``gcsbi.bank`` contract);
* :mod:`.catalogues` - PHAT reader, name resolution (``"B165"`` -> APID 166), Caldwell+2011 match;
* :mod:`.inference` - the shipped posterior, ``gcsbi.infer`` hook, batch mode;
* :mod:`.priors` - prior choices at inference time (old clusters only, a reddening prior);
* :mod:`gcsbi.observe.hst_images` - image mode for real data: HST ``_drz``/``_drc`` cutouts on the simulator's grid.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "aperture_photometry": ".photometry", "curves_of_growth": ".photometry", "half_light_radius": ".photometry",
    "CatalogueModel": ".model", "features": ".model", "FEATURES": ".model", "BANDS": ".model",
    "feature_names": ".model", "PriorChoice": ".priors", "prior_choice": ".priors",
    "ProfileSimulator": ".simulator", "CatalogueSimulator": ".simulator", "split_profiles": ".simulator",
    "read_phat_catalogue": ".catalogues", "resolve_cluster": ".catalogues", "catalogue_values": ".catalogues",
    "observation_from_row": ".catalogues", "caldwell_matched": ".catalogues", "data_dir": ".catalogues",
    "SHIPPED_CATALOGUE_POSTERIOR": ".inference", "load_catalogue_posterior": ".inference",
    "infer_cluster": ".inference", "infer_catalogue": ".inference", "range_check": ".inference",
    "read_hst_image": "gcsbi.observe.hst_images", "read_hst_cutouts": "gcsbi.observe.hst_images",
    "read_hst_images": "gcsbi.observe.hst_images", "observation_from_cutouts": "gcsbi.observe.hst_images",
    "HSTImage": "gcsbi.observe.hst_images",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gcsbi.catalogue' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
