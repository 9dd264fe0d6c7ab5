"""Cross-validation: a fold trains and tests like the single split, resumes, and the folds' spread and
the paired comparison say what the numbers allow."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer import FerError
from fer.data.labels import CLASSES
from fer.data.split import assign_folds
from fer.evaluation import folds as cv
from fer.evaluation.compare import compare, main, read_cv, report
from fer.evaluation.fold_stats import fold_table, headline, paired, summarize, t_interval
from fer.params import Params


@pytest.fixture
def tiny_cv(tiny_train):
    """6 people x 7 classes x 2 images of 32 px noise with a class-coloured corner, in 3 folds."""
    rng = np.random.default_rng(0)
    meta = pd.DataFrame(
        [
            {"path": f"S{s}_{c}_{i}.png", "subject": f"S{s}", "label": c, "target": t, "angle": "S"}
            for s in range(6)
            for t, c in enumerate(CLASSES)
            for i in range(2)
        ]
    )
    images = rng.integers(0, 255, (len(meta), 3, 32, 32), dtype=np.uint8)
    images[:, :, :8, :8] = (meta["target"].to_numpy() * 36)[:, None, None, None]
    rows, _ = assign_folds(meta, 3, val=0.15, seed=0)
    folds = rows.assign(path=meta["path"].to_numpy()[rows["image"]])
    params = Params(train=tiny_train.model_copy(update={"epochs": 1}))
    cache_meta = {"classes": list(CLASSES), "size": 32, "channels": 3}
    return params, images, meta, folds, cache_meta


def test_a_fold_is_tested_on_its_own_people_and_a_finished_fold_is_kept(tiny_cv, tmp_path, monkeypatch):
    params, images, meta, folds, cache_meta = tiny_cv
    rows = cv.fold_rows(folds, meta, 1)
    assert set(meta["subject"].iloc[rows["test"]]).isdisjoint(meta["subject"].iloc[np.r_[rows["train"], rows["val"]]])
    result = cv.run_fold(params, images, meta, rows, 1, cache_meta, tmp_path)
    assert result["predictions"]["path"] == meta["path"].iloc[rows["test"]].tolist()
    assert result["metrics"]["test_images"] == len(rows["test"]) and 0 <= result["metrics"]["accuracy"] <= 1
    assert result["metrics"]["calibration"]["method"] == "temperature"  # calibrated on the fold's val images
    assert len(result["predictions"]["confidence"]) == len(rows["test"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold-1.json"]  # no checkpoint or train state left

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(cv, "train_run", no_training)
    assert cv.run_fold(params, images, meta, rows, 1, cache_meta, tmp_path) == result
    other = Params(train=params.train.model_copy(update={"lr": 0.01}))
    with pytest.raises(AssertionError, match="trained again"):  # other params: the kept result is not theirs
        cv.run_fold(other, images, meta, rows, 1, cache_meta, tmp_path)


def answers(actual, predicted, confidence=0.9):
    """The cv stage's pooled test predictions: truth, answer and how sure, before and after calibration."""
    return pd.DataFrame(
        {"actual": actual, "predicted": predicted, "confidence": confidence, "confidence_uncalibrated": confidence}
    )


def fake_folds(accuracies):
    return [
        {
            "metrics": {
                "accuracy": a,
                "macro_f1": a - 0.1,
                "balanced_accuracy": a - 0.05,
                "test_images": 10,
                "calibration": {
                    "temperature": 1.5 + i / 10,
                    "uncalibrated": {"nll": 1.0 + i, "brier": 0.5},
                    "calibrated": {"nll": 0.8, "brier": 0.4 + i / 10},
                },
            },
            "best_epoch": 3,
        }
        for i, a in enumerate(accuracies)
    ]


def test_the_summary_gives_mean_spread_interval_pooled_and_per_fold_values():
    predictions = pd.DataFrame(
        {
            "actual": ["happy"] * 8 + ["sad"] * 2,
            "predicted": ["happy"] * 10,
            "confidence": [0.8] * 10,
            "confidence_uncalibrated": [1.0] * 10,
        }
    )
    cv = summarize(fake_folds([0.6, 0.7, 0.8]), predictions, ["happy", "sad"], {"protocol": "3-fold"}, "abc")
    acc = cv["accuracy"]
    assert acc["mean"] == pytest.approx(0.7) and acc["std"] == pytest.approx(0.1)
    assert (acc["min"], acc["max"]) == (0.6, 0.8)
    # t with 2 degrees of freedom: 0.7 +- 4.303 * 0.1 / sqrt(3)
    assert acc["ci95_low"] == pytest.approx(0.7 - 0.2484, abs=1e-3) and acc["ci95_high"] == pytest.approx(
        0.9484, abs=1e-3
    )
    assert cv["pooled"]["accuracy"] == 0.8 and cv["pooled"]["balanced_accuracy"] == 0.5
    assert cv["per_fold"]["accuracy"] == [0.6, 0.7, 0.8] and cv["folds"] == 3 and cv["folds_digest"] == "abc"
    assert len(fold_table(cv)) == 9
    # calibration over every fold's test images: ECE from the pooled answers, NLL and Brier as means over images
    cal = cv["calibration"]
    assert cal["uncalibrated"] == {"ece": pytest.approx(0.2), "nll": pytest.approx(2.0), "brier": pytest.approx(0.5)}
    assert cal["calibrated"] == {
        "ece": pytest.approx(0.0, abs=1e-6),
        "nll": pytest.approx(0.8),
        "brier": pytest.approx(0.5),
    }
    # what DVC compares: the mean and its interval, under the details' names
    assert headline(cv) == {
        "folds": 3,
        "accuracy": {"mean": acc["mean"], "ci95_low": acc["ci95_low"], "ci95_high": acc["ci95_high"]},
        "macro_f1": {"mean": cv["macro_f1"]["mean"]},
    }
    assert headline(summarize([], predictions.iloc[:0], ["happy", "sad"], {}, "")) == {}  # no folds: no column
    assert cal["temperature"]["mean"] == pytest.approx(1.6)
    assert summarize([], predictions.iloc[:0], ["happy"], {}, "") == {"folds": 0}
    assert t_interval([0.5, 0.5]) == (0.5, 0.5)


def test_a_consistent_gain_is_beyond_the_noise_and_a_mixed_one_is_not():
    a = [0.60, 0.65, 0.70, 0.62, 0.68]
    steady = paired(a, [x + 0.03 + 0.005 * i for i, x in enumerate(a)])
    assert steady["ci95_low"] > 0 and steady["t_test_p"] < 0.01 and steady["b_wins"] == 5
    mixed = paired(a, [0.66, 0.60, 0.75, 0.58, 0.71])
    assert mixed["ci95_low"] < 0 < mixed["ci95_high"] and mixed["t_test_p"] > 0.05
    assert paired(a, a)["t_test_p"] is None and paired(a, a)["diff"] == 0


def test_compare_reads_two_runs_and_refuses_different_folds(tmp_path, capsys):
    def cv_file(name, accuracies, digest="same"):
        cv = summarize(
            fake_folds(accuracies),
            answers(["happy", "sad"], ["happy", "sad"]),
            ["happy", "sad"],
            {"protocol": "5-fold, subject-disjoint"},
            digest,
        )
        (tmp_path / name).write_text(json.dumps(cv))
        return str(tmp_path / name)

    a = cv_file("a.json", [0.60, 0.65, 0.70, 0.62, 0.68])
    b = cv_file("b.json", [0.64, 0.69, 0.75, 0.66, 0.73])
    main([a, b, "--json", str(tmp_path / "diff.json")])
    out = capsys.readouterr().out
    assert "accuracy: B is better beyond the folds' noise" in out and "5/0" in out
    assert json.loads((tmp_path / "diff.json").read_text())["accuracy"]["diff"] == pytest.approx(0.044)
    assert "no difference beyond the folds' noise" in report(compare(read_cv(a), read_cv(a)), a, a)
    with pytest.raises(FerError, match="different folds"):
        compare(read_cv(a), read_cv(cv_file("c.json", [0.6] * 5, digest="other")))
    (tmp_path / "none.json").write_text('{"folds": 0}')
    with pytest.raises(FerError, match="ran no cross-validation"):
        read_cv(str(tmp_path / "none.json"))
    (tmp_path / "headline.json").write_text(json.dumps(headline(json.loads(Path(a).read_text()))))
    with pytest.raises(FerError, match="headline only; name its details file"):
        read_cv(str(tmp_path / "headline.json"))


def test_the_summary_spreads_each_head_angle_over_folds():
    folds = fake_folds([0.6, 0.8])
    for f, (s, fl) in zip(folds, [(0.7, 0.5), (0.9, 0.7)]):
        f["metrics"]["accuracy_by_angle"] = {"S": s, "FL": fl}
    predictions = answers(["happy", "sad"], ["happy", "sad"])
    cv = summarize(folds, predictions, ["happy", "sad"], {}, "")
    assert cv["accuracy_by_angle"]["S"]["mean"] == pytest.approx(0.8)
    assert cv["accuracy_by_angle"]["FL"]["min"] == 0.5 and cv["accuracy_by_angle"]["FL"]["max"] == 0.7
    assert "accuracy_by_angle" not in summarize(fake_folds([0.6, 0.8]), predictions, ["happy", "sad"], {}, "")
