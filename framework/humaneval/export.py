"""``python -m framework.humaneval export RUN``: blind pairs of a trained run for Label Studio.

Loads the run's weights and config (its export, else its newest checkpoint, as the monitor does),
samples inputs of its first evaluated split stratified by slice, and has the trained model and
the baseline answer them with the modality's own ``predict``: the baseline is the starting model
(the run's ``build_task`` before training, with ``trainer.init_from`` when it was set) or another
run's trained weights (``--baseline RUN2``). Writes into ``RUN/humaneval/``:

* ``annotate/tasks.json`` and ``annotate/config.xml``: the Label Studio import and labelling
  config, what annotators see;
* ``key.json``: which side is which, and the gold pairs; keep it from annotators.
"""

from __future__ import annotations

import gc
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from framework.data.records import Record
from framework.errors import FrameworkError
from framework.humaneval import label_studio
from framework.humaneval.pairs import ANNOTATE_DIR, BASELINE, HUMANEVAL_DIR, Key, first_split, make_pairs, \
    shown_input, stratified_sample

log = logging.getLogger(__name__)

DEFAULT_N = 150
DEFAULT_GOLD_RATE = 0.1


@dataclass
class Exported:
    """What :func:`export` wrote."""

    tasks: Path
    config: Path
    key: Path
    pairs: int
    gold: int


def _outputs(modality: Any, ctx: Any, task: Any, records: list[Record], split: str) -> tuple[list[str], list[str | None]]:
    """The model's outputs on ``records`` as text, and the inputs the modality renders for people."""
    preds = modality.predict(ctx, task, records, split)
    inputs = preds.extras.get("inputs") or [None] * len(records)
    return [str(o) for o in preds.outputs], list(inputs)


def _starting_task(trained: Any) -> Any:
    """The run's task before training: ``build_task`` again, ``trainer.init_from`` loaded if set."""
    from framework.training import load_trained_weights

    task = trained.modality.build_task(trained.ctx, trained.data)
    init_from = ((yaml.safe_load(trained.ctx.config_yaml) or {}).get("trainer") or {}).get("init_from")
    if init_from:
        load_trained_weights(task, Path(init_from), what="trainer.init_from")
    return task


def export(run_dir: Path, *, n: int = DEFAULT_N, baseline: Path | None = None, interface: str = "pairwise",
           split: str | None = None, gold_rate: float = DEFAULT_GOLD_RATE, seed: int = 0,
           weights: Path | None = None) -> Exported:
    """Sample, answer with both models, randomise sides, plant gold pairs, write the files.

    Args:
        run_dir: The trained run.
        n: Inputs to sample (all when the split has fewer).
        baseline: Another run to compare with; ``None`` compares with the starting model.
        interface: ``pairwise`` or ``rating`` (:mod:`framework.humaneval.label_studio`).
        split: The split to sample; default the first of the run's ``evaluation.splits`` with data.
        gold_rate: Gold pairs planted per model pair (``0.1``: one in ten).
        seed: Seeds the sample and the side draws.
        weights: The run's export or checkpoint directory (default: export, else newest checkpoint).
    """
    if interface not in label_studio.INTERFACES:
        raise FrameworkError(f"--interface {interface!r} is not one of {', '.join(label_studio.INTERFACES)}")
    if not 0.0 <= gold_rate <= 1.0:
        raise FrameworkError(f"--gold-rate {gold_rate} is not a share between 0 and 1")
    run_dir = Path(run_dir)
    with tempfile.TemporaryDirectory(prefix="humaneval-") as work:  # the loaded runs' context dirs
        return _export(run_dir, Path(work), n=n, baseline=baseline, interface=interface, split=split,
                       gold_rate=gold_rate, seed=seed, weights=weights)


def _export(run_dir: Path, work: Path, *, n: int, baseline: Path | None, interface: str, split: str | None,
            gold_rate: float, seed: int, weights: Path | None) -> Exported:
    from framework.monitoring.monitor import load_trained

    trained = load_trained(run_dir, work / "run", weights=weights)
    evaluated = ((yaml.safe_load(trained.ctx.config_yaml) or {}).get("evaluation") or {}).get("splits") or ["val", "test"]
    split = split or first_split(evaluated, trained.data.splits)
    records = trained.data.records(split)
    if not records:
        raise FrameworkError(f"split {split!r} of {run_dir} has no records to compare on")
    sample = stratified_sample(records, n, seed)
    outputs, inputs = _outputs(trained.modality, trained.ctx, trained.task, sample, split)
    trained.task = None
    gc.collect()
    if baseline is not None:
        other = load_trained(Path(baseline), work / "baseline")
        if other.modality.name != trained.modality.name:
            raise FrameworkError(f"--baseline {baseline} is a {other.modality.name} run; {run_dir} is {trained.modality.name}")
        base_outputs, _ = _outputs(other.modality, other.ctx, other.task, sample, split)
        described = str(Path(baseline))
    else:
        base_outputs, _ = _outputs(trained.modality, trained.ctx, _starting_task(trained), sample, split)
        described = "starting weights"
    shown = [shown_input(r, i) for r, i in zip(sample, inputs)]
    media = [str(r.media) if r.media is not None else None for r in sample]
    pairs = make_pairs(sample, outputs, base_outputs, shown, media, gold_rate=gold_rate, seed=seed)
    root = Path(trained.ctx.data.root).absolute() if trained.ctx.data.root else None
    return write(run_dir, Key(run=str(run_dir), baseline=described, split=split, interface=interface,
                              gold_rate=gold_rate, seed=seed, pairs={p.pair_id: p for p in pairs}), root)


def write(run_dir: Path, key: Key, root: Path | None) -> Exported:
    """The Label Studio files under ``annotate/`` and the key beside them."""
    from framework.annotation.label_studio import write_tasks
    from framework.atomic import atomic_write_text
    from framework.humaneval.pairs import key_path

    pairs: Sequence = list(key.pairs.values())
    folder = Path(run_dir) / HUMANEVAL_DIR / ANNOTATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tasks = write_tasks(label_studio.tasks(pairs, root), folder / "tasks.json")
    config = atomic_write_text(folder / "config.xml", label_studio.labelling_config(key.interface, pairs))
    key_file = key.write(key_path(run_dir))
    gold = sum(p.kind == "gold" for p in pairs)
    identical = sum(p.kind == "model" and p.output_a == p.output_b for p in pairs)
    log.info("human evaluation: %d pairs (%d gold) of split %r against %s -> %s (Label Studio: create a project "
             "with config.xml, import tasks.json); key -> %s (keep it from annotators)%s", len(pairs), gold, key.split,
             key.baseline if key.baseline != BASELINE else "the baseline", folder, key_file,
             f"; {identical} pairs have identical answers" if identical else "")
    return Exported(tasks=tasks, config=config, key=key_file, pairs=len(pairs), gold=gold)
