"""Cross-dataset evaluation: score any checkpoint on any source the pipeline reads.

    fer-crossdataset models/fer2013.pt ../data/ckplus48.tar.gz --format folders \
        --subject-pattern '^(S\\d+)_' --out ckplus.json

The source (a folder, an archive, kaggle:<owner>/<dataset>, a fer2013.csv) is fetched and
read as the download and split stages read it, and every image goes through `fer-predict`'s
own path: its faces are found, framed (and aligned) as the model's training faces were, and
the largest is classified; `--crops` (sets that are face crops already) classifies the whole
image, as `fer-predict --no-detect` does. An image in which no face is found has no answer
and counts as wrong: the number is the one a user of `fer-predict` gets. Class names go through the
alias table; images of classes the model does not know (CK+'s contempt for a FER2013
model) are counted apart, with what the model called them, and left out of accuracy.
The result has the keys of the evaluate stage's details (metrics/details/evaluate.json) plus
the dataset and the protocol; macro-F1 averages over the classes the test set holds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fer import FerError
from fer.cli import user_errors
from fer.data import formats, sources
from fer.data.faces import DETECTOR
from fer.data.labels import canonical
from fer.data.preprocess import blank, csv_pixels
from fer.data.split import assign, drop_repeats, select_angles
from fer.evaluation import calibration, groups, metrics, scoring
from fer.evaluation.metrics import NO_ANSWER
from fer.io import check_writable, write_csv, write_json
from fer.params import DataParams, SplitParams, parse_params
from fer.use.predict import TorchModel, predict_files, read_photo


def select(
    data: DataParams, raw: Path, which: str = "all", split: SplitParams | None = None, angles=()
) -> tuple[pd.DataFrame, str]:
    """The images of the fetched source in `raw` to score, and the protocol in words.

    which "all": every image; "train", "val" or "test": that split as the split stage would
    draw it with `split` (the same subjects for the same seed). angles: only the images at
    these head angles (e.g. KDEF's frontal "S"), chosen after the split, so a model trained on
    every angle is scored on its own test people.
    """
    images, _ = formats.scan(raw, data)
    if images.empty:
        raise FerError(f"no {data.format} images found in {data.source}: check the format")
    at = f" at {'/'.join(angles)}" if angles else ""
    if which == "all":
        images = select_angles(images, angles, "angles")
        return images, f"cross-dataset, all {len(images)} images{at}"
    split = split or SplitParams()
    images, _ = drop_repeats(images)
    images["split"], protocol = assign(images, split.val, split.test, split.seed, split.group_by)
    images = select_angles(images[images["split"] == which], angles, "angles").reset_index(drop=True)
    return images, f"cross-dataset, {which} split{at} ({protocol}, seed {split.seed})"


def score(
    checkpoint: str | Path,
    images: pd.DataFrame,
    raw: Path,
    tta: str = "flip",
    device: str = "auto",
    detect: bool = True,
) -> tuple[dict, pd.DataFrame]:
    """Metrics and `actual,predicted,path` rows of `checkpoint` on `images` (paths relative to `raw`),
    each image through `fer.use.predict.predict_files` (its largest face; detect False: the whole
    image). Returns the metrics of the images whose class the model knows, plus
    `unknown_classes` (per class: images and what the model predicted), `shared_classes`,
    `absent_classes` (the model's classes the test set lacks), `no_face` (images without an
    answer, counted wrong), `undecodable` and `no_picture`.
    """
    model = TorchModel(checkpoint, device, tta)
    classes = model.classes
    pixels = csv_pixels(images["path"], raw)

    def read(path: str) -> Image.Image:
        image = Image.fromarray(pixels[path]).convert("RGB") if path in pixels else read_photo(raw / path)
        if why := blank(np.asarray(image)):
            raise FerError(why)
        return image

    faces, errors = predict_files(list(images["path"]), model, detect, read=read)
    no_picture = errors["error"].str.contains("no picture")
    if len(errors) == len(images):
        raise FerError(
            f"none of the {len(images)} images could be used: "
            f"{no_picture.sum()} no picture, {(~no_picture).sum()} cannot decode"
        )
    largest = faces.assign(area=faces["w"] * faces["h"]).sort_values("area").groupby("file").tail(1)
    answer = largest.set_index("file")["label"].map(classes.index)
    usable = images[~images["path"].isin(errors["file"])]
    pred = usable["path"].map(answer).fillna(NO_ANSWER).astype(int).to_numpy()
    probs = largest.set_index("file")[classes].reindex(usable["path"]).to_numpy(dtype=float)  # NaN: no face
    result, rows = score_answers(usable, pred, classes, probs)
    result.update(
        {
            "temperature": model.temperature,
            "faces": "whole image (crops)" if not detect else f"largest face found ({DETECTOR})",
            "undecodable": int((~no_picture).sum()),
            "no_picture": int(no_picture.sum()),
        }
    )
    return result, rows


def score_answers(
    images: pd.DataFrame, pred: np.ndarray, classes: list[str], probs: np.ndarray | None = None
) -> tuple[dict, pd.DataFrame]:
    """`fer.evaluation.scoring.score` of a model's answers `pred` (indices into `classes`,
    `NO_ANSWER` where no face was found: counted wrong) on `images` (label, angle, path).
    Labels go through the alias table; images of classes the model does not know are counted
    apart under `unknown_classes`, with what the model called them. Adds `shared_classes`,
    `absent_classes` (the model's classes the test set lacks), `unknown_images` and `no_face`;
    accuracy per group of what is known of the images (subject, angle, ...), and given the
    answers' `probs` (N, classes; NaN where no face was found), calibration and selective
    prediction over the answered images."""
    index = {canonical(c) or c: i for i, c in enumerate(classes)}
    labels = images["label"].map(lambda c: canonical(c) or c)
    known = labels.isin(index).to_numpy()
    y_true, y_pred = labels[known].map(index).to_numpy(), pred[known]
    if not known.any():
        raise FerError(
            f"none of the test classes ({', '.join(sorted(labels.unique()))}) is one the model knows "
            f"({', '.join(classes)})"
        )
    present = sorted(set(y_true))
    with warnings.catch_warnings():  # the model may answer a class the test set lacks (neutral on CK+): expected
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        result, rows = scoring.score(
            y_true,
            y_pred,
            classes,
            y_true,
            images["angle"][known],
            scored=present,
            paths=images["path"][known],
            attributes=groups.attributes(images[known]),
        )
    if probs is not None and (answered := y_pred != NO_ANSWER).any():
        known_probs, hit = probs[known][answered], (y_true == y_pred)[answered]
        result.update(calibration.measure(known_probs, y_true[answered]))
        result["selective"] = calibration.selective(known_probs.max(1), hit)
    unknown = pd.DataFrame({"label": labels[~known], "predicted": metrics.class_names(pred[~known], classes)})
    result.update(
        {
            "shared_classes": [classes[i] for i in present],
            "absent_classes": [c for i, c in enumerate(classes) if i not in present],
            "unknown_images": int((~known).sum()),
            "unknown_classes": {
                label: {"images": len(g), "predicted": {c: int(n) for c, n in g["predicted"].value_counts().items()}}
                for label, g in unknown.groupby("label")
            },
            "no_face": int((y_pred == NO_ANSWER).sum()),
        }
    )
    return result, rows


def crossdataset(
    checkpoint: str | Path,
    data: DataParams,
    which: str = "all",
    split: SplitParams | None = None,
    tta: str = "flip",
    device: str = "auto",
    crops: bool = False,
    angles=(),
) -> tuple[dict, pd.DataFrame]:
    """`score` on `data.source`, fetched into a temporary folder: (metrics, confusion rows).
    crops: the images are face crops already (no detection); angles: as `select`. The metrics add `dataset`,
    `format`, `protocol`, `checkpoint` and `tta`."""
    with tempfile.TemporaryDirectory(prefix="fer-crossdataset-") as tmp:
        raw = sources.fetch(data, Path(tmp) / "raw")
        images, protocol = select(data, raw, which, split, angles)
        result, confusion = score(checkpoint, images, raw, tta, device, detect=not crops)
    head = {
        "dataset": data.source,
        "format": data.format,
        "protocol": protocol,
        "checkpoint": str(checkpoint),
        "tta": tta,
    }
    return {**head, **result}, confusion


def one_line(result: dict) -> str:
    """The result in one line for the log."""
    line = (
        f"crossdataset: {result['checkpoint']} on {result['dataset']} ({result['protocol']}): accuracy "
        f"{result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f} over {result['test_images']} images of "
        f"{len(result['shared_classes'])} shared classes, faces: {result['faces']}"
    )
    if result["no_face"]:
        line += f"; no face found in {result['no_face']} (counted wrong)"
    for label, u in result["unknown_classes"].items():
        top = ", ".join(f"{c} {n}" for c, n in u["predicted"].items())
        line += f"; left out: {label} ({u['images']} images, a class the model lacks; predicted as {top})"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-crossdataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a train-stage checkpoint (e.g. a copy of models/best.pt)")
    parser.add_argument("source", help="a folder, .zip/.tar.gz archive, kaggle:<owner>/<dataset> or fer2013.csv")
    parser.add_argument("--format", default="folders", help=f"{', '.join(formats.FORMATS)} (default: %(default)s)")
    parser.add_argument("--subject-pattern", default="", help="folders: regex whose one group is the person")
    parser.add_argument("--classes", nargs="*", default=[], help="score only these classes of the source")
    parser.add_argument("--angles", nargs="*", default=[], help="only these head angles (KDEF: FL HL S HR FR)")
    parser.add_argument(
        "--crops",
        action="store_true",
        help="the images are face crops already: classify each whole, as fer-predict --no-detect",
    )
    parser.add_argument(
        "--split",
        default="all",
        choices=["all", "train", "val", "test"],
        help="all images, or one split drawn as the split stage does (default: %(default)s)",
    )
    parser.add_argument("--val", type=float, default=SplitParams().val, help="as split.val (default: %(default)s)")
    parser.add_argument("--test", type=float, default=SplitParams().test, help="as split.test (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SplitParams().seed, help="as split.seed (default: %(default)s)")
    parser.add_argument("--group-by", default="subject", help="as split.group_by (default: %(default)s)")
    parser.add_argument(
        "--tta", default="flip", choices=["flip", "none"], help="as evaluate.tta (default: %(default)s)"
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, help="write the metrics here as JSON")
    parser.add_argument("--confusion", type=Path, help="write actual,predicted,path rows here (default: --out as .csv)")
    args = parser.parse_args(argv)
    with user_errors():
        confusion_out = args.confusion or (args.out and args.out.with_suffix(".csv"))
        for path, flag in ((args.out, "--out"), (confusion_out, "--confusion")):
            if path:
                check_writable(path, flag, parents=True)
        p = parse_params(
            {
                "data": {
                    "source": args.source,
                    "format": args.format,
                    "classes": args.classes,
                    "subject_pattern": args.subject_pattern,
                },
                "split": {"val": args.val, "test": args.test, "seed": args.seed, "group_by": args.group_by},
            },
            origin="the arguments",
        )
        result, confusion = crossdataset(
            args.checkpoint, p.data, args.split, p.split, args.tta, args.device, args.crops, args.angles
        )
        if args.out:
            write_json(result, args.out)
        if confusion_out:
            write_csv(confusion, confusion_out)
    print(one_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
