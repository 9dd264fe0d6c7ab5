"""Cross-dataset evaluation: score any checkpoint on any source the pipeline reads.

    python -m fer.crosseval models/fer2013.pt ../data/ckplus48.tar.gz --format folders \
        --subject-pattern '^(S\\d+)_' --out metrics/crosseval/ckplus.json

The source (a folder, an archive, kaggle:<owner>/<dataset>, a fer2013.csv) is fetched and
read as the download and split stages read it, and every face goes through the preprocess
stage's decoding at the checkpoint's own size and channels. Class names go through the
alias table; images of classes the model does not know (CK+'s contempt for a FER2013
model) are counted apart, with what the model called them, and left out of accuracy.
The result has the keys of metrics/metrics.json plus the dataset and the protocol;
macro-F1 averages over the classes the test set holds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from fer import FerError, evaluate, formats, sources
from fer.dataset import load_cache
from fer.io import write_csv, write_json
from fer.labels import canonical
from fer.model import load_checkpoint, predict
from fer.params import DataParams, SplitParams, parse_params
from fer.preprocess import build
from fer.split import assign, drop_repeats


def select(data: DataParams, raw: Path, which: str = "all", split: SplitParams | None = None
           ) -> tuple[pd.DataFrame, str]:
    """The images of the fetched source in `raw` to score, and the protocol in words.

    which "all": every image; "train", "val" or "test": that split as the split stage would
    draw it with `split` (the same subjects for the same seed).
    """
    images, _ = formats.scan(raw, data)
    if images.empty:
        raise FerError(f"no {data.format} images found in {data.source}: check the format")
    if which == "all":
        return images, f"cross-dataset, all {len(images)} images"
    split = split or SplitParams()
    images, _ = drop_repeats(images)
    images["split"], protocol = assign(images, split.val, split.test, split.seed, split.group_by)
    return images[images["split"] == which].reset_index(drop=True), f"cross-dataset, {which} split ({protocol}, seed {split.seed})"


def score(checkpoint: str | Path, images: pd.DataFrame, raw: Path, workdir: Path, tta: str = "flip",
          device: str = "auto") -> tuple[dict, pd.DataFrame]:
    """Metrics and `actual,predicted` rows of `checkpoint` on `images` (paths relative to `raw`).

    Images are decoded into `workdir` at the checkpoint's size and channels. Returns the
    metrics of the images whose class the model knows, plus `unknown_classes` (per class:
    images and what the model predicted), `shared_classes`, `absent_classes` (the model's
    classes the test set lacks) and `undecodable`.
    """
    from fer.train import resolve_device

    dev = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint, dev)
    classes, cfg = ckpt["classes"], ckpt["data_config"]
    channels, size = cfg["input_size"][:2]
    face = cfg.get("face") or {}  # crop the faces as the model's training images were
    failed, _ = build(images, raw, workdir, size, channels == 1,
                      face_margin=face.get("margin"), no_face=face.get("no_face", "keep"))
    x, meta = load_cache(workdir)
    if not len(meta):
        raise FerError(f"none of the {len(images)} images could be used: "
                       + "; ".join(f"{n} {why}" for why, n in failed["reason"].str.split(":").str[0].value_counts().items()))
    pred = predict(model, x, cfg, dev, tta=tta).argmax(1).numpy()
    index = {canonical(c) or c: i for i, c in enumerate(classes)}
    labels = meta["label"].map(lambda c: canonical(c) or c)
    known = labels.isin(index).to_numpy()
    y_true, y_pred = labels[known].map(index).to_numpy(), pred[known]
    if not known.any():
        raise FerError(f"none of the test classes ({', '.join(sorted(labels.unique()))}) is one the model knows "
                       f"({', '.join(classes)})")
    present = sorted(set(y_true))
    with warnings.catch_warnings():  # the model may answer a class the test set lacks (neutral on CK+): expected
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        result = evaluate.metrics(y_true, y_pred, classes, y_true, meta["angle"][known], scored=present)
    unknown = pd.DataFrame({"label": labels[~known], "predicted": [classes[i] for i in pred[~known]]})
    result.update({
        "shared_classes": [classes[i] for i in present],
        "absent_classes": [c for i, c in enumerate(classes) if i not in present],
        "unknown_images": int((~known).sum()),
        "unknown_classes": {label: {"images": len(g), "predicted": {c: int(n) for c, n in g["predicted"].value_counts().items()}}
                            for label, g in unknown.groupby("label")},
        "undecodable": len(failed),
    })
    return result, evaluate.confusion_rows(y_true, y_pred, classes)


def crosseval(checkpoint: str | Path, data: DataParams, which: str = "all", split: SplitParams | None = None,
              tta: str = "flip", device: str = "auto") -> tuple[dict, pd.DataFrame]:
    """`score` on `data.source`, fetched into a temporary folder: (metrics, confusion rows).
    The metrics add `dataset`, `format`, `protocol`, `checkpoint` and `tta`."""
    with tempfile.TemporaryDirectory(prefix="fer-crosseval-") as tmp:
        raw = sources.fetch(data, Path(tmp) / "raw")
        images, protocol = select(data, raw, which, split)
        result, confusion = score(checkpoint, images, raw, Path(tmp) / "prepared", tta, device)
    head = {"dataset": data.source, "format": data.format, "protocol": protocol, "checkpoint": str(checkpoint),
            "tta": tta}
    return {**head, **result}, confusion


def summary(result: dict) -> str:
    """The result in one line for the log."""
    line = (f"crosseval: {result['checkpoint']} on {result['dataset']} ({result['protocol']}): accuracy "
            f"{result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f} over {result['test_images']} images of "
            f"{len(result['shared_classes'])} shared classes")
    for label, u in result["unknown_classes"].items():
        top = ", ".join(f"{c} {n}" for c, n in u["predicted"].items())
        line += f"; left out: {label} ({u['images']} images, a class the model lacks; predicted as {top})"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer.crosseval", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a train-stage checkpoint (e.g. a copy of models/best.pt)")
    parser.add_argument("source", help="a folder, .zip/.tar.gz archive, kaggle:<owner>/<dataset> or fer2013.csv")
    parser.add_argument("--format", default="folders", help="kdef, fer2013 or folders (default: %(default)s)")
    parser.add_argument("--subject-pattern", default="", help="folders: regex whose one group is the person")
    parser.add_argument("--classes", nargs="*", default=[], help="score only these classes of the source")
    parser.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                        help="all images, or one split drawn as the split stage does (default: %(default)s)")
    parser.add_argument("--val", type=float, default=SplitParams().val, help="as split.val (default: %(default)s)")
    parser.add_argument("--test", type=float, default=SplitParams().test, help="as split.test (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SplitParams().seed, help="as split.seed (default: %(default)s)")
    parser.add_argument("--group-by", default="subject", help="as split.group_by (default: %(default)s)")
    parser.add_argument("--tta", default="flip", choices=["flip", "none"], help="as evaluate.tta (default: %(default)s)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, help="write the metrics here as JSON")
    parser.add_argument("--confusion", type=Path, help="write actual,predicted rows here (default: --out as .csv)")
    args = parser.parse_args(argv)
    try:
        p = parse_params({"data": {"source": args.source, "format": args.format, "classes": args.classes,
                                   "subject_pattern": args.subject_pattern},
                          "split": {"val": args.val, "test": args.test, "seed": args.seed, "group_by": args.group_by}},
                         origin="the arguments")
        result, confusion = crosseval(args.checkpoint, p.data, args.split, p.split, args.tta, args.device)
    except FerError as e:
        sys.exit(f"error: {e}")
    if args.out:
        write_json(result, args.out)
    if args.confusion or args.out:
        write_csv(confusion, args.confusion or args.out.with_suffix(".csv"))
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
