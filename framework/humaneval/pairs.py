"""Blind pairs for human evaluation: sampled by slice, sides randomised, gold pairs planted.

A *pair* is one input with two outputs: the trained model's and the baseline's (the starting
model, or another run). Which one is shown as A is drawn at random per pair; the draw is kept in
the *key* (``humaneval/key.json``), a file apart from the Label Studio tasks annotators see
(``humaneval/annotate/``). *Gold* pairs are mixed in at a stated rate: the reference answer
against an empty answer or another item's reference, so the better side is known and every
rater's attention can be checked.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from framework.data.records import Record
from framework.errors import FrameworkError

log = logging.getLogger(__name__)

HUMANEVAL_DIR = "humaneval"
KEY_JSON = "key.json"
RESULTS_JSON = "results.json"  # the human verdicts summarised (framework.humaneval.results)
JUDGE_JSON = "judge.json"  # the LLM judge's (framework.humaneval.judge)
ANNOTATE_DIR = "annotate"  # what annotators see: tasks.json and config.xml
TRAINED, BASELINE, GOOD, BAD = "trained", "baseline", "gold_good", "gold_bad"


@dataclass
class Pair:
    """One comparison shown to annotators, with what the key keeps about it.

    Attributes:
        pair_id: An opaque id, the only link between a task and its key entry.
        item_id: The record compared on.
        kind: ``model`` (trained against baseline) or ``gold`` (known better side).
        a: Which output is shown as A: ``trained``/``baseline``, or ``gold_good``/``gold_bad``.
        b: The other one.
        prompt: The input as text, when there is one to show.
        media: The input's media file (audio or image), when it has one.
        output_a: The text shown as A.
        output_b: The text shown as B.
        slices: The record's slice values.
        gold_kind: For gold pairs, how the worse answer was made (``empty`` or ``mismatched``).
    """

    pair_id: str
    item_id: str
    kind: str
    a: str
    b: str
    prompt: str | None
    media: str | None
    output_a: str
    output_b: str
    slices: dict[str, str] = field(default_factory=dict)
    gold_kind: str | None = None

    def side_of(self, who: str) -> str | None:
        """``A`` or ``B``: where ``who`` (``trained``, ``gold_good``...) is shown; ``None`` if absent."""
        return "A" if self.a == who else "B" if self.b == who else None


def stratified_sample(records: Sequence[Record], n: int, seed: int) -> list[Record]:
    """``n`` records (all when fewer), allocated to the slice strata in proportion to their size
    (largest remainders first, every stratum at least one while ``n`` allows), seeded."""
    if n >= len(records):
        return list(records)
    strata: dict[tuple[tuple[str, str], ...], list[Record]] = defaultdict(list)
    for record in records:
        strata[tuple(sorted(record.slices.items()))].append(record)
    rng = random.Random(seed)
    keys = sorted(strata)
    exact = {k: n * len(strata[k]) / len(records) for k in keys}
    take = {k: min(len(strata[k]), max(1, int(exact[k]))) for k in keys} if n >= len(keys) else \
        {k: 0 for k in keys}
    order = sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), -len(strata[k]), k))
    while sum(take.values()) > n:  # the at-least-one rule overshot: trim the largest strata
        biggest = max(keys, key=lambda k: (take[k], k))
        take[biggest] -= 1
    i = 0
    while sum(take.values()) < n:
        k = order[i % len(order)]
        if take[k] < len(strata[k]):
            take[k] += 1
        i += 1
    chosen = [r for k in keys for r in rng.sample(strata[k], take[k])]
    rng.shuffle(chosen)
    return chosen


def shown_input(record: Record, predictions_input: str | None) -> str | None:
    """The input text to show: the modality's own rendering (``Predictions.extras["inputs"]``),
    else ``record.text`` unless it holds the reference (a transcript is not shown with its audio)."""
    if predictions_input:
        return predictions_input
    text = record.text
    if text is None or (record.label is not None and str(record.label) in text):
        return None
    return text


def make_pairs(records: Sequence[Record], trained: Sequence[str], baseline: Sequence[str],
               inputs: Sequence[str | None], media: Sequence[str | None], *, gold_rate: float,
               seed: int) -> list[Pair]:
    """Pairs of ``trained[i]`` against ``baseline[i]`` on ``records[i]``, sides drawn at random,
    plus about ``gold_rate`` times as many gold pairs (on records with a reference), shuffled in."""
    rng = random.Random(seed + 1)
    pairs = []
    for i, record in enumerate(records):
        first, second = (TRAINED, BASELINE) if rng.random() < 0.5 else (BASELINE, TRAINED)
        outputs = {TRAINED: str(trained[i]), BASELINE: str(baseline[i])}
        pairs.append(Pair(secrets.token_hex(6), record.id, "model", first, second, inputs[i], media[i],
                          outputs[first], outputs[second], dict(record.slices)))
    labeled = [i for i, r in enumerate(records) if isinstance(r.label, str) and r.label.strip()]
    n_gold = min(len(labeled), round(gold_rate * len(records)))
    if gold_rate > 0 and n_gold == 0 and records:
        log.warning("human evaluation: no gold pairs planted (%s)", "no record has a text reference" if not labeled
                    else f"gold rate {gold_rate} of {len(records)} pairs rounds to none")
    for j, i in enumerate(rng.sample(labeled, n_gold)):
        record = records[i]
        others = [records[k].label for k in labeled if records[k].label != record.label]
        gold_kind = "mismatched" if others and j % 2 else "empty"
        bad = rng.choice(others) if gold_kind == "mismatched" else ""
        first, second = (GOOD, BAD) if rng.random() < 0.5 else (BAD, GOOD)
        outputs = {GOOD: str(record.label), BAD: str(bad)}
        pairs.append(Pair(secrets.token_hex(6), record.id, "gold", first, second, inputs[i], media[i],
                          outputs[first], outputs[second], dict(record.slices), gold_kind))
    rng.shuffle(pairs)
    return pairs


@dataclass
class Key:
    """What the annotators must not see: every pair's sides, and how the pairs were made.

    Attributes:
        run: The evaluated run.
        baseline: What the trained model was compared with (``starting weights`` or a run dir).
        split: The split the inputs came from.
        interface: ``pairwise`` or ``rating``.
        gold_rate: Gold pairs planted per model pair.
        seed: The seed of the sample and the side draws.
        pairs: Every pair, by id.
    """

    run: str
    baseline: str
    split: str
    interface: str
    gold_rate: float
    seed: int
    pairs: dict[str, Pair]

    def write(self, path: Path) -> Path:
        """The key as JSON."""
        from framework.atomic import atomic_write_text

        payload = {k: v for k, v in asdict(self).items() if k != "pairs"}
        payload["pairs"] = [asdict(p) for p in self.pairs.values()]
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False))

    @classmethod
    def read(cls, path: Path) -> "Key":
        """A key written by :meth:`write`; a missing file names the command that writes it."""
        if not path.is_file():
            raise FrameworkError(f"{path} does not exist: run `python -m framework.humaneval export RUN` first "
                                 f"(it writes the pairs and their key)")
        payload = json.loads(path.read_text(encoding="utf-8"))
        pairs = {p["pair_id"]: Pair(**p) for p in payload.pop("pairs")}
        return cls(**payload, pairs=pairs)


def key_path(run_dir: Path) -> Path:
    """Where a run's human-evaluation key lives."""
    return Path(run_dir) / HUMANEVAL_DIR / KEY_JSON


def media_url(path: str | None, root: Path | None) -> str | None:
    """A media path as Label Studio's local-files URL, relative to ``root`` when inside it."""
    from framework.annotation.label_studio import LOCAL_FILES_PREFIX

    if path is None:
        return None
    media = Path(path)
    rel = media.relative_to(root).as_posix() if root and media.is_absolute() and media.is_relative_to(root) \
        else media.as_posix()
    return LOCAL_FILES_PREFIX + rel


def by_id(pairs: Sequence[Pair]) -> Mapping[str, Pair]:
    """Pairs by id."""
    return {p.pair_id: p for p in pairs}


def first_split(splits: Sequence[str], available: Mapping[str, Sequence[Any]]) -> str:
    """The first of ``splits`` with records (the split the run's criteria refer to)."""
    for split in splits:
        if available.get(split):
            return split
    raise FrameworkError(f"none of the run's evaluated splits {list(splits)} has records here; pass --split NAME "
                         f"(the run's data has: {', '.join(k for k, v in available.items() if v)})")
