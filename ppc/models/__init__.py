"""Networks: backbones, the CAM and projection heads, SEAM's PCM, weight loading."""

from .backbones import SmallNet, TorchvisionResNet, pixel_correlation
from .net import BACKBONES, BASES, WSSSNet, build_backbone

__all__ = [
    "BACKBONES",
    "BASES",
    "SmallNet",
    "TorchvisionResNet",
    "WSSSNet",
    "build_backbone",
    "pixel_correlation",
]
