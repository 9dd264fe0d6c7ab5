"""What a FER2013 copy's blurred Training images cost, measured on equal terms.

    python bench/fer2013_blur.py ../shared/data/fer2013-images.tar.gz [--epochs 30]

1. Detail per split: the mean absolute change of the pixels (0-255) after a round trip
   through k x k px and back to 48 px (Lanczos), for several k. An image that holds no more
   detail than k px comes back almost unchanged.
2. The FER2013 recipe's network (timm resnet10t from scratch, 32 px greyscale, flips and
   jitter) trained twice on the same number of images and scored on PrivateTest:
   sharp: trained on PublicTest's 3,589 sharp faces, scored on sharp PrivateTest faces;
   blurred: trained on 3,589 Training faces (a class-stratified sample), scored on PrivateTest
   faces softened to the recipe's `max_sharpness`, as the pipeline does.
   Same network, epochs, seed and batch size; the one difference is the training faces.
   There is no third split to pick an epoch with, so the accuracy after the last epoch is
   reported (and the best of any epoch, for reference).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from fer import formats, sources
from fer.params import AugmentParams, DataParams, TrainParams
from fer.preprocess import class_list, load_image, sharpness
from fer.train import fit

ROUND_TRIPS = (8, 12, 16, 24, 32)
RECIPE = TrainParams(model="resnet10t", pretrained=False, batch_size=64, lr=1e-3, lr_patience=2, lr_factor=0.3,
                     augment=AugmentParams(flip=True, rotation=0, scale=0, translate=0, color_jitter=0.2),
                     device="cpu")


def round_trip_error(images: list[Image.Image], k: int) -> float:
    errors = []
    for im in images:
        back = im.resize((k, k), Image.Resampling.LANCZOS).resize(im.size, Image.Resampling.LANCZOS)
        errors.append(np.abs(np.asarray(back, np.float32) - np.asarray(im, np.float32)).mean())
    return float(np.mean(errors))


def load(paths: list[Path], max_sharpness: float) -> np.ndarray:
    return np.stack([load_image(p, 32, True, max_sharpness=max_sharpness) for p in paths])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fer2013", type=Path, help="FER2013 archive or folder (Kaggle's msambare/fer2013 layout)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-sharpness", type=float, default=0.14, help="the recipe's preprocess.max_sharpness")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = sources.fetch(DataParams(source=str(args.fer2013), format="fer2013"), Path(tmp) / "fer2013")
        images, _ = formats.scan(root, DataParams(source=str(root), format="fer2013"))
        by_split = {s: images[images["official"] == s].reset_index(drop=True) for s in ("train", "val", "test")}

        print("# detail: mean absolute change (0-255) after a round trip through k px, 500 files per split")
        print("split  " + "  ".join(f"k={k:<4}" for k in ROUND_TRIPS) + "  median sharpness (48 px)")
        for split, rows in by_split.items():
            faces = [Image.open(root / p).convert("L") for p in rows["path"].sample(500, random_state=0)]
            errors = "  ".join(f"{round_trip_error(faces, k):6.2f}" for k in ROUND_TRIPS)
            sharp = np.median(sharpness(np.stack([load_image(np.asarray(im), 48, True) for im in faces])))
            print(f"{split:5}  {errors}  {sharp:.3f}")

        test, train = by_split["test"], by_split["train"]
        sample, _ = train_test_split(train, train_size=len(by_split["val"]), stratify=train["label"], random_state=0)
        classes = class_list(images["label"])
        runs = {"sharp": (by_split["val"], 0.0), "blurred": (sample.reset_index(drop=True), args.max_sharpness)}
        params = RECIPE.model_copy(update={"epochs": args.epochs})
        y_test = test["label"].map(classes.index).to_numpy()
        print(f"\n# resnet10t from scratch, 32 px greyscale, {args.epochs} epochs, batch 64, AdamW 1e-3, "
              f"scored on PrivateTest ({len(test)} faces)")
        for name, (rows, soften) in runs.items():
            x = load([root / p for p in rows["path"]], soften)
            y = rows["label"].map(classes.index).to_numpy()
            x_test = load([root / p for p in test["path"]], soften)  # softened as the training faces are
            start = time.perf_counter()
            history, _ = fit(params, (x, y), (x_test, y_test), classes)
            acc = [h["val_acc"] for h in history]
            print(f"{name}: trained on {len(y)} faces (max_sharpness {soften or 'off'}), "
                  f"{time.perf_counter() - start:.0f} s: test accuracy {acc[-1]:.4f} after the last epoch "
                  f"(best epoch {int(np.argmax(acc)) + 1}: {max(acc):.4f})", flush=True)


if __name__ == "__main__":
    main()
