"""Exports scikit-learn's bundled digits (the UCI optdigits test set: 1797 real
handwritten digits, 8x8, 17 grey levels, 10 classes) as an image folder for
`visage train`: examples/digits/{train,heldout}/<digit>/<index>.png.

Each image is scaled from 0..16 to 0..255, upscaled to 32x32 with bilinear
interpolation (the small IResNet of examples/train/digits_*.toml takes 32x32)
and written as an 8-bit greyscale PNG (visage decodes every image to RGB, so
the network sees grey in all three channels; greyscale keeps the folder a
third of the size of RGB files). The split is fixed:
within each class, in scikit-learn's order, every fifth image (positions 4, 9,
14, ...) is held out, the rest train. Re-running rewrites identical files.

    python3 -m venv scripts/reference/.venv
    scripts/reference/.venv/bin/pip install scikit-learn pillow
    scripts/reference/.venv/bin/python scripts/reference/export_digits.py
"""

import pathlib
import shutil

import numpy as np
import PIL
import sklearn
from PIL import Image
from sklearn.datasets import load_digits

SIDE = 32
HELD_OUT_EVERY = 5


def main() -> None:
    out = pathlib.Path(__file__).resolve().parents[2] / "examples" / "digits"
    digits = load_digits()
    images, labels = digits.images, digits.target
    for split in ("train", "heldout"):
        shutil.rmtree(out / split, ignore_errors=True)
    counts = {"train": 0, "heldout": 0}
    seen_per_class: dict[int, int] = {}
    for index, (pixels, label) in enumerate(zip(images, labels)):
        label = int(label)
        position = seen_per_class.get(label, 0)
        seen_per_class[label] = position + 1
        split = "heldout" if position % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else "train"
        grey = np.clip(np.round(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8)
        big = Image.fromarray(grey, mode="L").resize((SIDE, SIDE), Image.BILINEAR)
        folder = out / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        big.save(folder / f"{index:04d}.png", optimize=True)
        counts[split] += 1
    print(f"scikit-learn {sklearn.__version__}, Pillow {PIL.__version__}: {counts['train']} train, {counts['heldout']} held out -> {out}")


if __name__ == "__main__":
    main()
