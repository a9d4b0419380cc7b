"""Plain loop implementations of the PPC math, written for the tests.

Slow and obvious on purpose: one Python loop per image, class, pixel; float64 scalars;
ties broken by explicit sort keys. The vectorised functions in ``ppc`` must agree with
these. Functions that produce a loss keep autograd (torch scalars), so gradients can be
compared too.
"""

from __future__ import annotations

import math

import torch

EXCLUDED = float("-inf")


def normalize_cams(cams, eps=1e-5, relu=True, pixel_mask=None):
    out = torch.zeros_like(cams, dtype=torch.float64)
    n_img, n_cls = cams.shape[:2]
    for n in range(n_img):
        for c in range(n_cls):
            x = cams[n, c].double()
            if relu:
                x = x.clamp(min=0)
            inside = [v.item() for v in x.flatten()]
            if pixel_mask is not None and pixel_mask[n].any():
                pairs = zip(x.flatten(), pixel_mask[n].flatten(), strict=True)
                inside = [v.item() for v, m in pairs if m]
            lo, hi = min(inside), max(inside)
            out[n, c] = ((x - lo) / (hi - lo + eps)).clamp(0, 1)
    return out


def pseudo_labels(cams, image_labels, bg_threshold):
    n_img, n_cls, h, w = cams.shape
    out = torch.zeros(n_img, h, w, dtype=torch.long)
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                best, best_score = 0, bg_threshold
                for c in range(n_cls):
                    if image_labels[n, c] and cams[n, c, y, x].item() > best_score:
                        best, best_score = c + 1, cams[n, c, y, x].item()
                out[n, y, x] = best
    return out


def background_confidence(cams, image_labels):
    n_img, n_cls, h, w = cams.shape
    out = torch.ones(n_img, h, w, dtype=torch.float64)
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                scores = [cams[n, c, y, x].item() for c in range(n_cls) if image_labels[n, c]]
                out[n, y, x] = 1.0 - max(scores, default=0.0)
    return out


def prototypes(emb, cams, image_labels, top_k, normalize_embeddings=False, rank_absent=True,
               pixel_mask=None, background=None):
    """Returns (vectors [P, D] float64, valid [P] bool)."""
    n_img, d, h, w = emb.shape
    n_cls = cams.shape[1]
    bg = background_confidence(cams, image_labels) if background is None else background
    vectors = torch.zeros(n_cls + 1, d, dtype=torch.float64)
    valid = torch.zeros(n_cls + 1, dtype=torch.bool)
    for p in range(n_cls + 1):
        candidates = []  # (confidence, flat index, embedding)
        for n in range(n_img):
            if p > 0 and not rank_absent and not image_labels[n, p - 1]:
                continue
            for y in range(h):
                for x in range(w):
                    if pixel_mask is not None and not pixel_mask[n, y, x]:
                        continue
                    conf = bg[n, y, x].item() if p == 0 else cams[n, p - 1, y, x].item()
                    v = emb[n, :, y, x].double()
                    if normalize_embeddings:
                        v = v / max(v.norm().item(), 1e-12)
                    candidates.append((conf, n * h * w + y * w + x, v))
        candidates.sort(key=lambda item: (-item[0], item[1]))
        chosen = candidates[:top_k]
        if not chosen:
            continue
        valid[p] = True
        weights = [conf for conf, _, _ in chosen]
        if sum(weights) == 0:
            weights = [1.0] * len(chosen)
        mean = sum(wt * v for wt, (_, _, v) in zip(weights, chosen, strict=True)) / sum(weights)
        vectors[p] = mean / max(mean.norm().item(), 1e-12)
    return vectors, valid


def _pixels(emb, labels):
    """Yield (flat index, normalised embedding with grad, label)."""
    n_img, d, h, w = emb.shape
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                v = emb[n, :, y, x].double()
                yield n * h * w + y * w + x, v / v.norm().clamp_min(1e-12), int(labels[n, y, x])


def nce(emb, labels, protos, tau, valid=None, ignore_index=255):
    protos = protos.double()
    losses = []
    for _, v, lab in _pixels(emb, labels):
        if lab == ignore_index or (valid is not None and not valid[lab]):
            continue
        logits = [(v * protos[c]).sum() / tau for c in range(protos.shape[0])
                  if valid is None or valid[c]]
        pos = (v * protos[lab]).sum() / tau
        losses.append(-torch.log(torch.exp(pos) / sum(torch.exp(z) for z in logits)))
    if not losses:
        return torch.zeros((), dtype=torch.float64)
    return sum(losses) / len(losses)


def intra(emb, labels, protos, tau, *, valid=None, mining=True, sampling=True, skip=3, keep=10,
          exclude_positive=False, random_fraction=0.5, hard_fraction=0.5, hard_upper=0.6,
          random_keys=None, ignore_index=255, balance="classes"):
    protos = protos.double()
    n_proto = protos.shape[0]
    per_pixel = {}  # flat index -> (loss, label, similarity to own prototype)
    for i, v, lab in _pixels(emb, labels):
        if lab == ignore_index or (valid is not None and not valid[lab]):
            continue
        sims = [(v * protos[c]).sum() for c in range(n_proto)]
        ok = [valid is None or bool(valid[c]) for c in range(n_proto)]
        pos = torch.exp(sims[lab] / tau)
        if mining:
            def key(c, lab=lab, ok=ok, sims=sims):
                group = 2 if (exclude_positive and c == lab) else (0 if ok[c] else 1)
                return (group, -sims[c].item() if group == 0 else 0.0, c)
            band = sorted(range(n_proto), key=key)[skip:skip + keep]
            den = pos + sum((torch.exp(sims[c] / tau) for c in band if ok[c]),
                            torch.zeros((), dtype=torch.float64))
        else:
            den = sum(torch.exp(sims[c] / tau) for c in range(n_proto) if ok[c])
        per_pixel[i] = (-torch.log(pos / den), lab, sims[lab].item())
    if not per_pixel:
        return torch.zeros((), dtype=torch.float64)
    if not sampling:
        return sum(item[0] for item in per_pixel.values()) / len(per_pixel)
    total = torch.zeros((), dtype=torch.float64)
    sizes = [sum(1 for item in per_pixel.values() if item[1] == c) for c in range(n_proto)]
    present = sum(1 for size in sizes if size > 0)
    foreground = sum(1 for size in sizes[1:] if size > 0)
    pixels = sum(sizes)
    for c in range(n_proto):  # class 0 is the background
        members = [i for i, item in per_pixel.items() if item[1] == c]
        size = len(members)
        if size < 2:
            continue
        if balance == "classes":
            share = 1 / present
        elif balance == "foreground classes":
            share = sizes[0] / pixels if c == 0 else (1 - sizes[0] / pixels) / foreground
        elif balance == "background vs foreground":
            share = 1 / present if c == 0 else foreground / present * size / (pixels - sizes[0])
        elif balance == "background alone":
            share = 1 / present if c == 0 else size / pixels
        else:  # "foreground alone"
            share = sizes[0] / pixels if c == 0 else \
                foreground / present * size / (pixels - sizes[0])
        rand = sorted(members, key=lambda i: (random_keys[i].item(), i))
        rand = rand[:math.floor(size * random_fraction)]
        hard = sorted(members, key=lambda i: (per_pixel[i][2], i))
        upper = math.floor(size * hard_upper)
        lower = max(0, upper - math.floor(size * hard_fraction))
        drawn = rand + hard[lower:upper]
        if drawn:
            total = total + share * sum(per_pixel[i][0] for i in drawn) / len(drawn)
    return total


def ppc_loss(proj_s, cams_s, proj_t, cams_t, image_labels, cfg, keys_s=None, keys_t=None,
             pixel_mask=None):
    """The whole PPC loss of both views, by the loops above."""
    from ppc.contrast import mining_band

    views = []
    for proj, cams in ((proj_s, cams_s), (proj_t, cams_t)):
        norm = normalize_cams(cams.detach(), pixel_mask=pixel_mask)
        labels = pseudo_labels(norm, image_labels, cfg.bg_threshold)
        if pixel_mask is not None:
            labels = labels.masked_fill(~pixel_mask, 255)
        background = background_confidence(
            normalize_cams(cams.detach(), relu=False, pixel_mask=pixel_mask), image_labels)
        vec, valid = prototypes(proj.detach(), norm, image_labels, cfg.top_k,
                                cfg.prototype_embeddings == "normalized",
                                cfg.prototype_classes == "all", pixel_mask, background)
        views.append((proj, labels, vec, valid))
    (ps, ys, vs, oks), (pt, yt, vt, okt) = views
    tau = cfg.tau
    out = {}
    zero = torch.zeros((), dtype=torch.float64)
    out["cross_prototype"] = 0.5 * (nce(ps, ys, vt, tau, okt) + nce(pt, yt, vs, tau, oks)) \
        if cfg.cross_prototype else zero
    out["cross_cam"] = 0.5 * (nce(ps, yt, vs, tau, oks) + nce(pt, ys, vt, tau, okt)) \
        if cfg.cross_cam else zero
    if cfg.intra:
        skip, keep = mining_band(vs.shape[0], cfg.mining_skip_fraction, cfg.mining_keep_fraction)
        kw = dict(mining=cfg.prototype_mining, sampling=cfg.pixel_sampling, skip=skip, keep=keep,
                  exclude_positive=cfg.mining_exclude_positive,
                  random_fraction=cfg.sampling_random_fraction,
                  hard_fraction=cfg.sampling_hard_fraction, hard_upper=cfg.sampling_hard_upper,
                  balance=cfg.sampling_balance)
        out["intra"] = 0.5 * (intra(ps, ys, vs, tau, valid=oks, random_keys=keys_s, **kw)
                              + intra(pt, yt, vt, tau, valid=okt, random_keys=keys_t, **kw))
    else:
        out["intra"] = zero
    out["total"] = cfg.alpha * (out["cross_prototype"] + out["cross_cam"]) + cfg.beta * out["intra"]
    return out
