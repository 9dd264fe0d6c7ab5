"""Cross-dataset evaluation: a checkpoint scored on another dataset, classes it lacks kept apart."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import f1_score

from fer import FerError
from fer.checkpoint import Checkpoint, load_model
from fer.data.preprocess import load_image
from fer.evaluation.crossdataset import crossdataset, main
from fer.evaluation.metrics import HEADLINE
from fer.inference import predict
from fer.models import create, data_config
from fer.params import DataParams

SRC = Path(__file__).resolve().parents[1] / "src"
MODEL_CLASSES = ["angry", "happy", "neutral", "sad"]  # the model has no contempt; the data has no neutral
# CK+'s folder names, which the alias table maps to the model's classes; contempt it cannot.
FOLDERS = {"anger": "angry", "happiness": "happy", "sadness": "sad", "contempt": None}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck") / "ck"
    rng = np.random.default_rng(0)
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True)
        for s in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(
                root / folder / f"S{s:03d}_{folder}.png"
            )
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create("test_resnet", len(MODEL_CLASSES), 1)
    path = tmp_path_factory.mktemp("ckpt") / "other.pt"
    Checkpoint(
        weights=model.state_dict(),
        model_name="test_resnet",
        classes=MODEL_CLASSES,
        data_config=data_config(model, 32, 1),
        params={},
        epoch=1,
    ).save(path)
    return path


def test_classes_the_model_lacks_are_reported_apart_and_left_out_of_accuracy(dataset, checkpoint):
    data = DataParams(source=str(dataset), format="folders", subject_pattern=r"^(S\d+)_")
    result, confusion = crossdataset(checkpoint, data, tta="none", device="cpu", crops=True)

    # what the model says, face by face, through the preprocess stage's decoding
    model, ckpt = load_model(checkpoint)
    files = sorted(p for f, c in FOLDERS.items() if c for p in (dataset / f).iterdir())
    x = np.stack([load_image(f, 32, True) for f in files])
    pred = predict(model, x, ckpt.data_config, torch.device("cpu")).argmax(1).numpy()
    truth = np.array([MODEL_CLASSES.index(FOLDERS[f.parent.name]) for f in files])

    assert result["test_images"] == len(files) == 9
    assert result["accuracy"] == pytest.approx(float(np.mean(pred == truth)))
    assert result["macro_f1"] == pytest.approx(
        f1_score(truth, pred, labels=[0, 1, 3], average="macro", zero_division=0)
    )
    assert result["unknown_images"] == 3 and list(result["unknown_classes"]) == ["contempt"]
    assert result["unknown_classes"]["contempt"]["images"] == 3
    assert sum(result["unknown_classes"]["contempt"]["predicted"].values()) == 3
    assert result["shared_classes"] == ["angry", "happy", "sad"] and result["absent_classes"] == ["neutral"]
    assert {
        "accuracy",
        "macro_f1",
        "balanced_accuracy",
        "majority_baseline",
        "per_class",
        "dataset",
        "protocol",
    } <= result.keys()
    assert result["dataset"] == str(dataset) and result["protocol"] == "cross-dataset, all 12 images"
    assert len(confusion) == 9 and "contempt" not in set(confusion["actual"])
    # how far its probabilities hold on these faces, and on whom it fails (the set's people)
    assert {"ece", "nll", "brier", "selective"} <= result.keys() and result["temperature"] == 1.0
    assert result["groups"]["subject"]["people"] == 3 and set(result["groups"]) == {"subject"}


def test_the_command_reads_an_archive_and_writes_json_and_confusion_csv(dataset, checkpoint, tmp_path, capsys):
    archive = tmp_path / "ck.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(dataset, arcname="ck")
    out = tmp_path / "metrics" / "ck.json"
    main(
        [
            str(checkpoint),
            str(archive),
            "--subject-pattern",
            r"^(S\d+)_",
            "--split",
            "test",
            "--test",
            "0.3",
            "--val",
            "0.3",
            "--device",
            "cpu",
            "--crops",
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert result["protocol"] == "cross-dataset, test split (subject-disjoint, seed 42)"
    assert result["test_images"] + result["unknown_images"] == 4  # one person of three, 4 faces each
    assert out.with_suffix(".csv").read_text().startswith("actual,predicted,path\n")
    printed = capsys.readouterr().out
    assert "left out: contempt" in printed and f"accuracy {result['accuracy']:.4f}" in printed


def test_a_source_with_no_class_the_model_knows_is_an_error(tmp_path, checkpoint):
    (tmp_path / "contempt").mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 40), dtype=np.uint8)).save(
            tmp_path / "contempt" / f"{name}.png"
        )
    data = DataParams(source=str(tmp_path), format="folders", classes=("contempt",))
    with pytest.raises(FerError, match="none of the test classes .contempt. is one the model knows"):
        crossdataset(checkpoint, data, device="cpu")


@pytest.mark.parametrize(
    "case", ["text checkpoint", "bare weights", "out is a folder", "out beneath a file", "unknown format"]
)
def test_bad_arguments_end_in_one_line_naming_the_cause(dataset, checkpoint, tmp_path, capsys, case):
    (tmp_path / "notes.pt").write_text("not a model\n")
    torch.save(torch.load(checkpoint, weights_only=True)["model"], tmp_path / "weights.pt")
    args, expected = {
        "text checkpoint": ([tmp_path / "notes.pt", dataset], "is not a readable PyTorch checkpoint"),
        "bare weights": ([tmp_path / "weights.pt", dataset], "holds weights alone"),
        "out is a folder": ([checkpoint, dataset, "--out", tmp_path], "is a folder: name a file"),
        "out beneath a file": (
            [checkpoint, dataset, "--out", tmp_path / "notes.pt" / "x.json"],
            "is a file, so no folder",
        ),
        "unknown format": ([checkpoint, dataset, "--format", "nope"], "data.format"),
    }[case]
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    message = str(stop.value.code) + capsys.readouterr().err
    assert stop.value.code not in (0, None) and expected in message and "Traceback" not in message


def test_the_stage_scores_the_set_named_in_params(dataset, checkpoint, tmp_path):
    sets = {"ck": {"source": str(dataset), "subject_pattern": r"^(S\d+)_", "crops": True}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"crossdataset": {"sets": sets}, "evaluate": {"tta": "none"}}))
    cmd = [sys.executable, str(SRC / "crossdataset.py"), str(checkpoint)]
    done = subprocess.run(
        cmd + ["ck", "m/ck.json", "d/ck.json", "p/ck.csv"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "d/ck.json").read_text())
    assert result["name"] == "ck" and result["test_images"] == 9 and result["tta"] == "none"
    # DVC compares the evaluate stage's headline; the rest stays in the details
    assert json.loads((tmp_path / "m/ck.json").read_text()) == {k: result[k] for k in HEADLINE}
    assert (tmp_path / "p/ck.csv").is_file()
    wrong = subprocess.run(
        cmd + ["kdef", "m/x.json", "d/x.json", "p/x.csv"], cwd=tmp_path, capture_output=True, text=True
    )
    assert wrong.returncode == 1 and "crossdataset.sets has no set named 'kdef' (it has ck)" in wrong.stderr


def test_a_source_with_no_usable_picture_says_so(tmp_path, checkpoint):
    (tmp_path / "happy").mkdir()
    Image.new("L", (40, 40)).save(tmp_path / "happy" / "black.png")
    data = DataParams(source=str(tmp_path), format="folders")
    with pytest.raises(FerError, match="none of the 1 images could be used: 1 no picture"):
        crossdataset(checkpoint, data, device="cpu")


def test_scoring_gives_each_photo_the_label_fer_predict_gives(tmp_path):
    # photos (faces to find, and a wall without one) scored as a user's fer-predict would
    from fer.data import synthetic
    from fer.data.faces import margin_framing
    from fer.use.predict import TorchModel, predict_files

    synthetic.generate(tmp_path / "kdef", subjects=2, angles=("HL", "S"), size=(96, 128))
    wall = np.full((128, 96, 3), 150, dtype=np.uint8)
    wall[::16] = 60
    Image.fromarray(wall).save(tmp_path / "kdef" / "AF01" / "AF01HAFR.JPG")  # no face: no answer
    torch.manual_seed(0)
    model = create("test_resnet", 7, 3)
    classes = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    face = {"detector": "RetinaFace", "margin": 0.3, "no_face": "keep", "align": True, "framing": margin_framing(0.3)}
    checkpoint = tmp_path / "aligned.pt"
    Checkpoint(
        weights=model.state_dict(),
        model_name="test_resnet",
        classes=classes,
        data_config={**data_config(model, 32, 3), "face": face},
        params={},
        epoch=1,
    ).save(checkpoint)

    result, rows = crossdataset(checkpoint, DataParams(source=str(tmp_path / "kdef"), format="kdef"), device="cpu")
    faces, _ = predict_files(sorted((tmp_path / "kdef").rglob("*.JPG")), TorchModel(checkpoint, "cpu"))
    said = faces.sort_values("w").groupby("file").tail(1).set_index("file")["label"]
    assert len(said) == len(rows) - 1 == result["test_images"] - 1
    for r in rows.itertuples():
        assert r.predicted == said.get(str(tmp_path / "kdef" / r.path), "no face"), r.path
    assert result["no_face"] == 1 and rows.set_index("path").loc["AF01/AF01HAFR.JPG", "predicted"] == "no face"
    assert result["accuracy"] == pytest.approx(np.mean(rows["actual"] == rows["predicted"]))
    assert "largest face found" in result["faces"]
    frontal, rows = crossdataset(
        checkpoint, DataParams(source=str(tmp_path / "kdef"), format="kdef"), device="cpu", angles=("S",)
    )
    assert frontal["protocol"] == "cross-dataset, all 28 images at S" and all(rows["path"].str.endswith("S.JPG"))
