"""What every stage script shares: reading params and turning user errors into messages."""

from __future__ import annotations

import sys

from fer import FerError
from fer.params import load_params


def run(main) -> None:
    """Call `main(params)` with validated params; a FerError ends the stage with its message."""
    try:
        main(load_params())
    except FerError as e:  # ParamsError is one too
        sys.exit(f"error: {e}")
