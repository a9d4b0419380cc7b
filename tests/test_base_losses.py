import torch
import torch.nn.functional as F

from ppc.base_losses import (
    adaptive_min_pooling_loss,
    classification_loss,
    full_supervision_loss,
    max_onehot,
    seam_losses,
)


def test_adaptive_min_pooling_hand_example():
    cams = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]], [[0.5, -1.0], [0.0, 0.0]]]])  # [1, 2, 2, 2]
    # max over classes: [[0.5, 1], [2, 3]]; lowest 25% of 4 pixels = 1 pixel: 0.5
    assert adaptive_min_pooling_loss(cams).item() == 0.5


def test_max_onehot_keeps_background_and_the_top_class():
    x = torch.tensor([[[[0.25]], [[0.5]], [[0.75]], [[0.75]]]])  # bg, three fg with a tie
    assert max_onehot(x).flatten().tolist() == [0.25, 0.0, 0.75, 0.75]


def test_classification_and_full_supervision_losses():
    scores, labels = torch.randn(3, 4), (torch.rand(3, 4) > 0.5).float()
    torch.testing.assert_close(classification_loss(scores, labels),
                               F.multilabel_soft_margin_loss(scores, labels))
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    masks = torch.randint(0, 3, (2, 8, 8))
    masks[0] = 255
    loss = full_supervision_loss(logits, masks)
    up = F.interpolate(logits, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(loss, F.cross_entropy(up[1:], masks[1:]))


def test_seam_losses_vanish_on_identical_views_and_give_gradients():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6, requires_grad=True)
    rv = torch.rand(2, 4, 6, 6, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    same = seam_losses(logits, rv, logits, rv, labels, align=lambda m: m, size_s=(6, 6),
                       size_t=(6, 6))
    assert same["er"].item() == 0
    up = seam_losses(logits, rv, logits, rv, labels, size_s=(24, 24), size_t=(12, 12),
                     align=lambda m: torch.nn.functional.interpolate(
                         m, size=(12, 12), mode="bilinear", align_corners=False))
    assert up["er"].item() == 0 and up["rvmin"] >= 0  # compared at the images' resolution
    other = seam_losses(logits, rv, torch.randn(2, 3, 6, 6), torch.rand(2, 4, 6, 6), labels,
                        align=lambda m: m, size_s=(6, 6), size_t=(6, 6))
    assert other["er"] > 0 and other["ecr"] > 0 and other["rvmin"] >= 0
    (other["er"] + other["ecr"]).backward()
    assert logits.grad.abs().sum() > 0 and rv.grad.abs().sum() > 0
