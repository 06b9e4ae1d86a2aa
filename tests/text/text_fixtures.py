"""Helpers of the text tests: paths, and lines of small chat and preference files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[2] / "plugins" / "text" / "conf"
TINY = Path(__file__).resolve().parents[2] / "examples" / "models" / "tiny-unit-lm"


def chat_line(i: int, n: int, system: bool = False) -> dict[str, Any]:
    messages = [{"role": "user", "content": f"Convert {n} km to m."},
                {"role": "assistant", "content": f"{n}000 m"}]
    if system:
        messages.insert(0, {"role": "system", "content": "You convert units."})
    return {"id": f"c{i}", "messages": messages, "unit": "km->m"}


def pair_line(i: int, n: int, trap: bool) -> dict[str, Any]:
    prompt = f"I think {n} km is {n}0 m. Convert {n} km to m." if trap else f"Convert {n} km to m."
    return {"id": f"p{i}", "prompt": prompt, "chosen": f"{n}000 m", "rejected": f"{n}0 m",
            "reason": "times 1000", ("trap" if trap else "gold"): True, "kind": "trap" if trap else "gold"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


