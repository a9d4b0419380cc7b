"""Wide ResNet-38 ("resnet38d", Wu, Shen & van den Hengel 2016) at output stride 8.

This is the backbone of PSA, SEAM and the official PPC code (``network/resnet38d.py`` in
those repositories), re-implemented with the same module and parameter names, so that a
state_dict converted from the official MXNet ImageNet weights (or saved by the official
code) loads with exact key matching (see :mod:`ppc.models.weights`).

Architecture (input ``[N, 3, H, W]``; spatial sizes are ``ceil(H / s)``, ``ceil(W / s)``):

========  =====================================  ==========  ======  ========
stage     modules                                channels    stride  dilation
========  =====================================  ==========  ======  ========
stem      ``conv1a`` (3x3 conv, no BN)           64          1       1
2         ``b2``, ``b2_1``, ``b2_2``             128         2       1
3         ``b3``, ``b3_1``, ``b3_2``             256         4       1
4         ``b4``, ``b4_1`` ... ``b4_5``          512         8       1
5         ``b5``, ``b5_1``, ``b5_2``             1024        8       2
6         ``b6`` (bottleneck, dropout 0.3)       2048        8       4
7         ``b7`` (bottleneck, dropout 0.5)       4096        8       4
head      ``bn7`` + ReLU                         4096        8
========  =====================================  ==========  ======  ========

Blocks are pre-activation residual blocks: the BN-ReLU of a block's input feeds both the
residual branch and (when the shape changes) the 1x1 projection shortcut ``conv_branch1``;
when the shape is kept the shortcut is the raw input. The side outputs used by PPC's
pixel-correlation module are these BN-ReLU'd block inputs of ``b5`` (512 channels) and ``b6``
(1024 channels), the official ``conv4`` and ``conv5``.

As in the official code, every BatchNorm layer is frozen (kept in eval mode with its affine
parameters not trained, so it only applies the ImageNet statistics) and the first stages
``conv1a``, ``b2``, ``b2_1``, ``b2_2`` are not trained (PPC / SEAM ``not_training``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResNet38", "ResBlock", "ResBlockBottleneck"]

INPUT_DOC = "[N, 3, H, W]"


class ResBlock(nn.Module):
    """Pre-activation basic block: two 3x3 convolutions (the official ``ResBlock``).

    Input ``[N, in_channels, H, W]`` ->
    output ``[N, out_channels, ceil(H / stride), ceil(W / stride)]``.

    The first convolution carries the stride and uses ``first_dilation`` (defaults to
    ``dilation``); the second uses ``dilation``. Parameters: ``bn_branch2a``,
    ``conv_branch2a``, ``bn_branch2b1``, ``conv_branch2b1`` and, if the shape changes,
    ``conv_branch1``.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        stride: int = 1,
        first_dilation: int | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if first_dilation is None:
            first_dilation = dilation
        self.same_shape = in_channels == out_channels and stride == 1

        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(
            in_channels,
            mid_channels,
            3,
            stride,
            padding=first_dilation,
            dilation=first_dilation,
            bias=False,
        )
        self.bn_branch2b1 = nn.BatchNorm2d(mid_channels)
        self.conv_branch2b1 = nn.Conv2d(
            mid_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
        )
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward_with_input_act(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(output, relu(bn_branch2a(x)))``; the second is the official ``x_bn_relu``."""
        act = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(act)
        out = self.conv_branch2a(act)
        out = self.conv_branch2b1(F.relu(self.bn_branch2b1(out)))
        return shortcut + out, act

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_input_act(x)[0]


class ResBlockBottleneck(nn.Module):
    """Pre-activation bottleneck block 1x1 -> 3x3 -> 1x1 (the official ``ResBlock_bot``).

    Input ``[N, in_channels, H, W]`` ->
    output ``[N, out_channels, ceil(H / stride), ceil(W / stride)]``.

    Widths are ``out_channels // 4`` then ``out_channels // 2`` then ``out_channels``;
    channel-wise dropout (``Dropout2d``) precedes the 3x3 and the last 1x1 convolution. As in
    the official code, the shortcut is always the 1x1 projection ``conv_branch1``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        quarter, half = out_channels // 4, out_channels // 2
        self.bn_branch2a = nn.BatchNorm2d(in_channels)
        self.conv_branch2a = nn.Conv2d(in_channels, quarter, 1, stride, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(quarter)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(
            quarter, half, 3, padding=dilation, dilation=dilation, bias=False
        )
        self.bn_branch2b2 = nn.BatchNorm2d(half)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(half, out_channels, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward_with_input_act(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(output, relu(bn_branch2a(x)))``; the second is the official ``x_bn_relu``."""
        act = F.relu(self.bn_branch2a(x))
        shortcut = self.conv_branch1(act)
        out = self.conv_branch2a(act)
        out = self.conv_branch2b1(self.dropout_2b1(F.relu(self.bn_branch2b1(out))))
        out = self.conv_branch2b2(self.dropout_2b2(F.relu(self.bn_branch2b2(out))))
        return shortcut + out, act

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_input_act(x)[0]


class ResNet38(nn.Module):
    """Wide ResNet-38 backbone, output stride 8 (official ``resnet38d.Net``).

    ``forward(x)`` takes images ``[N, 3, H, W]`` (ImageNet-normalised RGB) and returns a dict
    of feature maps, with ``h = ceil(H / 8)``, ``w = ceil(W / 8)``:

    * ``"feat"``  ``[N, 4096, h, w]``: ``relu(bn7(b7(...)))``, the official ``conv6``;
    * ``"side1"`` ``[N, 512, h, w]``: BN-ReLU'd input of ``b5``, the official ``conv4``;
    * ``"side2"`` ``[N, 1024, h, w]``: BN-ReLU'd input of ``b6``, the official ``conv5``.

    All BatchNorm layers stay in eval mode with frozen affine parameters, whatever
    :meth:`train` is called with, and :meth:`frozen_modules` (``conv1a``, ``b2``, ``b2_1``,
    ``b2_2``) are not trained. Dropout in ``b6``/``b7`` follows the train/eval mode.
    The network has 105.07 M parameters, 104.20 M of them trained (no classifier:
    ImageNet's ``linear1000`` is dropped by the official converter).
    """

    out_channels = 4096
    side_channels = (512, 1024)
    output_stride = 8

    #: Top-level modules in forward order, as named in the official state_dict.
    BACKBONE_MODULES = (
        "conv1a",
        "b2", "b2_1", "b2_2",
        "b3", "b3_1", "b3_2",
        "b4", "b4_1", "b4_2", "b4_3", "b4_4", "b4_5",
        "b5", "b5_1", "b5_2",
        "b6",
        "b7",
        "bn7",
    )  # fmt: skip
    #: Modules that are not trained (official PPC/SEAM ``not_training``).
    FROZEN_MODULES = ("conv1a", "b2", "b2_1", "b2_2")

    def __init__(self) -> None:
        super().__init__()
        self.conv1a = nn.Conv2d(3, 64, 3, padding=1, bias=False)

        self.b2 = ResBlock(64, 128, 128, stride=2)
        self.b2_1 = ResBlock(128, 128, 128)
        self.b2_2 = ResBlock(128, 128, 128)

        self.b3 = ResBlock(128, 256, 256, stride=2)
        self.b3_1 = ResBlock(256, 256, 256)
        self.b3_2 = ResBlock(256, 256, 256)

        self.b4 = ResBlock(256, 512, 512, stride=2)
        self.b4_1 = ResBlock(512, 512, 512)
        self.b4_2 = ResBlock(512, 512, 512)
        self.b4_3 = ResBlock(512, 512, 512)
        self.b4_4 = ResBlock(512, 512, 512)
        self.b4_5 = ResBlock(512, 512, 512)

        self.b5 = ResBlock(512, 512, 1024, stride=1, first_dilation=1, dilation=2)
        self.b5_1 = ResBlock(1024, 512, 1024, dilation=2)
        self.b5_2 = ResBlock(1024, 512, 1024, dilation=2)

        self.b6 = ResBlockBottleneck(1024, 2048, stride=1, dilation=4, dropout=0.3)
        self.b7 = ResBlockBottleneck(2048, 4096, dilation=4, dropout=0.5)
        self.bn7 = nn.BatchNorm2d(4096)

        self._freeze()

    # ------------------------------------------------------------------ freezing
    def frozen_modules(self) -> list[nn.Module]:
        """``[conv1a, b2, b2_1, b2_2]``: the early layers kept at their pretrained values."""
        return [getattr(self, name) for name in self.FROZEN_MODULES]

    def _batchnorms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def _freeze(self) -> None:
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        for bn in self._batchnorms():
            bn.eval()
            for p in bn.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNet38:
        """Set train/eval mode, but keep every BatchNorm in eval and the frozen layers frozen.

        Like the official code, this also re-applies ``requires_grad=False`` to the BN affine
        parameters and to :meth:`frozen_modules`, undoing an earlier ``requires_grad_(True)``.
        """
        super().train(mode)
        self._freeze()
        return self

    def pretrained_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """``(weights, biases)``: the trainable backbone parameters, for the 1x / 2x LR groups.

        Only parameters with ``requires_grad`` are returned, so the frozen BatchNorms and
        :meth:`frozen_modules` are left out; with the official layers (all convolutions
        without bias) ``biases`` is empty. Parameters of modules added by a subclass (heads)
        are not included.
        """
        weights: list[nn.Parameter] = []
        biases: list[nn.Parameter] = []
        for name in self.BACKBONE_MODULES:
            for pname, p in getattr(self, name).named_parameters():
                if p.requires_grad:
                    (biases if pname.rsplit(".", 1)[-1] == "bias" else weights).append(p)
        return weights, biases

    # ------------------------------------------------------------------ forward
    @staticmethod
    def _check_input(x) -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError(
                f"ResNet38 input must be a torch.Tensor of shape {INPUT_DOC}, "
                f"got {type(x).__name__}"
            )
        if x.dim() != 4:
            hint = " (add a batch dimension with x[None])" if x.dim() == 3 else ""
            raise ValueError(
                f"ResNet38 input must have shape {INPUT_DOC} (4 dimensions), "
                f"got shape {tuple(x.shape)}{hint}"
            )
        if x.shape[1] != 3:
            raise ValueError(
                f"ResNet38 input must have 3 (RGB) channels in dimension 1, shape {INPUT_DOC}; "
                f"got shape {tuple(x.shape)}"
                + (" (channels-last? use x.permute(0, 3, 1, 2))" if x.shape[-1] == 3 else "")
            )
        if not x.is_floating_point():
            raise ValueError(
                f"ResNet38 input must be a floating-point tensor (normalised image), "
                f"got dtype {x.dtype}"
            )
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"ResNet38 input has an empty spatial size: {tuple(x.shape)}")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Images ``[N, 3, H, W]`` -> ``{"feat": [N, 4096, h, w], "side1": [N, 512, h, w],
        "side2": [N, 1024, h, w]}`` with ``h = ceil(H/8)``, ``w = ceil(W/8)``."""
        self._check_input(x)
        x = self.conv1a(x)

        x = self.b2(x)
        x = self.b2_1(x)
        x = self.b2_2(x)

        x = self.b3(x)
        x = self.b3_1(x)
        x = self.b3_2(x)

        x = self.b4(x)
        x = self.b4_1(x)
        x = self.b4_2(x)
        x = self.b4_3(x)
        x = self.b4_4(x)
        x = self.b4_5(x)

        x, side1 = self.b5.forward_with_input_act(x)
        x = self.b5_1(x)
        x = self.b5_2(x)

        x, side2 = self.b6.forward_with_input_act(x)
        x = self.b7(x)
        feat = F.relu(self.bn7(x))
        return {"feat": feat, "side1": side1, "side2": side2}
