"""The INT8 check of `vantage models optimize` (python/vantage_optimize): how the INT8 model's detections are matched
to the original's. Hand-made detections, so each count is known; the real quantization is tested end to end in
Tests/EndToEndTests/ModelOptimizeTests.swift."""

import pytest

from vantage_optimize.quantize import compare_detections, iou, match

PERSON, CAR = 1, 3
LABELS = ["background", "person", "bicycle", "car"]


def test_iou_of_boxes():
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    # Half of one box over another of the same size: 0.5 / 1.5.
    assert iou((0, 0, 1, 1), (0, 0.5, 1, 1.5)) == pytest.approx(1 / 3)


def test_each_original_box_matches_one_int8_box_at_most():
    reference = [(PERSON, 0.9, (0, 0, 1, 1))]
    candidates = [(PERSON, 0.8, (0, 0, 1, 1)), (PERSON, 0.7, (0, 0.01, 1, 1.01))]
    assert match(reference, candidates, 0.5) == 1


def test_a_shifted_box_below_the_iou_threshold_does_not_match():
    reference = [(PERSON, 0.9, (0, 0, 1, 1))]
    assert match(reference, [(PERSON, 0.9, (0, 0.5, 1, 1.5))], 0.5) == 0  # IoU 1/3
    assert match(reference, [(PERSON, 0.9, (0, 0.1, 1, 1.1))], 0.5) == 1  # IoU 0.82


def test_recall_and_precision_per_class_and_in_all():
    box_a, box_b, box_c = (0, 0, 0.2, 0.2), (0.5, 0.5, 0.8, 0.8), (0.1, 0.6, 0.3, 0.9)
    reference = [
        [(PERSON, 0.9, box_a), (PERSON, 0.8, box_b)],  # INT8 finds one of two people
        [(CAR, 0.7, box_c)],  # INT8 calls the car a person: a miss and a false detection
        [],
    ]
    candidate = [
        [(PERSON, 0.85, box_a)],
        [(PERSON, 0.6, box_c)],
        [(CAR, 0.55, box_b)],  # nothing there in the original
    ]
    summary = compare_detections(reference, candidate, 0.5, LABELS)
    assert (summary["fp32"], summary["int8"], summary["matched"]) == (3, 3, 1)
    assert summary["recall"] == pytest.approx(1 / 3)
    assert summary["precision"] == pytest.approx(1 / 3)
    person, car = summary["classes"]
    assert (person["label"], person["fp32"], person["int8"], person["matched"]) == ("person", 2, 2, 1)
    assert (person["recall"], person["precision"]) == (0.5, 0.5)
    assert (car["label"], car["fp32"], car["int8"], car["matched"], car["recall"]) == ("car", 1, 1, 0, 0.0)


def test_no_detections_at_all_is_full_agreement():
    summary = compare_detections([[], []], [[], []], 0.5)
    assert (summary["recall"], summary["precision"], summary["classes"]) == (1.0, 1.0, [])


class FakePort:
    def __init__(self, *names):
        self.names = set(names)

    def get_names(self):
        return self.names


class FakeModel:
    """What Comparison reads of an OpenVINO model: its outputs' names."""

    def __init__(self, *outputs):
        self.outputs = [FakePort(*names) for names in outputs]


def test_yolo_v8_outputs_are_decoded_with_nms_and_compared():
    import numpy as np

    from vantage_optimize.quantize import Comparison

    comparison = Comparison(FakeModel(["output0"]), {"type": "yolo"}, min_score=0.5, iou=0.5)

    def v8(rows):  # rows of cx, cy, w, h, score of class 0, score of class 1 -> [1, 4 + 2, 8], 8 anchors
        padded = rows + [[0, 0, 0, 0, 0, 0]] * (8 - len(rows))
        return [np.asarray(padded, np.float32).T[None]]

    # Original: a person (class 0) twice, overlapping (NMS keeps the stronger), and a weak one dropped by min_score.
    original = v8([[50, 50, 20, 40, 0.9, 0.0], [51, 50, 20, 40, 0.8, 0.0], [200, 200, 10, 10, 0.3, 0.0]])
    # INT8: the same person slightly moved, and a class-1 box the original does not have.
    int8 = v8([[52, 51, 20, 40, 0.85, 0.0], [120, 80, 30, 30, 0.0, 0.7], [0, 0, 1, 1, 0.1, 0.1]])
    comparison.add(original, int8)
    summary = comparison.summary()
    assert summary["kind"] == "detection"
    assert (summary["fp32"], summary["int8"], summary["matched"]) == (1, 2, 1)
    assert (summary["recall"], summary["precision"]) == (1.0, 0.5)


def test_yolo_v5_scores_are_objectness_times_class():
    import numpy as np

    from vantage_optimize.quantize import Comparison

    comparison = Comparison(FakeModel(["out"]), {"type": "yolo", "version": "v5"}, min_score=0.5, iou=0.5)
    # objectness 0.9 x class 0.5 = 0.45 < 0.5: dropped; 0.9 x 0.9 kept.
    rows = np.asarray([[10, 10, 4, 4, 0.9, 0.5, 0.1], [30, 30, 4, 4, 0.9, 0.1, 0.9]], np.float32)[None]
    found = comparison.decode([rows])
    assert [(c, round(s, 2)) for c, s, _ in found] == [(1, 0.81)]


def test_classification_reports_top1_agreement():
    import numpy as np

    from vantage_optimize.quantize import Comparison

    comparison = Comparison(FakeModel(["prob"]), {"type": "classification"}, min_score=0.5, iou=0.5)
    comparison.add([np.asarray([[0.1, 0.7, 0.2]])], [np.asarray([[0.2, 0.6, 0.2]])])
    comparison.add([np.asarray([[0.5, 0.4, 0.1]])], [np.asarray([[0.4, 0.5, 0.1]])])
    assert comparison.summary() == {"kind": "classification", "frames": 2, "top1Agreement": 0.5}


def test_a_missing_ssd_output_is_a_clear_error():
    from vantage_optimize.quantize import Comparison, OptimizeError

    with pytest.raises(OptimizeError, match="detection_scores:0"):
        Comparison(FakeModel(["detection_boxes:0"], ["detection_classes:0"], ["num_detections:0"]), {"type": "ssd"},
                   min_score=0.5, iou=0.5)
