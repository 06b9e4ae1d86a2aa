"""Write the text plugin's bundled benchmark: ``unit_choice``, a multiple-choice lm-eval task.

Each item asks for a unit conversion on a held-out number (one the chats never pair with that unit
pair in training) and offers four answers that differ only in their number of zeros; the right
one is the number's digits followed by as many zeros as the power of ten. The task YAML points
lm-evaluation-harness at the local JSONL (``dataset_path: json``), so it runs offline.

Written (deterministic for a seed)::

    examples/data/unit_bench/unit_choice.jsonl   {"id", "question", "choices", "answer", "unit"}
    examples/data/unit_bench/unit_choice.yaml    the lm-eval task

Usage::

    python examples/make_unit_bench.py [--out examples/data/unit_bench] [--seed 0] [--per-pair 6]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_text_data import ASK, UNITS, answer, split_of  # noqa: E402  (the chats' own units and rule)

TASK_YAML = """\
# lm-evaluation-harness task: python -m framework +modality=text evaluation.benchmarks=[unit_choice]
# Made by examples/make_unit_bench.py; the format is in README.md.
task: unit_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: unit_choice.jsonl   # relative to this file (the framework resolves it)
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: "{{answer}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def items(seed: int, per_pair: int) -> list[dict[str, Any]]:
    """``per_pair`` held-out numbers per unit pair, four answers each (right one at a seeded place)."""
    rng = random.Random(seed + 4)
    out = []
    for p, (a, b, exp) in enumerate(UNITS):
        held = [n for n in range(1, 200) if split_of(n, p, seed) == "test"]
        for n in rng.sample(held, per_pair):
            exps = [exp] + rng.sample([e for e in range(0, 5) if e != exp], 3)
            rng.shuffle(exps)
            out.append({"id": f"choice-{a}-{b}-{n}", "question": rng.choice(ASK).format(n=n, a=a, b=b),
                        "choices": [answer(n, e, b) for e in exps], "answer": exps.index(exp),
                        "unit": f"{a}->{b}"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data" / "unit_bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-pair", type=int, default=6)
    args = parser.parse_args()
    rows = items(args.seed, args.per_pair)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "unit_choice.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (args.out / "unit_choice.yaml").write_text(TASK_YAML, encoding="utf-8")
    print(f"unit_choice: {len(rows)} items -> {args.out}")


if __name__ == "__main__":
    main()
