"""Applying a trained model to photos: find the faces, crop them as preprocess did, classify.

    fer-predict photos/ more/*.jpg --json predictions.json --annotate annotated/
    fer-predict crops/ --no-detect --onnx models/model.onnx --csv predictions.csv

Everything the model needs (classes, input size, channels, normalisation) comes from the
checkpoint, or from the metadata the export stage writes into the ONNX file.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fer import FerError, starter
from fer.cli import user_errors
from fer.data.faces import DETECTOR, MARGIN, MIN_FACE, crop, find_faces, margin_framing, rounded
from fer.data.images import IMAGE_SUFFIXES
from fer.data.preprocess import load_image, open_image
from fer.io import check_writable, write_csv, write_text
from fer.progress import progress

DEFAULT_CHECKPOINT = "models/best.pt"
CHECKPOINT_HELP = (
    f"a train-stage checkpoint, or 'starter' (default: {DEFAULT_CHECKPOINT} if this folder has a model "
    "of your own, else the starter model that ships in starter/)"
)
UNCERTAIN = "uncertain"  # the label of a face answered with less than --min-confidence
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}  # fer-video's


def expand(inputs: list[str]) -> list[Path]:
    """Files, folders (searched recursively for images) and globs, in order, without repeats.
    An input that names nothing is an error (before any work)."""
    found = {item: sorted(glob.glob(item, recursive=True)) for item in inputs}
    missing = [item for item, matches in found.items() if not matches]
    if missing:
        raise FerError(f"no such file, folder or match: {', '.join(missing)}")
    out = []
    for matches in found.values():
        for p in map(Path, matches):
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
    # one file once, however many names reach it (a folder linked into itself, a glob through a link)
    seen, unique = set(), []
    for f in out:
        if (real := f.resolve()) not in seen:
            seen.add(real)
            unique.append(f)
    return unique


def framing(data_config: dict) -> tuple[dict, bool]:
    """How the model's training images framed their faces, as (`fer.data.faces` framing, align):
    the face crop preprocess made (`data_config["face"]`), else the framing it measured on
    images that were face crops already (`data_config["framing"]`), else `fer.data.faces.MARGIN`."""
    face = data_config.get("face")
    if face:  # checkpoints from before alignment record the margin only
        return face.get("framing") or margin_framing(face["margin"]), bool(face.get("align"))
    return data_config.get("framing") or margin_framing(MARGIN), False


def face_crops(image: Image.Image, data_config: dict, detect: bool = True) -> tuple[list, list[np.ndarray]]:
    """Face boxes (x, y, w, h) in `image` and each face as the model's uint8 (C, H, W) input
    (`face_inputs`). detect False: the whole image is one face (centre square)."""
    channels, size = data_config["input_size"][:2]
    if not detect:
        return [(0, 0, image.width, image.height)], [load_image(np.asarray(image), size, channels == 1)]
    found = find_faces(image)
    return [rounded(f.box) for f in found], face_inputs(image, found, data_config)


def face_inputs(image: Image.Image, faces: list, data_config: dict) -> list[np.ndarray]:
    """Each of `faces` (`fer.data.faces.Face`) in `image` as the model's uint8 (C, H, W) input,
    framed (and aligned) as the model's training images were (`framing`)."""
    channels, size = data_config["input_size"][:2]
    frame, align = framing(data_config)
    return [load_image(np.asarray(crop(image, f, frame, align)), size, channels == 1) for f in faces]


def read_photo(path: str | Path) -> Image.Image:
    """A photo file upright, in RGB, decoded as preprocess decodes it (`open_image`)."""
    return open_image(path, "RGB")


class TorchModel:
    """A checkpoint from the train stage (or `starter`, the shipped starter model), on `device`."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", tta: str = "flip"):
        from fer.checkpoint import load_model
        from fer.device import resolve_device

        self.device, self.path = resolve_device(device), Path(starter.resolve(checkpoint))
        self.model, ckpt = load_model(self.path, self.device)
        self.classes, self.data_config, self.tta = ckpt.classes, ckpt.data_config, tta
        self.temperature = ckpt.temperature_for(tta)  # the calibration the train stage fitted (1: none)
        self.trained_on, self.name = ckpt.data.get("source", ""), ckpt.model_name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        from fer.inference import predict

        return (
            predict(self.model, batch, self.data_config, self.device, tta=self.tta, temperature=self.temperature)
            .exp()
            .numpy()
        )


class OnnxModel:
    """An ONNX file from the export stage: uint8-range float input, probabilities out."""

    def __init__(self, path: str | Path):
        import onnxruntime

        if not Path(path).is_file():
            raise FerError(f"ONNX model {path} not found; the pipeline's export stage writes models/model.onnx")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=onnxruntime.get_available_providers())
        except Exception as e:  # onnxruntime's own errors (InvalidProtobuf, Fail, ...) share no base class
            raise FerError(
                f"{path} is not a readable ONNX model ({type(e).__name__}): a copy cut short or a file "
                "of another kind looks like this; export it again (dvc repro export) or copy it "
                "again"
            ) from None
        if why := stale(path):
            raise FerError(why)
        meta = self.session.get_modelmeta().custom_metadata_map
        if "classes" not in meta:
            raise FerError(f"{path} has no class metadata; export it with the pipeline's export stage")
        self.classes, self.data_config = json.loads(meta["classes"]), json.loads(meta["data_config"])
        self.tta = json.loads(meta.get("tta", '"none"'))  # averaging over flips is inside the graph, if at all
        self.temperature = json.loads(meta.get("temperature", "1"))  # and so is the calibration
        self.path, self.name, self.trained_on = Path(path), json.loads(meta.get("model_name", '"?"')), ""
        self(np.full((1, *self.data_config["input_size"]), 128, np.uint8))  # damaged weights fail here, before any work

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        probs = self.session.run(None, {"pixels": batch.astype(np.float32)})[0]
        if not np.isfinite(probs).all():  # damaged weights give NaN; never pass them on as probabilities
            raise FerError(
                f"{self.path} gives probabilities that are not numbers (NaN or infinite): its weights "
                "are damaged; export it again (dvc repro export) or copy it again"
            )
        return probs


def stale(path: str | Path) -> str:
    """Why the pipeline's output `path` (models/model.onnx) no longer belongs to the workspace
    beside it, or "". dvc.lock records the checkpoint the export stage made it from; when that
    file has changed or is gone since (a training run started after the export, or was
    stopped: DVC removes a stage's outputs before it runs), the file is an earlier model's."""
    path = Path(path).resolve()
    lock = next((d / "dvc.lock" for d in path.parents if (d / "dvc.lock").is_file()), None)
    if lock is None:
        return ""
    import hashlib

    import yaml

    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    rel = path.relative_to(lock.parent).as_posix()
    for stage in stages.values():
        if not any(out.get("path") == rel for out in stage.get("outs", [])):
            continue
        for dep in stage.get("deps", []):
            source = lock.parent / dep["path"]
            if source.suffix != ".pt":
                continue
            if not source.is_file():
                change = "is gone (a training run started since and has not finished)"
            elif hashlib.md5(source.read_bytes()).hexdigest() != dep.get("md5"):
                change = "has changed since (a training run after the export)"
            else:
                continue
            return (
                f"{_shown(path)} is an earlier model's: it was exported from {dep['path']}, which {change}. "
                f"Finish the run (dvc repro) to export the current model, or use --checkpoint starter"
            )
    return ""


def answering_model(checkpoint: str | None, onnx: str | None, device: str = "auto", tta: str | None = None):
    """The model that answers, and one line that says which it is and where its card is.

    onnx, else checkpoint (a path, or `starter`), else `models/best.pt` when it is a model of
    the user's own, else the starter model that ships in `starter/`: a fresh clone, or one
    whose only model is the demo's (trained on generated cartoon faces), answers real faces.
    """
    if onnx:
        model, why = OnnxModel(onnx), ""
    elif checkpoint:
        model, why = TorchModel(checkpoint, device, tta or "flip"), ""
    elif not Path(DEFAULT_CHECKPOINT).is_file():
        model, why = TorchModel(starter.NAME, device, tta or "flip"), f"no {DEFAULT_CHECKPOINT} trained yet"
    else:
        model, why = TorchModel(DEFAULT_CHECKPOINT, device, tta or "flip"), ""
        if model.trained_on == "demo":
            model = TorchModel(starter.NAME, device, tta or "flip")
            why = f"{DEFAULT_CHECKPOINT} learnt the demo's generated faces; --checkpoint {DEFAULT_CHECKPOINT} uses it"
    return model, describe(model, why)


def describe(model, why: str = "") -> str:
    """`model: <file> (<network>, trained on <data>; card: <its model card>)`, and why it was chosen."""
    card = model.path.with_name(starter.CARD.name)
    starter_model = model.path.resolve().parent == starter.DIR
    what = "the starter model" if starter_model else "model"
    trained = f", trained on {Path(model.trained_on).name}" if model.trained_on else ""
    shown = _shown(model.path)
    line = f"{what}: {shown} ({model.name}{trained}; card: {_shown(card) if card.is_file() else 'none'})"
    return line + (f"; {why}" if why else "")


def _shown(path: Path) -> str:
    """`path` relative to the working folder where it lies below it, else as is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def predict_files(
    files: list, model, detect: bool = True, batch_size: int = 64, read=read_photo, min_confidence: float = 0.0
):
    """One row per face (file, box, label, confidence: its highest probability, a probability
    per class) and one per unreadable file. A face whose confidence is under `min_confidence`
    is labelled `UNCERTAIN` (its probabilities are kept).
    Faces are classified a batch at a time as they are found, so memory does not grow with the
    number of files. read: how a file (any key) becomes an RGB image.

    Ctrl-C stops the reading; the faces found so far are classified and returned, with
    `faces.attrs["interrupted"]` True.

    Returns (faces DataFrame, errors DataFrame with `file`, `error`).
    """
    rows, crops, probs, errors, interrupted = [], [], [], [], False
    try:
        for f in progress(files, "fer-predict", unit="files", leave=False):
            try:
                image = read(f)
            except Exception as e:  # unreadable: report it and go on with the others
                errors.append({"file": str(f), "error": f"{type(e).__name__}: {e}"})
                continue
            boxes, arrays = face_crops(image, model.data_config, detect)
            crops += arrays
            rows += [{"file": str(f), "x": box[0], "y": box[1], "w": box[2], "h": box[3]} for box in boxes]
            while len(crops) >= batch_size:
                probs.append(model(np.stack(crops[:batch_size])))
                crops = crops[batch_size:]
    except KeyboardInterrupt:  # Ctrl-C: the faces found so far are still answered and written
        interrupted = True
    if crops:
        probs.append(model(np.stack(crops)))
    probs = np.concatenate(probs) if probs else np.zeros((0, len(model.classes)))
    faces = pd.DataFrame(rows, columns=["file", "x", "y", "w", "h"])
    faces["label"] = (
        [model.classes[i] if p >= min_confidence else UNCERTAIN for i, p in zip(probs.argmax(1), probs.max(1))]
        if len(probs)
        else []
    )
    faces["confidence"] = probs.max(1) if len(probs) else []
    for i, c in enumerate(model.classes):
        faces[c] = probs[:, i]
    faces.attrs["interrupted"] = interrupted
    return faces, pd.DataFrame(errors, columns=["file", "error"])


def annotate(faces: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Copies of the photos with each face's box and label drawn, in the photos' own folder
    tree below `out_dir` (photos of the same name in two folders stay apart); returns the
    written paths."""
    out_dir = Path(out_dir)
    files = faces["file"].unique()
    root = Path(os.path.commonpath([Path(f).resolve().parent for f in files])) if len(files) else Path()
    written = []
    for file, group in faces.groupby("file", sort=False):
        image = read_photo(file)
        draw = ImageDraw.Draw(image)
        for r in group.itertuples():
            draw.rectangle((r.x, r.y, r.x + r.w, r.y + r.h), outline=(255, 40, 40), width=max(2, image.width // 200))
            draw.text((r.x + 3, r.y + 3), f"{r.label} {r.confidence:.2f}", fill=(255, 40, 40))
        out = out_dir / Path(file).resolve().relative_to(root)
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out)
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-predict", description="Facial expressions of the faces in photos.")
    parser.add_argument("inputs", nargs="+", help="image files, folders or globs")
    parser.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    parser.add_argument("--onnx", help="use this exported ONNX model instead of a checkpoint")
    parser.add_argument("--no-detect", action="store_true", help="the images are face crops already")
    parser.add_argument("--json", help="write the predictions here as JSON (default: print JSON)")
    parser.add_argument("--csv", help="write the predictions here as CSV")
    parser.add_argument("--annotate", metavar="DIR", help="write copies of the photos with boxes and labels")
    parser.add_argument("--batch-size", type=positive, default=64, help="faces classified at once (default 64)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--tta",
        choices=["flip", "none"],
        help="flip: average each face with its mirror image, as evaluate.tta=flip (the default) "
        "scores the test split; an ONNX file does what it was exported with",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        metavar="P",
        help=f"label a face '{UNCERTAIN}' (probabilities still given) when its highest probability is "
        "under P; the model card says which P gives which accuracy and coverage on the test split",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.min_confidence <= 1:
        parser.error(f"--min-confidence is a probability, 0 to 1 (got {args.min_confidence:g})")
    with user_errors(FileNotFoundError):
        model, line = answering_model(args.checkpoint, args.onnx, args.device, args.tta)
        if args.onnx and args.tta and args.tta != model.tta:
            raise FerError(
                f"{args.onnx} was exported with tta {model.tta}, so --tta {args.tta} cannot apply; "
                f"export again with evaluate.tta={args.tta}, or leave out --tta"
            )
        print(line, file=sys.stderr)
        files = expand(args.inputs)
        if videos := [str(f) for f in files if f.suffix.lower() in VIDEO_SUFFIXES]:
            raise FerError(f"{videos[0]} is a video: fer-video {videos[0]} --out DIR follows its faces over time")
        if not files:
            raise FerError(f"no image files in {' '.join(args.inputs)}")
        for flag, path in (("--json", args.json), ("--csv", args.csv)):
            if path:
                check_writable(path, flag)
        if args.annotate:
            check_writable(args.annotate, "--annotate", folder=True)
        faces, errors = predict_files(
            files, model, detect=not args.no_detect, batch_size=args.batch_size, min_confidence=args.min_confidence
        )
        for e in errors.itertuples():
            print(f"skipped {e.file}: {e.error}", file=sys.stderr)
        write_answers(faces, args.json, args.csv, args.annotate)
    return report(files, faces, errors, args.min_confidence)


def positive(text: str) -> int:
    """argparse type: a whole number of 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of 1 or more, not {text!r}")
    return int(text)


def write_answers(faces: pd.DataFrame, json_path: str | None, csv_path: str | None, annotated: str | None) -> None:
    """The answers as JSON and/or CSV (each written whole or not at all; printed as JSON when
    neither is asked for), and the annotated copies."""
    records = json.dumps(faces.to_dict("records"), indent=2)
    if json_path:
        write_text(records + "\n", json_path)
    if csv_path:
        write_csv(faces, csv_path)
    if not json_path and not csv_path:
        print(records)
    if annotated:
        annotate(faces, annotated)


def report(files: list, faces: pd.DataFrame, errors: pd.DataFrame, min_confidence: float) -> int:
    """What was done, on stderr; the exit status: 130 after Ctrl-C, 1 when no image could be read."""
    if faces.attrs.get("interrupted"):
        print(f"stopped: the {len(faces)} face(s) found before Ctrl-C are written", file=sys.stderr)
        return 130
    uncertain = (
        f", {(faces['label'] == UNCERTAIN).sum()} uncertain (under {min_confidence:g})" if min_confidence else ""
    )
    print(
        f"{len(faces)} face(s){uncertain} in {len(files) - len(errors)} image(s); {len(errors)} unreadable",
        file=sys.stderr,
    )
    seen = set(errors["file"]) | set(faces["file"])
    faceless = [str(f) for f in files if str(f) not in seen]
    if faceless:
        more = f" and {len(faceless) - 3} more" if len(faceless) > 3 else ""
        print(
            f"no face found in {len(faceless)} image(s): {', '.join(faceless[:3])}{more}. The detector "
            f"({DETECTOR}) misses faces turned far aside or under {MIN_FACE} px; for face crops use --no-detect",
            file=sys.stderr,
        )
    if len(errors) == len(files):
        print(f"error: none of the {len(files)} image(s) could be read (see the lines above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
