import pytest

from ppc.design import CRITERIA, judge, table, verdicts


def cam_run(miou=40.0, precision=0.6, recall=0.5, part=0.9, body=0.5, dy=0.2, dx=-0.1):
    return {"miou": miou, "precision": precision, "recall": recall, "part_recall": part,
            "body_recall": body, "offset_y": dy, "offset_x": dx}


def test_judge_checks_each_criterion_on_the_means():
    good = judge([cam_run(), cam_run()], [{"miou": 80.0}])
    assert good == dict.fromkeys(CRITERIA, True)
    # C1 on the means: one seed above, one below, mean below
    assert not judge([cam_run(precision=0.7, recall=0.5), cam_run(precision=0.3, recall=0.6)],
                     [])[CRITERIA[0]]
    # C2: a 10-point margin is enough, 9.9 is not
    assert judge([cam_run(part=0.6, body=0.5)], [])[CRITERIA[1]]
    assert not judge([cam_run(part=0.599, body=0.5)], [])[CRITERIA[1]]
    # C3: either axis; offsets of opposite sign across seeds average out
    assert not judge([cam_run(dx=1.6)], [])[CRITERIA[2]]
    assert judge([cam_run(dy=3.0), cam_run(dy=-2.0)], [])[CRITERIA[2]]
    # C4: needs full supervision >= 70 and CAM <= 0.6 of it; absent without FS runs
    assert not judge([cam_run(miou=49.0)], [{"miou": 80.0}])[CRITERIA[3]]
    assert not judge([cam_run(miou=30.0)], [{"miou": 65.0}])[CRITERIA[3]]
    assert CRITERIA[3] not in judge([cam_run()], [])
    with pytest.raises(ValueError, match="at least one CAM run"):
        judge([], [])


def test_tables_of_a_report():
    report = {
        "A": {"what": "control", "cam": {"0": cam_run(miou=20.0), "1": cam_run(miou=30.0)},
              "full": {"0": {"miou": 80.0}}},
        "B": {"what": "other", "cam": {"0": cam_run(dx=2.0)}, "full": {}},
    }
    for entry in report.values():
        entry["verdict"] = judge(list(entry["cam"].values()), list(entry["full"].values()))
    frame = table(report)
    assert frame.loc["A", "CAM mIoU"] == "25.0 ± 7.1"
    assert frame.loc["A", "precision"] == "60.0 ± 0.0"
    assert frame.loc["B", "full sup. mIoU"] == "n/a" and frame.loc["B", "offset x (px)"] == "2.0"
    assert frame.loc["A", "seeds (CAM / full)"] == "2 / 1"
    assert frame.loc["A", "seed area / object area"] == "0.83 ± 0.00"  # 0.5 / 0.6
    marks = verdicts(report)
    assert list(marks.loc["A"]) == ["yes"] * 5
    assert marks.loc["B", CRITERIA[2]] == "no" and marks.loc["B", CRITERIA[3]] == "-"
    assert marks.loc["B", "all"] == "no"


def test_criteria_figure_places_each_candidate_and_the_c4_bound():
    import matplotlib

    matplotlib.use("Agg")
    from ppc.design import criteria_figure

    report = {
        "A": {"cam": {"0": cam_run(miou=30.0, precision=0.4, recall=0.5),
                      "1": cam_run(miou=40.0, precision=0.5, recall=0.5)},
              "full": {"0": {"miou": 80.0}}},
        "B": {"cam": {"0": cam_run(miou=65.0, precision=0.75, recall=0.7)}, "full": {}},
        "C": {"cam": {"0": cam_run()}, "full": {"0": {"miou": 90.0}}},
    }
    fig = criteria_figure(report)
    ax = fig.axes[0]
    points = [tuple(c.get_offsets()[0]) for c in ax.collections]
    assert points[0] == pytest.approx((35.0, -5.0))  # means over seeds, points
    assert points[1] == pytest.approx((65.0, 5.0))
    assert [t.get_text() for t in ax.texts[:3]] == ["A", "B", "C"]
    bound = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    assert bound == [pytest.approx(0.6 * 85.0)]  # the median of the measured ones
