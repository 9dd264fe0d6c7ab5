"""The real `dvc repro` / `dvc exp run` in a temporary git repository, on a tiny demo set."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY, make_repo, run

from fer.checkpoint import Checkpoint, load_model
from fer.data.cache import load_split
from fer.evaluation.fold_stats import headline
from fer.evaluation.metrics import HEADLINE
from fer.inference import view_logits
from fer.training.calibrate import fit_temperature
from fer.use.predict import OnnxModel, TorchModel

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("repo"), TINY)
    run(root, "dvc", "repro")
    return root


def test_repro_produces_metrics_plots_and_an_honest_split(repo):
    m = json.loads((repo / "metrics/details/evaluate.json").read_text())
    for key in ("accuracy", "macro_f1", "balanced_accuracy", "majority_baseline"):
        assert 0 <= m[key] <= 1
    assert set(m["per_class"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert m["accuracy_by_angle"].keys() == {"S"}
    split = json.loads((repo / "metrics/details/split.json").read_text())
    assert split["protocol"] == "subject-disjoint" and split["subject_overlap"] == 0
    manifest = pd.read_csv(repo / "data/split/manifest.csv")
    assert manifest.groupby("subject")["split"].nunique().max() == 1
    assert len(pd.read_csv(repo / "plots/confusion.csv")) == m["test_images"] == split["test_images"]
    assert list(pd.read_csv(repo / "metrics/train/plots/metrics/val_acc.tsv", sep="\t")["step"]) == [1, 2]
    train = json.loads((repo / "metrics/details/train.json").read_text())
    assert train["epochs_run"] == 2 and 1 <= train["best_epoch"] <= 2 and train["threads"] >= 1
    for png in ("confusion.png", "accuracy.png", "loss.png"):
        assert (repo / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((repo / "metrics/details/export.json").read_text())["onnx_max_abs_diff"] <= 1e-4
    assert (repo / "models/model.onnx").stat().st_size > 0
    card = (repo / "models/MODEL_CARD.md").read_text()
    assert "subject-disjoint" in card and f"| {m['accuracy']:.4f} |" in card
    # whole images: the framing preprocess measured rides with the model, for predict to frame alike
    framing = json.loads((repo / "data/prepared/meta.json").read_text())["framing"]
    assert torch.load(repo / "models/best.pt", weights_only=True)["data_config"]["framing"] == framing
    assert OnnxModel(repo / "models/model.onnx").data_config["framing"] == framing
    assert json.loads((repo / "metrics/details/preprocess.json").read_text())["framing"] == framing
    shown = json.loads(run(repo, "dvc", "plots", "show", "--json").stdout)["data"]
    rows = {name: shown[name][0]["content"]["data"]["values"] for name in ("plots/confusion.csv", "accuracy", "loss")}
    assert len(rows["plots/confusion.csv"]) == m["test_images"]
    for curve in ("train_acc", "val_acc"):  # one point per epoch, the epoch on x
        assert sorted(int(r["step"]) for r in rows["accuracy"] if curve in r) == [1, 2]
    assert shown["accuracy"][0]["content"]["encoding"]["x"]["title"] == "epoch"


def test_dvc_compares_a_headline_that_fits_a_terminal_and_the_details_hold_the_rest(repo):
    """`dvc metrics show` (and `dvc exp show`) print every key of every metrics file as a column
    of one table: a few flat headline keys, within 120 columns; every other figure waits in
    metrics/details/."""
    (workspace,) = json.loads(run(repo, "dvc", "metrics", "show", "--json").stdout).values()
    shown = workspace["data"]
    assert {path: set(f["data"]) for path, f in shown.items()} == {
        "metrics/split.json": {"subject_overlap"},
        "metrics/train/metrics.json": {"best_epoch", "train_seconds"},  # not dvclive's last-epoch summary
        "metrics/metrics.json": {"accuracy", "macro_f1", "ece", "nll"},
        "metrics/cv.json": set(),  # no folds
    }
    assert all(isinstance(v, int | float) for f in shown.values() for v in f["data"].values())
    table = run(repo, "dvc", "metrics", "show", env={"COLUMNS": "120"}).stdout.splitlines()
    assert len(table) == 5 and max(map(len, table)) <= 120, "\n".join(table)
    details = json.loads((repo / "metrics/details/evaluate.json").read_text())
    assert json.loads((repo / "metrics/metrics.json").read_text()) == {k: details[k] for k in HEADLINE}
    assert details["per_class"]["happy"].keys() == {"precision", "recall", "f1", "support"}
    assert {"calibration", "selective", "groups", "accuracy_by_angle", "brier", "test_images"} <= details.keys()
    train = json.loads((repo / "metrics/details/train.json").read_text())
    assert json.loads((repo / "metrics/train/metrics.json").read_text()) == {
        k: train[k] for k in ("best_epoch", "train_seconds")
    }
    split = json.loads((repo / "metrics/details/split.json").read_text())
    assert split["train_images"] > 0 and split["class_map"] and split["subject_overlap"] == 0


def test_repro_reports_calibration_abstaining_and_who_the_model_fails(repo):
    m = json.loads((repo / "metrics/details/evaluate.json").read_text())
    cal = m["calibration"]
    assert cal["method"] == "temperature" and cal["temperature"] > 0 and cal["bins"] == 15
    for when in ("uncalibrated", "calibrated"):
        assert set(cal[when]) == {"ece", "nll", "brier", "accuracy"} and 0 <= cal[when]["ece"] <= 1
    assert {k: m[k] for k in ("ece", "nll", "brier", "accuracy")} == cal["calibrated"]  # flat: what a user gets
    assert set(m["selective"]["at_coverage"]) == {"90%", "80%", "50%"} and "0.6" in m["selective"]["at_confidence"]
    # the demo's people are known, and their sex, session and angle: accuracy per group of each
    # that the test split holds two or more of (this tiny split tests one person, in two sessions)
    test = pd.read_csv(repo / "data/split/manifest.csv").query("split == 'test'")
    varies = {c for c in ("subject", "sex", "session", "angle") if test[c].nunique() > 1}
    assert set(m["groups"]) == varies and "session" in varies
    assert m["groups"]["session"]["groups"].keys() == {"A", "B"}
    assert sum(g["count"] for g in m["groups"]["session"]["groups"].values()) == m["test_images"]
    groups = pd.read_csv(repo / "plots/groups.csv")
    assert set(groups["attribute"]) == varies
    # the temperature was fitted on the val split, never on test
    ckpt = Checkpoint.load(repo / "models/best.pt")
    manifest = pd.read_csv(repo / "data/split/manifest.csv")
    assert ckpt.calibration == {
        "method": "temperature",
        "fitted_on": "val",
        "images": (manifest["split"] == "val").sum(),
    }
    model, _ = load_model(repo / "models/best.pt")
    fitted = {}
    for split in ("val", "test"):
        images, facts = load_split(repo / "data/prepared", manifest, split)
        fitted[split] = fit_temperature(
            view_logits(model, images, ckpt.data_config, torch.device("cpu"), tta="flip"), facts["target"]
        )
    assert ckpt.temperature["flip"] == pytest.approx(fitted["val"]) and fitted["test"] != pytest.approx(fitted["val"])
    for png in ("reliability.png", "coverage.png"):
        assert (repo / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    shown = json.loads(run(repo, "dvc", "plots", "show", "--json").stdout)["data"]
    reliability = shown["reliability"][0]["content"]["data"]["values"]
    assert {r["filename"] for r in reliability} == {"uncalibrated.csv", "calibrated.csv"}  # before and after
    assert len(shown["plots/coverage.csv"][0]["content"]["data"]["values"]) == len(
        pd.read_csv(repo / "plots/coverage.csv")
    )
    card = (repo / "models/MODEL_CARD.md").read_text()
    assert "## How far the probabilities can be trusted" in card and "## Where it does worse" in card
    # the ONNX file and the checkpoint give the same calibrated probabilities
    images, _ = load_split(repo / "data/prepared", manifest, "test")
    np.testing.assert_allclose(
        OnnxModel(repo / "models/model.onnx")(images.astype(np.float32)),
        TorchModel(repo / "models/best.pt", "cpu", "flip")(images),
        atol=1e-4,
    )


def test_continuing_from_the_last_model_reruns_training_only_and_keeps_everything(repo):
    # DVC deletes a stage's outputs before running it: models/best.pt cannot be the start of
    # the run that rewrites it. The check stage says so before train has deleted anything.
    before = {
        f: (repo / f).read_bytes()
        for f in ("models/best.pt", "metrics/train/metrics.json", "metrics/train/plots/metrics/val_acc.tsv")
    }
    p = run(repo, "dvc", "exp", "run", "-S", "train.init_from=models/best.pt", check=False)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "cp models/best.pt models/init.pt" in out and "Traceback" not in out
    assert {f: (repo / f).read_bytes() for f in before} == before
    shutil.copy(repo / "models/best.pt", repo / "models/init.pt")
    metrics_before = json.loads((repo / "metrics/metrics.json").read_text())
    out = run(repo, "dvc", "exp", "run", "-S", "train.init_from=models/init.pt", "-S", "train.epochs=1").stdout
    # a train param changed: training and what follows run again, the data stages do not
    for stage in ("download", "split", "preprocess"):
        assert f"Stage '{stage}' didn't change, skipping" in out
    for stage in ("train", "evaluate", "plots"):
        assert f"Running stage '{stage}'" in out
    for stage in ("cv", "cv_report"):  # split.folds is 0: cross-validation costs nothing
        assert f"Stage '{stage}' didn't change, skipping" in out
    assert len(pd.read_csv(repo / "metrics/train/plots/metrics/val_acc.tsv", sep="\t")) == 1
    assert json.loads((repo / "metrics/metrics.json").read_text()) != metrics_before
    assert "models/init.pt" in run(repo, "dvc", "exp", "show", "--json").stdout
    assert "metrics/metrics.json" in run(repo, "dvc", "metrics", "diff", "--json").stdout


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.source=no/such/KDEF", "data.source 'no/such/KDEF' does not exist"),
        ("train.model=densenet12", "train.model 'densenet12' is not a timm model; did you mean densenet121"),
        ("train.weights=params.yaml", "train.weights 'params.yaml' could not be loaded into test_resnet"),
    ],
)
def test_a_wrong_source_model_or_weights_file_stops_before_any_stage_and_keeps_all(repo, override, message):
    def made():
        return {p: p.read_bytes() for d in ("data/raw", "models") for p in (repo / d).rglob("*") if p.is_file()}

    before, params = made(), (repo / "params.yaml").read_text()
    p = run(repo, "dvc", "exp", "run", "-S", override, check=False)
    (repo / "params.yaml").write_text(params)  # a failed run leaves the override in params.yaml
    out = p.stdout + p.stderr
    assert p.returncode != 0 and message in out and "Traceback" not in out
    assert "params.yaml still holds the values this run was given" in out
    assert "Running stage 'download'" not in out and "Running stage 'train'" not in out
    assert made() == before


def test_a_misspelt_param_stops_the_experiment_and_names_it(repo):
    # DVC refuses `-S trian.lr=1` itself, but `+trian.lr=1` (or a hand edit) goes through to us.
    params = (repo / "params.yaml").read_text()
    p = run(repo, "dvc", "exp", "run", "-S", "+trian.lr=1", check=False)
    (repo / "params.yaml").write_text(params)  # a failed run leaves the override in params.yaml
    assert p.returncode != 0
    assert "trian: unknown key (did you mean 'train'?)" in p.stdout + p.stderr
    assert "git checkout params.yaml" in p.stdout + p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_default_recipe_without_kaggle_credentials_stops_fast_with_the_fix(tmp_path):
    root = make_repo(tmp_path / "repo", None)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "KAGGLE_USERNAME": "",
        "KAGGLE_KEY": "",
        "KAGGLE_API_TOKEN": "",
        "KAGGLEHUB_CACHE": str(tmp_path / "cache"),
    }
    p = run(root, "dvc", "repro", check=False, env=env)
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert "could not download Kaggle dataset 'tom99763/testtt'" in out
    assert "No Kaggle credentials were found" in out and "data.source=demo" in out


def test_numbered_class_folders_are_read_with_their_class_map_and_people_apart(tmp_path, demo_raw):
    # A copy in circulation: "1 - Happy" ... "7 - Neutral", each person's id in the file name.
    # (What follows the split is the same for every layout: the other tests train it.)
    from fer.data.kdef import parse_name

    numbered = {
        "happy": "1 - Happy",
        "sad": "2 - Sad",
        "angry": "3 - Angry",
        "surprise": "4 - Surprise",
        "fear": "5 - Fear",
        "disgust": "6 - Disgust",
        "neutral": "7 - Neutral",
    }
    tree = tmp_path / "photos"
    for photo in demo_raw.rglob("*.JPG"):
        (tree / numbered[parse_name(photo.name)["label"]]).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, tree / numbered[parse_name(photo.name)["label"]] / photo.name)
    root = make_repo(
        tmp_path / "repo",
        {**TINY, "data": {"source": str(tree), "format": "folders", "subject_pattern": r"^[AB]([FM]\d\d)"}},
    )
    run(root, "dvc", "repro", "split")
    split = json.loads((root / "metrics/details/split.json").read_text())
    assert split["class_map"] == {folder: label for label, folder in sorted(numbered.items(), key=lambda p: p[1])}
    assert split["protocol"] == "subject-disjoint" and split["subject_overlap"] == 0
    assert set(pd.read_csv(root / "data/split/manifest.csv")["label"]) == set(numbered)


def test_the_demo_trains_on_aligned_face_crops(tmp_path):
    repo = make_repo(tmp_path, TINY)
    p = run(
        repo,
        "dvc",
        "exp",
        "run",
        "-S",
        "preprocess.face_crop=true",
        "-S",
        "preprocess.align=true",
        "-S",
        "data.demo_size=[96,128]",
    )
    assert "Running stage 'preprocess'" in p.stdout and "Running stage 'export'" in p.stdout
    pre = json.loads((repo / "metrics/details/preprocess.json").read_text())
    faces = pd.read_csv(repo / "data/prepared/faces.csv")
    assert pre["face_found"] + pre["no_face"] == len(faces) == pre["decoded"] and pre["no_face_skipped"] == 0
    assert pre["face_found"] >= 0.95 * len(faces)  # the straight demo faces: all but a few are found
    ckpt = Checkpoint.load(repo / "models/best.pt")
    assert ckpt.data_config["face"]["margin"] == 0.2 and ckpt.data_config["face"]["no_face"] == "keep"
    assert ckpt.data_config["face"]["align"] is True  # so fer-predict and the ONNX file align too
    assert OnnxModel(repo / "models/model.onnx").data_config["face"] == ckpt.data_config["face"]
    assert "aligned: eyes level" in (repo / "models/MODEL_CARD.md").read_text()
    assert 0 <= json.loads((repo / "metrics/metrics.json").read_text())["accuracy"] <= 1


def test_cross_validation_from_the_single_split_and_back(repo):
    shipped = (repo / "models/best.pt").read_bytes()
    out = run(repo, "dvc", "exp", "run", "-n", "cv-lr-1e-3", "-S", "split.folds=3").stdout
    for stage in ("preprocess", "train", "evaluate"):  # the single split is unchanged: only the folds run
        assert f"Stage '{stage}' didn't change, skipping" in out
    assert "Running stage 'cv'" in out and "Running stage 'cv_report'" in out
    cv = json.loads((repo / "metrics/details/cv.json").read_text())
    manifest = pd.read_csv(repo / "data/split/manifest.csv")
    assert cv["folds"] == 3 and cv["protocol"] == "3-fold, subject-disjoint"
    for metric in ("accuracy", "macro_f1", "balanced_accuracy"):
        s, values = cv[metric], cv["per_fold"][metric]
        assert len(values) == 3 and s["min"] == min(values) and s["max"] == max(values)
        assert s["ci95_low"] <= s["mean"] <= s["ci95_high"] and s["std"] >= 0
    # every image tested once, in the fold of its subject
    predictions = pd.read_csv(repo / "metrics/cv/predictions.csv")
    assert sorted(predictions["path"]) == sorted(manifest["path"]) and sum(cv["per_fold"]["test_images"]) == len(
        manifest
    )
    subject = predictions["path"].map(manifest.set_index("path")["subject"])
    assert predictions.groupby(subject)["fold"].nunique().max() == 1
    pooled = pd.read_csv(repo / "plots/cv/confusion.csv")
    assert len(pooled) == len(manifest) and (pooled["actual"] == pooled["predicted"]).mean() == pytest.approx(
        cv["pooled"]["accuracy"]
    )
    assert (repo / "plots/cv/folds.png").read_bytes()[:4] == b"\x89PNG" and not (repo / "models/cv-state").exists()
    assert (repo / "models/best.pt").read_bytes() == shipped  # the single-split model still ships
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    exps = {r["name"]: r["data"] for e in shown for x in e.get("experiments") or [] for r in x["revs"]}
    # DVC compares the folds' mean and its interval, beside the single split's accuracy
    assert exps["cv-lr-1e-3"]["metrics"]["metrics/cv.json"]["data"] == headline(cv)
    # calibration pooled over the folds, each fold calibrated on its own val images
    cal = cv["calibration"]
    assert cal["temperature"]["min"] > 0 and set(cal["calibrated"]) == {"ece", "nll", "brier"}
    assert (repo / "plots/cv/reliability.png").read_bytes()[:4] == b"\x89PNG"
    # an experiment read by its name (paired folds; the comparison of methods is test_cv's)
    compared = run(
        repo,
        sys.executable,
        "-m",
        "fer.evaluation.compare",
        "cv-lr-1e-3",
        "metrics/details/cv.json",
        env={"PYTHONPATH": str(repo / "src")},
    ).stdout
    assert "A = cv-lr-1e-3, B = metrics/details/cv.json: 3 paired folds" in compared and "no difference" in compared


def test_a_split_change_decodes_nothing_again(repo):
    """Comparing protocols costs training only: the cache is built once per size, channels
    and crop, and every split (another seed, the leaky one) chooses its rows from it."""
    cache = (repo / "data/prepared/images.npy").read_bytes()
    out = run(
        repo, "dvc", "exp", "run", "-S", "split.group_by=none", "-S", "split.seed=7", "-S", "split.folds=0"
    ).stdout
    assert "Running stage 'split'" in out and "Stage 'preprocess' didn't change, skipping" in out
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    assert (repo / "data/prepared/images.npy").read_bytes() == cache
    # back from cross-validation (test_cross_validation ran folds): nothing left of it
    assert json.loads((repo / "metrics/details/cv.json").read_text()) == {"folds": 0}
    assert json.loads((repo / "metrics/cv.json").read_text()) == {}  # no column in `dvc metrics show`
    assert len(pd.read_csv(repo / "plots/cv/confusion.csv")) == 0  # DVC draws nothing for it
    assert not list((repo / "plots/cv").glob("*.png"))  # nor a picture saying there is nothing
    split = json.loads((repo / "metrics/details/split.json").read_text())
    assert split["protocol"] == "image-level (subjects leak)" and split["subject_overlap"] > 0
    m = json.loads((repo / "metrics/details/evaluate.json").read_text())
    assert m["test_images"] == split["test_images"]


def test_the_model_is_fetched_by_name_from_a_clone(repo, tmp_path):
    """dvc.yaml's artifacts: with a version tagged (DVC's model registry form), `dvc artifacts get`
    fetches the exported model by name from the repository, offline."""
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "a trained model")
    run(repo, "git", "tag", "-a", "expression-model@v1.0.0", "-m", "first model")
    run(tmp_path, "dvc", "artifacts", "get", str(repo), "expression-model", "-o", "model.onnx")
    assert (tmp_path / "model.onnx").read_bytes() == (repo / "models/model.onnx").read_bytes()
    assert (
        OnnxModel(tmp_path / "model.onnx").classes == torch.load(repo / "models/best.pt", weights_only=True)["classes"]
    )
    missing = run(tmp_path, "dvc", "artifacts", "get", str(repo), "expression-checkpoint", check=False)
    assert missing.returncode != 0  # no version of it was registered
