"""Stage check: validate all of params.yaml before any other stage does work.

DVC accepts `-S trian.lr=1` silently; this stage depends on every param, so any change
re-runs it, and an unknown key, a wrong type or an impossible value stops the pipeline
here with a message that names the key. Its output never changes, so the stages after it
re-run only for their own reasons.
"""

import argparse
from pathlib import Path

from fer.cli import run


def main(params):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("marker", type=Path, help="file written when the params are valid")
    args = parser.parse_args()
    args.marker.parent.mkdir(parents=True, exist_ok=True)
    args.marker.write_text("params.yaml is valid\n")


if __name__ == "__main__":
    run(main)
