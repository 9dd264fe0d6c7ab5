"""Stage train: fine-tune `train.model` on the cached splits; keep the best-val checkpoint.

Outputs: the checkpoint (self-describing, see fer.model), a history CSV with one row per
epoch (DVC plots it), and a small metrics JSON about the run. While it runs, the full
training state is saved after every epoch; if the run is killed, the same command resumes
from the last completed epoch, and the state file is removed once training finishes.
"""

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from fer.cli import run
from fer.io import write_csv, write_json
from fer.model import save_checkpoint
from fer.dataset import load_split
from fer.train import fit


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("history", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("state", type=Path, help="training state saved every epoch; a killed run resumes from it")
    args = parser.parse_args()
    meta = json.loads((args.prepared_dir / "meta.json").read_text())
    (x_train, m_train), (x_val, m_val) = (load_split(args.prepared_dir, s) for s in ("train", "val"))
    start = time.perf_counter()
    history, best = fit(
        params.train, (x_train, m_train["target"].to_numpy()), (x_val, m_val["target"].to_numpy()),
        meta["classes"], extra={"preprocess": params.preprocess.model_dump(), "data": params.data.model_dump()},
        state_path=args.state, blur=meta.get("blur", 0.0),
        max_sharpness=meta.get("max_sharpness", 0.0),
    )
    seconds = time.perf_counter() - start
    save_checkpoint(best, args.checkpoint)
    write_csv(pd.DataFrame(history), args.history)
    write_json({
        "best_epoch": best["epoch"], "best_val_acc": best["val_acc"], "epochs_run": len(history),
        "train_seconds": round(seconds, 1), "train_images_per_second": round(len(m_train) * len(history) / seconds, 1),
    }, args.metrics)
    args.state.unlink(missing_ok=True)  # finished: nothing left to resume
    print(f"train: best val accuracy {best['val_acc']:.4f} at epoch {best['epoch']}; saved {args.checkpoint}")


if __name__ == "__main__":
    run(main)
