"""ppc: weakly supervised semantic segmentation by pixel-to-prototype contrast.

The core math (this package's top level) works on plain tensors:

* :func:`normalize_cams`, :func:`pseudo_labels`, :func:`background_confidence` (``ppc.cams``)
* :func:`estimate_prototypes` (``ppc.prototypes``), global over ``torch.distributed`` ranks
* :func:`pixel_prototype_nce`, :func:`cross_prototype_loss`, :func:`cross_cam_loss`,
  :func:`intra_view_loss`, :func:`semi_hard_prototypes`, :func:`hard_pixel_sampling`
  (``ppc.contrast``)
* :class:`PixelToPrototypeContrast` with :class:`PPCConfig` (``ppc.loss``)
"""

from .cams import background_confidence, normalize_cams, pseudo_labels
from .contrast import (
    cross_cam_loss,
    cross_prototype_loss,
    hard_pixel_sampling,
    intra_view_loss,
    mining_band,
    pixel_prototype_nce,
    semi_hard_prototypes,
)
from .loss import PixelToPrototypeContrast, PPCConfig, ViewState
from .prototypes import Prototypes, class_confidence, estimate_prototypes

__version__ = "0.1.0"

__all__ = [
    "PPCConfig",
    "PixelToPrototypeContrast",
    "Prototypes",
    "ViewState",
    "background_confidence",
    "class_confidence",
    "cross_cam_loss",
    "cross_prototype_loss",
    "estimate_prototypes",
    "hard_pixel_sampling",
    "intra_view_loss",
    "mining_band",
    "normalize_cams",
    "pixel_prototype_nce",
    "pseudo_labels",
    "semi_hard_prototypes",
]
