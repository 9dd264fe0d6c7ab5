"""Stage check: validate all of params.yaml before any other stage does work.

DVC accepts `-S trian.lr=1` silently; this stage depends on every param, so any change
re-runs it, and an unknown key, a wrong type or an impossible value stops the pipeline
here with a message that names the key. Files that params name must exist (`data.source`
too, or DVC would delete the last download before the download stage found out),
`train.model` must be a timm model, `train.weights` must load into it and a checkpoint
in `train.weights` or `train.init_from` must hold the same architecture (so a typo stops
the run before download and preprocess, and before DVC deletes the last model), and
`train.init_from` must not be one of the pipeline's own outputs (`--outputs`): DVC deletes
those before it re-runs the stage that writes them. Its output never changes, so the
stages after it re-run only for their own reasons.
"""

import argparse
from pathlib import Path

from fer import FerError, starter
from fer.checkpoint import Checkpoint, find
from fer.cli import run
from fer.data import sources
from fer.data.labels import CLASSES
from fer.models import check_name, create
from fer.training.transfer import check_architecture, preprocessing_gaps


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("marker", type=Path, help="file written when the params are valid")
    parser.add_argument("--outputs", type=Path, nargs="*", default=[], help="files DVC deletes before re-running")
    args = parser.parse_args()
    init = starter.resolve(params.train.init_from)
    if init and not Path(init).is_file():
        raise FerError(f"train.init_from {init!r} is not a file (nor `{starter.NAME}`, the starter model)")
    sources.check(params.data)
    check_name(params.train.model)
    if init and Path(init).resolve() in {p.resolve() for p in args.outputs}:
        copy = Path(init).with_name("init" + Path(init).suffix)
        raise FerError(
            f"train.init_from {init} is written by this pipeline, and DVC deletes it before training "
            f"again: copy it first (cp {init} {copy}) and set train.init_from={copy}"
        )
    # Another architecture stops here; other classes, channels or input sizes are carried over.
    if weights := find(params.train.weights):
        check_architecture(weights, params.train.model, f"train.weights {params.train.weights}")
    elif params.train.weights:  # says if it is missing too; the class count does not matter: the classifier is new
        create(
            params.train.model,
            len(params.data.classes or CLASSES),
            1 if params.preprocess.grayscale else 3,
            weights=params.train.weights,
        )
    if init:
        ckpt = Checkpoint.load(init)
        check_architecture(ckpt, params.train.model, f"train.init_from {params.train.init_from}")
        pre = params.preprocess
        if gaps := preprocessing_gaps(ckpt, pre.size, pre.grayscale, pre.face_crop, pre.align):
            print(f"train.init_from {params.train.init_from}: {'; '.join(gaps)}")
    args.marker.parent.mkdir(parents=True, exist_ok=True)
    args.marker.write_text("params.yaml is valid\n")


# `dvc exp run -S key=value` writes the value into params.yaml before any stage runs, and leaves it there
KEPT = (
    "params.yaml still holds the values this run was given (dvc exp run -S writes them there): correct them "
    "there, or `git checkout params.yaml` for the committed values"
)

if __name__ == "__main__":
    run(main, note=KEPT)
