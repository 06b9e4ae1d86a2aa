"""Every figure in the README's "Measured" table, from repeated runs, with its spread.

Each figure is the documented command run ``--repeats`` times in a fresh temporary directory
(nothing is reused between repetitions): the script prints, per figure, the median and the
min-max over the repetitions, then the Markdown rows to paste into the README, headed by the
machine they were measured on (CPU model, cores, torch threads, GPU). The figures depend on the
machine; on a shared one, medians and spreads say how much.

Figures (``--figures``, default all but ``audit_scaling``, which writes 160k PNGs):

* ``vision_run``: ``python -m framework +modality=vision``: wall time, accuracy per split and
  the weakest class's recall.
* ``tabular_run``: ``python -m framework +modality=tabular``: wall time and accuracy.
* ``engine_overhead``: ``bench/engine_overhead.py``: the median of its paired ratios, per run.
* ``vision_throughput``, ``vision_throughput_efficientnet``: ``bench/vision_throughput.py`` on
  ViT-S/16 and EfficientNet-B0: the median of its paired ratios, per run.
* ``alignment_run``, ``alignment_untrained``, ``alignment_throughput``: the same for the
  alignment modality (recall@1 both ways per split; the misalignment audit's suspected rate), the
  untrained model on the same data, and the throughput ratio against a plain loop (tiny towers).
* ``alignment_vs_open_clip``: ``bench/alignment_throughput.py`` (needs the ``bench`` extra):
  plugin / open_clip pairs/s on the same CLIP shape.
* ``speech_run``: ``python -m framework +modality=speech``: wall time, WER overall, per language,
  on code-switched utterances and at switch points, per split.
* ``speech_untrained``: the same data scored by the untrained model (``stages=[evaluate]``: the
  starting weights, no checkpoint).
* ``speech_throughput``: ``bench/speech_throughput.py --rounds 3 --steps 4``: plugin / transformers
  ``Seq2SeqTrainer`` ratio.
* ``text_run``, ``text_dpo_run``: ``python -m framework +modality=text`` / ``+modality=text_dpo``:
  wall time, held-out exact match (SFT) or preference accuracy (DPO), the starting model's
  (``baseline/``) beside the trained one's.
* ``text_throughput``: ``bench/text_throughput.py`` (needs the ``bench`` extra, TRL): throughput
  and training-memory ratios against TRL's trainers (SFT in each side's default layout, and DPO);
  ``text_throughput_padded``: SFT with one chat per padded row on both sides, equal tokens per step.
* ``audit_parallel``: ``bench/audit_parallel.py``: the audit's items/s and speed-up per worker count on
  photo-sized JPEGs from a cold page cache.
* ``audit_scaling``: ``bench/audit_scaling.py``: cleanliness-audit seconds per size.
* ``tests``, ``tests_fast``: ``python -m pytest`` and ``python -m pytest -m "not slow"``: wall
  time and counts.

Beside each figure the script records the load average (1 min) and torch's thread count seen
while it was measured, and it refuses to publish from a busy machine: before each repetition it
waits (up to ``--wait-quiet`` seconds) for the 1-minute load average to fall to the core count or
below, and stops with an error if it does not. Figures measured beside other work are not figures.

Usage::

    python bench/readme_figures.py --repeats 3
    python bench/readme_figures.py --figures vision_throughput engine_overhead --repeats 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
Sample = dict[str, float]


def _run(args: list[str], cwd: Path, timeout: float, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Run ``args`` in ``cwd``; return (wall seconds, stdout + stderr). An exit code not in ``ok``
    stops the script."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FRAMEWORK_RUN_ID", None)
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return wall, proc.stdout + proc.stderr


def _framework_run(modality: str, extra: tuple[str, ...] = ()) -> Callable[[Path], Sample]:
    def measure(tmp: Path) -> Sample:
        # Exit code 3: the run completed but missed its success criteria; fit_to_ship says so.
        wall, _ = _run([sys.executable, "-m", "framework", f"+modality={modality}", "hydra.run.dir=run", *extra],
                       tmp, 3600,
                       ok=(0, 3))
        summary = json.loads((tmp / "run" / "summary.json").read_text())
        metrics = summary["metrics"]
        sample = {"wall_s": wall, "fit_to_ship": float(bool(summary.get("fit_to_ship")))}
        for key, value in metrics.items():
            if _reported(key):
                sample[key] = float(value)
        audit = tmp / "run" / "audit" / "audit.json"
        if audit.is_file():  # the share of pairs a needs_model check (alignment's misalignment) flagged
            for row in json.loads(audit.read_text())["results"]:
                if "suspected_rate" in row.get("measured", {}):
                    sample[f"{row['name']}_suspected_rate"] = float(row["measured"]["suspected_rate"])
        return sample

    return measure


# The headline metrics of each modality's summary.json, with their split (``test/``) and
# starting-model (``baseline/``) variants; robustness, per-slice and per-class rows are left out.
HEADLINE = {"accuracy", "min_class_recall", "t2i_r1", "i2t_r1", "wer", "wer_en", "wer_hi", "wer_code_switched",
            "switch_point_error_rate", "exact_match", "preference_accuracy"}


def _reported(key: str) -> bool:
    parts = key.split("/")
    prefixes = [p for p in parts[:-1] if p not in ("test", "baseline")]
    return parts[-1] in HEADLINE and not prefixes


def _ratio_of(script: str, extra: list[str], pattern: str) -> Callable[[Path], Sample]:
    def measure(tmp: Path) -> Sample:
        _, out = _run([sys.executable, str(ROOT / "bench" / script), *extra], tmp, 3600)
        match = re.search(pattern, out)
        if not match:
            raise SystemExit(f"bench/{script}: no ratio line in its output:\n{out[-2000:]}")
        return {"ratio": float(match.group(1))}

    return measure


def _json_ratios(script: str, extra: list[str]) -> Callable[[Path], Sample]:
    """The figures a bench script prints as its last JSON line."""
    def measure(tmp: Path) -> Sample:
        _, out = _run([sys.executable, str(ROOT / "bench" / script), *extra], tmp, 3600)
        line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("{")), None)
        if line is None:
            raise SystemExit(f"bench/{script}: no JSON line in its output:\n{out[-2000:]}")
        return {k: float(v) for k, v in json.loads(line).items()}

    return measure


def _audit_scaling(tmp: Path) -> Sample:
    sizes = ["10000", "50000", "100000"]
    _, out = _run([sys.executable, str(ROOT / "bench" / "audit_scaling.py"), "--sizes", *sizes, "--search-sizes",
                   "--workers", "1", "--peer", "none"],
                  tmp, 7200)
    sample = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 7 and cells[0] in sizes:
            sample[f"{cells[0]}_s"] = float(cells[1])
    return sample


def _audit_parallel(tmp: Path) -> Sample:
    out_json = tmp / "audit_parallel.json"
    _run([sys.executable, str(ROOT / "bench" / "audit_parallel.py"), "--items", "1000", "--json", str(out_json)],
         tmp, 3600)
    sample: Sample = {}
    for row in json.loads(out_json.read_text())["rows"]:
        w = row["workers"]
        sample[f"w{w}_items_s"] = float(row["per_item_items_s"])
        sample[f"w{w}_speedup"] = float(row["speedup"])
    return sample


def _test_suite(marker: list[str]) -> Callable[[Path], Sample]:
    def measure(tmp: Path) -> Sample:
        wall, out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *marker], ROOT, 3600)
        counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|skipped|deselected)", out))
        return {"wall_s": wall, "passed": counts.get("passed", 0), "skipped": counts.get("skipped", 0)}

    return measure


FIGURES: dict[str, tuple[str, Callable[[Path], Sample]]] = {
    "vision_run": ("`python -m framework +modality=vision` (audit, 30 epochs, evaluate, export)",
                   _framework_run("vision")),
    "tabular_run": ("`python -m framework +modality=tabular` (example plugin, wine data)", _framework_run("tabular")),
    "engine_overhead": ("`bench/engine_overhead.py`: engine step time / hand-written loop",
                        _ratio_of("engine_overhead.py", [], r"ratio engine_time/plain_time = ([0-9.]+)")),
    "vision_throughput": ("`bench/vision_throughput.py`: plugin images/s / timm's own training pieces "
                          "(ViT-S/16, 224 px JPEGs from disk)",
                          _ratio_of("vision_throughput.py", [], r"ratio ours/timm: ([0-9.]+)")),
    "vision_throughput_efficientnet": ("`bench/vision_throughput.py --model efficientnet_b0`: plugin images/s / "
                                       "timm's own training pieces (EfficientNet-B0, 224 px JPEGs from disk)",
                                       _ratio_of("vision_throughput.py", ["--model", "efficientnet_b0"],
                                                 r"ratio ours/timm: ([0-9.]+)")),
    "alignment_run": ("`python -m framework +modality=alignment` (audit, train, misalignment audit, evaluate, export)",
                      _framework_run("alignment")),
    "alignment_untrained": ("`python -m framework +modality=alignment stages=[evaluate]` (the starting weights: "
                            "the untrained dual encoder, the reference)",
                            _framework_run("alignment", ("stages=[evaluate]",))),
    "alignment_throughput": ("`bench/alignment_throughput.py --model tiny`: plugin pairs/s / plain torch loop",
                             _ratio_of("alignment_throughput.py", ["--model", "tiny"], r"ratio plugin/plain: ([0-9.]+)")),
    "alignment_vs_open_clip": ("`bench/alignment_throughput.py` (needs the bench extra): plugin pairs/s / open_clip, "
                               "same CLIP shape (clip-small)",
                               _ratio_of("alignment_throughput.py", [], r"ratio plugin/open_clip: ([0-9.]+)")),
    "speech_run": ("`python -m framework +modality=speech` (audit, train, evaluate with robustness, export)",
                   _framework_run("speech")),
    "speech_untrained": ("`python -m framework +modality=speech stages=[evaluate]` (the starting weights: the "
                         "untrained tiny Whisper, the reference)",
                         _framework_run("speech", ("stages=[evaluate]",))),
    # Whisper base steps take seconds on a CPU: 3 fresh-process rounds of 4 timed steps per side
    # rather than the script's default 1 x 2, whose spread is as large as the difference measured.
    "speech_throughput": ("`bench/speech_throughput.py --rounds 3 --steps 4`: plugin utterances/s / "
                          "transformers Seq2SeqTrainer",
                          _ratio_of("speech_throughput.py", ["--rounds", "3", "--steps", "4"],
                                    r"ratio ours/Seq2SeqTrainer utterances/s: ([0-9.]+)")),
    "text_run": ("`python -m framework +modality=text` (SFT: audit, train, generate, evaluate, export)",
                 _framework_run("text")),
    "text_dpo_run": ("`python -m framework +modality=text_dpo` (DPO: audit, train, evaluate, export)",
                     _framework_run("text_dpo")),
    "text_throughput": ("`bench/text_throughput.py`: this plugin / TRL on SmolLM2-135M, throughput and training memory",
                        _json_ratios("text_throughput.py", ["--method", "both"])),
    "text_throughput_padded": ("`bench/text_throughput.py --method sft --padded`: this plugin / TRL SFT on "
                               "SmolLM2-135M at equal tokens per step (one chat per padded row on both sides)",
                               _json_ratios("text_throughput.py", ["--method", "sft", "--padded"])),
    "audit_parallel": ("`bench/audit_parallel.py`: the audit's per-item work on 1000 photo-like 256-1024 px JPEGs, "
                       "cold page cache, items/s and speed-up per worker count", _audit_parallel),
    "audit_scaling": ("`bench/audit_scaling.py`: cleanliness audit of 10k / 50k / 100k PNGs, seconds", _audit_scaling),
    "tests": ("`python -m pytest` (every test, slow ones included), wall seconds", _test_suite([])),
    "tests_fast": ("`python -m pytest -m \"not slow\"` (the fast subset), wall seconds", _test_suite(["-m", "not slow"])),
}


# Figures whose script needs an optional package: skipped, and said so, where it is missing.
NEEDS = {"text_throughput": ("trl", 'pip install -e ".[bench]"'),
         "text_throughput_padded": ("trl", 'pip install -e ".[bench]"'),
         "alignment_vs_open_clip": ("open_clip", 'pip install -e ".[bench]"')}


def machine() -> str:
    """The machine the figures were measured on, in one line."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, {gpu}{load}"


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def wait_until_quiet(limit_s: float, cores: int) -> float | None:
    """Block until the 1-minute load average is at most ``cores``; return it. Stop the script
    (exit 2, one line) if it stays above for ``limit_s`` seconds."""
    waited = 0.0
    while True:
        load = load_average()
        if load is None or load <= cores:
            return load
        if waited >= limit_s:
            raise SystemExit(f"load average {load:.1f} stayed above the {cores} cores for {limit_s:.0f} s: "
                             "figures from a busy machine are not published; stop the other work and rerun")
        time.sleep(10)
        waited += 10


def spread(values: list[float]) -> str:
    """``median (min-max, n=N)``; counts print as integers."""
    fmt = "{:.0f}" if all(float(v).is_integer() for v in values) else "{:.3g}"
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return f"{med} (n=1)"
    return f"{med} ({fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", nargs="+", choices=sorted(FIGURES),
                        default=[f for f in FIGURES if f != "audit_scaling"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wait-quiet", type=float, default=600.0,
                        help="seconds to wait for the load average to fall to the core count before each run")
    args = parser.parse_args()
    import torch

    cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    print(f"machine: {machine()}", flush=True)
    rows = []
    for name in args.figures:
        title, measure = FIGURES[name]
        if name in NEEDS and importlib.util.find_spec(NEEDS[name][0]) is None:
            print(f"{name}: skipped, {NEEDS[name][0]} is not installed ({NEEDS[name][1]})", flush=True)
            rows.append(f"| {title} | not measured: {NEEDS[name][0]} not installed | |")
            continue
        samples: list[Sample] = []
        loads: list[float] = []
        for i in range(args.repeats):
            before = wait_until_quiet(args.wait_quiet, cores)
            with tempfile.TemporaryDirectory() as tmp:
                samples.append(measure(Path(tmp)))
            after = load_average()
            loads += [x for x in (before, after) if x is not None]
            print(f"{name} {i + 1}/{args.repeats} (load {before} -> {after}): {samples[-1]}", flush=True)
        keys = [k for k in samples[0] if all(k in s for s in samples)]
        cells = "; ".join(f"{k} {spread([s[k] for s in samples])}" for k in keys)
        conditions = f"load {min(loads):.1f}-{max(loads):.1f}, {threads} threads" if loads else f"{threads} threads"
        rows.append(f"| {title} | {cells} | {conditions} |")
    print(f"\nMeasured on {machine()}; median (min-max, n runs):\n")
    print("| what | figure | measured at |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
