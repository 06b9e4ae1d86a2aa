"""bench/gpu_suite.py: the commands it builds, its summary, timeouts and skips; the engine and
loader-ceiling benches it runs, at smoke size on the CPU (and the MFU path on a GPU)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def load(name: str) -> ModuleType:
    """A bench script as a module (bench/ is on sys.path, as when the script runs)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


suite = load("gpu_suite")


def flags(cmd: list[str], flag: str) -> list[str]:
    """The values after ``flag`` in ``cmd`` (up to the next flag)."""
    i = cmd.index(flag) + 1
    values = []
    while i < len(cmd) and not cmd[i].startswith("--"):
        values.append(cmd[i])
        i += 1
    return values


def gpu_command(name: str, out: Path = Path("out")) -> list[str]:
    entry = next(e for e in suite.ENTRIES if e.name == name)
    return suite.command(entry, out, smoke=False)


def test_the_timeouts_fit_in_nine_minutes() -> None:
    assert sum(e.timeout_s for e in suite.ENTRIES) == suite.BUDGET_S <= 9 * 60 - 10


def test_every_gpu_command_runs_on_cuda_and_writes_its_own_json(tmp_path: Path) -> None:
    names = [e.name for e in suite.ENTRIES]
    assert len(set(names)) == len(names)
    for entry in suite.ENTRIES:
        cmd = suite.command(entry, tmp_path, smoke=False)
        assert cmd[1] == str(BENCH / entry.script) and (BENCH / entry.script).parent == BENCH
        assert flags(cmd, "--device") == ["cuda"] and "--smoke" not in cmd
        assert flags(cmd, "--json") == [str(tmp_path / f"{entry.name}.json")]


def test_the_gpu_sizes_are_the_ones_asked_for() -> None:
    for name in ("engine_gpt2", "engine_gpt2_compile"):
        cmd = gpu_command(name)
        assert flags(cmd, "--model") == ["gpt2-124m"] and flags(cmd, "--precision") == ["bf16"]
    assert "--compile" in gpu_command("engine_gpt2_compile") and "--compile" not in gpu_command("engine_gpt2")
    for name, seq in (("text_sft_lora", "2048"), ("text_full_finetune", "2048"), ("text_dpo", "1024")):
        cmd = gpu_command(name)
        assert flags(cmd, "--model") == ["random:llama-1b"] and flags(cmd, "--seq-len") == [seq]
    dpo = gpu_command("text_dpo")
    assert flags(dpo, "--method") == ["dpo"] and flags(dpo, "--batch-size") == ["8"]
    assert "--full-finetune" in gpu_command("text_full_finetune")
    assert "--full-finetune" not in gpu_command("text_sft_lora")
    for name, model in (("vision_resnet50", "resnet50"), ("vision_vit_small", "vit_small_patch16_224")):
        cmd = gpu_command(name)
        assert flags(cmd, "--model") == [model] and "--channels-last" in cmd
        assert (flags(cmd, "--image-size"), flags(cmd, "--batch-size"), flags(cmd, "--precision")) == \
            (["224"], ["256"], ["bf16"])
    assert flags(gpu_command("jpeg_loader_ceiling"), "--workers") == ["0", "4", "8", "14"]
    align = gpu_command("alignment_vit_b_32")
    assert flags(align, "--model") == ["vit-b-32"] and flags(align, "--batch-size") == ["512"]
    speech = gpu_command("speech_small")
    assert flags(speech, "--model") == ["random:small"] and flags(speech, "--batch-size") == ["32"]
    full = next(e for e in suite.ENTRIES if e.name == "text_full_finetune")
    assert "40%" in full.note and full.flops_per_token


def test_smoke_commands_keep_the_mode_and_leave_the_gpu_sizes_to_each_bench(tmp_path: Path) -> None:
    for entry in suite.ENTRIES:
        cmd = suite.command(entry, tmp_path, smoke=True)
        assert "--smoke" in cmd and flags(cmd, "--device") == ["cpu"]
        assert all(arg in cmd for arg in entry.args)
        assert "--compile" not in cmd and "--batch-size" not in cmd
    dpo = next(e for e in suite.ENTRIES if e.name == "text_dpo")
    assert flags(suite.command(dpo, tmp_path, smoke=True), "--method") == ["dpo"]


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert suite.main(["--out", str(tmp_path / "out"), "--dry-run"]) == {}
    printed = capsys.readouterr().out
    for entry in suite.ENTRIES:
        assert " ".join(suite.command(entry, tmp_path / "out", smoke=False)) in printed
    assert not (tmp_path / "out").exists()


def test_measured_figures_are_rates_ratios_and_mfu_not_settings() -> None:
    data = {"machine": {"load_average": [1.0]}, "batch_size": 8, "warmup_ratio": 0.1, "ratio": 1.2,
            "sft": {"ours": {"tokens_per_s": 100.0, "memory_mib": 5.0}, "trl": {"tokens_per_s": 50.0},
                    "memory_ratio": 0.9}, "plain_mfu": 0.4, "smoke": True, "settings": {"min_lr_ratio": 0.1}}
    assert suite.measured(data) == {"ratio": 1.2, "sft.ours.tokens_per_s": 100.0, "sft.trl.tokens_per_s": 50.0,
                                    "sft.memory_ratio": 0.9, "plain_mfu": 0.4}


def test_mfu_from_tokens_per_s_and_the_measured_peak() -> None:
    figures = {"sft.ours.tokens_per_s": 1000.0, "sft.trl.tokens_per_s": 500.0}
    suite.add_mfu(figures, flops_per_token=1e9, peak_tflops=1.0)
    assert figures["mfu.sft.ours"] == pytest.approx(1e12 / 1e12) and figures["mfu.sft.trl"] == pytest.approx(0.5)
    given = {"engine_mfu": 0.3, "tokens_per_s": 1.0}
    suite.add_mfu(given, 1e9, 1.0)
    assert given == {"engine_mfu": 0.3, "tokens_per_s": 1.0}
    # random:llama-1b: about 1.04B matmul weights, so 6N ~ 6.2 GFLOP plus attention at 2048 tokens
    assert 6.9e9 < suite.llama_flops_per_token(2048) < 7.2e9


def test_a_missing_peer_is_skipped_with_the_reason(tmp_path: Path) -> None:
    entry = suite.Entry("x", "engine_overhead.py", peers=("no_such_peer_package",))
    result = suite.run_entry(entry, tmp_path, smoke=True)
    assert result["status"].startswith("skipped: peer package no_such_peer_package is not installed")
    assert not (tmp_path / "x.log").exists()


@pytest.mark.slow
def test_a_timeout_is_recorded_and_ends_the_whole_process_group(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "child_alive"
    child = f"import time; time.sleep(3); open({str(marker)!r}, 'w')"
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    monkeypatch.setattr(suite, "command", lambda entry, out, smoke: [sys.executable, "-c", parent])
    monkeypatch.setattr(suite, "SMOKE_TIMEOUT_S", 1)
    result = suite.run_entry(suite.Entry("sleepy", "engine_overhead.py"), tmp_path, smoke=True)
    assert result["status"] == "timeout (1 s)" and result["seconds"] < 10 and "figures" not in result
    time.sleep(3)
    assert not marker.exists(), "the bench's child process outlived the timeout"


def run_suite(out: Path, *only: str, timeout: float = 900) -> dict:
    cmd = [sys.executable, str(BENCH / "gpu_suite.py"), "--smoke", "--out", str(out)]
    done = subprocess.run(cmd + (["--only", *only] if only else []), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "summary.json").read_text())


def assert_finite_or_peer_skipped(summary: dict) -> None:
    """Every entry ran and gave a finite figure, or was skipped for want of its peer package."""
    problems = []
    for name, result in summary["entries"].items():
        if result["status"].startswith("skipped: peer package"):
            continue
        if result["status"] != "ok":
            problems.append(f"{name}: {result['status']}")
        elif not any(math.isfinite(v) for v in result.get("figures", {}).values()):
            problems.append(f"{name}: no finite figure in {result.get('json', 'its missing JSON')}")
    assert not problems, "; ".join(problems)


@pytest.mark.slow
def test_the_engine_entries_and_the_loader_ceiling_run_at_smoke_size(tmp_path: Path) -> None:
    summary = run_suite(tmp_path, "engine_gpt2", "jpeg_loader_ceiling")
    assert list(summary["entries"]) == ["engine_gpt2", "jpeg_loader_ceiling"] and summary["smoke"]
    assert_finite_or_peer_skipped(summary)
    engine = json.loads((tmp_path / "engine_gpt2.json").read_text())
    assert engine["model"] == "gpt2-124m" and engine["precision"] == "bf16" and engine["device"] == "cpu"
    assert engine["plain_per_s"] > 0 and engine["engine_per_s"] > 0 and engine["threads"] >= 1
    loader = json.loads((tmp_path / "jpeg_loader_ceiling.json").read_text())
    assert set(loader["images_per_s"]) == {"0", "2"} and all(v > 0 for v in loader["images_per_s"].values())


@pytest.mark.slow
@pytest.mark.timeout(1800)  # minutes on a quiet two-core machine; a busy one may need many more
def test_the_whole_suite_runs_at_smoke_size(tmp_path: Path) -> None:
    assert_finite_or_peer_skipped(run_suite(tmp_path, timeout=1800))


@pytest.mark.slow
def test_engine_overhead_mlp_smoke_writes_every_printed_figure(tmp_path: Path) -> None:
    figures = load("engine_overhead").main(["--smoke", "--json", str(tmp_path / "mlp.json")])
    written = json.loads((tmp_path / "mlp.json").read_text())
    assert written["machine"]["torch_threads"] == written["threads"] == figures["threads"]
    assert written["model"] == "mlp" and written["unit"] == "examples/s" and "plain_mfu" not in written
    assert math.isfinite(written["ratio"]) and written["time_ratio"] == pytest.approx(1 / written["ratio"])


@pytest.mark.gpu
def test_engine_overhead_reports_mfu_on_cuda(tmp_path: Path) -> None:
    figures = load("engine_overhead").main(["--smoke", "--model", "gpt2-124m", "--device", "cuda",
                                            "--json", str(tmp_path / "gpt2.json")])
    assert figures["precision"] == "bf16" and 100 < figures["peak_tflops"] < 5000
    assert 0 < figures["plain_mfu"] < 1 and 0 < figures["engine_mfu"] < 1
