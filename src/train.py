"""Stage train: fine-tune `train.model` on the cached train split; keep the best-val checkpoint.

Outputs: the checkpoint (self-describing, see fer.checkpoint), a dvclive folder: one TSV per
metric with a row per epoch, written as each epoch ends, and metrics.json, the last epoch's
values while the run goes on (`dvc exp show` and `dvc plots` read them live) and, once it
ends, the headline for DVC to compare (best epoch, wall time: `HEADLINE`); and DETAILS, the
run's whole summary (best epoch and its val accuracy, epochs run, speed, processes, threads).
The checkpoint is then calibrated on the val split (evaluate.calibrate: one temperature per
evaluate.tta, see fer.training.calibrate).

While it runs, the full training state is saved after every epoch; if the run is killed, the
same command resumes from the last completed epoch, and the state file is removed once
training finishes.

With train.devices > 1 the script runs itself again under torchrun on that many processes
(DDP; `torchrun --nproc-per-node N src/train.py ...` works too): every rank trains on its
share of each batch, rank 0 alone writes the outputs.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

import torch
from dvclive import Live

from fer.cli import run
from fer.data.cache import load_split
from fer.io import write_metrics
from fer.training import parallel
from fer.training.calibrate import calibrate
from fer.training.train import HEADLINE, train_run


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("prepared_dir", type=Path)
    parser.add_argument(
        "manifest", type=Path, help="the split stage's manifest.csv: which cached images are train and val"
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("live_dir", type=Path, help="dvclive's folder: per-epoch metrics and the run's headline")
    parser.add_argument("details", type=Path, help="the run's whole summary")
    parser.add_argument("state", type=Path, help="training state saved every epoch; a killed run resumes from it")
    args = parser.parse_args()
    if params.train.devices > 1 and parallel.world_size() == 1:
        sys.exit(parallel.relaunch(params.train.devices))
    meta = json.loads((args.prepared_dir / "meta.json").read_text())
    (x_train, m_train), (x_val, m_val) = (load_split(args.prepared_dir, args.manifest, s) for s in ("train", "val"))
    main_rank = parallel.is_main()  # under torchrun only rank 0 writes: one log, one checkpoint
    with Live(str(args.live_dir), dvcyaml=None, save_dvc_exp=False) if main_rank else contextlib.nullcontext() as live:

        def log(row: dict) -> None:
            live.step = row["epoch"]
            for name, value in row.items():
                if name != "epoch":
                    live.log_metric(name, value)
            live.next_step()

        history, best, seconds = train_run(
            params, (x_train, m_train), (x_val, m_val), meta, state_path=args.state, on_epoch=log if main_rank else None
        )
        parallel.shutdown()
        if not main_rank:
            return
        ckpt = calibrate(best, x_val, m_val, params.evaluate.calibrate, params.train.device)
        ckpt.save(args.checkpoint)
    summary = {
        "best_epoch": best.epoch,
        "best_val_acc": best.val_acc,
        "epochs_run": len(history),
        "train_seconds": round(seconds, 1),
        "train_images_per_second": round(len(m_train) * len(history) / seconds, 1),
        "processes": parallel.world_size(),
        "threads": torch.get_num_threads(),  # per process
    }
    # over dvclive's last-epoch summary: once the run ends, DVC compares its headline
    write_metrics(summary, HEADLINE, live.metrics_file, args.details)
    args.state.unlink(missing_ok=True)  # finished: nothing left to resume
    print(
        f"train: best val accuracy {best.val_acc:.4f} at epoch {best.epoch}; calibration temperature "
        f"{ckpt.temperature_for(params.evaluate.tta):.3f} (val split, tta {params.evaluate.tta}); "
        f"saved {args.checkpoint}"
    )


if __name__ == "__main__":
    run(main)
