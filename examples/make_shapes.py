"""Render a small image-caption data set of coloured shapes, and the tiny tokenizer that reads it.

The alignment plugin's default config trains on this set, so a fresh machine with no network can
run ``python -m framework +modality=alignment`` end to end. Every image is one shape on a plain
background; its captions name the shape, colour, size and position in several phrasings, so a
model that aligns images with text must read all four attributes.

Attributes: 4 shapes x 6 colours x 2 sizes x 5 positions = 240 combinations.

* ``test`` holds the **unseen combinations**: every combination of six (shape, colour) pairs that
  never occur in training (each shape and each colour still does, with other partners), one image
  each (60 images). Retrieval there measures composition, not memory.
* ``train`` renders each of the other 180 combinations three times (540 images) and ``val`` once
  more for 60 of them (seen combinations, new renders).

Each render jitters position, size, colour and background; a render whose perceptual hash is
within the audit's near-duplicate radius of an earlier one is drawn again, so the bundled data
passes the cleanliness gate (no near duplicates, no leaks between splits). Captions: four of six
phrasings per image, chosen at random; the plugin samples one per image each epoch.

Written (deterministic for a seed)::

    examples/data/shapes/images/{train,val,test}/NNNN.png     48x48 RGB
    examples/data/shapes/{train,val,test}.jsonl               id, path, captions, label (shape), colour, size, position
    plugins/alignment/tokenizer/                              a BERT WordPiece tokenizer (tokenizer.json + config)

The tokenizer's vocabulary is every word of the captions and of the zero-shot prompt templates,
plus single characters and ``##`` continuations, so unseen words split into characters rather than
becoming ``[UNK]``. It loads offline with ``transformers.AutoTokenizer.from_pretrained(dir)``.

Usage::

    python examples/make_shapes.py [--out examples/data/shapes] [--tokenizer plugins/alignment/tokenizer] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import string
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw

from framework.data.config import GATE_DEFAULTS

REPO = Path(__file__).resolve().parents[1]
SIDE = 48  # pixels of the written images; the default image tower reads them at 32
SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {"red": (215, 40, 40), "green": (40, 170, 60), "blue": (45, 75, 220), "yellow": (235, 210, 40),
           "purple": (140, 60, 180), "orange": (240, 130, 30)}
SIZES = {"small": 7.0, "large": 13.0}  # half-width in pixels at SIDE=48
POSITIONS = {"top left": (0.27, 0.27), "top right": (0.73, 0.27), "bottom left": (0.27, 0.73),
             "bottom right": (0.73, 0.73), "centre": (0.5, 0.5)}
# (shape, colour) pairs only the test split has: each shape and colour appears once here.
UNSEEN_PAIRS = (("circle", "red"), ("square", "green"), ("triangle", "blue"), ("diamond", "yellow"),
                ("circle", "purple"), ("square", "orange"))
PHRASINGS = (
    "a {size} {colour} {shape} in the {position}",
    "{position}: a {colour} {shape}, {size}",
    "there is a {size} {shape} coloured {colour} at the {position}",
    "a {colour} {shape} of {size} size, {position}",
    "the {position} holds a {size} {colour} {shape}",
    "{size} {shape}, {colour}, {position}",
)
CAPTIONS_PER_IMAGE = 4
TRAIN_RENDERS = 3
VAL_COMBINATIONS = 60
# Must match the zero-shot templates of plugins/alignment/conf/modality/alignment.yaml.
PROMPT_WORDS = "a an the picture photo of drawing shape there is".split()


def combinations() -> list[dict[str, str]]:
    """Every attribute combination, in a fixed order."""
    return [{"shape": s, "colour": c, "size": z, "position": p}
            for s, c, z, p in itertools.product(SHAPES, COLOURS, SIZES, POSITIONS)]


def render(combo: dict[str, str], rng: np.random.Generator) -> Image.Image:
    """One jittered render of ``combo``."""
    background = tuple(int(v) for v in rng.integers(200, 250, 3))
    img = Image.new("RGB", (SIDE, SIDE), background)
    draw = ImageDraw.Draw(img)
    cx, cy = POSITIONS[combo["position"]]
    cx, cy = cx * SIDE + rng.uniform(-3, 3), cy * SIDE + rng.uniform(-3, 3)
    r = SIZES[combo["size"]] * rng.uniform(0.85, 1.15)
    colour = tuple(int(np.clip(v + rng.integers(-20, 21), 0, 255)) for v in COLOURS[combo["colour"]])
    shape = combo["shape"]
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=colour)
    else:  # diamond
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    return img


def captions(combo: dict[str, str], rng: np.random.Generator) -> list[str]:
    """``CAPTIONS_PER_IMAGE`` different phrasings of ``combo``."""
    chosen = rng.choice(len(PHRASINGS), size=CAPTIONS_PER_IMAGE, replace=False)
    return [PHRASINGS[i].format(**combo) for i in sorted(chosen)]


class DistinctRenders:
    """Draws renders until one is farther than the audit's near-duplicate radius from all earlier ones."""

    def __init__(self, rng: np.random.Generator, tries: int = 200) -> None:
        self.rng = rng
        self.tries = tries
        self.radius = int(GATE_DEFAULTS["cleanliness"]["image_hamming"])
        self.hashes = np.zeros(0, dtype=np.uint64)

    def __call__(self, combo: dict[str, str]) -> Image.Image:
        for _ in range(self.tries):
            img = render(combo, self.rng)
            h = np.uint64(int(str(imagehash.phash(img)), 16))
            distances = np.array([bin(int(x)).count("1") for x in np.bitwise_xor(self.hashes, h)], dtype=int)
            if not distances.size or distances.min() > self.radius:
                self.hashes = np.append(self.hashes, h)
                return img
        raise RuntimeError(f"no distinct render of {combo} in {self.tries} tries; lower the counts")


def plan(seed: int) -> dict[str, list[dict[str, str]]]:
    """The combinations rendered into each split (one entry per image)."""
    rng = np.random.default_rng(seed)
    unseen = [c for c in combinations() if (c["shape"], c["colour"]) in UNSEEN_PAIRS]
    seen = [c for c in combinations() if (c["shape"], c["colour"]) not in UNSEEN_PAIRS]
    val = [seen[i] for i in sorted(rng.choice(len(seen), size=VAL_COMBINATIONS, replace=False))]
    return {"train": [c for c in seen for _ in range(TRAIN_RENDERS)], "val": val, "test": unseen}


def write_shapes(out: Path, seed: int = 0) -> dict[str, int]:
    """Write images and manifests (replacing earlier ones); returns images per split."""
    rng = np.random.default_rng(seed + 1)
    draw = DistinctRenders(rng)
    if (out / "images").exists():
        shutil.rmtree(out / "images")
    counts = {}
    for split, combos in plan(seed).items():
        lines = []
        for n, combo in enumerate(combos):
            rel = f"images/{split}/{n:04d}.png"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            draw(combo).save(out / rel, optimize=True)
            lines.append({"id": f"{split}/{n:04d}", "path": rel, "captions": captions(combo, rng),
                          "label": combo["shape"], "colour": combo["colour"], "size": combo["size"],
                          "position": combo["position"]})
        (out / f"{split}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        counts[split] = len(lines)
    return counts


def vocabulary() -> list[str]:
    """The tokenizer's vocabulary: specials, every caption and prompt word, characters, ``##`` pieces."""
    words: set[str] = set(PROMPT_WORDS)
    for combo in combinations():
        for phrasing in PHRASINGS:
            words.update(phrasing.format(**combo).replace(",", " ").replace(":", " ").split())
    chars = list(string.ascii_lowercase + string.digits)
    punctuation = list(",.:;!?'\"-()/")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + sorted(words) + [c for c in chars + punctuation if c not in words] + [f"##{c}" for c in chars]


def write_tokenizer(out: Path) -> Path:
    """A BERT WordPiece tokenizer over :func:`vocabulary`, saved with ``save_pretrained``."""
    from transformers import BertTokenizer

    if out.exists():
        shutil.rmtree(out)
    vocab = {token: i for i, token in enumerate(vocabulary())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=32)
    tokenizer.save_pretrained(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "examples" / "data" / "shapes", help="data folder")
    parser.add_argument("--tokenizer", type=Path, default=REPO / "plugins" / "alignment" / "tokenizer",
                        help="tokenizer folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = write_shapes(args.out, args.seed)
    write_tokenizer(args.tokenizer)
    print(f"wrote {sum(counts.values())} images to {args.out}: {counts}; tokenizer in {args.tokenizer} "
          f"({len(vocabulary())} tokens)")


if __name__ == "__main__":
    main()
