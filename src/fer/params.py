"""Typed, validated view of `params.yaml`.

Every stage calls `load_params()` before doing any work. The whole file is checked
(not only the stage's own section) because DVC accepts `-S trian.lr=1` silently: an
unknown key, a wrong type or an impossible value stops the stage with a message that
names the key.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fer import FerError
from fer.data.labels import CLASS_MAPS, KDEF_ANGLES, NAME_PATTERNS, label_key


class Section(BaseModel):
    # frozen: a stage cannot change its params behind DVC's back; forbid: typos are errors.
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelCsvParams(Section):
    """data.format=csv: which file and columns hold the labels ("" finds them by their usual names)."""

    file: str = ""
    path: str = ""
    label: str = ""
    subject: str = ""
    attributes: tuple[str, ...] = ()  # more columns to carry, each an attribute of the image (accuracy per group)


# data.format: how a dataset's files are read; each name has its reader in fer.data.formats.FORMATS
Format = Literal["kdef", "fer2013", "folders", "csv", "ckplus", "ferplus", "filenames"]


class DataParams(Section):
    source: str = "kaggle:tom99763/testtt"
    format: Format = "kdef"
    classes: tuple[str, ...] = ()
    class_map: str | dict[str | int, str] = ""
    label_csv: LabelCsvParams = LabelCsvParams()
    ckplus_frames: int = Field(3, ge=1)
    ckplus_neutral: bool = False
    subject_pattern: str = ""
    label_pattern: str = ""
    attributes: dict[str, str] = {}  # name -> regex whose one (group) in the image's path is its value
    ferplus_labels: Literal["majority", "distribution"] = "majority"
    demo_subjects: int = Field(24, ge=4, le=70)
    demo_angles: tuple[Literal[KDEF_ANGLES], ...] = ("HL", "S", "HR")
    demo_size: tuple[Annotated[int, Field(ge=32, le=2048)], Annotated[int, Field(ge=32, le=2048)]] = (96, 128)

    @model_validator(mode="after")
    def _check_source(self):
        if self.source.startswith("kaggle:") and not re.fullmatch(
            r"kaggle:[\w.-]+/[\w.-]+(/versions/\d+)?", self.source
        ):
            raise ValueError(f"source {self.source!r} is not of the form kaggle:<owner>/<dataset>[/versions/<n>]")
        if not self.source:
            raise ValueError("source is empty: give kaggle:<owner>/<dataset>, a local path, or demo")
        if self.class_map and self.format in ("kdef", "fer2013", "ferplus"):
            raise ValueError(
                f"class_map is for data.format folders, csv, ckplus or filenames; {self.format} has its own codes"
            )
        _check_pattern("subject_pattern", self.subject_pattern, "the subject id")
        if self.ferplus_labels == "distribution" and self.format != "ferplus":
            raise ValueError(
                "ferplus_labels distribution trains on annotators' votes, which format ferplus reads; "
                f"{self.format} has one label per image"
            )
        if self.format == "filenames" and not self.label_pattern:
            raise ValueError(
                f"format filenames needs label_pattern: a regex whose one (group) in the file name is the "
                f"label, or a preset ({', '.join(NAME_PATTERNS)})"
            )
        if self.label_pattern not in NAME_PATTERNS:
            _check_pattern("label_pattern", self.label_pattern, "the label")
        for name, pattern in self.attributes.items():
            if name in RESERVED_COLUMNS:
                raise ValueError(
                    f"attributes.{name}: {name} is the pipeline's own column; name the attribute otherwise"
                )
            _check_pattern(f"attributes.{name}", pattern, f"the {name} of each image")
        return self

    @field_validator("class_map")
    @classmethod
    def _check_class_map(cls, cmap):
        if isinstance(cmap, str) and cmap and cmap not in CLASS_MAPS:
            raise ValueError(
                f"{cmap!r} is neither a preset ({', '.join(CLASS_MAPS)}) nor a mapping of folder "
                "name or code to class, e.g. {1: surprise, 2: fear}"
            )
        if isinstance(cmap, dict):
            keys = [label_key(k) for k in cmap]
            if not all(keys) or not all(v.strip() for v in cmap.values()) or len(set(keys)) < len(keys):
                raise ValueError(
                    f"{cmap!r} needs one non-empty class per folder name or code, each name or code "
                    'once (or "" for none)'
                )
        return cmap


# columns of the image lists an attribute may not take (sex, session and angle it may fill in)
RESERVED_COLUMNS = ("path", "label", "subject", "official", "raw_label", "digest", "votes", "target", "split", "fold")


def _check_pattern(key: str, pattern: str, what: str) -> None:
    if not pattern:
        return
    try:
        groups = re.compile(pattern).groups
    except re.error as e:
        raise ValueError(f"{key} {pattern!r} is not a regular expression: {e}") from None
    if groups != 1:
        raise ValueError(f"{key} {pattern!r} needs exactly one (group), {what}")


class SplitParams(Section):
    group_by: Literal["subject", "none"] = "subject"
    val: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    seed: int = 42
    folds: int | str = 0  # 0: one split; k >= 2: k subject folds; "loso": leave one subject out
    angles: tuple[str, ...] = ()  # keep only these head angles (KDEF: FL HL S HR FR); (): all

    @field_validator("folds")
    @classmethod
    def _check_folds(cls, v):
        if v == "loso" or (isinstance(v, int) and (v == 0 or v >= 2)):
            return v
        raise ValueError(
            f"folds must be 0 (one train/val/test split), an integer k >= 2 (k-fold "
            f"cross-validation) or loso (leave one subject out) (got {v!r})"
        )

    @model_validator(mode="after")
    def _check_fractions(self):
        if self.val + self.test >= 1:
            raise ValueError(f"val + test = {self.val + self.test:g} leaves nothing to train on; keep it below 1")
        return self


class PreprocessParams(Section):
    size: int = Field(224, ge=16, le=1024)
    grayscale: bool = False
    face_crop: bool = False
    face_margin: float = Field(0.2, ge=0, le=1)
    no_face: Literal["keep", "skip"] = "keep"
    align: bool = False

    @model_validator(mode="after")
    def _check_align(self):
        if self.align and not self.face_crop:
            raise ValueError(
                "align levels each face the detector finds, so it needs face_crop: true (set both, or align: false)"
            )
        return self


class AugmentParams(Section):
    flip: bool = True
    rotation: float = Field(10, ge=0, le=180)
    scale: float = Field(0.1, ge=0, lt=1)
    translate: float = Field(0.05, ge=0, lt=0.5)
    color_jitter: float = Field(0.2, ge=0, le=1)
    erasing: float = Field(0.0, ge=0, le=1)


class TrainParams(Section):
    model: str = "densenet121"
    pretrained: bool = True
    weights: str = ""
    init_from: str = ""
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-4, gt=0, le=10)
    weight_decay: float = Field(0.01, ge=0)
    schedule: Literal["plateau", "onecycle"] = "plateau"
    lr_patience: int = Field(5, ge=0)
    lr_factor: float = Field(0.1, gt=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    mixup: float = Field(0.0, ge=0)
    cutmix: float = Field(0.0, ge=0)
    early_stopping: int = Field(0, ge=0)
    freeze_epochs: int = Field(0, ge=0)
    backbone_lr_scale: float = Field(1.0, gt=0, le=1)
    class_weights: Literal["none", "balanced"] = "none"
    augment: AugmentParams = AugmentParams()
    seed: int = 42
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    devices: int = Field(1, ge=1, le=1024)
    threads: int = Field(0, ge=0, le=1024)

    @model_validator(mode="after")
    def _check_batch(self):
        if self.batch_size % self.devices:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of devices {self.devices}: each "
                f"process takes an equal share of every batch; try batch_size "
                f"{self.batch_size - self.batch_size % self.devices or self.devices}"
            )
        if (self.mixup or self.cutmix) and (self.batch_size // self.devices) % 2:
            raise ValueError(
                f"mixup and cutmix pair each image with another: batch_size / devices must be even "
                f"(got {self.batch_size} / {self.devices})"
            )
        if self.freeze_epochs and self.devices > 1:  # DDP reduces the gradients of the weights it was given
            raise ValueError(
                f"freeze_epochs ({self.freeze_epochs}) trains a changing set of weights, which "
                f"DistributedDataParallel cannot follow: use devices 1, or freeze_epochs 0 with a "
                f"small backbone_lr_scale instead"
            )
        return self


class EvaluateParams(Section):
    tta: Literal["none", "flip"] = "flip"
    calibrate: Literal["temperature", "none"] = "temperature"


class ExternalSet(Section):
    """A test set from another source, scored by the crossdataset stage (its name is its key in `sets`)."""

    source: str
    format: Literal["kdef", "fer2013", "folders"] = "folders"
    subject_pattern: str = ""
    classes: tuple[str, ...] = ()
    split: Literal["all", "train", "val", "test"] = "all"
    crops: bool = False  # the images are face crops already: no detection (fer-predict --no-detect)
    angles: tuple[str, ...] = ()  # only these head angles (e.g. KDEF's frontal S), chosen after the split

    @model_validator(mode="after")
    def _check_data(self):
        try:
            self.data()  # the same rules as the data section
        except ValidationError as e:
            raise ValueError(e.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self

    def data(self) -> DataParams:
        return DataParams(
            source=self.source, format=self.format, subject_pattern=self.subject_pattern, classes=self.classes
        )


SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # it names the set's output files


class CrossDatasetParams(Section):
    sets: dict[str, ExternalSet] = {}  # set name -> set; one crossdataset stage run per set

    @field_validator("sets", mode="before")
    @classmethod
    def _check_names(cls, sets):
        if isinstance(sets, dict) and (bad := [n for n in sets if not SET_NAME.match(str(n))]):
            raise ValueError(
                f"set name(s) {', '.join(map(repr, bad))} must be letters, digits, '_', '.' or '-' "
                "(they name the output files)"
            )
        if isinstance(sets, (list, tuple)):
            raise ValueError("sets is a mapping of set name -> set, e.g. {ckplus: {source: PATH, format: folders}}")
        return sets


class Params(Section):
    data: DataParams = DataParams()
    split: SplitParams = SplitParams()
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    crossdataset: CrossDatasetParams = CrossDatasetParams()


class ParamsError(FerError):
    """params.yaml holds a key, type or value the pipeline cannot use."""


def _suggest(key: str, model: type[BaseModel]) -> str:
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(loc: tuple) -> type[BaseModel]:
    """The section model that holds the key at `loc` (for suggestions)."""
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        ann = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            break
        model = ann
    return model


def parse_params(raw: dict | None, origin: str = "params.yaml") -> Params:
    """Validate a params mapping; raise ParamsError naming every bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as e:
        lines = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                msg = "unknown key" + _suggest(str(err["loc"][-1]), _model_at(err["loc"]))
            elif isinstance(err["input"], dict) or err["type"] == "value_error":  # our own rule: says what it got
                msg = err["msg"].removeprefix("Value error, ")
            else:
                msg = f"{err['msg'].removeprefix('Value error, ')} (got {err['input']!r})"
            lines.append(f"  {key}: {msg}")
        raise ParamsError(f"{origin} has {len(lines)} bad value(s):\n" + "\n".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate `path`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run the stages from the project root, where params.yaml is") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path} is not valid YAML: {e}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path} must hold sections (data:, split:, preprocess:, train:), not {type(raw).__name__}")
    return parse_params(raw, origin=str(path))
