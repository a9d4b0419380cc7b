"""Random inputs shared by the tests."""

import torch


def random_batch(seed, n=3, c=5, d=8, h=6, w=5, p_label=0.4, dtype=torch.float32):
    """Random projections, CAMs and multi-hot image labels of one view."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(n, d, h, w, generator=g, dtype=dtype)
    cams = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    labels = (torch.rand(n, c, generator=g) < p_label).float()
    return proj, cams, labels
