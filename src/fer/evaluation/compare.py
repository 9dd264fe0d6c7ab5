"""Does cross-validation B beat A beyond the folds' noise?

    fer-compare EXP_A EXP_B # experiment names as `dvc exp show` lists them

EXP_A, EXP_B: experiment names, git revisions, or paths of cross-validation details files
(metrics/details/cv.json: each fold's figures). Both runs must have the same folds (same
data, split.folds and split.seed: the same people are tested in each fold), so fold i of A
and fold i of B differ only by what the experiments changed. For each fold metric
(accuracy, macro-F1, balanced accuracy) it prints B - A averaged over folds, the t-interval
of that difference, the paired t-test's and the Wilcoxon signed-rank test's p-values, and
how many folds each run won; exit status 0 either way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer import FerError
from fer.cli import user_errors
from fer.evaluation.fold_stats import CONFIDENCE, FOLD_METRICS, paired

CV_DETAILS = "metrics/details/cv.json"  # cv_report's every figure (metrics/cv.json: its headline)
CV_EARLIER = "metrics/cv.json"  # where revisions before the details file kept every figure


def read_cv(ref: str, repo: str | None = None) -> dict:
    """Cross-validation's details of an experiment, a git revision or a file; FerError if it has no folds."""
    cv = json.loads(Path(ref).read_text() if Path(ref).is_file() else _read_revision(ref, repo))
    if not cv.get("folds"):
        raise FerError(f"{ref} ran no cross-validation (split.folds was 0): run it with `dvc exp run -S split.folds=5`")
    if "per_fold" not in cv:
        raise FerError(f"{ref} holds cross-validation's headline only; name its details file ({CV_DETAILS})")
    return cv


def _read_revision(ref: str, repo: str | None) -> str:
    """The text of `CV_DETAILS` in revision `ref` (of an earlier revision, `CV_EARLIER`)."""
    import dvc.api  # only when reading from DVC: it is slow to import

    try:
        return dvc.api.read(CV_DETAILS, repo=repo, rev=ref)
    except Exception as e:  # any failure to find it: an earlier layout, or the user named something else
        try:
            return dvc.api.read(CV_EARLIER, repo=repo, rev=ref)
        except Exception:
            raise FerError(
                f"cannot read {CV_DETAILS} of {ref!r} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                "name an experiment as `dvc exp show` lists it, a git revision, or a cross-validation details file"
            ) from None


def compare(a: dict, b: dict) -> dict[str, dict]:
    """`paired` B - A for each headline metric; FerError unless both ran the same folds."""
    if a.get("folds_digest") != b.get("folds_digest"):
        raise FerError(
            f"the two runs tested different folds ({a['folds']} vs {b['folds']} folds, {a['protocol']!r} vs "
            f"{b['protocol']!r}): a paired comparison needs the same data, split.folds and split.seed"
        )
    return {m: paired(a["per_fold"][m], b["per_fold"][m]) for m in FOLD_METRICS}


def report(results: dict[str, dict], name_a: str, name_b: str) -> str:
    """A table of `compare`'s results and one verdict line per metric."""
    pct = int(CONFIDENCE * 100)
    lines = [
        f"A = {name_a}, B = {name_b}: {next(iter(results.values()))['folds']} paired folds",
        f"{'metric':<18} {'A':>7} {'B':>7} {'B - A':>8}  {f'{pct}% interval':<20} {'t-test p':>8} "
        f"{'Wilcoxon p':>10}  folds won (B/A)",
    ]
    for m, r in results.items():
        interval = f"[{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}]"
        lines.append(
            f"{m:<18} {r['a_mean']:>7.4f} {r['b_mean']:>7.4f} {r['diff']:>+8.4f}  {interval:<20} "
            f"{_p(r['t_test_p']):>8} {_p(r['wilcoxon_p']):>10}  {r['b_wins']}/{r['a_wins']}"
        )
    lines.append("")
    for m, r in results.items():
        if r["ci95_low"] > 0 or r["ci95_high"] < 0:
            winner = "B" if r["diff"] > 0 else "A"
            lines.append(f"{m}: {winner} is better beyond the folds' noise (the {pct}% interval of B - A excludes 0)")
        else:
            lines.append(f"{m}: no difference beyond the folds' noise (the {pct}% interval of B - A holds 0)")
    return "\n".join(lines)


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fer-compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", help="the baseline: experiment name, git revision or metrics/details/cv.json file")
    parser.add_argument("b", help="the challenger, the same way")
    parser.add_argument("--json", type=Path, help="also write the comparison there")
    args = parser.parse_args(argv)
    with user_errors():
        results = compare(read_cv(args.a), read_cv(args.b))
    print(report(results, args.a, args.b))
    if args.json:
        args.json.write_text(json.dumps({"a": args.a, "b": args.b, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
