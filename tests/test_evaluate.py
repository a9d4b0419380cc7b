"""ppc.evaluate against hand-computed values and plain loop implementations."""

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch

from ppc import pseudo_labels
from ppc.evaluate import (
    centroid_offsets,
    region_coverage,
    weight_by_region,
    WEIGHT_REGIONS,
    DEFAULT_THRESHOLDS,
    SegmentationMetrics,
    ThresholdCurve,
    ThresholdSweep,
    cams_to_prediction,
    confusion_matrix,
    evaluate_cam_dir,
    iou_from_confusion,
    load_cam_npz,
    per_image_report,
    save_cam_npz,
    threshold_curve,
)

# --------------------------------------------------------------------------- loop references


def loop_confusion(pred, gt, k, ignore=255):
    conf = np.zeros((k, k), dtype=np.int64)
    pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
    for p, g in zip(pred, gt, strict=True):
        if g != ignore:
            conf[g, p] += 1
    return conf


def loop_prediction(cams, keys, t):
    """argmax over [t, cams...] in the CAMs' dtype, first maximum wins."""
    cams = np.asarray(cams)
    t = float(cams.dtype.type(t))  # the threshold as a CAM value
    _, h, w = cams.shape
    pred = np.zeros((h, w), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            best_score, best_label = t, 0  # background is the first candidate
            for i, key in enumerate(keys):
                if float(cams[i, y, x]) > best_score:  # strict: ties stay with the earlier one
                    best_score, best_label = cams[i, y, x], int(key) + 1
            pred[y, x] = best_label
    return pred


def random_image(rng, k, h, w, n_keys=None, quantise=True, ignore_frac=0.1):
    """CAMs of a random subset of the k-1 foreground classes, and a random gt."""
    n_keys = rng.integers(0, k) if n_keys is None else n_keys
    keys = rng.permutation(k - 1)[:n_keys]
    cams = rng.random((n_keys, h, w))
    if quantise:  # values on the threshold grid, so ties with thresholds happen
        cams = np.round(cams * 20) / 20
    gt = rng.integers(0, k, (h, w))
    gt[rng.random((h, w)) < ignore_frac] = 255
    return cams.astype(np.float32), keys, gt


# --------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_hand_example():
    gt = np.array([[0, 0, 1, 1],
                   [2, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [2, 0, 1, 2]])
    expected = torch.tensor([
        [1, 1, 0],   # gt 0: one right, one predicted 1
        [0, 2, 0],   # gt 1: both right
        [1, 1, 1],   # gt 2: one each; the ignored pixel is not counted
    ])
    conf = confusion_matrix(pred, gt, 3)
    assert conf.dtype == torch.int64 and conf.shape == (3, 3)
    assert torch.equal(conf, expected)
    # tensors, other integer dtypes, other shapes
    conf_t = confusion_matrix(torch.from_numpy(pred).to(torch.uint8).reshape(4, 2),
                              torch.from_numpy(gt).reshape(4, 2), 3)
    assert torch.equal(conf_t, expected)
    assert torch.equal(confusion_matrix(pred.ravel(), gt.astype(np.uint8).ravel(), 3), expected)


@pytest.mark.parametrize("seed", range(4))
def test_confusion_matrix_matches_double_loop(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    shape = tuple(int(s) for s in rng.integers(1, 9, size=int(rng.integers(1, 4))))
    pred = rng.integers(0, k, shape)
    gt = rng.integers(0, k, shape)
    gt[rng.random(shape) < 0.2] = 255
    np.testing.assert_array_equal(confusion_matrix(pred, gt, k).numpy(),
                                  loop_confusion(pred, gt, k))


def test_confusion_matrix_ignore_handling():
    gt = np.full((3, 3), 255)
    pred = np.zeros((3, 3), dtype=np.int64)
    assert confusion_matrix(pred, gt, 2).sum() == 0
    # a custom ignore value; 255 is then an ordinary (out of range) label
    gt = np.array([0, 1, 7, 7])
    pred = np.array([0, 0, 1, 1])
    assert confusion_matrix(pred, gt, 2, ignore_index=7).tolist() == [[1, 0], [1, 0]]
    with pytest.raises(ValueError, match="gt has value 7"):
        confusion_matrix(pred, gt, 2)
    # no ignore value: 255 is an ordinary label, and out of range here
    gt = np.array([0, 1, 255])
    with pytest.raises(ValueError, match="gt has value 255"):
        confusion_matrix(np.array([0, 0, 1]), gt, 2, ignore_index=None)
    assert confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2,
                            ignore_index=None).tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError, match="gt has value 255"):
        threshold_curve([(np.ones((1, 1, 3)), [0], gt[None])], 2, ignore_index=None)


def test_confusion_matrix_bad_inputs():
    gt = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="pred has value 3"):
        confusion_matrix(np.array([[0, 3], [1, 0]]), gt, 3)
    with pytest.raises(ValueError, match="pred has value -1"):
        confusion_matrix(np.array([[0, -1], [1, 0]]), gt, 3)
    with pytest.raises(ValueError, match="pred has value 255"):  # even at ignored pixels
        confusion_matrix(np.array([[0, 255], [1, 0]]), np.full((2, 2), 255), 3)
    with pytest.raises(ValueError, match="shape of pred"):
        confusion_matrix(np.zeros((2, 3), dtype=np.int64), gt, 3)
    with pytest.raises(ValueError, match="pred must hold integer"):
        confusion_matrix(np.zeros((2, 2)), gt, 3)


# --------------------------------------------------------------------------- IoU


def test_iou_hand_values_with_absent_class():
    # classes 0..3; class 3 never appears in gt nor prediction
    conf = torch.tensor([
        [4, 1, 0, 0],
        [2, 3, 1, 0],
        [0, 0, 5, 0],
        [0, 0, 0, 0],
    ])
    iou, miou = iou_from_confusion(conf)
    expected = [4 / (5 + 6 - 4), 3 / (6 + 4 - 3), 5 / (5 + 6 - 5)]
    assert iou.dtype == torch.float64 and iou.shape == (4,)
    np.testing.assert_allclose(iou[:3].numpy(), expected)
    assert math.isnan(iou[3])
    assert miou == pytest.approx(sum(expected) / 3)
    # a class present only in the prediction counts, with IoU 0
    conf2 = torch.tensor([[2, 1], [0, 0]])
    iou2, miou2 = iou_from_confusion(conf2)
    assert iou2.tolist() == [2 / 3, 0.0] and miou2 == pytest.approx(1 / 3)
    _, empty = iou_from_confusion(torch.zeros(3, 3, dtype=torch.int64))
    assert math.isnan(empty)
    with pytest.raises(ValueError, match="conf"):
        iou_from_confusion(torch.zeros(2, 3))


def test_segmentation_metrics_accumulates():
    rng = np.random.default_rng(1)
    metrics = SegmentationMetrics(4)
    total = np.zeros((4, 4), dtype=np.int64)
    for h, w in [(5, 7), (3, 3), (8, 2)]:
        pred, gt = rng.integers(0, 3, (h, w)), rng.integers(0, 3, (h, w))
        gt[0, 0] = 255
        metrics.update(torch.from_numpy(pred), gt)
        total += loop_confusion(pred, gt, 4)
    out = metrics.compute()
    assert set(out) == {"miou", "iou", "pixel_acc", "confusion"}
    np.testing.assert_array_equal(out["confusion"].numpy(), total)
    assert isinstance(out["iou"], list) and len(out["iou"]) == 4 and math.isnan(out["iou"][3])
    assert out["miou"] == pytest.approx(np.nanmean(out["iou"]))
    assert out["pixel_acc"] == pytest.approx(np.trace(total) / total.sum())


# --------------------------------------------------------------------------- CAM predictions


def test_cams_to_prediction_hand_example_with_ties():
    cams = np.array([
        [[0.5, 0.2, 0.3, 0.9]],
        [[0.5, 0.7, 0.1, 0.9]],
    ], dtype=np.float32)
    keys = np.array([4, 1])
    # pixel 0: 0.5 vs bg 0.3 -> first CAM wins the tie (key 4 -> label 5)
    # pixel 1: second CAM; pixel 2: 0.3 == bg -> background; pixel 3: tie -> first CAM
    pred = cams_to_prediction(cams, keys, 0.3)
    assert pred.dtype == torch.int64 and pred.shape == (1, 4)
    assert pred.tolist() == [[5, 2, 0, 5]]
    assert cams_to_prediction(cams, keys, 0.9).tolist() == [[0, 0, 0, 0]]  # bg wins ties


@pytest.mark.parametrize("seed", range(3))
def test_cams_to_prediction_matches_loop(seed):
    rng = np.random.default_rng(seed)
    for n_keys in (0, 1, 3):
        cams, keys, _ = random_image(rng, 6, 5, 4, n_keys=n_keys)
        for t in (0.0, 0.25, 0.5, 1.0):
            np.testing.assert_array_equal(cams_to_prediction(cams, keys, t).numpy(),
                                          loop_prediction(cams, keys, t))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cams_to_prediction_agrees_with_pseudo_labels(dtype):
    """The seeds scored here are the training pseudo labels (keys in class order)."""
    rng = np.random.default_rng(5)
    full = torch.from_numpy(np.round(rng.random((2, 6, 5, 7)) * 10) / 10).to(dtype)
    labels = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]])
    for t in (0.0, 0.3, 0.7):
        expected = pseudo_labels(full, labels, t)
        for n in range(2):
            keys = labels[n].nonzero().flatten()
            pred = cams_to_prediction(full[n, keys], keys, t)
            assert torch.equal(pred, expected[n])


def test_cams_to_prediction_no_keys_and_float16():
    pred = cams_to_prediction(np.zeros((0, 3, 2), dtype=np.float32), np.zeros(0, np.int64), 0.0)
    assert pred.tolist() == [[0, 0]] * 3
    # compared in the CAM dtype: fp16(0.07) = 0.07000732 ties with threshold 0.07
    cams = torch.tensor([[[0.07, 0.0701]]], dtype=torch.float16)
    assert cams_to_prediction(cams, [0], 0.07).tolist() == [[0, 1]]
    assert cams_to_prediction(cams.float(), [0], 0.07).tolist() == [[1, 1]]
    assert cams_to_prediction(cams.numpy(), [0], 0.07).tolist() == [[0, 1]]


def test_cams_to_prediction_bad_inputs():
    with pytest.raises(ValueError, match="cams must have shape"):
        cams_to_prediction(np.zeros((3, 3)), [0], 0.5)
    with pytest.raises(ValueError, match="keys must have shape"):
        cams_to_prediction(np.zeros((2, 3, 3)), [0], 0.5)
    with pytest.raises(ValueError, match="keys must be distinct"):
        cams_to_prediction(np.zeros((2, 3, 3)), [1, 1], 0.5)
    with pytest.raises(ValueError, match="cams contains NaN"):
        cams_to_prediction(np.full((1, 3, 3), np.nan), [1], 0.5)
    for threshold in (1.5, float("nan"), None):
        with pytest.raises(ValueError, match=r"bg_threshold must be a number in \[0, 1\]"):
            cams_to_prediction(np.zeros((1, 3, 3)), [1], threshold)
    with pytest.raises(ValueError, match="conf must hold pixel counts"):
        iou_from_confusion([[5, -2], [1, 3]])
    with pytest.raises(ValueError, match=r"sample 0: keys \[5\] need label 6 but num_classes "
                                         r"is 4"):
        per_image_report([(np.zeros((1, 2, 2)), [5], np.zeros((2, 2), int))], 4, 0.5, ["a"])
    with pytest.raises(ValueError, match=r"cams must be normalised to \[0, 1\].*\[5, 105\]"):
        cams_to_prediction(np.linspace(5, 105, 9).reshape(1, 3, 3), [1], 0.5)
    sweep = ThresholdSweep(3)
    with pytest.raises(ValueError, match=r"got values in \[-1, -1\].* \(image a\)"):
        sweep.update(-np.ones((1, 3, 3)), [1], np.zeros((3, 3), np.int64), name="image a")


# --------------------------------------------------------------------------- threshold sweep


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_threshold_curve_matches_per_threshold_loop(dtype):
    rng = np.random.default_rng(0)
    k = 5
    samples = [random_image(rng, k, h, w) for h, w in [(6, 5), (4, 9), (7, 7), (3, 2), (5, 5)]]
    samples.append(random_image(rng, k, 4, 4, n_keys=0))  # an image without keys
    samples = [(cams.astype(dtype), keys, gt) for cams, keys, gt in samples]
    thresholds = np.round(np.arange(0, 1.01, 0.05), 2)
    curve = threshold_curve(iter(samples), k, thresholds)  # a one-shot iterator is enough
    assert isinstance(curve, ThresholdCurve)
    assert curve.iou.shape == (len(thresholds), k) and curve.miou.shape == (len(thresholds),)
    assert curve.num_images == len(samples) and curve.skipped == 0
    for j, t in enumerate(thresholds):
        metrics = SegmentationMetrics(k)
        for cams, keys, gt in samples:
            metrics.update(loop_prediction(cams, keys, t), gt)
        expected = metrics.compute()
        np.testing.assert_array_equal(curve.confusion[j], expected["confusion"].numpy())
        np.testing.assert_allclose(curve.iou[j], expected["iou"], equal_nan=True)
        assert curve.miou[j] == pytest.approx(expected["miou"])
    best = int(np.argmax(curve.miou))
    assert curve.best_threshold == thresholds[best]
    assert curve.best_miou == curve.miou.max()
    frame = curve.to_frame()
    assert list(frame.columns) == ["threshold", "miou"] and len(frame) == len(thresholds)
    np.testing.assert_array_equal(frame["miou"].to_numpy(), curve.miou)


def test_threshold_curve_best_point_and_defaults():
    # one foreground class (label 1) on the left half; its CAM is 0.6 there and 0.3 on the
    # right, so any threshold in [0.3, 0.6) is perfect and the lowest of them is reported
    gt = np.array([[1, 1, 0, 0]] * 2)
    cams = np.array([[[0.6, 0.6, 0.3, 0.3]] * 2], dtype=np.float32)
    curve = threshold_curve([(cams, [0], gt)], 2)
    np.testing.assert_array_equal(curve.thresholds, DEFAULT_THRESHOLDS)
    assert curve.thresholds[0] == 0.0 and curve.thresholds[-1] == 0.95
    assert len(curve.thresholds) == 96
    assert curve.best_threshold == pytest.approx(0.3) and curve.best_miou == 1.0
    at = dict(zip(curve.thresholds.round(2), curve.miou, strict=True))
    assert at[0.59] == 1.0 and at[0.6] == pytest.approx(0.25)  # all bg: IoU 0.5 and 0
    assert at[0.29] == pytest.approx(0.25)  # all fg: IoU 0 and 0.5


def test_threshold_curve_bad_inputs():
    gt = np.zeros((2, 2), dtype=np.int64)
    cams = np.zeros((1, 2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="strictly increasing"):
        threshold_curve([(cams, [0], gt)], 3, thresholds=[0.5, 0.2])
    with pytest.raises(ValueError, match="num_classes is 3"):
        threshold_curve([(cams, [2], gt)], 3)
    with pytest.raises(ValueError, match=r"gt shape .*sample 1"):
        threshold_curve([(cams, [0], gt), (cams, [0], gt[:1])], 3)
    with pytest.raises(ValueError, match="no scored pixels"):
        threshold_curve([(cams, [0], np.full((2, 2), 255))], 3)


# --------------------------------------------------------------------------- per-image report


def test_per_image_report_hand_example():
    # K = 3. Image a: gt [[0, 1], [1, 255]], CAM of class 0 (label 1) -> pred [[0, 1], [0, x]]
    # Image b: no keys, gt all class 2 -> pred all background
    samples = [
        (np.array([[[0.1, 0.9], [0.2, 0.9]]]), [0], np.array([[0, 1], [1, 255]])),
        (np.zeros((0, 1, 2)), [], np.array([[2, 2]])),
    ]
    report = per_image_report(samples, 3, 0.5, ["a", "b"], class_names=["cat", "dog"])
    assert isinstance(report, pd.DataFrame)
    assert list(report.columns) == ["id", "miou", "pixel_acc",
                                    "iou_background", "iou_cat", "iou_dog"]
    a, b = report.iloc[0], report.iloc[1]
    assert a["id"] == "a" and b["id"] == "b"
    # a: background IoU 1/2 (tp 1, fp 1), cat 1/2 (tp 1, fn 1), dog absent
    assert a["iou_background"] == pytest.approx(0.5) and a["iou_cat"] == pytest.approx(0.5)
    assert math.isnan(a["iou_dog"])
    assert a["miou"] == pytest.approx(0.5) and a["pixel_acc"] == pytest.approx(2 / 3)
    # b: background predicted only (IoU 0), dog in gt only (IoU 0), cat absent
    assert b["iou_background"] == 0.0 and b["iou_dog"] == 0.0 and math.isnan(b["iou_cat"])
    assert b["miou"] == 0.0 and b["pixel_acc"] == 0.0
    default = per_image_report(samples, 3, 0.5, ["a", "b"])
    assert list(default.columns)[3:] == ["iou_0", "iou_1", "iou_2"]
    with pytest.raises(ValueError, match="ids names 1 images, but samples has more"):
        per_image_report(samples, 3, 0.5, ["a"])
    with pytest.raises(ValueError, match="ids names 3 images, but samples has 2"):
        per_image_report(samples, 3, 0.5, ["a", "b", "c"])


# --------------------------------------------------------------------------- npz files


def test_npz_round_trip_float16(tmp_path):
    rng = np.random.default_rng(0)
    cams = rng.random((3, 5, 6)).astype(np.float32)
    keys = np.array([7, 0, 19])
    path = tmp_path / "sub" / "img_001.npz"
    save_cam_npz(path, torch.from_numpy(cams), keys)
    loaded, loaded_keys = load_cam_npz(path)
    assert loaded.shape == (3, 5, 6) and loaded_keys.tolist() == [7, 0, 19]
    assert loaded.dtype == np.float16
    np.testing.assert_array_equal(loaded, cams.astype(np.float16))
    np.testing.assert_allclose(loaded, cams, atol=5e-4)
    with np.load(path) as raw:  # the on-disk format
        assert raw["cams"].dtype == np.float16 and raw["keys"].dtype == np.int16
    assert os.listdir(path.parent) == ["img_001.npz"]  # no temp file left behind
    save_cam_npz(path, np.zeros((0, 5, 6), np.float32), np.zeros(0, np.int64))  # overwrite
    empty, empty_keys = load_cam_npz(path)
    assert empty.shape == (0, 5, 6) and empty_keys.shape == (0,)
    assert os.listdir(path.parent) == ["img_001.npz"]


@pytest.mark.parametrize("cams, keys, match", [
    (np.zeros((4, 4)), [0], "cams must have shape"),
    (np.zeros((2, 4, 4)), [0], "keys must have shape"),
    (np.zeros((1, 4, 4)), [[0]], "keys must have shape"),
    (np.full((1, 4, 4), 1.5), [0], "cams must be finite and normalised"),
    (np.full((1, 4, 4), -0.1), [0], "cams must be finite and normalised"),
    (np.full((1, 4, 4), np.nan), [0], "cams must be finite"),
    (np.zeros((1, 4, 4), np.int64), [0], "cams must be floating"),
    (np.zeros((1, 4, 4)), [0.5], "keys must be integers"),
    (np.zeros((1, 4, 4)), [-1], "keys must be 0-based"),
    (np.zeros((2, 4, 4)), [3, 3], "keys must be distinct"),
])
def test_save_cam_npz_rejects_bad_inputs(tmp_path, cams, keys, match):
    with pytest.raises(ValueError, match=match):
        save_cam_npz(tmp_path / "x.npz", cams, np.asarray(keys))
    assert os.listdir(tmp_path) == []


def test_atomic_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        save_cam_npz(tmp_path / "x.npz", np.zeros((1, 2, 2)), [0])
    assert os.listdir(tmp_path) == []


def test_load_cam_npz_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_cam_npz(missing)
    other = tmp_path / "other.npz"
    np.savez_compressed(other, cams=np.zeros((1, 2, 2), np.float16))
    with pytest.raises(ValueError, match=r"other\.npz.*missing array.*keys"):
        load_cam_npz(other)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="junk.npz"):
        load_cam_npz(junk)
    floats = tmp_path / "floats.npz"
    np.savez_compressed(floats, cams=np.zeros((2, 2, 2), np.float16), keys=np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"floats\.npz: keys must be integer class indices"):
        load_cam_npz(floats)


# --------------------------------------------------------------------------- CAM folders


class FakeDataset:
    class_names = ("cat", "dog")

    def __init__(self, items):
        self.items = items
        self.ids = [item["id"] for item in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def _fake_dataset(rng):
    items, cams = [], {}
    for n, (h, w) in enumerate([(4, 5), (6, 3), (5, 5), (3, 3)]):
        c, keys, gt = random_image(rng, 3, h, w)
        has_mask = n != 2
        mask = torch.from_numpy(gt) if has_mask else torch.full((h, w), 255)
        items.append({"id": f"img{n}", "mask": mask, "has_mask": has_mask})
        cams[f"img{n}"] = (c, keys, gt)
    return FakeDataset(items), cams


def test_evaluate_cam_dir(tmp_path):
    rng = np.random.default_rng(3)
    dataset, cams = _fake_dataset(rng)
    for ident, (c, keys, _) in cams.items():
        save_cam_npz(tmp_path / f"{ident}.npz", c, keys)
    thresholds = [0.0, 0.3, 0.6]
    curve = evaluate_cam_dir(tmp_path, dataset, thresholds)
    assert curve.skipped == 1 and curve.num_images == 3
    # the same as the in-memory sweep over the images with masks (fp16 CAMs from disk)
    scored = [load_cam_npz(tmp_path / f"{i}.npz") + (cams[i][2],) for i in ("img0", "img1",
                                                                            "img3")]
    expected = threshold_curve(scored, 3, thresholds)
    np.testing.assert_array_equal(curve.confusion, expected.confusion)
    np.testing.assert_array_equal(curve.miou, expected.miou)
    assert curve.best_threshold == expected.best_threshold
    dataset.ids = ["img0", "img2", "img1", "img3"]  # ids out of step with the items
    with pytest.raises(ValueError, match=r"dataset item 1 has id 'img1', but dataset.ids\[1\] "
                                         r"is 'img2'"):
        evaluate_cam_dir(tmp_path, dataset, thresholds)


def test_evaluate_cam_dir_missing_files(tmp_path):
    dataset, cams = _fake_dataset(np.random.default_rng(4))
    c, keys, _ = cams["img1"]
    save_cam_npz(tmp_path / "img1.npz", c, keys)
    with pytest.raises(FileNotFoundError, match=r"3 of 4 .*img0\.npz"):
        evaluate_cam_dir(tmp_path, dataset)


def _coverage_loop(samples):
    """Pixel by pixel: the definitions of region_coverage."""
    n = {k: 0 for k in ("part", "part_ok", "body", "body_ok", "bg", "bg_fp", "fg", "fg_ok")}
    for prediction, mask, regions in samples:
        for p, m, r in zip(np.ravel(prediction), np.ravel(mask), np.ravel(regions),
                           strict=True):
            name = {0: "bg", 1: "body", 2: "part"}[int(r)]
            n[name] += 1
            if name == "bg":
                n["bg_fp"] += int(p > 0)
            else:
                n[name + "_ok"] += int(p == m)
            if p > 0:
                n["fg"] += 1
                n["fg_ok"] += int(p == m)
    return {"part_recall": n["part_ok"] / n["part"], "body_recall": n["body_ok"] / n["body"],
            "recall": (n["part_ok"] + n["body_ok"]) / (n["part"] + n["body"]),
            "precision": n["fg_ok"] / n["fg"], "background_false_positive": n["bg_fp"] / n["bg"]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_coverage_matches_pixel_loop(seed):
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(3):
        regions = rng.integers(0, 3, (7, 9))
        mask = np.where(regions > 0, rng.integers(1, 4, (7, 9)), 0)
        prediction = rng.integers(0, 4, (7, 9))
        samples.append((prediction, torch.from_numpy(mask), regions))
    got = region_coverage(samples)
    for key, value in _coverage_loop(samples).items():
        assert got[key] == pytest.approx(value), key
    assert got["part_pixels"] + got["body_pixels"] + got["background_pixels"] == 3 * 63


def test_region_coverage_edge_cases_and_errors():
    perfect = region_coverage([(np.array([[0, 2], [2, 2]]), np.array([[0, 2], [2, 2]]),
                                np.array([[0, 2], [1, 1]]))])
    assert perfect["part_recall"] == perfect["body_recall"] == perfect["precision"] == 1.0
    assert perfect["background_false_positive"] == 0.0
    empty = region_coverage([(np.zeros((2, 2), int), np.zeros((2, 2), int),
                              np.zeros((2, 2), int))])
    assert math.isnan(empty["part_recall"]) and math.isnan(empty["precision"])
    with pytest.raises(ValueError, match="same"):
        region_coverage([(np.zeros((2, 2), int), np.zeros((2, 3), int), np.zeros((2, 2), int))])
    with pytest.raises(ValueError, match="integer"):
        region_coverage([(np.zeros((2, 2)), np.zeros((2, 2), int), np.zeros((2, 2), int))])
    with pytest.raises(ValueError, match=r"regions must be 0 \(background\), 1 .* got 3"):
        region_coverage([(np.zeros((2, 2), int), np.zeros((2, 2), int), np.full((2, 2), 3))])
    # ignored ground truth (255) counts nowhere: the same as leaving those pixels out
    ignored = region_coverage([(np.array([[0, 1], [2, 2]]), np.array([[255, 1], [2, 255]]),
                                np.array([[2, 1], [1, 0]]))])
    assert math.isnan(ignored["part_recall"]) and math.isnan(ignored["background_false_positive"])
    assert ignored["body_recall"] == 1.0 and ignored["precision"] == 1.0


def _weight_by_region_loop(samples):
    """Image pixel by image pixel: each gets its loss pixel's weight over the pixels that
    loss pixel covers, and goes to one region by the definitions of weight_by_region."""
    totals = dict.fromkeys(WEIGHT_REGIONS, 0.0)
    for weights, pseudo, mask, regions in samples:
        n, h, w = weights.shape
        big_h, big_w = mask.shape[1:]
        sh, sw = big_h // h, big_w // w
        for i in range(n):
            for y in range(big_h):
                for x in range(big_w):
                    m, r = int(mask[i, y, x]), int(regions[i, y, x])
                    if m == 255:
                        continue
                    label = int(pseudo[i, y // sh, x // sw])
                    weight = float(weights[i, y // sh, x // sw]) / (sh * sw)
                    if r == 0:
                        key = ("background labelled background" if label == 0
                               else "background labelled an object")
                    elif label == 0:
                        key = "part labelled background" if r == 2 else "body labelled background"
                    elif label == m:
                        key = "part labelled its class" if r == 2 else "body labelled its class"
                    else:
                        key = "object labelled another class"
                    totals[key] += weight
    total = sum(totals.values())
    return {k: v / total for k, v in totals.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_by_region_matches_pixel_loop(seed):
    rng = np.random.default_rng(seed)
    samples = []
    for scale in (1, 2, 4):  # masks at 1x, 2x and 4x the loss pixels
        n, h, w = 2, 3, 4
        regions = rng.integers(0, 3, (n, h * scale, w * scale))
        mask = np.where(regions > 0, rng.integers(1, 4, regions.shape), 0)
        mask[rng.random(mask.shape) < 0.1] = 255  # not scored
        pseudo = rng.integers(0, 4, (n, h, w))
        weights = rng.random((n, h, w)) * (rng.random((n, h, w)) < 0.7)  # some weights 0
        samples.append((torch.from_numpy(weights).float(), pseudo, torch.from_numpy(mask),
                        regions))
    got = weight_by_region(samples)
    assert list(got) == list(WEIGHT_REGIONS)
    expected = _weight_by_region_loop(samples)
    for key in WEIGHT_REGIONS:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key
    assert sum(got.values()) == pytest.approx(1.0)


def test_weight_by_region_hand_example_edge_cases_and_errors():
    # 1 image, 1x2 loss pixels over a 2x4 mask: the left loss pixel (weight 3, labelled
    # class 1) covers a part of class 1 and a background column; the right (weight 1,
    # labelled background) covers a body of class 2
    weights, pseudo = torch.tensor([[[3.0, 1.0]]]), torch.tensor([[[2, 0]]])
    regions = np.array([[[2, 0, 1, 1], [2, 0, 1, 1]]])
    mask = np.array([[[2, 0, 3, 3], [2, 0, 3, 3]]])
    got = weight_by_region([(weights, pseudo, mask, regions)])
    assert got["part labelled its class"] == pytest.approx(1.5 / 4)
    assert got["background labelled an object"] == pytest.approx(1.5 / 4)
    assert got["body labelled background"] == pytest.approx(1 / 4)
    assert sum(v for k, v in got.items()) == pytest.approx(1.0)
    assert all(math.isnan(v) for v in weight_by_region(
        [(torch.zeros(1, 1, 2), pseudo, mask, regions)]).values())
    with pytest.raises(ValueError, match="multiple"):
        weight_by_region([(torch.ones(1, 1, 3), torch.zeros(1, 1, 3, dtype=torch.long),
                           mask, regions)])
    with pytest.raises(ValueError, match=r"weights \(1, 2\) and pseudo .* \[N, h, w\]"):
        weight_by_region([(torch.ones(1, 2), pseudo, mask, regions)])
    with pytest.raises(ValueError, match=r"mask .* and regions .* \[N, H, W\] with N = 1"):
        weight_by_region([(weights, pseudo, mask, regions[:, :1])])
    with pytest.raises(ValueError, match="non-negative"):
        weight_by_region([(-weights, pseudo, mask, regions)])
    with pytest.raises(ValueError, match="batch 0: weights contain NaN or Inf"):
        weight_by_region([(weights * float("nan"), pseudo, mask, regions)])
    with pytest.raises(ValueError, match="integer"):
        weight_by_region([(weights, pseudo.float(), mask, regions)])


def test_centroid_offsets_hand_example_and_loop():
    mask = np.zeros((8, 10), int)
    mask[2:4, 3:5] = 2  # class 1, centroid (2.5, 3.5)
    cams = np.zeros((2, 8, 10), np.float32)
    cams[0, 5:7, 6:8] = 1.0  # 3 rows below, 3 columns right
    cams[1, 0, 0] = 1.0  # class 4 is not in the mask: not counted
    got = centroid_offsets([(cams, [1, 4], mask)])
    assert got["offset_y"] == pytest.approx(3.0) and got["offset_x"] == pytest.approx(3.0)
    assert got["pairs"] == 1 and math.isnan(got["offset_y_sem"])
    rng = np.random.default_rng(0)
    samples, dy, dx = [], [], []
    for _ in range(4):
        mask = rng.integers(0, 4, (6, 7))
        keys = np.array([0, 2])
        cams = rng.random((2, 6, 7)).astype(np.float32)
        samples.append((cams, keys, mask))
        for ch, k in enumerate(keys):
            pts = [(r, c) for r in range(6) for c in range(7) if mask[r, c] == k + 1]
            if not pts:
                continue
            w = cams[ch].astype(float)
            dy.append(sum(w[r, c] * r for r in range(6) for c in range(7)) / w.sum()
                      - np.mean([p[0] for p in pts]))
            dx.append(sum(w[r, c] * c for r in range(6) for c in range(7)) / w.sum()
                      - np.mean([p[1] for p in pts]))
    got = centroid_offsets(samples)
    assert got["pairs"] == len(dy)
    assert got["offset_y"] == pytest.approx(np.mean(dy)) and got["offset_x"] == pytest.approx(
        np.mean(dx))
    assert got["offset_y_sem"] == pytest.approx(np.std(dy, ddof=1) / len(dy) ** 0.5)
    with pytest.raises(ValueError, match="share"):
        centroid_offsets([(cams, keys, np.zeros((5, 7), int))])
