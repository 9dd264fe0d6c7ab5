import pytest

from fer.evaluation.metrics import compute, confusion_rows

CLASSES = ["angry", "happy", "sad"]


def test_metrics_on_known_predictions():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = compute(y_true, y_pred, CLASSES, train_targets=[1, 1, 1, 0, 2], angles=["S", "HL", "S", "S", "S", "HL"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["majority_class"] == "happy" and m["majority_baseline"] == pytest.approx(2 / 6)
    assert m["per_class"]["happy"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)  # angry P=R=1/2; sad P=1, R=1/2
    assert m["accuracy_by_angle"] == {"HL": 0.0, "S": 1.0}


def test_no_angles_no_angle_metrics():
    assert "accuracy_by_angle" not in compute([0, 1], [0, 1], CLASSES, [0], angles=None)


def test_confusion_rows_use_class_names():
    rows = confusion_rows([0, 2], [1, 2], CLASSES)
    assert rows.to_dict("records") == [{"actual": "angry", "predicted": "happy"}, {"actual": "sad", "predicted": "sad"}]
