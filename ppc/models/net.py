"""The WSSS network: a backbone, the CAM head ``f_CAM``, the projection head ``f_proj`` and,
for the SEAM base, the pixel correlation module (PCM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import is_number, require_int
from .backbones import SMALL_DILATIONS, SmallNet, TorchvisionResNet, pixel_correlation

BASES = ("cam", "seam", "full")
TORCHVISION_BACKBONES = ("resnet50", "resnet101")
BACKBONES = ("small", "resnet38", *TORCHVISION_BACKBONES)


class WSSSNet(nn.Module):
    """Backbone + heads.

    ``forward(images [N, 3, H, W], project=True)`` returns a dict:

    * ``logits`` ``[N, K, h, w]``: ``f_CAM`` output, K = C foreground classes (K = C+1 with
      background first for ``base="full"``, the fully supervised upper bound);
    * ``scores`` ``[N, K]``: their global average (classification logits);
    * ``proj`` ``[N, proj_dim, h, w]``: ``f_proj`` = 1x1 conv + ReLU (not normalised);
      left out with ``project=False`` (training without PPC, inference), which saves the
      head's cost and changes nothing else (the dropout mask is drawn either way);
    * ``cam_rv`` ``[N, C+1, h, w]`` (``base="seam"``): the PCM-refined CAM, background first.

    Args:
        backbone: a module from :mod:`ppc.models.backbones` (or any with the same outputs).
        num_classes: C foreground classes.
        base: "cam" (CAM + classification), "seam" (adds the PCM), "full" (C+1 classes).
        proj_dim: embedding size D of ``f_proj`` (128 in the paper).
        dropout: Dropout2d before both heads (0.5 in the official ResNet-38 SEAM net).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, base: str = "cam",
                 proj_dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        if base not in BASES:
            raise ValueError(f"unknown base {base!r}; expected one of {BASES}")
        num_classes = require_int("num_classes", num_classes)
        proj_dim = require_int("proj_dim", proj_dim)
        if not is_number(dropout) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.backbone, self.base, self.num_classes = backbone, base, num_classes
        channels = backbone.out_channels
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.cam_head = nn.Conv2d(channels, num_classes + (base == "full"), 1, bias=False)
        self.proj_head = nn.Sequential(nn.Conv2d(channels, proj_dim, 1, bias=False),
                                       nn.ReLU(inplace=True))
        nn.init.xavier_uniform_(self.cam_head.weight)
        nn.init.xavier_uniform_(self.proj_head[0].weight)
        new = [self.cam_head, self.proj_head[0]]
        if base == "seam":
            s1, s2 = backbone.side_channels
            self.pcm_side1 = nn.Conv2d(s1, 64, 1, bias=False)
            self.pcm_side2 = nn.Conv2d(s2, 128, 1, bias=False)
            self.pcm_proj = nn.Conv2d(192 + 3, 192, 1, bias=False)
            nn.init.kaiming_normal_(self.pcm_side1.weight)
            nn.init.kaiming_normal_(self.pcm_side2.weight)
            nn.init.xavier_uniform_(self.pcm_proj.weight, gain=4)
            new += [self.pcm_side1, self.pcm_side2, self.pcm_proj]
        self._new_modules = new

    def forward(self, images: Tensor, project: bool = True) -> dict[str, Tensor]:
        weight = self.cam_head.weight
        if isinstance(images, Tensor) and images.is_floating_point() \
                and images.dtype != weight.dtype \
                and not torch.is_autocast_enabled(images.device.type):  # autocast casts
            raise ValueError(f"images are {images.dtype} but the network's weights are "
                             f"{weight.dtype}; convert the images with .to({weight.dtype}), "
                             "or run the network under torch.autocast")
        feats = self.backbone(images)
        x = self.dropout(feats["feat"])  # one dropout mask for both heads, as the official
        logits = self.cam_head(x)
        out = {"logits": logits, "scores": logits.mean(dim=(2, 3))}
        if project:  # f_proj is used by the PPC loss only
            out["proj"] = self.proj_head(x)
        if self.base == "seam":
            out["cam_rv"] = self._pcm(images, feats, logits)
        return out

    def _pcm(self, images: Tensor, feats: dict[str, Tensor], logits: Tensor) -> Tensor:
        h, w = logits.shape[2:]
        with torch.no_grad():  # as SEAM: the CAM enters the PCM without gradient
            cam = F.relu(logits.detach().float())
            cam = F.relu(cam - 1e-5) / (cam.flatten(2).amax(-1)[..., None, None] + 1e-5)
            top = cam.amax(dim=1, keepdim=True)
            cam = torch.cat([1 - top, cam * (cam >= top)], dim=1)  # bg first, fg argmax only

        def side(name, conv):  # float32 (autocast is off below): bf16 features are cast
            f = F.relu(conv(feats[name].detach().float()))
            return f if f.shape[2:] == (h, w) else F.interpolate(
                f, (h, w), mode="bilinear", align_corners=True)

        # in float32 even under autocast: the refined CAM feeds rankings and thresholds
        with torch.autocast(images.device.type, enabled=False):
            small = F.interpolate(images.float(), (h, w), mode="bilinear", align_corners=True)
            f = torch.cat([small, side("side1", self.pcm_side1).float(),
                           side("side2", self.pcm_side2).float()], 1)
            return pixel_correlation(cam, f, self.pcm_proj)

    def parameter_groups(self) -> list[list[nn.Parameter]]:
        """[pretrained weights, pretrained biases, new weights, new biases] (lr x1, x2, x10,
        x20 in the official recipe); frozen parameters are left out."""
        pre_w, pre_b = self.backbone.pretrained_parameters()
        seen = {id(p) for p in pre_w + pre_b}
        new_w = [m.weight for m in self._new_modules]
        new_b = [m.bias for m in self._new_modules if m.bias is not None]
        seen |= {id(p) for p in new_w + new_b}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in seen]
        # parameters of a from-scratch backbone count as new
        new_w += [p for p in rest if p.dim() > 1]
        new_b += [p for p in rest if p.dim() <= 1]
        return [pre_w, pre_b, new_w, new_b]


def build_backbone(name: str, weights: str | None = None, width: int = 32,
                   dilations: tuple[int, int] = SMALL_DILATIONS) -> nn.Module:
    """``small``, ``resnet38``, ``resnet50`` or ``resnet101``. ``weights`` is a torchvision
    weight name for resnet50/101 (local files are loaded by the caller); ``width`` and
    ``dilations`` shape the small backbone."""
    if name == "small":
        return SmallNet(width, dilations)
    if name == "resnet38":
        from .resnet38 import ResNet38

        return ResNet38()
    if name in TORCHVISION_BACKBONES:
        return TorchvisionResNet(int(name[6:]), weights)
    raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONES}")
