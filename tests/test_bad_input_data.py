"""Bad inputs to the data, inference and evaluation modules: one-line ValueErrors (or
IndexErrors) that name the argument or file, and valid inputs still computing as before."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from ppc.data import (
    PRESETS,
    AugmentConfig,
    SeededDataset,
    SyntheticConfig,
    SyntheticSegmentation,
    VOCSegmentation,
    eval_transform,
    multiscale_inputs,
    read_label_png,
    write_label_png,
    write_voc,
)
from ppc.evaluate import (
    SegmentationMetrics,
    ThresholdSweep,
    cams_to_prediction,
    confusion_matrix,
    evaluate_cam_dir,
    iou_from_confusion,
    load_cam_npz,
    per_image_report,
    save_cam_npz,
    weight_by_region,
)
from ppc.infer import infer

TINY = SyntheticConfig(num_train_aug=6, num_train=3, num_val=3)


# ppc's label cache in each test's own folder: nothing read from or left in ~/.cache/ppc
pytestmark = pytest.mark.usefixtures("private_label_cache")


@pytest.fixture(scope="module")
def val_set():
    return SyntheticSegmentation(TINY, "val", seed=1)


class TinyCAMNet(nn.Module):
    """A 1x1 convolution as a CAM network, enough for :func:`ppc.infer.infer`."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, images, project=False):
        return {"logits": self.conv(images)}


# --------------------------------------------------------------------------- 1. label PNGs


@pytest.mark.parametrize("mask, match", [
    (np.full((2, 2), -1), r"mask must hold class indices in \[0, 255\].*\[-1, -1\]"),
    (np.full((2, 2), 300), r"mask must hold class indices in \[0, 255\].*\[300, 300\]"),
    (np.full((2, 2), 2.7), r"mask must be a \[H, W\] array of integer.*float64"),
    (np.ones((2, 2), bool), r"mask must be a \[H, W\] array of integer.*bool"),
    (np.zeros((1, 2, 2), np.uint8), r"mask must be a \[H, W\] array.*\(1, 2, 2\)"),
])
def test_write_label_png_refuses_masks_that_would_not_read_back(tmp_path, mask, match):
    with pytest.raises(ValueError, match=match):
        write_label_png(tmp_path / "m.png", mask)
    assert not (tmp_path / "m.png").exists()


def test_write_label_png_round_trips_valid_masks(tmp_path):
    mask = np.array([list(range(11)), [*range(11, 21), 255]])
    for dtype in (np.uint8, np.int64, np.int32):
        for palette in (True, False):
            write_label_png(tmp_path / "m.png", mask.astype(dtype), palette=palette)
            back = read_label_png(tmp_path / "m.png")
            assert back.dtype == np.uint8 and np.array_equal(back, mask)


# --------------------------------------------------------------------------- 2. CAM folders


def test_evaluate_cam_dir_refuses_seeds_of_other_classes(tmp_path, val_set):
    # seeds as infer writes them: their keys are the classes of each image's label
    infer(TinyCAMNet(TINY.num_classes), SyntheticSegmentation(
        TINY, "val", seed=1, transform=eval_transform("synthetic")), tmp_path, scales=(1.0,),
        progress=False)
    for index, ident in enumerate(val_set.ids):
        _, keys = load_cam_npz(tmp_path / "cams" / f"{ident}.npz")
        assert keys.tolist() == torch.nonzero(val_set[index]["label"]).flatten().tolist()
    curve = evaluate_cam_dir(tmp_path / "cams", val_set, [0.0, 0.5])
    assert curve.num_images == len(val_set)
    # a file whose classes are not the image's: seeds of other data
    ident = val_set.ids[1]
    present = torch.nonzero(val_set[1]["label"]).flatten().tolist()
    other = next(c for c in range(TINY.num_classes) if c not in present)
    save_cam_npz(tmp_path / "cams" / f"{ident}.npz", np.zeros((1, 64, 64)), [other])
    with pytest.raises(ValueError, match=rf"{ident}\.npz holds CAMs of classes \[{other}\], "
                                         rf"but the dataset's image {ident} has the classes "
                                         rf"{re.escape(str(present))}.*python -m ppc "
                                         r"infer RUN_DIR"):
        evaluate_cam_dir(tmp_path / "cams", val_set, [0.0, 0.5])


# --------------------------------------------------------------------------- 3. IoU


@pytest.mark.parametrize("conf, match", [
    (np.array([[np.inf, 0], [0, 1]]), "NaN or Inf"),
    (np.array([[np.nan, 0], [0, 1]]), "NaN or Inf"),
    (np.array([[0.5, 0], [0, 1]]), "fractional entry 0.5"),
    (np.array([[True, False], [False, True]]), "dtype torch.bool"),
    (np.array([[1, 0, 0], [0, 1, 0]]), r"square \[K, K\]"),
])
def test_iou_from_confusion_needs_pixel_counts(conf, match):
    with pytest.raises(ValueError, match=rf"conf .*{match}"):
        iou_from_confusion(conf)


def test_iou_from_confusion_of_whole_floats_equals_the_integer_result():
    counts = np.array([[4, 1, 0], [2, 3, 0], [0, 0, 0]])
    iou, miou = iou_from_confusion(counts)
    iou_f, miou_f = iou_from_confusion(counts.astype(np.float64))
    assert torch.equal(iou.isnan(), iou_f.isnan()) and miou == miou_f
    assert torch.equal(iou[:2], iou_f[:2])


# --------------------------------------------------------------------------- 4. augmentation


@pytest.mark.parametrize("changes, field", [
    ({"crop": 0}, "crop"), ({"crop": -5}, "crop"), ({"crop": 64.5}, "crop"),
    ({"flip": -1}, "flip"), ({"flip": 2}, "flip"), ({"flip": float("nan")}, "flip"),
    ({"mean": (0.5,)}, "mean"), ({"mean": (0.5, float("nan"), 0.5)}, "mean"),
    ({"std": (0, 0, 0)}, "std"), ({"std": (1, -1, 1)}, "std"),
    ({"jitter": (1, 2)}, "jitter"), ({"jitter": (0.3, 0.3, 0.3, 0.6)}, "jitter"),
    ({"jitter": (-0.1, 0.3, 0.3, 0.1)}, "jitter"),
    ({"resize_long": (768, 448)}, "resize_long"), ({"resize_long": (0, 10)}, "resize_long"),
    ({"resize_long": (448.0, 768)}, "resize_long"), ({"crop": "448"}, "crop"),
])
def test_augment_config_refuses_bad_fields(changes, field):
    with pytest.raises(ValueError, match=rf"AugmentConfig\.{field} must be"):
        AugmentConfig(**changes)
    with pytest.raises(ValueError, match=rf"AugmentConfig\.{field} must be"):
        AugmentConfig().replace(**changes)


def test_augment_config_accepts_the_recipes():
    assert AugmentConfig() == PRESETS["voc"]
    assert PRESETS["synthetic"].crop == 64
    AugmentConfig(resize_long=None, crop=64, jitter=None, mean=(0, 0, 0), std=(1, 1, 1))
    AugmentConfig(resize_long=(80, 90), crop=32, flip=0.0, jitter=(0.3, 0.3, 0.3, 0.5))
    AugmentConfig(resize_long=[64, 64], mean=[0.5, 0.5, 0.5], flip=1)  # lists: from JSON


@pytest.mark.parametrize("scales", [(0.0,), (-1.0,), (), (1.0, float("inf")), "1"])
def test_multiscale_inputs_refuses_bad_scales(scales):
    with pytest.raises(ValueError, match="scales must be one or more finite factors > 0"):
        multiscale_inputs(torch.zeros(3, 8, 8), scales)


# --------------------------------------------------------------------------- 5. inference


@pytest.mark.parametrize("changes, match", [
    ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
    ({"batch_size": 1.0}, r"batch_size must be an int >= 1, got 1\.0"),
    ({"device": "bogus"}, "device must be a torch.device or a name .*'bogus'"),
])
def test_infer_refuses_bad_arguments(tmp_path, val_set, changes, match):
    with pytest.raises(ValueError, match=match):
        infer(TinyCAMNet(TINY.num_classes), val_set, tmp_path, progress=False, **changes)


def test_infer_refuses_a_file_as_out_dir(tmp_path, val_set):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"cannot write the seeds into .*f is a file"):
        infer(TinyCAMNet(TINY.num_classes), val_set, tmp_path / "f", progress=False)


def test_save_cam_npz_refuses_paths_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match=r"path .* is a folder; pass a file path"):
        save_cam_npz(tmp_path, np.zeros((1, 2, 2)), [0])
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"cannot write .*f/x\.npz: .*f is a file"):
        save_cam_npz(tmp_path / "f" / "x.npz", np.zeros((1, 2, 2)), [0])
    save_cam_npz(tmp_path / "new" / "x.npz", np.zeros((1, 2, 2)), [0])  # folder created
    assert load_cam_npz(tmp_path / "new" / "x.npz")[1].tolist() == [0]


# --------------------------------------------------------------------------- 6. evaluation


def test_ignore_index_must_be_an_int_or_none():
    gt = np.zeros((2, 2), np.int64)
    match = r"ignore_index must be an int .* or None .*got '255' \(str\)"
    with pytest.raises(ValueError, match=match):
        confusion_matrix(gt, gt, 3, ignore_index="255")
    with pytest.raises(ValueError, match=match):
        SegmentationMetrics(3, ignore_index="255")
    with pytest.raises(ValueError, match=match):
        ThresholdSweep(3, ignore_index="255")
    assert confusion_matrix(gt, gt, 3, ignore_index=np.int64(255))[0, 0] == 4
    assert confusion_matrix(gt, gt, 3, ignore_index=None)[0, 0] == 4


def test_weight_by_region_refuses_empty_weight_maps():
    mask = np.zeros((1, 2, 4), np.int64)
    with pytest.raises(ValueError, match=r"batch 0: weights \(1, 0, 2\) must be \[N, h, w\] "
                                         r"with h, w >= 1"):
        weight_by_region([(torch.zeros(1, 0, 2), torch.zeros(1, 0, 2, dtype=torch.long),
                           mask, mask)])


def test_threshold_sweep_refuses_a_histogram_beyond_memory():
    with pytest.raises(ValueError, match=r"ThresholdSweep: the histogram of num_classes="
                                         r"1000000 and 96 thresholds needs"):
        ThresholdSweep(10**6)
    assert ThresholdSweep(21).histogram.shape == (97, 21, 21)


# --------------------------------------------------------------------------- 7. sequences


def test_per_image_report_needs_lists_of_strings():
    samples = [(np.zeros((0, 2, 2)), np.zeros(0, np.int64), np.zeros((2, 2), np.int64))] * 2
    with pytest.raises(ValueError, match=r"ids must be a list of strings .*got 'ab' \(str\)"):
        per_image_report(samples, 3, 0.5, "ab")
    # ids that are not strings are named by str(), as evaluate_cam_dir does
    assert per_image_report(samples, 3, 0.5, [1, 2])["id"].tolist() == ["1", "2"]
    with pytest.raises(ValueError, match=r"class_names must be a list of strings .*item 1 "
                                         r"\(int\)"):
        per_image_report(samples, 3, 0.5, ["a", "b"], class_names=[1, 2])
    with pytest.raises(ValueError, match=r"class_names must be a list of strings .*'ab'"):
        per_image_report(samples, 3, 0.5, ["a", "b"], class_names="ab")
    report = per_image_report(samples, 3, 0.5, ("a", "b"), class_names=("cat", "dog"))
    assert report["id"].tolist() == ["a", "b"] and "iou_dog" in report.columns


def test_out_of_range_indices_are_index_errors_naming_the_size(tmp_path, val_set):
    root = write_voc(tmp_path / "VOC2012", TINY, seed=3)
    voc = VOCSegmentation(root, "val")
    with pytest.raises(IndexError, match=r"index 100 is out of range: split 'val' of .* has 3 "
                                         r"items"):
        voc[100]
    with pytest.raises(IndexError, match=r"index 100 is out of range: synthetic split 'val' "
                                         r"has 3 items"):
        val_set[100]
    seeded = SeededDataset(val_set, seed=0)
    with pytest.raises(IndexError, match=r"index -4 is out of range: the dataset has 3 items"):
        seeded[-4]
    assert torch.equal(seeded[-1]["image"], seeded[2]["image"])
    assert [s["id"] for s in voc] == voc.ids  # iteration by __getitem__ still stops
    assert voc[-1]["id"] == voc.ids[-1]


def test_datasets_refuse_a_transform_that_is_not_callable(tmp_path):
    root = write_voc(tmp_path / "VOC2012", TINY, seed=3)
    with pytest.raises(ValueError, match=r"VOCSegmentation transform must be None or a "
                                         r"callable.*got 5 \(int\)"):
        VOCSegmentation(root, "val", transform=5)
    with pytest.raises(ValueError, match=r"SyntheticSegmentation transform must be None or a "
                                         r"callable.*got 5 \(int\)"):
        SyntheticSegmentation(TINY, "val", transform=5)


@pytest.mark.parametrize("keys", [[2**63 - 1], [-1], [40000]])
def test_cams_to_prediction_needs_class_indices(keys):
    with pytest.raises(ValueError, match=r"keys must be 0-based foreground class indices "
                                         r"\(in \[0, 32767\]\)"):
        cams_to_prediction(np.ones((1, 2, 2), np.float32), keys, 0.5)
    assert cams_to_prediction(np.ones((1, 2, 2), np.float32), [32767], 0.5).max() == 32768


def test_voc_class_names_must_be_a_list_of_names(tmp_path):
    root = write_voc(tmp_path / "VOC2012", TINY, seed=3)
    for bad in ("ab", ["cat", 3], ["cat", " "]):
        with pytest.raises(ValueError, match=r"class_names must be a list of the foreground"):
            VOCSegmentation(root, "val", class_names=bad)
    names = VOCSegmentation(root, "val").class_names
    assert VOCSegmentation(root, "val", class_names=list(names)).class_names == names
