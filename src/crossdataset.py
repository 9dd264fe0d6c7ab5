"""Stage crossdataset: the best checkpoint on one external test set named in `crossdataset.sets`.

DVC runs it once per set (a foreach stage). Writes METRICS, the headline DVC compares (the
evaluate stage's: accuracy, macro_f1, ece, nll), DETAILS, every figure (the evaluate stage's details'
keys plus the dataset and protocol, and the classes the model does not know, counted apart),
and one `actual,predicted,path` row per scored image (see fer.evaluation.crossdataset).
"""

import argparse
from pathlib import Path

from fer import FerError
from fer.cli import run
from fer.evaluation.crossdataset import crossdataset, one_line
from fer.evaluation.metrics import HEADLINE
from fer.io import write_csv, write_metrics


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("name", help="the set's name in crossdataset.sets")
    parser.add_argument("metrics", type=Path, help="the headline, for DVC to compare")
    parser.add_argument("details", type=Path, help="every figure")
    parser.add_argument("confusion", type=Path)
    args = parser.parse_args()
    sets = params.crossdataset.sets
    if args.name not in sets:
        raise FerError(f"crossdataset.sets has no set named {args.name!r} (it has {', '.join(sets) or 'none'})")
    chosen = sets[args.name]
    result, confusion = crossdataset(
        args.checkpoint,
        chosen.data(),
        chosen.split,
        params.split,
        params.evaluate.tta,
        params.train.device,
        crops=chosen.crops,
        angles=chosen.angles,
    )
    write_metrics({"name": args.name, **result}, HEADLINE, args.metrics, args.details)
    write_csv(confusion, args.confusion)
    print(one_line(result))


if __name__ == "__main__":
    run(main)
