"""What every stage script and command shares: reading params and turning user errors into messages."""

from __future__ import annotations

import contextlib
import sys

from fer import FerError


@contextlib.contextmanager
def user_errors(*also: type[Exception]):
    """End the program with `error: <message>` (no traceback) on a FerError, or on one of
    `also`: bad input or setup the user can fix. Any other exception is a bug and keeps its traceback."""
    try:
        yield
    except (FerError, *also) as e:  # ParamsError is a FerError too
        sys.exit(f"error: {e}")


def run(main, note: str = "") -> None:
    """Call a stage script's `main(params)` with params.yaml validated, under `user_errors`;
    `note` is added to the message of any FerError."""
    from fer.params import load_params

    with user_errors():
        try:
            main(load_params())
        except FerError as e:
            if not note:
                raise
            raise FerError(f"{e}\n{note}") from None
