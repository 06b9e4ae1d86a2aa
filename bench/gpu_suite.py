"""Every bench at GPU sizes on one CUDA machine, in under nine minutes: one command, one folder.

``python bench/gpu_suite.py --out DIR`` runs each entry of :data:`ENTRIES` in its own subprocess
(``--device cuda``, the entry's GPU sizes, ``--json DIR/NAME.json``) under its own timeout; the
timeouts add up to :data:`BUDGET_S`. A timeout or a failure is recorded, not fatal: the suite goes
on with the next entry. An entry whose peer package is not installed is recorded as
``skipped: ...`` without running. At the end it writes ``DIR/summary.json`` (per entry: status,
wall and CPU seconds, command, log file, the measured figures of its JSON) and prints a table;
each entry's output is in ``DIR/NAME.log``.

The entries: the engine against a nanoGPT loop on GPT-2 124M in bf16, eager and compiled, with
MFU; text LoRA SFT of ``random:llama-1b`` at 2048 tokens against TRL's SFTTrainer; its full
fine-tune (MFU, target >= 40%); DPO at batch 8 x 1024 tokens against TRL's DPOTrainer; vision
ResNet-50 and ViT-S/16 at 224 px, batch 256, bf16, channels-last against timm; the JPEG loader
ceiling at 0/4/8/14 workers; alignment against open_clip's ViT-B-32 at batch 512; speech
``random:small`` (30 s windows) at batch 32 against transformers' Seq2SeqTrainer. The MFU of the
full fine-tune is computed here from the text bench's tokens/s when its JSON gives none: nanoGPT's
``6 N + 12 L d T`` FLOPs per token of the ``random:llama-1b`` shape over the bf16 matmul peak the
engine entries measured in the same suite run.

``--smoke`` runs every entry on the CPU at smoke size instead (each bench's ``--smoke``: its own
tiny model and sizes, 1-2 steps; the entry's mode flags such as ``--method dpo`` are kept,
``--compile`` is not: inductor takes minutes on a CPU): it proves the suite and the benches run.
``--dry-run`` prints the commands and runs nothing; ``--only NAME...`` picks entries.

On a GPU machine with no package index, carry the wheels of ``bench/gpu_requirements.txt``
(see docs/benchmarks.md)::

    # here, with PyPI (the GPU machine's Python is 3.12):
    pip download --no-deps --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \\
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -r bench/gpu_requirements.txt -d wheels
    pip wheel --no-deps wheels/*.tar.gz wheels/*.zip -w wheels && rm wheels/*.tar.gz wheels/*.zip
    # there, in a copy of the repository with wheels/ beside it:
    pip install --no-index --no-deps --find-links wheels -r bench/gpu_requirements.txt
    pip install --no-index --no-deps --no-build-isolation -e .
    python bench/gpu_suite.py --out gpu-results
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 530  # the entries' timeouts add up to this: under nine minutes with the suite's own seconds
SMOKE_TIMEOUT_S = 300  # per entry at smoke size (a stuck entry must not stall the suite)
WORKERS = min(14, max(0, (os.cpu_count() or 1) - 2))  # loader workers of the vision entries
# A measured figure in a bench's JSON: rates, ratios, MFU, peaks (settings such as warmup_ratio are not).
MEASURED = re.compile(r"per_s|ratio|mfu|tflops")
NOT_MEASURED = re.compile(r"warmup|lr_ratio|^machine\.|settings\.")


def llama_flops_per_token(seq_len: int, layers: int = 16, hidden: int = 2048, heads: int = 32, kv_heads: int = 8,
                          intermediate: int = 8192, vocab: int = 32000) -> float:
    """nanoGPT's training FLOPs per token of a Llama shape (``random:llama-1b`` by default):
    ``6 N`` over the matmul weights (attention, MLP, the untied output layer; not the input
    embedding, a lookup) plus ``12 * layers * hidden * seq_len`` for attention scores."""
    kv = hidden * kv_heads // heads
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate
    return 6 * (layers * per_layer + hidden * vocab) + 12 * layers * hidden * seq_len


@dataclass(frozen=True)
class Entry:
    """One bench run of the suite.

    Attributes:
        name: The entry's name: its JSON is ``NAME.json``, its output ``NAME.log``.
        script: The bench script in ``bench/``.
        args: What the entry measures (method, mode): kept at smoke size.
        gpu_args: The GPU sizes (model, batch, lengths, precision, steps): left out at smoke size,
            where the bench's ``--smoke`` picks its own.
        timeout_s: Seconds the entry may take on the GPU machine, start-up included.
        peers: Modules of the peer packages the bench compares against (skipped when missing).
        note: Printed beside the entry's figures (a target).
        flops_per_token: When set and the JSON has no MFU: MFU from its tokens/s (see the module doc).
    """

    name: str
    script: str
    args: tuple[str, ...] = ()
    gpu_args: tuple[str, ...] = ()
    timeout_s: int = 60
    peers: tuple[str, ...] = ()
    note: str = ""
    flops_per_token: Optional[float] = None


GPT2 = ("--model", "gpt2-124m", "--precision", "bf16")
GPT2_SIZES = ("--batch-size", "16", "--seq-len", "1024", "--steps", "20", "--warmup", "5", "--chunk", "10",
              "--repeats", "3")
LLAMA_1B = ("--model", "random:llama-1b", "--precision", "bf16")
VISION = ("--image-size", "224", "--batch-size", "256", "--precision", "bf16", "--channels-last",
          "--workers", str(WORKERS), "--steps", "5", "--rounds", "1")

ENTRIES: tuple[Entry, ...] = (
    Entry("engine_gpt2", "engine_overhead.py", GPT2, GPT2_SIZES, 40,
          note="MFU vs measured bf16 peak; engine/plain time target <= 1.05"),
    Entry("engine_gpt2_compile", "engine_overhead.py", GPT2, ("--compile",) + GPT2_SIZES, 95,
          note="torch.compile on both sides"),
    Entry("text_sft_lora", "text_throughput.py", ("--method", "sft"),
          LLAMA_1B + ("--seq-len", "2048", "--batch-size", "8", "--steps", "5"), 65, peers=("trl",)),
    Entry("text_full_finetune", "text_throughput.py", ("--method", "sft", "--full-finetune"),
          LLAMA_1B + ("--seq-len", "2048", "--batch-size", "8", "--steps", "5"), 55, peers=("trl",),
          note="target: MFU >= 40%", flops_per_token=llama_flops_per_token(2048)),
    Entry("text_dpo", "text_throughput.py", ("--method", "dpo"),
          LLAMA_1B + ("--seq-len", "1024", "--batch-size", "8", "--steps", "5"), 50, peers=("trl",)),
    Entry("vision_resnet50", "vision_throughput.py", (), ("--model", "resnet50") + VISION, 55, peers=("timm",)),
    Entry("vision_vit_small", "vision_throughput.py", (), ("--model", "vit_small_patch16_224") + VISION, 50,
          peers=("timm",)),
    Entry("jpeg_loader_ceiling", "loader_ceiling.py", (),
          ("--workers", "0", "4", "8", "14", "--batch-size", "256", "--image-size", "224"), 30,
          note="images/s per loader worker count"),
    Entry("alignment_vit_b_32", "alignment_throughput.py", (),
          ("--model", "vit-b-32", "--batch-size", "512", "--precision", "bf16", "--steps", "5", "--rounds", "1"), 45,
          peers=("open_clip",)),
    Entry("speech_small", "speech_throughput.py", (),
          ("--model", "random:small", "--batch-size", "32", "--precision", "bf16", "--steps", "3"), 45,
          peers=("transformers",), note="30 s audio windows"),
)


def command(entry: Entry, out: Path, smoke: bool) -> list[str]:
    """The entry's command line: at GPU sizes on CUDA, or at smoke size on the CPU."""
    sizes = ["--smoke", "--device", "cpu"] if smoke else ["--device", "cuda", *entry.gpu_args]
    return [sys.executable, str(ROOT / "bench" / entry.script), *entry.args, *sizes,
            "--json", str(out / f"{entry.name}.json")]


def measured(data: Any, prefix: str = "") -> dict[str, float]:
    """The measured figures of a bench's JSON (rates, ratios, MFU), flattened to dotted keys."""
    if isinstance(data, dict):
        found: dict[str, float] = {}
        for key, value in data.items():
            found.update(measured(value, f"{prefix}{key}."))
        return found
    key = prefix.rstrip(".")
    if isinstance(data, (int, float)) and not isinstance(data, bool) and MEASURED.search(key) \
            and not NOT_MEASURED.search(key):
        return {key: float(data)}
    return {}


def add_mfu(figures: dict[str, float], flops_per_token: float, peak_tflops: float) -> None:
    """``mfu.<side>`` for each ``<side>.tokens_per_s`` in ``figures`` (when it holds no MFU yet)."""
    if any("mfu" in key for key in figures):
        return
    for key, rate in list(figures.items()):
        if key.endswith("tokens_per_s"):
            figures[f"mfu.{key[: -len('tokens_per_s')].rstrip('.') or 'tokens'}"] = \
                rate * flops_per_token / (peak_tflops * 1e12)


def run_entry(entry: Entry, out: Path, smoke: bool) -> dict[str, Any]:
    """Run one entry in its own process group under its timeout; what happened and its figures."""
    cmd = command(entry, out, smoke)
    result: dict[str, Any] = {"command": " ".join(cmd), "note": entry.note}
    missing = [p for p in entry.peers if importlib.util.find_spec(p) is None]
    if missing:
        result["status"] = (f"skipped: peer package {', '.join(missing)} is not installed "
                            "(pip install -r bench/gpu_requirements.txt)")
        return result
    timeout = SMOKE_TIMEOUT_S if smoke else entry.timeout_s
    log, json_path = out / f"{entry.name}.log", out / f"{entry.name}.json"
    json_path.unlink(missing_ok=True)  # a figure from an earlier run in this folder is not this run's
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start, cpu = time.perf_counter(), _children_cpu_s()
    with log.open("w") as sink:
        # A session of its own, so that a timeout ends its loader workers and trainer processes too.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
            result["status"] = "ok" if code == 0 else f"failed (exit {code}; see {log.name})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            result["status"] = f"timeout ({timeout} s)"
    # CPU seconds beside wall seconds: on a busy machine the wall clock says little of the entry's cost.
    result.update(seconds=round(time.perf_counter() - start, 1), cpu_s=round(_children_cpu_s() - cpu, 1),
                  log=log.name)
    if json_path.exists():
        result["json"] = json_path.name
        result["figures"] = measured(json.loads(json_path.read_text()))
    return result


def _children_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(summary: dict[str, dict[str, Any]]) -> str:
    """The summary as a fixed-width table: entry, status, wall (CPU) seconds, figures, note."""
    rows = [("entry", "status", "s (cpu s)", "figures", "note")]
    for name, r in summary.items():
        figures = r.get("figures", {})
        shown = ", ".join(f"{k}={v:.3g}" for k, v in list(figures.items())[:6])
        seconds = f"{r['seconds']} ({r['cpu_s']})" if "seconds" in r else ""
        rows.append((name, r["status"], seconds, shown, r.get("note", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def main(argv: Optional[list[str]] = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for every JSON, log and summary.json")
    parser.add_argument("--smoke", action="store_true", help="every entry at smoke size on the CPU")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[e.name for e in ENTRIES],
                        help="run these entries only")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    entries = [e for e in ENTRIES if not args.only or e.name in args.only]
    if args.dry_run:
        for entry in entries:
            limit = SMOKE_TIMEOUT_S if args.smoke else entry.timeout_s
            print(f"# {entry.name} (timeout {limit} s)\n{' '.join(command(entry, args.out, args.smoke))}")
        return {}
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict[str, Any]] = {}
    peak: Optional[float] = None  # TFLOP/s, from the first engine entry that measured it
    for entry in entries:
        print(f"[{entry.name}] {' '.join(command(entry, args.out, args.smoke))}", flush=True)
        result = summary[entry.name] = run_entry(entry, args.out, args.smoke)
        figures = result.get("figures", {})
        peak = peak or figures.get("peak_tflops")
        if entry.flops_per_token and peak:
            add_mfu(figures, entry.flops_per_token, peak)
        print(f"[{entry.name}] {result['status']} ({result.get('seconds', 0)} s)", flush=True)
    (args.out / "summary.json").write_text(json.dumps(
        {"smoke": args.smoke, "budget_s": BUDGET_S, "entries": summary}, indent=2) + "\n")
    print(table(summary))
    finite = sum(any(math.isfinite(v) for v in r.get("figures", {}).values()) for r in summary.values())
    print(f"{finite} of {len(summary)} entries gave finite figures; {args.out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    main()
