import pytest
import yaml
from helpers import shipped_params_text
from pydantic import ValidationError

from fer import FerError
from fer.params import ParamsError, load_params, parse_params


def test_shipped_params_are_the_reference_recipe():
    p = parse_params(yaml.safe_load(shipped_params_text()))
    assert p.data.source == "kaggle:tom99763/testtt" and p.data.format == "kdef"
    assert (p.train.model, p.train.pretrained, p.preprocess.size) == ("densenet121", True, 224)
    assert (p.train.lr, p.train.batch_size, p.train.epochs) == (1e-4, 8, 50)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"trian": {"lr": 1}}, "trian: unknown key (did you mean 'train'?)"),
        ({"train": {"lrr": 1}}, "train.lrr: unknown key (did you mean 'lr'?)"),
        ({"train": {"augment": {"flipp": True}}}, "train.augment.flipp: unknown key (did you mean 'flip'?)"),
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0"),
        ({"train": {"epochs": 0}}, "train.epochs: Input should be greater than or equal to 1"),
        ({"train": {"batch_size": "eight"}}, "train.batch_size: Input should be a valid integer"),
        ({"split": {"val": 0.5, "test": 0.6}}, "val + test = 1.1 leaves nothing to train on"),
        ({"split": {"group_by": "person"}}, "split.group_by: Input should be 'subject' or 'none'"),
        ({"split": {"folds": 1}}, "split.folds: folds must be 0 (one train/val/test split), an integer k >= 2"),
        ({"split": {"folds": "loo"}}, "or loso (leave one subject out) (got 'loo')"),
        ({"data": {"source": "kaggle:no-slash"}}, "is not of the form kaggle:<owner>/<dataset>"),
        ({"data": {"demo_size": [0, 0]}}, "data.demo_size.0: Input should be greater than or equal to 32"),
        (
            {"data": {"format": "folders", "class_map": "raf"}},
            "data.class_map: 'raf' is neither a preset (rafdb, affectnet, fer2013, ckplus) nor a mapping",
        ),
        (
            {"data": {"format": "csv", "class_map": {1: "happy", "01": "sad"}}},
            "data.class_map: {1: 'happy', '01': 'sad'} "
            "needs one non-empty class per folder name or code, each name or code once",
        ),
        (
            {"data": {"format": "kdef", "class_map": "rafdb"}},
            "class_map is for data.format folders, csv, ckplus or filenames",
        ),
        (
            {"data": {"format": "ckplus", "ckplus_frames": 0}},
            "data.ckplus_frames: Input should be greater than or equal",
        ),
        ({"data": {"label_csv": {"column": "x"}}}, "data.label_csv.column: unknown key"),
        ({"preprocess": {"face_margin": -0.1}}, "preprocess.face_margin: Input should be greater than or equal to 0"),
        ({"preprocess": {"no_face": "drop"}}, "preprocess.no_face: Input should be 'keep' or 'skip'"),
        ({"train": {"freeze_epochs": 2, "devices": 2}}, "freeze_epochs (2) trains a changing set of weights"),
    ],
)
def test_bad_params_name_the_key(raw, expected):
    with pytest.raises(ParamsError) as e:
        parse_params(raw)
    assert expected in str(e.value)


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(ParamsError) as e:
        parse_params({"train": {"lr": 0, "epochs": -1}, "oops": 1})
    msg = str(e.value)
    assert "3 bad value(s)" in msg and "train.lr" in msg and "train.epochs" in msg and "oops" in msg


def test_params_are_frozen():
    p = parse_params({})
    with pytest.raises(ValidationError, match="frozen"):
        p.train.lr = 1.0


def test_yaml_scientific_notation_without_dot_is_a_float(tmp_path):
    # YAML 1.1 (PyYAML) reads `1e-4` as a string; it must still mean 1e-4.
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  lr: 1e-4\n")
    assert load_params(f).train.lr == 1e-4


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, "not found: run the stages from the project root"),
        ("train: {lr: 1e-4\n", "is not valid YAML"),
        ("- train\n", "must hold sections"),
    ],
)
def test_a_missing_or_unreadable_params_file_is_a_user_error(tmp_path, text, expected):
    f = tmp_path / "params.yaml"
    if text is not None:
        f.write_text(text)
    with pytest.raises(FerError, match=expected):
        load_params(f)


def test_list_params_survive_dvc_setting_them_and_back(tmp_path):
    """`dvc exp run -S 'split.angles=[S]'`, then `-S 'split.angles=[]'`: DVC rewrites params.yaml
    each time, and must leave it readable and as shipped."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    path.write_text(shipped_params_text())
    for override in [
        "split.angles=[S]",
        "split.angles=[]",
        "data.classes=[happy,sad]",
        "data.classes=[]",
        "data.demo_angles=[S]",
        "data.demo_angles=[HL,S,HR]",
        "crossdataset.sets={}",
    ]:
        apply_overrides(str(path), [override])
    assert yaml.safe_load(path.read_text()) == yaml.safe_load(shipped_params_text())
