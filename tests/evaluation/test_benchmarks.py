"""lm-evaluation-harness benchmarks on the run's model in memory: local tasks, offline, metrics
named for ``success:`` and retention, the report sections, and the default text run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="lm-eval (a framework dependency) is not installed")

from framework.errors import FrameworkError  # noqa: E402
from framework.evaluation.benchmarks import (  # noqa: E402
    BenchmarkModel, BenchmarkOptions, Benchmarks, hub_offline, load_benchmarks, run_benchmarks, task_manager)

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "models" / "tiny-unit-lm"

TASK_YAML = """\
task: tiny_units
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/tiny_units.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{question}} ="
doc_to_choice: choices   # columns named directly
doc_to_target: answer
metric_list: [{metric: acc}]
"""


def write_task(folder: Path, items: int = 6) -> Path:
    """A four-choice task over a local JSONL, its data path relative to the YAML."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = [{"question": f"Convert {n} km to m.", "choices": [f"{n}000 m", f"{n}0 m", f"{n} m", f"{n}00 m"],
             "answer": 0} for n in range(3, 3 + items)]
    (folder / "data" / "tiny_units.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "tiny_units.yaml").write_text(TASK_YAML)
    return folder


@pytest.fixture(scope="module")
def tiny_lm():
    import transformers

    return (transformers.AutoModelForCausalLM.from_pretrained(TINY),
            transformers.AutoTokenizer.from_pretrained(TINY))


@pytest.mark.slow  # loads the tiny LM and lm-eval: several seconds
def test_a_local_task_scores_the_model_in_memory_from_any_working_directory(tiny_lm, tmp_path, monkeypatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    model, tok = tiny_lm
    tasks = write_task(tmp_path / "tasks")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative data_files resolve against the YAML, not the working directory
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model.train()
    scores, samples, sources = run_benchmarks(BenchmarkModel(model, tok, batch_size=8),
                                              BenchmarkOptions(tasks=("tiny_units",), task_dirs=(tasks,)))
    assert set(scores) == {"tiny_units"} and 0.0 <= scores["tiny_units"]["acc"] <= 1.0
    assert scores["tiny_units"]["acc_stderr"] >= 0  # closed-form standard error of the mean
    assert samples == {"tiny_units": 6} and sources["tiny_units"].endswith("tiny_units.yaml")
    assert model.training  # the training flag is restored
    # the hub was offline only inside the call
    assert "HF_HUB_OFFLINE" not in os.environ
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False and datasets.config.HF_HUB_OFFLINE is False

    limited, samples, _ = run_benchmarks(BenchmarkModel(model, tok), BenchmarkOptions(
        tasks=("tiny_units",), task_dirs=(tasks,), limit=2))
    assert samples == {"tiny_units": 2}


def test_hub_offline_sets_and_restores_the_flags(monkeypatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    before = huggingface_hub.constants.HF_HUB_OFFLINE
    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
        assert huggingface_hub.constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE
    assert os.environ["HF_DATASETS_OFFLINE"] == "0" and huggingface_hub.constants.HF_HUB_OFFLINE == before
    with hub_offline(False):
        assert huggingface_hub.constants.HF_HUB_OFFLINE == before


def test_a_missing_folder_is_named(tmp_path) -> None:
    with pytest.raises(FrameworkError, match="no such folder .*nowhere"):
        run_benchmarks(BenchmarkModel(model=None, tokenizer=None), BenchmarkOptions(tasks=("x",), task_dirs=(tmp_path / "nowhere",)))


@pytest.mark.slow  # indexing lm-eval's catalogue of ~15,000 names takes seconds
def test_an_unknown_task_lists_the_local_ones_and_a_catalogue_task_is_found(tmp_path) -> None:
    tasks = write_task(tmp_path / "tasks")
    with pytest.raises(FrameworkError) as err:
        task_manager(["tiny_unitz"], [tasks])
    text = str(err.value)
    assert "'tiny_unitz'" in text and "available locally" in text and "tiny_units" in text and str(tasks) in text
    manager, local = task_manager(["tiny_units", "arc_easy"], [tasks])
    assert "arc_easy" in manager.task_index and set(local) == {"tiny_units"}


def test_metrics_name_the_trained_start_and_drop_figures(tmp_path) -> None:
    bench = Benchmarks(tasks=["t"], trained={"t": {"acc": 0.5, "acc_stderr": 0.1, "perplexity": 9.0}},
                       start={"t": {"acc": 0.75, "acc_stderr": 0.1, "perplexity": 10.0}}, samples={"t": 4})
    metrics = bench.metrics()
    assert metrics["benchmark/t/acc"] == 0.5 and metrics["benchmark/t/acc_stderr"] == 0.1
    assert metrics["retention/start/benchmark/t/acc"] == 0.75
    assert metrics["retention/benchmark/t/acc_drop"] == pytest.approx(0.25)  # forgot a quarter
    assert metrics["retention/benchmark/t/perplexity_drop"] == pytest.approx(-1.0)  # lower is better: improved
    assert "retention/benchmark/t/acc_stderr_drop" not in metrics
    assert "| t | acc | 0.7500 | 0.5000 | 0.1000 | +0.2500 | 4 |" in bench.markdown()
    bench.write(tmp_path)
    again = load_benchmarks(tmp_path)
    assert again is not None and again.metrics() == metrics
    assert math.isnan(Benchmarks.from_json({"trained": {"t": {"acc": None}}}).trained["t"]["acc"])


@pytest.mark.slow
def test_the_text_run_reports_its_bundled_benchmark_with_starting_weights_and_success(tmp_path) -> None:
    from framework.testing import run_framework

    run = tmp_path / "run"
    result = run_framework(["+modality=text", "trainer.max_steps=2", "trainer.progress=false", "modality.baseline=false",
                            "modality.generation_limit=4", "modality.probes.file=null", "stages=[train,evaluate]",
                            "success.exact_match='>=0.0'",
                            "+success={benchmark/unit_choice/acc: '>=0.0', retention/benchmark/unit_choice/acc_drop: "
                            "'<=1.0'}"], run)
    assert result.status == "completed", result
    metrics = result.metrics
    for key in ("benchmark/unit_choice/acc", "benchmark/unit_choice/acc_norm", "retention/start/benchmark/unit_choice/acc",
                "retention/benchmark/unit_choice/acc_drop"):
        assert key in metrics, sorted(metrics)
    assert [v.passed for v in result.verdicts] == [True, True, True]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["benchmark/unit_choice/acc"] == metrics["benchmark/unit_choice/acc"]
    assert load_benchmarks(run).samples == {"unit_choice": 36}
    assert "Benchmarks (lm-evaluation-harness)" in (run / "report.md").read_text()
    page = (run / "report.html").read_text()
    assert 'id="benchmarks"' in page and "unit_choice" in page


@pytest.mark.slow  # loads the bundled digits
def test_a_modality_without_a_language_model_says_so(tmp_path) -> None:
    from framework.testing import run_framework

    with pytest.raises(FrameworkError, match="modality 'vision' has no language model to benchmark"):
        run_framework(["+modality=vision", "stages=[train,evaluate]", "evaluation.benchmarks=[unit_choice]"],
                      tmp_path / "run")


@pytest.mark.slow  # loads the tiny LM and lm-eval
def test_a_local_task_whose_data_is_missing_names_its_yaml(tiny_lm, tmp_path) -> None:
    model, tok = tiny_lm
    tasks = write_task(tmp_path / "tasks")
    (tasks / "data" / "tiny_units.jsonl").unlink()
    with pytest.raises(FrameworkError, match="could not be read .*tiny_units.yaml"):
        run_benchmarks(BenchmarkModel(model, tok), BenchmarkOptions(tasks=("tiny_units",), task_dirs=(tasks,)))
