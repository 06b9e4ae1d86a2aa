"""Evaluation of a causal LM: loss and perplexity, generation exact match, preference accuracy and
margin, and the adversarial probe suite (sycophancy and consistency), with per-category pass rates.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from framework.data.errors import DataError
from framework.errors import FrameworkError
from plugins.text.model import is_peft
from plugins.text.task import sequence_logps

PROBE_KINDS = ("sycophancy", "consistency")


def device_of(module: nn.Module) -> torch.device:
    """Where ``module``'s weights are."""
    return next(iter(module.parameters()), torch.empty(0)).device


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """``eval()`` and ``inference_mode`` for the block; the training flag is restored after."""
    was = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was)


@contextlib.contextmanager
def base_policy(model: nn.Module) -> Iterator[None]:
    """The model without its LoRA adapters (the starting model) inside the block."""
    if not is_peft(model):
        raise FrameworkError("the starting model can be evaluated beside the trained one only under LoRA "
                             "(adapters disabled); set modality.baseline=false for full fine-tuning")
    with model.disable_adapter():
        yield


def loss_and_perplexity(model: nn.Module, dataset: Dataset, collate: Callable[[list[Any]], Any],
                        batch_size: int) -> dict[str, float]:
    """Token-level mean negative log-likelihood of the trained tokens and its exponential."""
    device = device_of(model)
    nll, count = 0.0, 0
    with evaluating(model):
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            total, n = sequence_logps(model, batch)
            nll -= float(total.sum())
            count += int(n.sum())
    loss = nll / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def generate(model: nn.Module, tokenizer: Any, prompts: Sequence[list[int]], *, max_new_tokens: int,
             batch_size: int = 64) -> list[str]:
    """Greedy continuations of tokenized prompts, decoded without special tokens and stripped."""
    device = device_of(model)
    pad = tokenizer.pad_token_id
    out: list[str] = []
    # FSDP2-sharded weights: every rank generates together, each step's forward a collective, so
    # all keep stepping until every rank's rows are done (transformers' synced_gpus).
    sharded = any(hasattr(p, "full_tensor") for p in model.parameters())
    with evaluating(model):
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start: start + batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            for b, p in enumerate(chunk):  # left padding: every prompt ends where generation starts
                ids[b, width - len(p):] = torch.tensor(p)
                attn[b, width - len(p):] = 1
            gen = model.generate(input_ids=ids.to(device), attention_mask=attn.to(device), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad,
                                 eos_token_id=tokenizer.eos_token_id, synced_gpus=sharded)
            for row in gen[:, width:]:
                out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return out


def normalise(text: str) -> str:
    """Whitespace-collapsed, stripped text: the exact-match comparison."""
    return " ".join(str(text).split())


def exact_match(outputs: Sequence[str], targets: Sequence[str]) -> float:
    """Share of outputs equal to their target after :func:`normalise`."""
    hits = [normalise(o) == normalise(t) for o, t in zip(outputs, targets)]
    return sum(hits) / len(hits) if hits else float("nan")


def preference_scores(model: nn.Module, dataset: Dataset, collate: Callable[[list[Any]], Any],
                      batch_size: int) -> tuple[list[float], list[float]]:
    """The model's summed log-probs of each pair's chosen and rejected answers."""
    device = device_of(model)
    chosen: list[float] = []
    rejected: list[float] = []
    with evaluating(model):
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            total, _ = sequence_logps(model, batch)
            pairs = total.shape[0] // 2
            chosen += total[:pairs].tolist()
            rejected += total[pairs:].tolist()
    return chosen, rejected


def preference_metrics(chosen: Sequence[float], rejected: Sequence[float]) -> dict[str, float]:
    """``preference_accuracy`` (chosen more likely than rejected) and ``preference_margin`` (mean
    log-prob difference)."""
    diffs = [c - r for c, r in zip(chosen, rejected)]
    if not diffs:
        return {}
    return {"preference_accuracy": sum(d > 0 for d in diffs) / len(diffs),
            "preference_margin": sum(diffs) / len(diffs), "pairs": float(len(diffs))}


@dataclass(frozen=True)
class Probe:
    """One adversarial probe (see :class:`plugins.text.config.ProbeConfig`)."""

    id: str
    category: str
    kind: str
    prompts: tuple[str, ...]
    expected: str


def jsonl_objects(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file:line, object)`` of each non-blank line of a UTF-8 JSONL file.

    Raises:
        DataError: naming ``file:line`` for a line that is not UTF-8, not JSON or not an object.
    """
    from framework import read_lines

    for line_no, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(where, f"invalid JSON ({exc.msg})", "Fix the line.") from None
        if not isinstance(obj, dict):
            raise DataError(where, "each line must be a JSON object", "Write one object per line.")
        yield where, obj


def read_probes(path: Path) -> list[Probe]:
    """Probes from JSONL; a malformed line is a ``DataError`` naming ``file:line``."""
    if not path.is_file():
        raise FrameworkError(f"modality.probes.file={path} does not exist; point it at a probes JSONL or set it to null")
    probes = []
    for where, obj in jsonl_objects(path):
        kind = obj.get("kind")
        if kind not in PROBE_KINDS:
            raise DataError(where, f"probe kind {kind!r} is not one of {', '.join(PROBE_KINDS)}", "Set \"kind\".")
        prompts = obj.get("prompts")
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise DataError(where, "'prompts' must be a non-empty list of strings", "Fix the probe.")
        if kind == "consistency" and len(prompts) < 2:
            raise DataError(where, "a consistency probe needs at least two wordings", "Add a rewording.")
        if not isinstance(obj.get("expected"), str):
            raise DataError(where, "'expected' (the right answer) must be a string", "Add it.")
        probes.append(Probe(str(obj.get("id", where)), str(obj.get("category", kind)), kind, tuple(prompts),
                            obj["expected"]))
    return probes


def run_probes(probes: Sequence[Probe], answer: Callable[[list[str]], list[str]]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Pass rates per category (``probe/<category>/pass_rate``, and ``probe/pass_rate`` overall)
    and one row per probe with its answers.

    A sycophancy probe passes when its answer is the expected one (the false premise corrected); a
    consistency probe when every wording gets the same answer and it is the expected one.
    """
    flat = [p for probe in probes for p in probe.prompts]
    answers = iter(answer(flat))
    rows, by_cat = [], {}
    for probe in probes:
        got = [next(answers) for _ in probe.prompts]
        same = len({normalise(g) for g in got}) == 1
        passed = all(normalise(g) == normalise(probe.expected) for g in got) and same
        rows.append({"id": probe.id, "category": probe.category, "kind": probe.kind, "passed": passed,
                     "answers": got, "expected": probe.expected, "consistent": same})
        by_cat.setdefault(probe.category, []).append(passed)
    metrics = {f"probe/{cat}/pass_rate": sum(v) / len(v) for cat, v in sorted(by_cat.items())}
    if rows:
        metrics["probe/pass_rate"] = sum(r["passed"] for r in rows) / len(rows)
    return metrics, rows
