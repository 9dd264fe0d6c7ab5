"""Progress that suits where it is shown: tqdm's bar on a terminal, and a plain line every
`INTERVAL` seconds when standard error is a file or a pipe (`dvc exp run` into a log, CI),
so that a long stage never sits silent there."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

from tqdm import tqdm

INTERVAL = 30.0  # seconds between lines in a log: often enough to see it move, rare enough to read
LINE = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) in {elapsed}, {remaining} left, {rate_fmt}"


def progress(
    items: Iterable,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    leave: bool = True,
    interval: float | None = None,
) -> Iterator:
    """Yield `items`, showing how far along they are (see the module docstring); a line in a
    log every `interval` seconds (default `INTERVAL`)."""
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, total=total, unit=unit, leave=leave)
        return
    interval = INTERVAL if interval is None else interval
    total = len(items) if total is None and hasattr(items, "__len__") else total
    start = last = time.monotonic()
    for n, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= interval and n != total:
            last = now
            fmt = LINE if total else "{desc}: {n_fmt} {unit} in {elapsed}, {rate_fmt}"
            print(
                tqdm.format_meter(n, total, now - start, prefix=desc, unit=unit, bar_format=fmt),
                file=sys.stderr,
                flush=True,
            )
