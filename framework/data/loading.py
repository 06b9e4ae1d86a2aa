"""Loading a whole :class:`DataBundle` from the ``data:`` config.

A simple modality's ``load_data`` is one line::

    return load_bundle(ctx.data, format="image_folder", decoder_check=probe_image)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping

from framework.annotation.label_studio import (
    gold_from_tasks,
    ground_truth_label,
    import_label_studio,
    load_tasks,
)
from framework.annotation.records import AnnotationRecord
from framework.data.config import DataConfig
from framework.data.dataset_card import read_dataset_card
from framework.data.errors import DataError
from framework.data.paths import data_file
from framework.data.probes import Probe, probe_media
from framework.data.readers import ReaderRegistry, detect_format, read_manifest
from framework.data.readers._common import LineErrors, get_field, iter_jsonl
from framework.data.readers.hf import is_hf_source, is_hub_name, open_hub, read_dataset
from framework.data.readers.layouts import missing_split_error, resolve_splits
from framework.data.records import DataBundle, Record
from framework.data.shards import is_shard_spec
from framework.data.sources import MIXTURE_KEY, Source, parse_sources, read_sources

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Formats whose labels are free text (transcripts) or absent, so no class list is built.
_NON_CLASS_FORMATS = frozenset({"nemo_audio", "chat", "preference", "speech", "common_voice", "kaldi", "librispeech",
                                "audio_text_folder", "audiofolder"})
log = logging.getLogger(__name__)


def load_bundle(
    cfg: DataConfig,
    *,
    format: str | None = None,
    decoder_check: Probe | None = None,
    label_type: str = "auto",
    readers: ReaderRegistry | None = None,
    split_defaults: Mapping[str, Any] | None = None,
) -> DataBundle:
    """Read every configured split, plus annotations and gold answers, into one bundle.

    Args:
        cfg: The ``data:`` config; ``train``/``val``/``test`` are relative to ``cfg.root``.
        format: The modality's format, used when ``cfg.format`` is ``auto`` (a user's explicit
            ``data.format`` wins).
        decoder_check: A probe run on every media file while reading; failures are quarantined.
            When ``None`` and ``cfg.probe_media`` is true, files are probed by extension.
        label_type: ``"class"`` builds ``classes`` from the labels, ``"text"``/``"none"`` do not;
            ``"auto"`` decides from the format.
        readers: The formats to read with: ``ctx.plugins.readers`` in a run (built-ins plus every
            plugin's ``framework_register_readers``); the installed plugins' when omitted.
        split_defaults: The modality's own ``data.train``/``val``/``test`` defaults: a split left at
            its default that is absent is looked for under its conventional names (``dev.tsv``,
            ``valid/``) or, for ``val``/``test``, skipped with a warning
            (:func:`~framework.data.readers.layouts.resolve_splits`). A split the user set that is
            absent is an error naming what is there and the fix (``data.test=null``).

    Returns:
        The bundle; ``extras["gold"]`` holds known answers (item id -> label) when there are any,
        ``extras["dataset_card"]`` the data's own card (``datacard.yaml`` / ``DATASET.md`` in the root).

    Raises:
        DataError: when ``train`` is missing, or any file is malformed (``file:line`` named).
    """
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(f"data.root={cfg.root}", f"{root.resolve()} {what}", "Point data.root at your data directory.")
    if not cfg.train:
        raise DataError("data.train", "no training data configured", "Set data.train=<manifest or folder>.")
    cfg = resolve_splits(cfg, root, split_defaults)
    chosen = cfg.format if cfg.format != "auto" else (format or "auto")
    probe = decoder_check or (probe_media if cfg.probe_media else None)
    bundle = DataBundle(root=root, splits={})
    used_formats = set()
    exports: list[Path] = []  # Label Studio splits: their annotations do not need the media
    for split in SPLITS:
        rel = getattr(cfg, split)
        if not rel:
            continue
        sources = parse_sources(rel, f"data.{split}")
        if sources is not None:  # several weighted sources, or a hub dataset (framework/data/sources.py)
            records, quarantined, provenance = read_sources(
                sources, split=split, slices=cfg.slices,
                read=lambda source, split=split: _read_source(source, split, cfg, root, chosen, probe, readers))
            used_formats.update(p["format"] for p in provenance)
            bundle.extras.setdefault(MIXTURE_KEY, []).extend(provenance)
            bundle.splits[split] = records
            bundle.quarantine.extend(quarantined)
            continue
        path = _under_root(rel, root, cfg, split)
        if not path.exists() and not is_shard_spec(path):  # shard-{000000..000099}.tar names several files
            raise missing_split_error(split, str(rel), path, root, lambda p: detect_format(p, readers))
        records, quarantined, name = _read_path(path, split, cfg, root, chosen, probe, readers)
        used_formats.add(name)
        if name == "label_studio":
            exports.append(path)
        bundle.splits[split] = records
        bundle.quarantine.extend(quarantined)
    card = read_dataset_card(root)
    if card is not None:
        bundle.extras["dataset_card"] = card
    bundle.annotations = _annotations(exports, cfg, root)
    gold = _gold(bundle.records(), cfg, root)
    if gold:
        bundle.extras["gold"] = gold
    is_class = label_type == "class" or (label_type == "auto" and not used_formats & _NON_CLASS_FORMATS)
    if is_class:
        bundle.classes = class_names(bundle.records())
    if cfg.pred_probs:
        bundle.extras["pred_probs"] = read_pred_probs(_under_root(cfg.pred_probs, root, cfg, "pred_probs"), len(bundle.classes))
    return bundle


def _container_format(path: Path, cfg: DataConfig, chosen: str) -> str:
    """``hf`` for a Hugging Face dataset when the user left ``data.format=auto`` (a modality's own
    default format cannot read one), else ``chosen``."""
    return "hf" if cfg.format == "auto" and is_hf_source(path) else chosen


def _read_source(source: Source, split: str, cfg: DataConfig, root: Path, chosen: str, probe: Probe | None,
                 readers: ReaderRegistry | None) -> tuple[list[Record], list[Any], str]:
    """One entry of a multi-source split: ``(records, quarantined, format)``."""
    if is_hub_name(source.path):
        from framework.data.readers._common import ReadOptions

        opts = ReadOptions(root=root, split=split, slices=tuple(cfg.slices), allow_outside_root=cfg.allow_outside_root,
                           probe=probe, columns={k: str(v) for k, v in (getattr(cfg, "columns", None) or {}).items() if v})
        records, quarantined = read_dataset(open_hub(source.path, split), Path(source.path), opts)
        return records, quarantined, "hf"
    return _read_path(_under_root(source.path, root, cfg, split), split, cfg, root, chosen, probe, readers)


def _read_path(path: Path, split: str, cfg: DataConfig, root: Path, chosen: str, probe: Probe | None,
               readers: ReaderRegistry | None) -> tuple[list[Record], list[Any], str]:
    """One split's file or folder: ``(records, quarantined, format read with)``; under
    ``data.format=auto`` the chosen format is logged."""
    split_format = _container_format(path, cfg, chosen)
    name = detect_format(path, readers) if split_format == "auto" and path.exists() else split_format
    if cfg.format == "auto":
        log.info("data.%s: %s read as data.format=%s", split, path, name)
    records, quarantined = read_manifest(path, root=root, split=split, format=split_format, slices=cfg.slices,
                                         allow_outside_root=cfg.allow_outside_root, probe=probe, readers=readers,
                                         columns=getattr(cfg, "columns", None))
    return records, quarantined, name


def read_pred_probs(path: Path, n_classes: int) -> dict[str, list[float]]:
    """Out-of-sample class probabilities: JSONL lines ``{"id": ..., "probs": [p_0, ..., p_K-1]}``
    with columns in the bundle's class order (sorted class names), for the label-issue check.

    Raises:
        DataError: naming ``file:line`` for a vector of the wrong length, or values that are not
            probabilities summing to 1.
    """
    probs: dict[str, list[float]] = {}
    errors = LineErrors(path)
    for line, obj in iter_jsonl(path, errors):
        where = f"{path}:{line}"
        with errors.at():
            item = str(get_field(obj, "id", (str, int), where))
            vector = get_field(obj, "probs", list, where)
            if len(vector) != n_classes or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in vector):
                raise DataError(where, f"'probs' must hold {n_classes} probabilities (one per class, in class order), "
                                f"got {vector!r}", "Write the model's softmax output for the item.")
            if abs(sum(vector) - 1.0) > 1e-3:
                raise DataError(where, f"'probs' sums to {sum(vector):.4f}, not 1", "Write normalised probabilities.")
            probs[item] = [float(v) for v in vector]
    errors.check()
    return probs


def _under_root(rel: str, root: Path, cfg: DataConfig, key: str) -> Path:
    return data_file(rel, root=root, where=f"data.{key}", allow_outside_root=cfg.allow_outside_root)


def class_names(records: Iterable[Record]) -> list[str]:
    """Sorted distinct non-empty labels, as strings (the class order models use)."""
    return sorted({str(r.label) for r in records if r.label is not None and str(r.label).strip()})


def read_annotations(path: Path, *, guideline_version: str = "") -> list[AnnotationRecord]:
    """Annotations from a Label Studio export (``.json``) or a flat JSONL file.

    Flat JSONL lines are ``{"item_id", "annotator", "label"}`` with optional ``timestamp``,
    ``confidence``, ``lead_time`` and ``guideline_version``.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return import_label_studio(path, guideline_version=guideline_version)
    out = []
    errors = LineErrors(path)
    for line, obj in iter_jsonl(path, errors):
        where = f"{path}:{line}"
        with errors.at():
            out.append(_annotation_line(obj, where, guideline_version))
    errors.check()
    return out


def _annotation_line(obj: dict[str, Any], where: str, guideline_version: str) -> AnnotationRecord:
    return AnnotationRecord(
            item_id=str(get_field(obj, "item_id", (str, int), where)),
            annotator=str(get_field(obj, "annotator", (str, int), where)),
            label=_hashable(get_field(obj, "label", (str, int, float, bool, list), where)),
            timestamp=get_field(obj, "timestamp", str, where, required=False),
            guideline_version=str(obj.get("guideline_version", guideline_version)),
            confidence=get_field(obj, "confidence", (int, float), where, required=False),
            lead_time=get_field(obj, "lead_time", (int, float), where, required=False),
            source=where,
        )


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _annotations(exports: list[Path], cfg: DataConfig, root: Path) -> list[AnnotationRecord]:
    """Every annotation of the Label Studio splits (tasks whose media were quarantined included:
    agreement does not need the media) plus ``data.annotations``."""
    out: list[AnnotationRecord] = []
    for path in exports:
        out += import_label_studio(path, guideline_version=cfg.guidelines_version)
    if cfg.annotations:
        out += read_annotations(_under_root(cfg.annotations, root, cfg, "annotations"), guideline_version=cfg.guidelines_version)
    return out


def gold_answers(records: Iterable[Record], gold_field: str | None = None) -> dict[str, Hashable]:
    """Known answers carried by records: a Label Studio ground-truth annotation, the
    ``gold_field`` field (``data.gold_field``), a ``gold_label`` field, or a preference
    ``gold``/``trap`` marker (whose right answer is ``"chosen"``)."""
    gold: dict[str, Hashable] = {}
    for rec in records:
        truth = ground_truth_label(rec.fields) if "task_id" in rec.fields else None
        if truth is not None:
            gold[rec.id] = truth
        elif gold_field and rec.fields.get(gold_field) not in (None, ""):
            gold[rec.id] = _hashable(rec.fields[gold_field])
        elif rec.fields.get("gold_label") is not None:
            gold[rec.id] = _hashable(rec.fields["gold_label"])
        elif rec.fields.get("gold") is True or rec.fields.get("trap") is True:
            gold[rec.id] = "chosen"
    return gold


def _gold(records: list[Record], cfg: DataConfig, root: Path) -> dict[str, Hashable]:
    gold = gold_answers(records, cfg.gold_field)
    if cfg.annotations and Path(cfg.annotations).suffix.lower() == ".json":
        gold.update(gold_from_tasks(load_tasks(_under_root(cfg.annotations, root, cfg, "annotations")), cfg.gold_field))
    if cfg.gold:
        path = _under_root(cfg.gold, root, cfg, "gold")
        gold.update(read_gold(path))
    return gold


def read_gold(path: Path) -> dict[str, Hashable]:
    """Known answers from JSONL lines ``{"id", "label"}``.

    Raises:
        DataError: listing every bad line (``file:line``).
    """
    gold: dict[str, Hashable] = {}
    errors = LineErrors(path)
    for line, obj in iter_jsonl(path, errors):
        where = f"{path}:{line}"
        with errors.at():
            item = str(get_field(obj, "id", (str, int), where))
            gold[item] = _hashable(get_field(obj, "label", (str, int, float, bool, list), where))
    errors.check()
    return gold
