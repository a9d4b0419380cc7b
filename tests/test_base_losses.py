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


def test_adaptive_min_pooling_ranks_only_valid_pixels():
    g = torch.Generator().manual_seed(1)
    cams = torch.randn(3, 2, 4, 6, generator=g, dtype=torch.float64).requires_grad_(True)
    plain = adaptive_min_pooling_loss(cams)
    plain_grad, = torch.autograd.grad(plain, cams)
    every = torch.ones(3, 4, 6, dtype=torch.bool)
    masked = adaptive_min_pooling_loss(cams, every)  # all valid: the very same numbers
    assert torch.equal(masked, plain)
    assert torch.equal(torch.autograd.grad(masked, cams)[0], plain_grad)
    mask = torch.rand(3, 4, 6, generator=g) > 0.4
    mask[1] = False  # an image without a valid pixel adds nothing
    mask[2, 0, :3] = True
    top = cams.detach().amax(dim=1)
    selected = []
    for i in range(3):  # loop reference: the lowest quarter of each image's valid pixels
        values = sorted(float(v) for v in top[i][mask[i]])
        selected += values[:max(1, len(values) // 4)] if values else []
    want = sum(max(v, 0.0) for v in selected) / len(selected)
    torch.testing.assert_close(adaptive_min_pooling_loss(cams, mask).item(), want)
    assert adaptive_min_pooling_loss(cams, torch.zeros_like(mask)).item() == 0.0  # nothing


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


def _loop_seam(logits_s, rv_s, logits_t, rv_t, labels, mask, fraction=0.2):
    """SEAM's terms by loops over images, classes and pixels (views on one grid, A = id)."""
    from ppc import normalize_cams

    n, c, h, w = logits_s.shape
    valid = [[bool(mask[i, y, x]) if mask is not None else True for y in range(h)
              for x in range(w)] for i in range(n)]
    present = [[float(labels[i, j]) for j in range(c)] for i in range(n)]

    def masked_cam(logits, over=None):  # normalised CAM, absent classes zeroed, [n][c][hw]
        norm = normalize_cams(logits.double(), pixel_mask=over)
        return [[[norm[i, j].flatten()[p] * present[i][j] for p in range(h * w)]
                 for j in range(c)] for i in range(n)]

    def rvmin(rv, over=None):  # the lowest quarter of each image's valid pixels
        total, selected = 0.0, 0
        for i in range(n):
            top = [max(rv[i, 1 + j].flatten()[p] * present[i][j] for j in range(c))
                   for p in range(h * w) if over is None or valid[i][p]]
            low = sorted(top, key=float)[:max(1, len(top) // 4)]
            total = total + sum(max(v, torch.zeros(())) for v in low)
            selected += len(low)
        return total / selected

    cam_s, cam_t = masked_cam(logits_s), masked_cam(logits_t, mask)  # T's corners left out
    diffs = [abs(cam_s[i][j][p] - cam_t[i][j][p]) for i in range(n) for j in range(c)
             for p in range(h * w) if valid[i][p]]
    er = sum(diffs) / max(1, len(diffs))

    def ecr(cam_from, rv_to, over=None):
        norm_rv = normalize_cams(rv_to.double(), pixel_mask=over)
        total = 0.0
        for i in range(n):
            values = []
            for p in range(h * w):
                fg = [cam_from[i][j][p].detach() for j in range(c)]
                top = max(fg)
                target = [1 - top] + [v if v >= top else 0 * v for v in fg]
                for k in range(c + 1):
                    keep = 1.0 if k == 0 else present[i][k - 1]
                    d = abs(target[k] - norm_rv[i, k].flatten()[p] * keep)
                    values.append(d if valid[i][p] else 0 * d)
            top_k = sorted(values, key=float, reverse=True)[:max(1, int(len(values) * fraction))]
            total = total + sum(top_k) / len(top_k)
        return total / n

    return {"er": er, "ecr": ecr(cam_t, rv_s) + ecr(cam_s, rv_t, mask),
            "rvmin": 0.5 * (rvmin(rv_s) + rvmin(rv_t, mask))}


def test_seam_losses_match_loops_with_and_without_a_pixel_mask():
    g = torch.Generator().manual_seed(4)
    logits_s, logits_t = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
                          for _ in range(2))
    # mostly positive, as PCM CAMs: the min-pooling ReLU must not hide the lowest pixels
    rv_s, rv_t = (torch.rand(2, 4, 4, 4, generator=g, dtype=torch.float64) - 0.1
                  for _ in range(2))
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mask = torch.rand(2, 4, 4, generator=g) > 0.3
    mask[:, 0, 0] = False
    logits_t[:, :, 0, 0] = 10.0  # an extreme CAM where the target holds no part of S
    rv_t[:, :, 0, 0] = 10.0
    mask[:, 0, 1] = False
    rv_t[:, :, 0, 1] = -1.0  # a corner that min-pooling would pick first
    for pixel_mask in (None, mask):
        got = seam_losses(logits_s, rv_s, logits_t, rv_t, labels, align=lambda m: m,
                          size_s=(4, 4), size_t=(4, 4), pixel_mask=pixel_mask,
                          map_mask=pixel_mask)
        want = _loop_seam(logits_s, rv_s, logits_t, rv_t, labels, pixel_mask)
        for term in ("er", "ecr", "rvmin"):
            torch.testing.assert_close(got[term].double(), torch.as_tensor(want[term]).double(),
                                       atol=1e-5, rtol=1e-5, msg=f"{term}, mask {pixel_mask}")
