"""Write scikit-learn's bundled wine data set (no download) as train/val/test CSV files.

    python examples/tabular_plugin/make_data.py

The files are committed; this script documents how they were made and rebuilds them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

OUT = Path(__file__).parent / "framework_tabular" / "data"
DATACARD = """\
# The data set's own card, read by the audit's documentation gate.
name: wine
description: 178 wines from three cultivars, 13 chemical measurements each; stratified 70/15/15 split.
sources:
  - "scikit-learn load_wine: UCI ML Wine recognition data (Forina et al., PARVUS, 1988)"
license: CC BY 4.0 (UCI Machine Learning Repository)
notes: written by examples/tabular_plugin/make_data.py
"""


def main() -> None:
    wine = load_wine()
    names = [n.replace("/", "_") for n in wine.feature_names]
    labels = np.array([f"cultivar_{t}" for t in wine.target])
    idx = np.arange(len(labels))
    train, rest = train_test_split(idx, test_size=0.3, stratify=labels, random_state=0)
    val, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=0)
    OUT.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("val", val), ("test", test)):
        with (OUT / f"{split}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", *names, "label"])
            for i in sorted(rows):
                writer.writerow([f"wine-{i:03d}", *[f"{v:.4g}" for v in wine.data[i]], labels[i]])
        print(f"{split}: {len(rows)} rows -> {OUT / f'{split}.csv'}")
    (OUT / "datacard.yaml").write_text(DATACARD, encoding="utf-8")


if __name__ == "__main__":
    main()
