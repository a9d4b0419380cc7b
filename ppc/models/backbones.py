"""Backbones: a small network for CPU runs, torchvision ResNet-50/101, and ResNet-38.

Every backbone maps images ``[N, 3, H, W]`` to a dict of features: ``feat``
``[N, out_channels, H/s, W/s]`` (s = ``output_stride``) for the heads, and ``side1``,
``side2`` (``side_channels``) for SEAM's pixel correlation module. It also says which
parameters come pre-trained (``pretrained_parameters``: 1x/2x learning rates in the
official recipe) and which are not trained at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import require_int


def check_images(x: Tensor) -> None:
    """A ``ValueError`` unless ``x`` is a floating-point batch ``[N, 3, H, W]`` with H, W
    >= 1."""
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"images must have shape [N, 3, H, W], got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor (normalised images), got "
                         f"dtype {x.dtype}; convert with .float() and normalise (ppc.data "
                         "transforms do both)")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got shape {tuple(x.shape)}")


#: dilation of the small backbone's last two blocks (receptive field 65 px)
SMALL_DILATIONS = (2, 4)


class SmallNet(nn.Module):
    """Six conv-BN-ReLU blocks trained from scratch on the synthetic benchmark.

    Channels 32-64-64-128-128-128; blocks 2 and 3 stride 2, blocks 5 and 6 dilated by
    ``dilations`` (default 2 and 4; output stride 4: 64 px images give 16x16 maps, the
    paper's contrast resolution). The receptive field is 17 + 8 (d5 + d6) px: 65 px (the
    whole 64 px image) with the default, 33 px with ``dilations=(1, 1)``.
    ``side1``/``side2`` are the outputs of blocks 4 and 5.
    """

    output_stride = 4

    def __init__(self, width: int = 32, dilations: tuple[int, int] = SMALL_DILATIONS) -> None:
        super().__init__()
        width = require_int("width", width, what=" (channels of the first block)")
        if len(dilations) != 2 or any(int(d) != d or d < 1 for d in dilations):
            raise ValueError(f"dilations must be two integers >= 1 (blocks 5 and 6), got "
                             f"{tuple(dilations)}")
        w = width
        d5, d6 = (int(d) for d in dilations)
        spec = [(3, w, 1, 1), (w, 2 * w, 2, 1), (2 * w, 2 * w, 2, 1), (2 * w, 4 * w, 1, 1),
                (4 * w, 4 * w, 1, d5), (4 * w, 4 * w, 1, d6)]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=stride, padding=dil, dilation=dil, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )
            for cin, cout, stride, dil in spec
        )
        self.out_channels = 4 * w
        self.side_channels = (4 * w, 4 * w)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        check_images(x)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return {"feat": x, "side1": outs[3], "side2": outs[4]}

    def pretrained_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        return [], []  # trained from scratch: every parameter is "new"


class TorchvisionResNet(nn.Module):
    """torchvision ResNet-50/101 with output stride 8 (dilated layer3 and layer4).

    ``weights``: None (random init), a torchvision weight enum name such as
    ``"IMAGENET1K_V1"`` (downloaded by torchvision on first use, where the network allows),
    or load a local file afterwards with :func:`ppc.models.weights.load_weights` and
    ``prefix_map=TorchvisionResNet.file_prefix_map`` (a torchvision ResNet's own
    ``state_dict`` then loads: its ``conv1`` and ``bn1`` are this module's ``stem``).
    BatchNorm is frozen (eval mode, no gradient), as in the official ResNet-38 recipe.
    """

    output_stride = 8
    #: renames a torchvision checkpoint's stem (``conv1``, ``bn1``) into this module's
    file_prefix_map = {"conv1.": "stem.0.", "bn1.": "stem.1."}

    def __init__(self, depth: int = 50, weights: str | None = None) -> None:
        super().__init__()
        from torchvision.models import resnet

        builders = {50: (resnet.resnet50, resnet.ResNet50_Weights),
                    101: (resnet.resnet101, resnet.ResNet101_Weights)}
        if depth not in builders:
            raise ValueError(f"ResNet depth must be 50 or 101, got {depth}")
        build, enum = builders[depth]
        if weights is not None:
            try:
                weights = enum[weights]
            except KeyError:
                raise ValueError(
                    f"unknown torchvision weights {weights!r} for ResNet-{depth}; expected one "
                    f"of {[w.name for w in enum]}, or pass a local file as the weights path"
                ) from None
        try:
            net = build(weights=weights, replace_stride_with_dilation=[False, True, True])
        except OSError as err:  # no network (URLError), or a failed write to the cache
            raise ValueError(
                f"could not fetch torchvision weights {weights.name} for ResNet-{depth} "
                f"({err}); on a machine without internet, save them as a .pth file "
                "elsewhere and pass its path as the weights") from None
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1, net.layer2, net.layer3, net.layer4)
        self.out_channels = 2048
        self.side_channels = (512, 1024)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                for p in m.parameters():
                    p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        check_images(x)
        x = self.layer1(self.stem(x))
        side1 = self.layer2(x)
        side2 = self.layer3(side1)
        return {"feat": self.layer4(side2), "side1": side1, "side2": side2}

    def pretrained_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        trainable = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        return ([p for n, p in trainable if not n.endswith("bias")],
                [p for n, p in trainable if n.endswith("bias")])


def pixel_correlation(cam: Tensor, features: Tensor, projection: nn.Conv2d) -> Tensor:
    """SEAM's pixel correlation module (PCM): refine ``cam`` ``[N, K, h, w]`` with the
    cosine affinity of ``projection(features)`` ``[N, F, h, w]`` (ReLU'd, each column
    normalised to sum 1). Returns ``[N, K, h, w]``."""
    n, _, h, w = features.shape
    f = projection(features).flatten(2)
    f = f / (f.norm(dim=1, keepdim=True) + 1e-5)
    aff = F.relu(torch.matmul(f.transpose(1, 2), f))  # [N, hw, hw]
    aff = aff / (aff.sum(dim=1, keepdim=True) + 1e-5)
    return torch.matmul(cam.flatten(2), aff).view(n, -1, h, w)
