"""Evaluation of CAM seeds and pseudo masks against ground-truth segmentation masks.

Conventions (as in :mod:`ppc.cams`):

* ``K = num_classes`` counts *every* label, background included: label 0 is background,
  foreground class ``c`` (0-based, as in the image labels) is label ``c + 1``.
* Ground-truth masks are integer ``[H, W]`` (any shape works for the confusion matrix);
  ``ignore_index`` (255) marks pixels that are not scored.
* Confusion matrices are ``int64`` ``[K, K]``: rows are ground truth, columns prediction.

CAMs on disk (:func:`save_cam_npz` / :func:`load_cam_npz`) hold, per image, the normalised
maps of the foreground classes present in the image labels only: ``cams`` ``[K_i, H, W]``
in [0, 1] and ``keys`` ``[K_i]``, their 0-based foreground class indices. A prediction at
background threshold ``t`` is the argmax over ``[t, cams...]``, ties to background
(:func:`cams_to_prediction`); :func:`threshold_curve` scores every threshold of a sweep in
one pass over the images.

Everything is vectorised over pixels (and, for the sweep, over thresholds); inputs may be
numpy arrays or torch tensors.
"""

from __future__ import annotations

import os
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ._checks import check_output, first_line, is_int, require_score

IGNORE_INDEX = 255

#: Default background thresholds of the sweep: 0.00, 0.01, ..., 0.95. The paper sweeps
#: 0.00-0.60, but optima up to 0.65 were seen on the synthetic benchmark, hence wider.
DEFAULT_THRESHOLDS = np.round(np.arange(0, 0.96, 0.01), 2)


# --------------------------------------------------------------------------- helpers


def _to_tensor(name: str, value) -> Tensor:
    """A plain ``torch.Tensor`` view of a tensor (subclasses such as ``tv_tensors.Mask``
    are unwrapped) or of a numpy array / array-like."""
    if isinstance(value, Tensor):
        return value.as_subclass(Tensor)
    try:
        array = np.ascontiguousarray(value)
        return torch.from_numpy(array)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numpy array or a torch.Tensor: {err}") from None


def _to_labels(name: str, value) -> Tensor:
    """Integer label map of any shape -> ``int64`` tensor of the same shape."""
    tensor = _to_tensor(name, value)
    integer = not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)
    if tensor.numel() and not integer:  # an empty list ([] is float64 to numpy) is fine
        raise ValueError(f"{name} must hold integer labels, got dtype {tensor.dtype}")
    return tensor.long()


def _check_num_classes(num_classes) -> int:
    if not is_int(num_classes):
        raise ValueError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 (background included), got {num_classes}")
    return int(num_classes)


def _check_ignore_index(ignore_index) -> int | None:
    if ignore_index is not None and not is_int(ignore_index):
        raise ValueError(f"ignore_index must be an int (the label of unscored pixels, "
                         f"{IGNORE_INDEX} in VOC) or None (score every pixel), got "
                         f"{ignore_index!r} ({type(ignore_index).__name__})")
    return None if ignore_index is None else int(ignore_index)


#: the largest class index a key may hold (CAM files store keys as int16)
MAX_KEY = int(np.iinfo(np.int16).max)


def _check_label_range(name: str, labels: Tensor, num_classes: int, hint: str = "") -> None:
    """ValueError naming the first value of ``labels`` outside ``[0, num_classes)``."""
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.numel():
        msg = (f"{name} has value {int(bad[0])} outside [0, {num_classes}) "
               f"({bad.numel()} such pixel(s))")
        raise ValueError(msg + (f": {hint}" if hint else ""))


def _valid_gt(gt: Tensor, num_classes: int, ignore_index: int | None) -> Tensor:
    """Boolean mask of scored pixels; other gt values must be valid labels."""
    valid = torch.ones_like(gt, dtype=torch.bool) if ignore_index is None else gt != ignore_index
    _check_label_range("gt", gt[valid], num_classes, f"labels or ignore_index={ignore_index}")
    return valid


# --------------------------------------------------------------------------- confusion / IoU


def confusion_matrix(pred, gt, num_classes: int, ignore_index: int | None = IGNORE_INDEX
                     ) -> Tensor:
    """Confusion matrix of a prediction against the ground truth.

    ``pred`` and ``gt``: integer label maps of the same (any) shape, numpy or torch.
    Returns ``int64`` ``[K, K]`` with ``K = num_classes`` (background included);
    ``conf[g, p]`` counts pixels of ground truth ``g`` predicted as ``p``. Pixels with
    ``gt == ignore_index`` are skipped. Every ``pred`` value (ignored pixels included) and
    every scored ``gt`` value must lie in ``[0, K)``, else ``ValueError`` naming the value.
    The result lives on ``pred``'s device.
    """
    k = _check_num_classes(num_classes)
    ignore_index = _check_ignore_index(ignore_index)
    pred, gt = _to_labels("pred", pred), _to_labels("gt", gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"shape of pred {tuple(pred.shape)} does not match shape of gt {tuple(gt.shape)}")
    gt = gt.to(pred.device)
    _check_label_range("pred", pred, k)
    valid = _valid_gt(gt, k, ignore_index)
    flat = gt[valid] * k + pred[valid]
    return torch.bincount(flat, minlength=k * k).reshape(k, k)


def _iou(conf: Tensor) -> Tensor:
    """``[..., K, K]`` -> ``[..., K]`` float64 IoU, NaN where gt and pred both lack a class."""
    conf = conf.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    union = conf.sum(-1) + conf.sum(-2) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.nan)


def _nanmean(values: Tensor) -> Tensor:
    """``[..., K]`` -> ``[...]`` mean over non-NaN entries (NaN when there are none)."""
    present = ~values.isnan()
    total = torch.where(present, values, 0.0).sum(-1)
    count = present.sum(-1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.nan)


def _pixel_acc(conf: Tensor) -> Tensor:
    """``[..., K, K]`` -> ``[...]`` correct / scored pixels (NaN when nothing is scored)."""
    conf = conf.double()
    total = conf.sum((-2, -1))
    correct = conf.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.where(total > 0, correct / total.clamp_min(1), torch.nan)


def iou_from_confusion(conf) -> tuple[Tensor, float]:
    """Per-class IoU and mean IoU of a ``[K, K]`` confusion matrix (rows ground truth).

    Returns ``(iou, miou)``: ``iou`` float64 ``[K]``, ``TP / (TP + FP + FN)``, NaN for a
    class absent from both the ground truth and the prediction; ``miou`` the mean over the
    non-NaN classes (a Python float, NaN if every class is absent).
    """
    conf = _to_tensor("conf", conf)
    if conf.dim() != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"conf must be a square [K, K] matrix, got shape {tuple(conf.shape)}")
    if conf.dtype == torch.bool or conf.is_complex():
        raise ValueError(f"conf must hold pixel counts (whole numbers >= 0), got dtype "
                         f"{conf.dtype}; pass the matrix of confusion_matrix")
    if conf.is_floating_point() and conf.numel():
        if not bool(torch.isfinite(conf).all()):
            raise ValueError(f"conf must hold pixel counts (whole numbers >= 0), got "
                             f"{int((~torch.isfinite(conf)).sum())} NaN or Inf entries")
        if not bool((conf == conf.round()).all()):
            bad = conf[conf != conf.round()]
            raise ValueError(f"conf must hold pixel counts (whole numbers >= 0), got the "
                             f"fractional entry {float(bad[0]):.4g}")
    if conf.numel() and bool((conf < 0).any()):
        raise ValueError("conf must hold pixel counts (>= 0), got a negative entry")
    iou = _iou(conf)
    return iou, float(_nanmean(iou))


class SegmentationMetrics:
    """Accumulates a confusion matrix over images; ``compute`` gives IoU and accuracy.

    >>> metrics = SegmentationMetrics(num_classes=21)
    >>> metrics.update(pred, gt)        # any number of times, label maps of any shape
    >>> metrics.compute()["miou"]
    """

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = _check_ignore_index(ignore_index)
        self.reset()

    def reset(self) -> None:
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, pred, gt) -> None:
        """Add one prediction / ground-truth pair (see :func:`confusion_matrix`)."""
        conf = confusion_matrix(pred, gt, self.num_classes, self.ignore_index)
        self.confusion += conf.cpu()

    def compute(self) -> dict:
        """``miou`` (float), ``iou`` (list of K floats, NaN for absent classes),
        ``pixel_acc`` (float) and ``confusion`` (a copy, int64 ``[K, K]``)."""
        iou, miou = iou_from_confusion(self.confusion)
        return {
            "miou": miou,
            "iou": iou.tolist(),
            "pixel_acc": float(_pixel_acc(self.confusion)),
            "confusion": self.confusion.clone(),
        }


# --------------------------------------------------------------------------- CAM predictions


def _check_cams(cams, keys, unit: bool = False) -> tuple[Tensor, Tensor]:
    """``cams`` ``[K_i, H, W]`` floating, finite (``unit``: in [0, 1], as the background
    thresholds need); ``keys`` ``[K_i]`` distinct ints >= 0."""
    cams, keys = _to_tensor("cams", cams), _to_labels("keys", keys)
    if cams.dim() != 3:
        raise ValueError(f"cams must have shape [K_i, H, W], got shape {tuple(cams.shape)}")
    if not cams.is_floating_point():
        raise ValueError(f"cams must be floating point, got dtype {cams.dtype}")
    if keys.dim() != 1 or keys.shape[0] != cams.shape[0]:
        raise ValueError(f"keys must have shape [K_i] with K_i = {cams.shape[0]} "
                         f"(one per CAM), got shape {tuple(keys.shape)}")
    if keys.numel():
        if int(keys.min()) < 0 or int(keys.max()) > MAX_KEY:
            raise ValueError(f"keys must be 0-based foreground class indices (in [0, "
                             f"{MAX_KEY}]), got {keys.tolist()}")
        if keys.unique().numel() != keys.numel():
            raise ValueError(f"keys must be distinct, got {keys.tolist()}")
        if not bool(torch.isfinite(cams).all()):
            raise ValueError("cams contains NaN or Inf values")
        if unit and not bool(((cams >= 0) & (cams <= 1)).all()):
            raise ValueError(
                f"cams must be normalised to [0, 1] (the background thresholds are scores "
                f"in [0, 1]), got values in [{float(cams.min()):.4g}, {float(cams.max()):.4g}]"
                "; min-max normalise each CAM first (ppc.normalize_cams)")
    return cams, keys.to(cams.device)


def _thresholds_as(cams: Tensor, thresholds) -> Tensor:
    """Thresholds rounded to the CAM dtype (as ``cams.new_full`` would), then widened to
    float64 exactly: comparing them with :func:`_top_foreground` scores is the comparison
    of the concatenated ``[threshold, cams...]`` in the CAM dtype."""
    values = torch.as_tensor(np.asarray(thresholds, dtype=np.float64), device=cams.device)
    return values.to(cams.dtype).double()


def _top_foreground(cams: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
    """Best foreground score and its label per pixel.

    ``cams`` ``[K_i, H, W]``, ``keys`` ``[K_i]`` -> ``score`` float64 ``[H, W]`` (``-inf``
    where ``K_i = 0``) and ``label`` int64 ``[H, W]`` (``key + 1`` of the first maximal
    channel; 0 where ``K_i = 0``). The maximum is taken in the CAM dtype and widened to
    float64 exactly.
    """
    if cams.shape[0] == 0:
        shape = cams.shape[1:]
        return (torch.full(shape, -torch.inf, dtype=torch.float64, device=cams.device),
                torch.zeros(shape, dtype=torch.int64, device=cams.device))
    # a running maximum over the (few) channels, vectorised over pixels: the strict ">"
    # keeps the first maximum, and it is much faster than argmax(0) on a CPU
    score = cams[0]
    index = torch.zeros(cams.shape[1:], dtype=torch.int64, device=cams.device)
    for channel in range(1, cams.shape[0]):
        better = cams[channel] > score
        score = torch.where(better, cams[channel], score)
        index.masked_fill_(better, channel)
    return score.double(), (keys + 1)[index]


def cams_to_prediction(cams, keys, bg_threshold: float) -> Tensor:
    """Label map of one image from its CAMs and a constant background score.

    ``cams`` float ``[K_i, H, W]`` (normalised, in [0, 1]) for the foreground classes
    ``keys`` (int ``[K_i]``, 0-based). Returns int64 ``[H, W]``: the argmax over
    ``[bg_threshold, cams[0], ..., cams[K_i - 1]]`` mapped to labels (0 background,
    ``keys[i] + 1`` for channel ``i``), taking the first maximum: a pixel is background
    when ``bg_threshold >= max(cams)``, and ties between CAMs go to the earlier channel.
    As in :func:`ppc.pseudo_labels`, the comparison is made in the CAM dtype (the
    threshold is rounded to it: a float32 CAM value ``0.3`` ties with threshold 0.3).
    With ``K_i = 0`` every pixel is background.
    """
    cams, keys = _check_cams(cams, keys, unit=True)
    require_score("bg_threshold", bg_threshold)
    score, label = _top_foreground(cams, keys)
    return torch.where(score > _thresholds_as(cams, bg_threshold), label, 0)


# --------------------------------------------------------------------------- threshold sweep


def _check_thresholds(thresholds) -> np.ndarray:
    values = DEFAULT_THRESHOLDS if thresholds is None else thresholds
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-D sequence, got shape {values.shape}")
    if not np.isfinite(values).all() or (values.size > 1 and not (np.diff(values) > 0).all()):
        raise ValueError(f"thresholds must be finite and strictly increasing, got {values}")
    return values.copy()


@dataclass
class ThresholdCurve:
    """mIoU of CAM predictions as a function of the background threshold.

    ``thresholds`` float64 ``[T]``; ``miou`` float64 ``[T]``; ``iou`` float64 ``[T, K]``
    (NaN for classes absent from gt and prediction); ``best_threshold`` / ``best_miou`` the
    point of highest mIoU (the lowest threshold among equals); ``skipped`` images left out
    (no ground-truth mask); ``num_images`` images scored; ``confusion`` int64 ``[T, K, K]``.
    """

    thresholds: np.ndarray
    miou: np.ndarray
    iou: np.ndarray
    best_threshold: float
    best_miou: float
    skipped: int = 0
    num_images: int = 0
    confusion: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold: columns ``threshold`` and ``miou``."""
        return pd.DataFrame({"threshold": self.thresholds, "miou": self.miou})


class ThresholdSweep:
    """Single-pass accumulator behind :func:`threshold_curve`.

    Per image only the best foreground score ``m`` and its label ``c`` are needed: at
    threshold ``t`` (rounded to the CAM dtype) a pixel is predicted ``c`` if ``m > t`` and
    background otherwise. With ``T`` sorted thresholds, ``j = #{t < m}`` (a
    ``searchsorted``) says the pixel is ``c`` at thresholds ``0..j-1`` and background at
    ``j..T-1``, so one histogram over
    ``(j, gt, c)`` of shape ``[T + 1, K, K]`` summarises the image for every threshold; the
    ``T`` confusion matrices follow by cumulative sums in :meth:`confusion`. Cost:
    O(H W (K_i + log T)) per image, plus O(T K^2) once at the end. The histogram takes
    ``(T + 1) K^2`` int64: a size beyond this machine's memory raises ``ValueError``.
    """

    def __init__(self, num_classes: int, thresholds=None,
                 ignore_index: int | None = IGNORE_INDEX) -> None:
        self.num_classes = _check_num_classes(num_classes)
        self.thresholds = _check_thresholds(thresholds)
        self.ignore_index = _check_ignore_index(ignore_index)
        t, k = len(self.thresholds), self.num_classes
        need = (t + 1) * k * k * 8  # bytes of the int64 histogram
        memory = _physical_memory()
        if memory is not None and need > memory:
            raise ValueError(f"ThresholdSweep: the histogram of num_classes={k} and {t} "
                             f"thresholds needs {need / 2**30:.3g} GiB ((T + 1) * K^2 int64), "
                             f"more than this machine's {memory / 2**30:.3g} GiB of memory; "
                             "pass the number of classes (background included, 21 for VOC) "
                             "and fewer thresholds")
        try:
            self.histogram = torch.zeros(t + 1, k, k, dtype=torch.int64)
        except (RuntimeError, MemoryError) as err:
            raise ValueError(f"ThresholdSweep: cannot allocate the histogram of num_classes="
                             f"{k} and {t} thresholds ({need / 2**30:.3g} GiB: "
                             f"{first_line(err, 120)}); pass fewer classes or thresholds") \
                from None
        self.num_images = 0
        self.skipped = 0

    def update(self, cams, keys, gt, name: str = "") -> None:
        """Add one image: ``cams`` ``[K_i, H, W]``, ``keys`` ``[K_i]``, ``gt`` ``[H, W]``.
        ``name`` (e.g. the id or file) is quoted in error messages."""
        where = f" ({name})" if name else ""
        try:
            cams, keys = _check_cams(cams, keys, unit=True)
        except ValueError as err:
            raise ValueError(f"{err}{where}") from None
        gt = _to_labels("gt", gt).to(cams.device)
        if gt.shape != cams.shape[1:]:
            raise ValueError(f"gt shape {tuple(gt.shape)} does not match the CAM size "
                             f"{tuple(cams.shape[1:])}{where}")
        k = self.num_classes
        if keys.numel() and int(keys.max()) + 1 >= k:
            raise ValueError(f"keys {keys.tolist()} need label {int(keys.max()) + 1} but "
                             f"num_classes is {k} (background included){where}")
        try:
            valid = _valid_gt(gt, k, self.ignore_index)
        except ValueError as err:
            raise ValueError(f"{err}{where}") from None
        score, label = _top_foreground(cams, keys)
        # rounding to the CAM dtype keeps the order (maybe not strict): still sorted
        thresholds = _thresholds_as(cams, self.thresholds)
        step = torch.searchsorted(thresholds, score[valid], side="left")
        flat = (step * k + gt[valid]) * k + label[valid]
        counts = torch.bincount(flat, minlength=self.histogram.numel())
        self.histogram += counts.reshape(self.histogram.shape).cpu()
        self.num_images += 1

    def confusion(self) -> Tensor:
        """int64 ``[T, K, K]``: the confusion matrix at every threshold."""
        hist = self.histogram
        # pixels whose step j > i are foreground at threshold i
        conf = hist.flip(0).cumsum(0).flip(0)[1:].clone()
        # pixels whose step j <= i are background at threshold i, whatever their label
        conf[:, :, 0] += hist.sum(2).cumsum(0)[:-1]
        return conf

    def compute(self) -> ThresholdCurve:
        conf = self.confusion()
        if int(conf[0].sum()) == 0:
            raise ValueError(f"no scored pixels in {self.num_images} image(s) "
                             f"({self.skipped} skipped): nothing to evaluate")
        iou = _iou(conf)
        miou = _nanmean(iou).numpy()
        best = int(np.nanargmax(miou))
        return ThresholdCurve(
            thresholds=self.thresholds.copy(), miou=miou, iou=iou.numpy(),
            best_threshold=float(self.thresholds[best]), best_miou=float(miou[best]),
            skipped=self.skipped, num_images=self.num_images, confusion=conf.numpy(),
        )


def _physical_memory() -> int | None:
    """Bytes of memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def threshold_curve(samples: Iterable, num_classes: int, thresholds=None,
                    ignore_index: int | None = IGNORE_INDEX) -> ThresholdCurve:
    """mIoU at every background threshold, in one pass over ``samples``.

    ``samples``: iterable of ``(cams [K_i, H, W], keys [K_i], gt [H, W])`` (see
    :func:`cams_to_prediction`); ``num_classes`` K, background included; ``thresholds``
    strictly increasing, default ``ppc.evaluate.DEFAULT_THRESHOLDS`` (0.00..0.95). The result at
    threshold ``t`` equals scoring ``cams_to_prediction(cams, keys, t)`` for every image.
    """
    sweep = ThresholdSweep(num_classes, thresholds, ignore_index)
    for n, (cams, keys, gt) in enumerate(samples):
        sweep.update(cams, keys, gt, name=f"sample {n}")
    return sweep.compute()


def _check_names(name: str, value, example: str, convert: bool = False) -> list[str]:
    """``value`` as a list of strings (``convert``: its items through ``str``, as ids), or a
    ``ValueError`` unless it is a collection of them (a single string would be read as its
    characters)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of strings ({example}), got "
                         f"{repr(value)[:80]} ({type(value).__name__})")
    values = list(value)
    if convert:
        return [str(v) for v in values]
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"{name} must be a list of strings ({example}), got the item "
                             f"{repr(v)[:80]} ({type(v).__name__})")
    return values


def per_image_report(samples: Iterable, num_classes: int, bg_threshold: float,
                     ids: Sequence[str], ignore_index: int | None = IGNORE_INDEX,
                     class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per image at a fixed background threshold.

    ``samples`` as in :func:`threshold_curve`, ``ids`` one per sample. Columns: ``id``,
    ``miou`` (mean over the classes present in the image's scored gt or prediction),
    ``pixel_acc``, then ``iou_<name>`` per class (NaN where the class is absent from both),
    with ``class_names`` the K-1 foreground names (default: ``iou_0`` .. ``iou_{K-1}``).
    """
    k = _check_num_classes(num_classes)
    ignore_index = _check_ignore_index(ignore_index)
    ids = _check_names("ids", ids, "one id per sample, e.g. dataset.ids", convert=True)
    if class_names is None:
        columns = [f"iou_{c}" for c in range(k)]
    else:
        class_names = _check_names("class_names", class_names, "e.g. dataset.class_names")
        if len(class_names) != k - 1:
            raise ValueError(f"class_names must name the {k - 1} foreground classes, "
                             f"got {len(class_names)} names")
        columns = [f"iou_{name}" for name in ("background", *class_names)]
    rows = []
    for index, (cams, keys, gt) in enumerate(samples):
        if index >= len(ids):
            raise ValueError(f"ids names {len(ids)} images, but samples has more; pass one "
                             "id per sample")
        ident = ids[index]
        keys = _to_labels("keys", keys)
        if keys.numel() and int(keys.max()) + 1 >= k:
            raise ValueError(f"sample {index}: keys {keys.tolist()} need label "
                             f"{int(keys.max()) + 1} but num_classes is {k} (background "
                             "included)")
        pred = cams_to_prediction(cams, keys, bg_threshold)
        conf = confusion_matrix(pred, gt, k, ignore_index)
        iou = _iou(conf)
        row = {"id": ident, "miou": float(_nanmean(iou)), "pixel_acc": float(_pixel_acc(conf))}
        row.update(zip(columns, iou.tolist(), strict=True))
        rows.append(row)
    if len(rows) != len(ids):
        raise ValueError(f"ids names {len(ids)} images, but samples has {len(rows)}; pass one "
                         "id per sample")
    return pd.DataFrame(rows, columns=["id", "miou", "pixel_acc", *columns])


# --------------------------------------------------------------------------- CAM files


def save_cam_npz(path, cams, keys) -> None:
    """Write one image's CAMs as a compressed npz, atomically.

    ``cams`` ``[K_i, H, W]`` finite values in [0, 1] (stored float16), ``keys`` ``[K_i]``
    distinct 0-based foreground class indices (stored int16). The file is written under a
    temporary name in the same folder (created if needed) and moved to ``path`` with
    ``os.replace``, so readers never see a partial file. Bad inputs raise ``ValueError``.
    """
    cams_t, keys_t = _to_tensor("cams", cams), _to_tensor("keys", keys)
    if cams_t.dim() != 3:
        raise ValueError(f"cams must have shape [K_i, H, W], got shape {tuple(cams_t.shape)}")
    if not cams_t.is_floating_point():
        raise ValueError(f"cams must be floating point, got dtype {cams_t.dtype}")
    if keys_t.dim() != 1 or keys_t.shape[0] != cams_t.shape[0]:
        raise ValueError(f"keys must have shape [K_i] with K_i = {cams_t.shape[0]} "
                         f"(one per CAM), got shape {tuple(keys_t.shape)}")
    if keys_t.is_floating_point() or keys_t.is_complex() or keys_t.dtype == torch.bool:
        raise ValueError(f"keys must be integers, got dtype {keys_t.dtype}")
    cams_np = cams_t.detach().cpu().numpy()
    keys_np = keys_t.detach().cpu().numpy().astype(np.int64)
    if cams_np.size and not (np.isfinite(cams_np).all()
                             and cams_np.min() >= 0 and cams_np.max() <= 1):
        raise ValueError("cams must be finite and normalised to [0, 1] "
                         "(e.g. by ppc.normalize_cams)")
    if keys_np.size and (keys_np.min() < 0 or keys_np.max() > np.iinfo(np.int16).max):
        raise ValueError(f"keys must be 0-based class indices, got {keys_np.tolist()}")
    if np.unique(keys_np).size != keys_np.size:
        raise ValueError(f"keys must be distinct, got {keys_np.tolist()}")
    path = check_output(path, "path", "/tmp/cams/img.npz")  # creates its folder
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as handle:
            np.savez_compressed(handle, cams=cams_np.astype(np.float16),
                                keys=keys_np.astype(np.int16))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_cam_npz(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a file of :func:`save_cam_npz`: ``(cams, keys)``, numpy ``[K_i, H, W]`` in the
    stored dtype (float16; thresholds are then compared in float16) and int64 ``[K_i]``.

    A missing file raises ``FileNotFoundError``; an unreadable file or one without the
    ``cams`` / ``keys`` arrays of matching shapes raises ``ValueError``; both name the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CAM file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an npz archive")
        with data:
            arrays = {name: data[name] for name in ("cams", "keys") if name in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable npz file ({err})") from None
    missing = [name for name in ("cams", "keys") if name not in arrays]
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing}; a CAM file holds "
                         "'cams' [K_i, H, W] and 'keys' [K_i]")
    cams, keys = arrays["cams"], arrays["keys"]
    if keys.size and keys.dtype.kind not in "iu":
        raise ValueError(f"{path}: keys must be integer class indices, got dtype {keys.dtype}; "
                         "write the file with ppc.evaluate.save_cam_npz")
    if cams.ndim != 3 or keys.ndim != 1 or keys.shape[0] != cams.shape[0]:
        raise ValueError(f"{path}: expected cams [K_i, H, W] and keys [K_i], got shapes "
                         f"{cams.shape} and {keys.shape}")
    return cams, keys.astype(np.int64)


def _dataset_ids(dataset) -> list[str]:
    ids = getattr(dataset, "ids", None)
    if ids is None:  # e.g. a dataset exposing only sample["id"]
        ids = [dataset[i]["id"] for i in range(len(dataset))]
    return [str(i) for i in ids]


def _check_cam_classes(path: Path, keys: np.ndarray, label, ident: str) -> None:
    """A ``ValueError`` naming ``path`` unless its ``keys`` are the classes of the image-level
    ``label`` (multi-hot ``[C]``), as :func:`ppc.infer.infer` writes them."""
    expected = torch.nonzero(torch.as_tensor(label) > 0.5).flatten().tolist()
    stored = sorted(keys.tolist())
    if stored != expected:
        raise ValueError(f"{path} holds CAMs of classes {stored}, but the dataset's image "
                         f"{ident} has the classes {expected}: the CAMs were inferred for other "
                         "data or another labelling; rerun inference for this dataset (e.g. "
                         "python -m ppc infer RUN_DIR)")


def evaluate_cam_dir(cam_dir, dataset, thresholds=None,
                     ignore_index: int | None = IGNORE_INDEX) -> ThresholdCurve:
    """Threshold sweep over the CAM files ``{cam_dir}/{id}.npz`` of every id of ``dataset``.

    ``dataset``: ``.ids`` (list of ids, index-aligned with items), ``.class_names`` (the
    K-1 foreground names) and ``dataset[i]`` a dict with ``mask`` (int ``[H, W]``,
    ``ignore_index`` = not scored) and ``has_mask``. Use it without transforms so that the
    masks keep the CAMs' size. Missing files raise one ``FileNotFoundError`` (how many, and
    the first path) before anything is read; images without a mask are skipped and counted
    in ``ThresholdCurve.skipped``. Where the samples carry their image-level ``label``
    (multi-hot ``[C]``), a file whose ``keys`` are not the label's classes (seeds of other
    data) raises ``ValueError`` naming the file.
    """
    cam_dir = Path(cam_dir)
    ids = _dataset_ids(dataset)
    paths = [cam_dir / f"{ident}.npz" for ident in ids]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(paths)} CAM file(s) missing in {cam_dir}; "
            f"first: {missing[0]}")
    sweep = ThresholdSweep(len(dataset.class_names) + 1, thresholds, ignore_index)
    for index, (ident, path) in enumerate(zip(ids, paths, strict=True)):
        sample = dataset[index]
        if str(sample.get("id", ident)) != ident:
            raise ValueError(f"dataset item {index} has id {sample['id']!r}, "
                             f"but dataset.ids[{index}] is {ident!r}")
        if not sample["has_mask"]:
            sweep.skipped += 1
            continue
        cams, keys = load_cam_npz(path)
        if "label" in sample:
            _check_cam_classes(path, keys, sample["label"], ident)
        sweep.update(cams, keys, sample["mask"], name=f"image {ident}, CAMs {path}")
    return sweep.compute()


__all__ = [
    "DEFAULT_THRESHOLDS",
    "IGNORE_INDEX",
    "SegmentationMetrics",
    "ThresholdCurve",
    "ThresholdSweep",
    "cams_to_prediction",
    "confusion_matrix",
    "evaluate_cam_dir",
    "iou_from_confusion",
    "load_cam_npz",
    "per_image_report",
    "save_cam_npz",
    "threshold_curve",
]


# --------------------------------------------------------------------------- seed coverage


def region_coverage(samples: Iterable) -> dict:
    """Where seeds are right, by region of the objects (synthetic benchmark diagnostics).

    ``samples``: ``(prediction, mask, regions)`` per image, int ``[H, W]`` each: predicted
    labels, ground-truth labels (0 background, ``c + 1``), and regions (0 background, 1
    object body, 2 discriminative part, as ``ppc.data.synthetic.PART``). Returns
    fractions: ``part_recall`` and ``body_recall`` (pixels of that region labelled with
    their object's class), ``background_false_positive`` (background pixels labelled with
    any class), ``precision`` (foreground-labelled pixels whose class is right) and
    ``recall`` (object pixels labelled right), plus the pixel counts behind them.
    """
    from .data.synthetic import BACKGROUND, BODY, PART

    counts = torch.zeros(6, dtype=torch.long)  # part ok/all, body ok/all, bg fp/all
    fg_predicted = fg_right = 0
    for index, (prediction, mask, regions) in enumerate(samples):
        prediction = _to_labels("prediction", prediction)
        mask = _to_labels("mask", mask)
        regions = _to_labels("regions", regions)
        if not prediction.shape == mask.shape == regions.shape:
            raise ValueError(f"sample {index}: prediction {tuple(prediction.shape)}, mask "
                             f"{tuple(mask.shape)} and regions {tuple(regions.shape)} must "
                             "have the same [H, W] shape")
        bad = regions[(regions != BACKGROUND) & (regions != BODY) & (regions != PART)]
        if bad.numel():
            raise ValueError(f"sample {index}: regions must be {BACKGROUND} (background), "
                             f"{BODY} (body) or {PART} (part), got {int(bad[0])}")
        scored = mask != IGNORE_INDEX  # ignored pixels count nowhere
        right = prediction == mask
        for slot, region in ((0, PART), (2, BODY)):
            inside = (regions == region) & scored
            counts[slot] += (right & inside).sum()
            counts[slot + 1] += inside.sum()
        background = (regions == BACKGROUND) & scored
        counts[4] += ((prediction > 0) & background).sum()
        counts[5] += background.sum()
        fg_predicted += int(((prediction > 0) & scored).sum())
        fg_right += int(((prediction > 0) & right).sum())
    part_ok, part, body_ok, body, bg_fp, bg = (int(v) for v in counts)

    def ratio(a, b):
        return a / b if b else float("nan")

    return {"part_recall": ratio(part_ok, part), "body_recall": ratio(body_ok, body),
            "recall": ratio(part_ok + body_ok, part + body),
            "precision": ratio(fg_right, fg_predicted),
            "background_false_positive": ratio(bg_fp, bg),
            "part_pixels": part, "body_pixels": body, "background_pixels": bg}


#: the parts of :func:`weight_by_region`, in its order: (true region, pseudo label)
WEIGHT_REGIONS = (
    "background labelled background", "background labelled an object",
    "part labelled its class", "part labelled background",
    "body labelled its class", "body labelled background",
    "object labelled another class",
)


def weight_by_region(samples: Iterable) -> dict:
    """Where a per-pixel loss weighting puts its weight (synthetic benchmark diagnostics).

    ``samples``: ``(weights, pseudo, mask, regions)`` per batch: ``weights`` ``[N, h, w]``
    (non-negative, e.g. :func:`ppc.hard_pixel_sampling`'s), the pseudo labels ``pseudo``
    ``[N, h, w]`` the loss used (0 background, ``c + 1``), and the ground truth ``mask`` and
    ``regions`` ``[N, H, W]`` as in :func:`region_coverage`, at a multiple of ``h, w``
    (each loss pixel's weight is spread evenly over the image pixels it covers). Returns
    the share of the total weight in each of :data:`WEIGHT_REGIONS` (summing to 1; pixels
    whose mask is ignored, 255, are left out), keyed by those names.
    """
    from .data.synthetic import BACKGROUND, BODY, PART

    totals = torch.zeros(len(WEIGHT_REGIONS), dtype=torch.float64)
    for index, (weights, pseudo, mask, regions) in enumerate(samples):
        weights = _to_tensor("weights", weights).double()
        if not bool(torch.isfinite(weights).all()):
            raise ValueError(f"batch {index}: weights contain NaN or Inf values")
        pseudo, mask, regions = (_to_labels(name, value) for name, value in
                                 (("pseudo", pseudo), ("mask", mask), ("regions", regions)))
        if weights.dim() != 3 or weights.shape != pseudo.shape:
            raise ValueError(f"batch {index}: weights {tuple(weights.shape)} and pseudo "
                             f"{tuple(pseudo.shape)} must both be [N, h, w]")
        if mask.shape != regions.shape or mask.dim() != 3 or mask.shape[0] != weights.shape[0]:
            raise ValueError(f"batch {index}: mask {tuple(mask.shape)} and regions "
                             f"{tuple(regions.shape)} must both be [N, H, W] with N = "
                             f"{weights.shape[0]}")
        (h, w), (big_h, big_w) = weights.shape[1:], mask.shape[1:]
        if h == 0 or w == 0:
            raise ValueError(f"batch {index}: weights {tuple(weights.shape)} must be [N, h, w] "
                             "with h, w >= 1 (one weight per loss pixel)")
        if big_h % h or big_w % w:
            raise ValueError(f"batch {index}: the masks' {big_h}x{big_w} must be a multiple "
                             f"of the weights' {h}x{w}")
        if bool((weights < 0).any()):
            raise ValueError(f"batch {index}: weights must be non-negative")
        scale_h, scale_w = big_h // h, big_w // w
        spread = (weights / (scale_h * scale_w)).repeat_interleave(scale_h, 1)
        spread = spread.repeat_interleave(scale_w, 2)
        label = pseudo.repeat_interleave(scale_h, 1).repeat_interleave(scale_w, 2)
        scored = mask != IGNORE_INDEX
        on_object = (regions == PART) | (regions == BODY)
        parts = (
            (regions == BACKGROUND) & (label == 0),
            (regions == BACKGROUND) & (label > 0),
            (regions == PART) & (label == mask) & (label > 0),
            (regions == PART) & (label == 0),
            (regions == BODY) & (label == mask) & (label > 0),
            (regions == BODY) & (label == 0),
            on_object & (label > 0) & (label != mask),
        )
        totals += torch.stack([(spread * (part & scored)).sum() for part in parts])
    share = totals / totals.sum() if totals.sum() > 0 else totals.fill_(float("nan"))
    return dict(zip(WEIGHT_REGIONS, share.tolist(), strict=True))


def centroid_offsets(samples: Iterable) -> dict:
    """How far CAMs sit from their objects: CAM centroid minus object centroid (pixels).

    ``samples``: ``(cams, keys, mask)`` per image as in :func:`cams_to_prediction`, with
    the ground-truth ``mask`` ``[H, W]``. For every class present in both the keys and the
    mask (and with some CAM mass), the centroid of the CAM (weighted by its values) minus
    the centroid of the class's pixels, in rows (``y``, positive: below) and columns
    (``x``, positive: right of the object). Returns the means over those (image, class)
    pairs, ``offset_y`` / ``offset_x``, their standard errors (``*_sem``) and ``pairs``.
    A network trained from image labels only is free to put its evidence beside the
    object (the classification loss does not see where); this measures whether it did so
    in one direction. Signed offsets of opposite directions cancel in the means, so a
    mean near 0 does not say each CAM sits on its object: the spread over pairs is
    ``*_sem * sqrt(pairs)``.
    """
    ys, xs = [], []
    for cams, keys, mask in samples:
        cams, keys = _check_cams(cams, keys)
        mask = _to_labels("mask", mask)
        if cams.shape[1:] != mask.shape:
            raise ValueError(f"cams {tuple(cams.shape)} and mask {tuple(mask.shape)} must "
                             "share [H, W]")
        if not len(keys):
            continue
        weights = cams.double().clamp_min(0)  # [K, H, W]
        objects = (mask[None] == (keys[:, None, None] + 1)).double()
        rows = torch.arange(mask.shape[0], dtype=torch.float64)[:, None].expand(mask.shape)
        cols = torch.arange(mask.shape[1], dtype=torch.float64)[None, :].expand(mask.shape)
        mass, area = weights.sum((1, 2)), objects.sum((1, 2))
        ok = (mass > 0) & (area > 0)
        for grid, out in ((rows, ys), (cols, xs)):
            cam_c = (weights * grid).sum((1, 2)) / mass.clamp_min(1e-12)
            obj_c = (objects * grid).sum((1, 2)) / area.clamp_min(1)
            out.append((cam_c - obj_c)[ok])
    y = torch.cat(ys) if ys else torch.zeros(0, dtype=torch.float64)
    x = torch.cat(xs) if xs else torch.zeros(0, dtype=torch.float64)

    def sem(v):
        return float(v.std() / len(v) ** 0.5) if len(v) > 1 else float("nan")

    return {"offset_y": float(y.mean()) if len(y) else float("nan"),
            "offset_x": float(x.mean()) if len(x) else float("nan"),
            "offset_y_sem": sem(y), "offset_x_sem": sem(x), "pairs": len(y)}
