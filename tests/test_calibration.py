"""Calibration maths on constructed logits: temperature scaling, ECE, selective prediction, groups."""

import numpy as np
import pandas as pd
import pytest
import torch

from fer.evaluation import calibration, groups
from fer.inference import log_probs
from fer.training.calibrate import fit_temperature


def constructed(n=4000, classes=4, scale=1.0, seed=0):
    """Logits whose true calibration temperature is `scale`: labels are drawn from
    softmax(logits / scale), so the model is over-confident by that factor."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g) * 4
    labels = torch.multinomial((logits / scale).softmax(1), 1, generator=g).squeeze(1)
    return logits[None], labels.numpy()


def test_an_over_confident_model_gets_a_temperature_above_one_and_a_lower_ece():
    logits, y = constructed(scale=2.5)
    t = fit_temperature(logits, y)
    assert 2.0 < t < 3.0  # recovers the factor the labels were drawn with
    before = calibration.measure(log_probs(logits).exp().numpy(), y)
    after = calibration.measure(log_probs(logits, t).exp().numpy(), y)
    assert before["ece"] > 0.1 and after["ece"] < before["ece"] / 3
    assert after["nll"] < before["nll"] and after["brier"] < before["brier"]
    # one temperature divides every logit alike: no answer changes
    assert (log_probs(logits, t).argmax(1) == logits[0].argmax(1)).all()


def test_a_calibrated_model_keeps_a_temperature_near_one_and_an_under_confident_one_gets_below_one():
    assert fit_temperature(*constructed(scale=1.0)) == pytest.approx(1.0, abs=0.1)
    assert fit_temperature(*constructed(scale=0.5)) < 0.6


def test_the_temperature_of_flip_averaged_views_is_fitted_on_both_views():
    logits, y = constructed(scale=2.0)
    views = torch.cat([logits, logits + 0.3 * torch.randn_like(logits)])
    t = fit_temperature(views, y)
    nll = lambda temp: torch.nn.functional.nll_loss(log_probs(views, temp), torch.as_tensor(y)).item()  # noqa: E731
    assert nll(t) < min(nll(t * 0.9), nll(t * 1.1), nll(1.0))


def test_ece_nll_and_brier_on_a_hand_computed_case():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    y = np.array([0, 1, 0, 1])
    s = calibration.measure(probs, y, bins=10)
    # bins: 0.9 (two answers, one right: |0.5 - 0.9|), 0.6 (right: |1 - 0.6|), 0.8 (right: |1 - 0.8|)
    assert s["ece"] == pytest.approx((2 * 0.4 + 0.4 + 0.2) / 4)
    assert s["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.1, 0.6, 0.8])))
    assert s["brier"] == pytest.approx(np.mean([0.02, 1.62, 0.32, 0.08]))
    bins = calibration.reliability(probs.max(1), probs.argmax(1) == y, bins=10)
    assert bins.to_dict("list") == {
        "confidence": pytest.approx([0.6, 0.8, 0.9]),
        "accuracy": [1.0, 1.0, 0.5],
        "count": [1, 1, 2],
    }


def test_selective_prediction_answers_the_most_confident_first():
    confidence = np.array([0.95, 0.9, 0.85, 0.7, 0.65, 0.55, 0.5, 0.45, 0.4, 0.35])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    curve = calibration.coverage_curve(confidence, correct, points=10)
    assert curve["coverage"].tolist() == pytest.approx(np.arange(1, 11) / 10)
    assert curve["accuracy"].iloc[3] == 1.0 and curve["accuracy"].iloc[-1] == pytest.approx(0.6)
    s = calibration.selective(confidence, correct)
    assert s["at_coverage"]["50%"] == {"accuracy": pytest.approx(0.8), "min_confidence": 0.65}
    assert s["at_confidence"]["0.6"] == {"coverage": pytest.approx(0.5), "accuracy": pytest.approx(0.8)}
    assert s["at_confidence"]["0.9"] == {"coverage": pytest.approx(0.2), "accuracy": 1.0}


def test_accuracy_per_group_names_the_worst_group_and_the_spread_over_people():
    attributes = pd.DataFrame(
        {
            "subject": ["a", "a", "b", "b", "c", "c"],
            "sex": ["F", "F", "M", "M", "F", "F"],
            "angle": [""] * 6,
            "session": ["A"] * 6,
        }
    )
    g = groups.by_group([1, 1, 0, 1, 0, 0], attributes)
    assert set(g) == {"subject", "sex"}  # nothing known of angle; one session is no comparison
    assert g["sex"]["groups"] == {"F": {"accuracy": 0.5, "count": 4}, "M": {"accuracy": 0.5, "count": 2}}
    assert g["subject"] == {
        "worst": "c",
        "worst_accuracy": 0.0,
        "best": "a",
        "best_accuracy": 1.0,
        "gap": 1.0,
        "people": 3,
        "median_accuracy": 0.5,
        "images_per_person": 2.0,
    }
    rows = groups.table([1, 1, 0, 1, 0, 0], attributes)
    assert rows[rows["attribute"] == "subject"]["group"].tolist() == ["c", "b", "a"]
