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
