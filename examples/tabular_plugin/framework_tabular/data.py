"""The ``tabular_csv`` data format and the tensors the MLP trains on."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Iterable

import torch
from torch.utils.data import Dataset

from framework import Collector, DataError, Quarantined, ReadOptions, Record

FORMAT = "tabular_csv"
RESERVED = ("id", "label")


def read_tabular_csv(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """One record per row: numeric feature columns, a ``label`` column, an optional ``id``.

    A cell that is not a number is an error naming ``file:line`` and the column; every bad row is
    reported in one run.
    """
    col = Collector(path, opts)
    reader = csv.DictReader(text + "\n" for _, text in col.text_lines())  # UTF-8 checked per line
    if not reader.fieldnames or "label" not in reader.fieldnames:
        raise DataError(f"{path}:1", "the header has no 'label' column", "Name the target column 'label'.")
    for row in reader:
        with col.line(reader.line_num):  # a DataError here is recorded; reading goes on
            fields = _numeric_fields(row, opts, col.where(reader.line_num))
            col.add(reader.line_num, fields, label=row["label"] or None, record_id=row.get("id") or None)
    return col.result()


def _numeric_fields(row: dict[str, str], opts: ReadOptions, where: str) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key, value in row.items():
        if key in RESERVED or key in opts.slices:
            fields[key] = value
            continue
        try:
            fields[key] = float(value)
        except (TypeError, ValueError):
            raise DataError(where, f"column {key!r} holds {value!r}, not a number",
                            "Fix the cell, or list the numeric columns in modality.features.") from None
        if not math.isfinite(fields[key]):
            raise DataError(where, f"column {key!r} is {value}", "Impute or drop the row.")
    return fields


def feature_columns(records: Iterable[Record], slices: Iterable[str] = ()) -> list[str]:
    """Every numeric column of the first record, except id, label and slice fields."""
    first = next(iter(records), None)
    skip = set(RESERVED) | set(slices)
    return [] if first is None else [k for k, v in first.fields.items() if k not in skip and isinstance(v, float)]


class TabularDataset(Dataset):
    """Feature matrix ``x`` (N, F) and class indices ``y`` (N,), built once from records."""

    def __init__(self, records: list[Record], features: list[str], classes: list[str], labeled: bool = True):
        self.x = torch.tensor([[r.fields[f] for f in features] for r in records], dtype=torch.float32).reshape(-1, len(features))
        index = {c: i for i, c in enumerate(classes)}
        self.y = torch.tensor([index[str(r.label)] if labeled else -1 for r in records], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}

    def batch(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The whole split as one batch (tabular splits are small)."""
        return {"x": self.x.to(device), "y": self.y.to(device)}
