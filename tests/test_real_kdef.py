"""The split and preprocess stages on a real KDEF copy, where one is at hand.

The copy is looked for in $FER_KDEF, else in a folder KDEF beside the checkout; without it
these tests are skipped. The copy this project measures on (see RESULTS.md) lacks three
photos, and holds nine files that are one black placeholder and six that are no photo.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fer.data.preprocess import build

REPO = Path(__file__).resolve().parents[1]
KDEF = Path(os.environ.get("FER_KDEF", REPO.parent / "KDEF"))
pytestmark = pytest.mark.skipif(not KDEF.is_dir(), reason=f"no real KDEF copy at {KDEF} (set FER_KDEF)")


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("kdef")
    (root / "params.yaml").write_text(yaml.safe_dump({"data": {"format": "kdef"}, "split": {"seed": 42}}))
    p = subprocess.run(
        [sys.executable, str(REPO / "src/split.py"), str(KDEF), "split", "split.json", "details.json"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    return root, p.stdout


def test_the_split_is_subject_disjoint_over_all_seventy_people(split):
    root, _ = split
    stats = json.loads((root / "details.json").read_text())
    manifest = pd.read_csv(root / "split/manifest.csv", dtype=str)
    assert stats["protocol"] == "subject-disjoint" and stats["subject_overlap"] == 0
    assert manifest["subject"].nunique() == 70 and manifest.groupby("subject")["split"].nunique().max() == 1
    assert set(manifest["angle"]) == {"FL", "HL", "S", "HR", "FR"} and manifest["label"].nunique() == 7
    images = pd.read_csv(root / "split/images.csv", dtype=str)
    assert sorted(images["path"]) == sorted(manifest["path"])  # images.csv: what preprocess decodes


def test_what_the_copy_lacks_is_listed(split):
    root, out = split
    missing = pd.read_csv(root / "split/missing.csv", dtype=str)
    assert list(missing["code"]) == ["AF01SUFR", "AF31SAHL", "AM31SUHR"]
    assert json.loads((root / "details.json").read_text())["missing"] == 3
    assert "3 of 4,900 photos KDEF's design expects are missing (AF01SUFR, AF31SAHL, AM31SUHR)" in out


def test_what_the_copy_holds_by_mistake_is_listed(split):
    root, _ = split
    skipped = pd.read_csv(root / "split/skipped.csv")
    repeats = skipped[skipped["reason"] == "same content as AF10AFFR.JPG"]
    assert len(repeats) == 8  # the placeholder, saved under eight more names
    photos = skipped[skipped["path"].str.upper().str.endswith(".JPG")]
    assert set(photos["path"]) == set(repeats["path"])  # no photo is dropped for any other reason


def test_the_placeholder_is_no_picture_and_photos_are_kept(split, tmp_path):
    root, _ = split
    images = pd.read_csv(root / "split/images.csv", dtype=str, keep_default_na=False)
    few = images[images["path"].isin(["AF10AFFR.JPG", "AF01ANS.JPG", "BM35SUFR.JPG", "AM12HAHR.JPG"])]
    for size, grayscale in [(32, True), (64, False), (224, False)]:  # at any size the cache holds
        failed, _ = build(few, KDEF, tmp_path / str(size), size=size, grayscale=grayscale, workers=1)
        assert list(failed["path"]) == ["AF10AFFR.JPG"] and failed["reason"][0].startswith("no picture")
