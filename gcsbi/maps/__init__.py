"""Mass maps and decontaminated images from cluster images (π-DOC's other outputs).

* :mod:`~gcsbi.maps.targets`: what is learnt, computed from a simulator's truth maps;
* :mod:`~gcsbi.maps.net`: the U-Net decoder on the π-DOC encoder of an image posterior;
* :mod:`~gcsbi.maps.model`: :class:`MapModel` (maps + posterior of derived quantities), files;
* :mod:`~gcsbi.maps.train`: training on a bank created with ``--truth mass_map,clean``;
* :mod:`~gcsbi.maps.metrics`: held-out accuracy and coverage.
"""

from .model import MapModel, MapPrediction, load_map_model, save_map_model
from .targets import APERTURES, MASS_FLOOR, SUMMARY_NAMES, Photometry
from .train import MapTrainConfig, load_map_data, train_maps

__all__ = ["MapModel", "MapPrediction", "load_map_model", "save_map_model", "APERTURES", "MASS_FLOOR",
           "SUMMARY_NAMES", "Photometry", "MapTrainConfig", "load_map_data", "train_maps"]
