"""``python -m framework.humaneval judge RUN --judge PATH``: the exported pairs scored by a local LLM.

The judge is any causal LM directory transformers loads. Each pair is judged twice, as exported
and with A and B swapped; in each order the judge's preference is the probability of the answer
``A`` against ``B`` after :data:`PROMPT` (the log-probabilities of the two continuations,
normalised over the pair). Averaging the two orders cancels a judge's position bias; the verdict
is ``Tie`` when the averaged preference is within :data:`TIE_MARGIN` of one half. Reported like the
human verdicts (win/tie/loss with intervals, gold accuracy), plus how often the two orders agree
and, when human ratings were imported, Cohen's kappa and accuracy of the judge against the human
consensus (majority) per pair. Metrics: ``judge/win_rate``..., ``judge/gold_accuracy``,
``judge/consistency``, ``judge/human_kappa``, ``judge/human_accuracy``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from framework.errors import FrameworkError
from framework.humaneval.pairs import GOOD, HUMANEVAL_DIR, JUDGE_JSON, Key, Pair, key_path
from framework.humaneval.results import JUDGMENTS_JSON, outcome, rates

log = logging.getLogger(__name__)

PREFIX = "judge/"
TIE_MARGIN = 0.1
PROMPT = ("You compare two responses to the same input and decide which is better: more correct, "
          "more helpful, and better written.\n\n{input}Response A:\n{a}\n\nResponse B:\n{b}\n\n"
          "Which response is better, A or B?\nAnswer:")
CHOICES = (" A", " B")


def load_judge(path: Path) -> tuple[Any, Any]:
    """The judge model and tokenizer from a local directory (nothing is downloaded)."""
    import transformers

    if not Path(path).is_dir():
        raise FrameworkError(f"--judge {path}: no such directory; give a local causal LM directory "
                             f"(config.json, weights, tokenizer) such as an export's merged/ folder")
    model = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tokenizer


def prompt_of(pair: Pair, swapped: bool) -> str:
    """The judging prompt of ``pair``, sides as exported or swapped."""
    a, b = (pair.output_b, pair.output_a) if swapped else (pair.output_a, pair.output_b)
    shown = f"Input:\n{pair.prompt}\n\n" if pair.prompt else ""
    return PROMPT.format(input=shown, a=a, b=b)


def choice_logprobs(model: Any, tokenizer: Any, prompt: str) -> tuple[float, float]:
    """Summed log-probabilities of each of :data:`CHOICES` following ``prompt``."""
    import torch

    context = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    out = []
    with torch.inference_mode():
        for choice in CHOICES:
            target = tokenizer(choice, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([context + target])
            logits = model(input_ids=ids).logits[0, len(context) - 1: -1].float()  # (len(target), V)
            logps = torch.log_softmax(logits, dim=-1)
            out.append(float(logps[torch.arange(len(target)), torch.tensor(target)].sum()))
    return out[0], out[1]


def prefer_first(model: Any, tokenizer: Any, pair: Pair) -> tuple[float, float]:
    """P(the exported A is better) in the exported order and in the swapped order."""
    def p_first(swapped: bool) -> float:
        la, lb = choice_logprobs(model, tokenizer, prompt_of(pair, swapped))
        p_a = 1.0 / (1.0 + math.exp(lb - la))
        return 1.0 - p_a if swapped else p_a

    return p_first(False), p_first(True)


def verdict_of(p: float, margin: float = TIE_MARGIN) -> str:
    """``A``, ``B`` or ``Tie`` from the averaged probability that A is better."""
    return "A" if p > 0.5 + margin else "B" if p < 0.5 - margin else "Tie"


def human_consensus(run_dir: Path) -> dict[str, str]:
    """The human majority verdict per pair (pairs with a tied vote are left out), when imported."""
    from collections import Counter

    path = Path(run_dir) / HUMANEVAL_DIR / JUDGMENTS_JSON
    if not path.is_file():
        return {}
    votes: dict[str, list[str]] = defaultdict(list)
    for row in json.loads(path.read_text(encoding="utf-8")):
        votes[row["pair_id"]].append(row["verdict"])
    out = {}
    for pair_id, given in votes.items():
        top = Counter(given).most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            out[pair_id] = top[0][0]
    return out


def judge_pairs(key: Key, model: Any, tokenizer: Any, margin: float = TIE_MARGIN) -> list[dict[str, Any]]:
    """One row per pair: both orders' preference for A, their mean, the verdict."""
    rows = []
    for pair in key.pairs.values():
        first, swapped = prefer_first(model, tokenizer, pair)
        mean = (first + swapped) / 2
        rows.append({"pair_id": pair.pair_id, "kind": pair.kind, "p_a": first, "p_a_swapped": swapped, "p": mean,
                     "consistent": (first > 0.5) == (swapped > 0.5), "verdict": verdict_of(mean, margin)})
    return rows


def summarise(key: Key, rows: Sequence[dict[str, Any]], humans: dict[str, str], judge: str) -> dict[str, Any]:
    """The judge's rates, gold accuracy, order consistency and agreement with the humans."""
    from framework.annotation.agreement import cohen_kappa

    pairs = key.pairs
    per_pair = {r["pair_id"]: [outcome(pairs[r["pair_id"]], r["verdict"])] for r in rows if r["kind"] == "model"}
    gold = [r["verdict"] == pairs[r["pair_id"]].side_of(GOOD) for r in rows if r["kind"] == "gold"]
    shared = [r for r in rows if r["pair_id"] in humans]
    result: dict[str, Any] = {
        "judge": judge, "overall": rates(per_pair), "gold_accuracy": sum(gold) / len(gold) if gold else math.nan,
        "consistency": sum(r["consistent"] for r in rows) / len(rows) if rows else math.nan, "pairs": rows}
    if shared:
        mine, theirs = [r["verdict"] for r in shared], [humans[r["pair_id"]] for r in shared]
        result["human_agreement"] = {"pairs": len(shared), "kappa": cohen_kappa(mine, theirs),
                                     "accuracy": sum(m == t for m, t in zip(mine, theirs)) / len(shared)}
    return result


def metrics(result: dict[str, Any]) -> dict[str, float]:
    """The ``judge/*`` metrics."""
    out = {f"{PREFIX}{k}": float(v) for k, v in result["overall"].items()}
    out[f"{PREFIX}gold_accuracy"] = float(result["gold_accuracy"])
    out[f"{PREFIX}consistency"] = float(result["consistency"])
    if "human_agreement" in result:
        out[f"{PREFIX}human_kappa"] = float(result["human_agreement"]["kappa"])
        out[f"{PREFIX}human_accuracy"] = float(result["human_agreement"]["accuracy"])
    return out


def judge_run(run_dir: Path, judge_path: Path, margin: float = TIE_MARGIN) -> dict[str, Any]:
    """Judge every exported pair of ``run_dir`` in both orders; write the results into the run."""
    from framework.humaneval.run_files import update_run

    run_dir = Path(run_dir)
    key = Key.read(key_path(run_dir))
    model, tokenizer = load_judge(Path(judge_path))
    rows = judge_pairs(key, model, tokenizer, margin)
    result = summarise(key, rows, human_consensus(run_dir), str(judge_path))
    update_run(run_dir, run_dir / HUMANEVAL_DIR / JUDGE_JSON, result, metrics(result), PREFIX)
    log.info("judge: win rate %.3f, order-consistent on %.3f of %d pairs%s", result["overall"].get("win_rate", math.nan),
             result["consistency"], len(rows), "" if "human_agreement" not in result else
             f"; kappa against the humans {result['human_agreement']['kappa']:.3f}")
    return result
