"""Batch prediction on a folder of images, to a CSV with the top-k classes per image.

From Python::

    from plugins.vision.predict import predict_folder
    predict_folder("outputs/run/export", "new_images/", "predictions.csv", top_k=3)

From the shell (the lead wires a Hydra stage onto the same function)::

    python -m plugins.vision.predict outputs/run/export new_images/ predictions.csv --top-k 3

``source`` is an export directory or a checkpoint directory of a vision run. Files that cannot be
decoded get a row with the reason in ``error`` instead of stopping the batch.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from framework.data.probes import IMAGE_EXTENSIONS
from framework.data.records import Record
from framework.errors import FrameworkError
from framework.evaluation.classification import top_k as rank_top_k
from plugins.vision.dataset import ImageDataset
from plugins.vision.evaluate import predict_probs
from plugins.vision.export import ServingInfo, find_serving_info, load_task
from framework.media.images import ImageStore


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden files skipped), sorted."""
    return sorted(
        p for p in Path(folder).rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def predict_folder(
    source: str | Path,
    folder: str | Path,
    out_csv: str | Path,
    top_k: int | None = None,
    *,
    batch_size: int = 256,
    device: str = "auto",
) -> Path:
    """Classify every image under ``folder`` and write ``out_csv``.

    Args:
        source: An export directory (``run_dir/export``) or a checkpoint directory.
        folder: The images to classify (searched recursively).
        out_csv: The CSV to write: ``path, prediction, confidence, top1, top1_score, ..., error``;
            ``path`` is relative to ``folder``.
        top_k: Ranked classes per image; ``None`` uses the run's ``modality.top_k``.
        batch_size: Inference batch size.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.

    Returns:
        ``out_csv`` as a path.

    Raises:
        FrameworkError: when ``folder`` holds no images or ``source`` is not a vision export.
    """
    folder, out_csv = Path(folder), Path(out_csv)
    files = image_files(folder)
    if not files:
        raise FrameworkError(f"{folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    info = ServingInfo.read(find_serving_info(Path(source)))
    k = top_k or info.top_k
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    task = load_task(Path(source), device)
    store = ImageStore(task.spec.size, info.resize)  # no cache: each image is read once here
    records, errors = [], {}
    for path in files:
        probe = store.probe(path)
        if probe.ok:
            records.append(Record(id=path.relative_to(folder).as_posix(), split="predict", source=str(path), media=path))
        else:
            errors[path.relative_to(folder).as_posix()] = probe.detail
    probs = predict_probs(task, ImageDataset(records, store, task.classes), batch_size)  # (N, C)
    ranked = dict(zip((r.id for r in records), rank_top_k(probs, task.classes, k) if len(records) else []))
    k = min(k, len(task.classes))
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "prediction", "confidence"]
                        + [c for i in range(1, k + 1) for c in (f"top{i}", f"top{i}_score")] + ["error"])
        for path in files:
            rel = path.relative_to(folder).as_posix()
            row = ranked.get(rel)
            if row is None:
                writer.writerow([rel, "", ""] + [""] * (2 * k) + [errors.get(rel, "")])
                continue
            cells = [c for name, score in row for c in (name, f"{score:.6f}")]
            writer.writerow([rel, row[0][0], f"{row[0][1]:.6f}", *cells, ""])
    return out_csv


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m plugins.vision.predict SOURCE FOLDER OUT_CSV [--top-k K]``."""
    parser = argparse.ArgumentParser(description="Classify a folder of images with a trained vision model.")
    parser.add_argument("source", type=Path, help="export directory or checkpoint directory of a vision run")
    parser.add_argument("folder", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("out_csv", type=Path, help="CSV file to write")
    parser.add_argument("--top-k", type=int, default=None, help="ranked classes per image (default: the run's)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    out = predict_folder(args.source, args.folder, args.out_csv, args.top_k,
                         batch_size=args.batch_size, device=args.device)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
