"""Write scikit-learn's bundled handwritten digits as a small image-folder data set.

The vision plugin's default config trains on this folder, so a fresh machine with no network can
run ``python -m framework +modality=vision`` end to end. The digits ship inside scikit-learn (no
download): 1,797 grayscale 8x8 images of the digits 0-9, about 180 per class.

Layout written (deterministic, stratified 70/15/15)::

    examples/data/digits/{train,val,test}/<digit>/<index>.png
    examples/data/digits/datacard.yaml       the data set's own card (sources, licence)

Images are upscaled 4x with nearest neighbour to 32x32 so that a ViT with 8x8 patches sees a 4x4
grid, and kept grayscale (mode ``L``): the plugin converts them to RGB when it decodes them, which
exercises the colour-space normalisation on every run.

At 8x8 pixels some different handwritten samples are perceptually identical, so the audit's
cleanliness gate would flag them as near duplicates (and as val/test leaks when a split divides
them). The script keeps one image of each near-duplicate group, found with the same perceptual
hash and Hamming radius as the gate (:mod:`framework.data.dedup`), so the bundled data passes
the default gates; it drops a few dozen of the 1,797 images.

Usage::

    python examples/make_digits.py [--out examples/data/digits] [--size 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from framework.data.config import GATE_DEFAULTS
from framework.data.dedup import near_groups

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
DATACARD = """\
# The data set's own card, read by the audit's documentation gate (docs/data.md).
name: digits
description: >-
  scikit-learn's bundled handwritten digits (1,797 grayscale 8x8 images of 0-9), upscaled 4x to
  {size}x{size} PNGs with one image kept per near-duplicate group; stratified 70/15/15 split.
sources:
  - "scikit-learn load_digits: UCI ML optical recognition of handwritten digits (Alpaydin and Kaynak, 1998)"
license: CC BY 4.0 (UCI Machine Learning Repository)
collected: 1998, 43 writers; bitmaps reduced to 8x8 blocks by the UCI donors
notes: written by examples/make_digits.py --size {size} --seed {seed}
"""


def split_indices(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Stratified train/val/test indices in the proportions of :data:`SPLIT_FRACTIONS`."""
    indices = np.arange(len(labels))
    held_out = SPLIT_FRACTIONS["val"] + SPLIT_FRACTIONS["test"]
    train, rest = train_test_split(indices, test_size=held_out, stratify=labels, random_state=seed)
    val, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def to_image(pixels: np.ndarray, size: int) -> Image.Image:
    """One digit as a grayscale PIL image; ``pixels`` is (8, 8) with values 0..16."""
    gray = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)  # (8, 8)
    return Image.fromarray(gray, mode="L").resize((size, size), Image.Resampling.NEAREST)


def first_of_near_duplicates(images: list[Image.Image]) -> np.ndarray:
    """Indices of the images to keep: the first of each group of near-identical images."""
    radius = GATE_DEFAULTS["cleanliness"]["image_hamming"]
    hashes = [int(str(imagehash.phash(img)), 16) for img in images]
    groups = near_groups(hashes, radius)  # (N,) component label per image
    _, first = np.unique(groups, return_index=True)
    return np.sort(first)


def write_digits(out: Path, size: int = 32, seed: int = 0) -> dict[str, int]:
    """Write the folder (replacing an existing one) and return the number of images per split."""
    digits = load_digits()
    images = [to_image(pixels, size) for pixels in digits.images]
    keep = first_of_near_duplicates(images)
    if out.exists():
        shutil.rmtree(out)
    counts = {}
    for split, idx in split_indices(digits.target[keep], seed).items():
        for i in keep[idx]:
            target = out / split / str(int(digits.target[i])) / f"{i:04d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            images[i].save(target, optimize=True)
        counts[split] = len(idx)
    (out / "datacard.yaml").write_text(DATACARD.format(size=size, seed=seed), encoding="utf-8")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent / "data" / "digits"
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    parser.add_argument("--size", type=int, default=32, help="side of the written images in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    args = parser.parse_args()
    counts = write_digits(args.out, args.size, args.seed)
    print(f"wrote {sum(counts.values())} images to {args.out}: {counts} (near duplicates dropped)")


if __name__ == "__main__":
    main()
