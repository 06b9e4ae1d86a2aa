"""Standard LLM benchmarks through lm-evaluation-harness, on the run's own model in memory.

``evaluation.benchmarks=[mmlu, truthfulqa_mc2, unit_choice]`` names lm-eval tasks. A modality
that can be benchmarked returns a :class:`BenchmarkModel` (its causal LM and tokenizer, as they
are in the run) from :meth:`framework.Modality.benchmark_model`; the runner wraps it in lm-eval's
``HFLM`` without loading anything from disk, so the figures are those of the weights the run
evaluates. The evaluate stage scores the trained weights; when the run trains and
``evaluation.benchmark_start`` is on, the retention stage scores the starting weights first.

Tasks are found in the folders of ``evaluation.benchmark_tasks`` and those the modality ships
(:attr:`BenchmarkModel.task_dirs`) first, then in lm-eval's own catalogue (MMLU, TruthfulQA...,
indexed only when a name is not local: indexing it takes seconds). A local task reads local files
(``dataset_path: json`` with ``data_files`` relative to its YAML). Unless
``evaluation.benchmark_downloads`` is on, lm-eval runs with the Hugging Face hub offline, so a
catalogue task runs only when its data set is already in the Hugging Face cache.

The run's metrics then hold, for each requested task and each of its metrics ``m``:

* ``benchmark/<task>/<m>`` (trained weights) and ``benchmark/<task>/<m>_stderr``;
* ``retention/start/benchmark/<task>/<m>`` (starting weights) and
  ``retention/benchmark/<task>/<m>_drop`` (starting minus trained for metrics where higher is
  better: a positive drop is forgetting), as :mod:`framework.evaluation.retention` names them.

A metric computed under an lm-eval filter other than ``none`` is named ``<m>_<filter>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from framework.errors import FrameworkError
from framework.evaluation.direction import lower_is_better

if TYPE_CHECKING:
    from framework.config import EvaluationConfig

log = logging.getLogger(__name__)

PREFIX = "benchmark/"
RESULTS_JSON = "eval/benchmarks.json"
INSTALL_HINT = "pip install 'lm-eval==0.4.13' (a dependency of the framework; see pyproject.toml)"
Scores = dict[str, dict[str, float]]  # task -> metric -> value


@dataclass
class BenchmarkModel:
    """A modality's model as lm-eval scores it: an in-memory causal LM and its tokenizer.

    Attributes:
        model: A transformers causal LM (a ``PreTrainedModel``, or a peft model around one), on
            the device it is evaluated on. It is scored as it is: LoRA adapters stay active.
        tokenizer: Its tokenizer.
        batch_size: Sequences per forward pass.
        task_dirs: Folders of lm-eval task YAMLs the modality ships (absolute paths); they are
            searched after ``evaluation.benchmark_tasks`` and before lm-eval's catalogue.
    """

    model: Any
    tokenizer: Any
    batch_size: int = 16
    task_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class BenchmarkOptions:
    """The ``evaluation.benchmark*`` settings, read once.

    Attributes:
        tasks: lm-eval task or group names.
        task_dirs: Folders of local task YAMLs (relative to the working directory).
        limit: Items per task (``None``: all); a float below 1 is a share.
        num_fewshot: Few-shot examples (``None``: each task's own default).
        downloads: Let lm-eval fetch catalogue data sets from the hub into the Hugging Face cache.
        start: Also score the starting weights when the run trains.
        seed: The seed lm-eval's samplers get (the run's seed).
    """

    tasks: tuple[str, ...]
    task_dirs: tuple[Path, ...] = ()
    limit: float | None = None
    num_fewshot: int | None = None
    downloads: bool = False
    start: bool = True
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: "EvaluationConfig", seed: int) -> "BenchmarkOptions":
        """The options of an ``evaluation:`` node."""
        return cls(tasks=tuple(str(t) for t in cfg.benchmarks),
                   task_dirs=tuple(Path(p).expanduser().absolute() for p in cfg.benchmark_tasks),
                   limit=cfg.benchmark_limit, num_fewshot=cfg.benchmark_fewshot,
                   downloads=cfg.benchmark_downloads, start=cfg.benchmark_start, seed=seed)


@dataclass
class Benchmarks:
    """The benchmark scores of a run, with the trained and (when measured) the starting weights.

    Attributes:
        tasks: The requested task names, in order.
        trained: Task -> metric -> value with the trained weights, once measured.
        start: The same with the starting weights (``None`` when not measured).
        samples: Task -> items scored.
        sources: Task -> where its config came from (a YAML path, or ``lm-eval``).
    """

    tasks: list[str]
    trained: Scores | None = None
    start: Scores | None = None
    samples: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def cost(self) -> dict[str, float]:
        """``<task>/<m>`` -> how much worse the trained weights are (positive: forgotten)."""
        if self.start is None or self.trained is None:
            return {}
        out = {}
        for task, metrics in self.trained.items():
            for name, after in metrics.items():
                before = self.start.get(task, {}).get(name)
                if before is None or name.endswith("_stderr") or math.isnan(before) or math.isnan(after):
                    continue
                out[f"{task}/{name}"] = after - before if lower_is_better(name) else before - after
        return out

    def metrics(self) -> dict[str, float]:
        """The run-level metrics named in the module docstring."""
        from framework.evaluation.retention import PREFIX as RETENTION

        out: dict[str, float] = {}
        for task, metrics in (self.trained or {}).items():
            out.update({f"{PREFIX}{task}/{m}": v for m, v in metrics.items()})
        for task, metrics in (self.start or {}).items():
            out.update({f"{RETENTION}start/{PREFIX}{task}/{m}": v for m, v in metrics.items()
                        if not m.endswith("_stderr")})
        out.update({f"{RETENTION}{PREFIX}{k}_drop": v for k, v in self.cost().items()})
        return out

    def rows(self) -> list[list[Any]]:
        """``[task, metric, starting, trained, stderr, cost, items]`` per scored metric."""
        cost = self.cost()
        rows: list[list[Any]] = []
        for task, metrics in (self.trained or {}).items():
            for name, value in metrics.items():
                if name.endswith("_stderr"):
                    continue
                start = (self.start or {}).get(task, {}).get(name)
                drop = cost.get(f"{task}/{name}")
                rows.append([task, name, "" if start is None else start, value,
                             metrics.get(f"{name}_stderr", ""), "" if drop is None else f"{drop:+.4f}",
                             self.samples.get(task, "")])
        return rows

    def markdown(self) -> str:
        """A table: task, metric, starting weights, trained weights, stderr, cost, items."""
        lines = ["Scored by lm-evaluation-harness on the run's model in memory; a positive cost is forgetting.", ""]
        if self.start is None:
            lines += ["The starting weights were not scored (the run did not train, or "
                      "`evaluation.benchmark_start=false`).", ""]
        lines += ["| task | metric | starting weights | trained weights | stderr | cost | items |",
                  "|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (``nan`` as ``null``)."""
        from framework.json_values import jsonable

        return jsonable({"tasks": self.tasks, "trained": self.trained, "start": self.start,
                         "samples": self.samples, "sources": self.sources})

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> "Benchmarks":
        """The inverse of :meth:`to_json`."""
        def scores(value: Any) -> Scores | None:
            if value is None:
                return None
            return {t: {m: math.nan if v is None else float(v) for m, v in ms.items()} for t, ms in value.items()}

        return cls(tasks=list(payload.get("tasks", [])), trained=scores(payload.get("trained")),
                   start=scores(payload.get("start")), samples=dict(payload.get("samples") or {}),
                   sources=dict(payload.get("sources") or {}))

    def write(self, run_dir: Path) -> Path:
        """``eval/benchmarks.json`` in the run dir."""
        from framework.atomic import atomic_write_text

        path = Path(run_dir) / RESULTS_JSON
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, json.dumps(self.to_json(), indent=1, allow_nan=False))


def load_benchmarks(run_dir: Path) -> Benchmarks | None:
    """The benchmarks a run's evaluate stage wrote, or ``None``."""
    path = Path(run_dir) / RESULTS_JSON
    if not path.is_file():
        return None
    return Benchmarks.from_json(json.loads(path.read_text(encoding="utf-8")))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


# --- finding tasks -----------------------------------------------------------------------------


def local_tasks(dirs: Sequence[Path]) -> dict[str, Path]:
    """Task and group names defined by the YAMLs under ``dirs`` -> their YAML file."""
    from lm_eval.tasks import TaskManager

    existing = [Path(d) for d in dirs if Path(d).is_dir()]
    if not existing:
        return {}
    manager = TaskManager(include_path=[str(d) for d in existing], include_defaults=False)
    return {name: Path(entry.yaml_path) for name, entry in manager.task_index.items() if entry.yaml_path is not None}


def _check_dirs(dirs: Sequence[Path]) -> None:
    missing = [str(d) for d in dirs if not Path(d).is_dir()]
    if missing:
        raise FrameworkError(f"evaluation.benchmark_tasks: no such folder {', '.join(missing)} (relative paths resolve "
                             f"against the working directory {Path.cwd()}); point it at folders of lm-eval task YAMLs")


def task_manager(names: Sequence[str], dirs: Sequence[Path]) -> tuple[Any, dict[str, Path]]:
    """lm-eval's ``TaskManager`` for ``names``: the local folders alone when they define every
    name, else with lm-eval's catalogue too; and the local tasks found.

    Raises:
        FrameworkError: for a name found nowhere, listing the local tasks (and pointing at
            lm-eval's catalogue).
    """
    from lm_eval.tasks import TaskManager

    local = local_tasks(dirs)
    include = [str(d) for d in dirs if Path(d).is_dir()] or None
    unknown = [n for n in names if n not in local]
    if not unknown:
        return TaskManager(include_path=include, include_defaults=False), local
    log.info("benchmarks: %s not in the local task folders; indexing lm-eval's catalogue", ", ".join(unknown))
    manager = TaskManager(include_path=include, include_defaults=True)
    missing = [n for n in unknown if n not in manager.task_index]
    if missing:
        where = ", ".join(str(d) for d in dirs) or "none configured"
        have = ", ".join(sorted(local)) or "none"
        raise FrameworkError(
            f"evaluation.benchmarks: unknown task {', '.join(repr(m) for m in missing)}; tasks available locally "
            f"(folders: {where}): {have}. lm-eval's catalogue ({len(manager.all_tasks)} names, e.g. mmlu, "
            f"truthfulqa_mc2, hellaswag, arc_easy) has no such name either: check the spelling, or add a task YAML "
            f"to a folder in evaluation.benchmark_tasks (docs/evaluation.md, Standard benchmarks)")
    return manager, local


def _absolute_data_files(cfg: dict[str, Any], base: Path) -> dict[str, Any]:
    """A task config whose relative ``data_files`` / ``data_dir`` resolve against ``base``."""
    kwargs = dict(cfg.get("dataset_kwargs") or {})

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            return value if "://" in value or Path(value).is_absolute() else str(base / value)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    for key in ("data_files", "data_dir"):
        if key in kwargs:
            kwargs[key] = resolve(kwargs[key])
    return {**cfg, "dataset_kwargs": kwargs} if kwargs else cfg


def task_specs(names: Sequence[str], manager: Any, local: Mapping[str, Path]) -> list[Any]:
    """What ``simple_evaluate`` is given per name: a local task's full config with its data paths
    made absolute; a local group or a catalogue name as the name itself."""
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    specs: list[Any] = []
    for name in names:
        entry = manager.task_index.get(name)
        if name in local and entry is not None and entry.kind == Kind.TASK:
            cfg = load_yaml(local[name], resolve_func=True)
            specs.append(_absolute_data_files({**cfg, "task": name}, local[name].parent))
        else:
            specs.append(name)
    return specs


# --- running -----------------------------------------------------------------------------------


@contextlib.contextmanager
def hub_offline(offline: bool = True) -> Iterator[None]:
    """The Hugging Face hub offline inside the block (environment and the flags ``huggingface_hub``
    and ``datasets`` read at import), restored after; nothing changes when ``offline`` is false."""
    if not offline:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    flags = [(huggingface_hub.constants, "HF_HUB_OFFLINE"), (datasets.config, "HF_HUB_OFFLINE"),
             (datasets.config, "HF_DATASETS_OFFLINE")]
    saved = [(obj, name, getattr(obj, name)) for obj, name in flags]
    os.environ.update({k: "1" for k in saved_env})
    for obj, name, _ in saved:
        setattr(obj, name, True)
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """``logger``'s warnings held back inside the block."""
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def _flatten(results: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> Scores:
    """lm-eval's ``results`` (``"acc,none": 0.5``) as task -> metric -> float for ``names``."""
    out: Scores = {}
    for task in names:
        row = results.get(task) or {}
        metrics: dict[str, float] = {}
        for key, value in row.items():
            if "," not in key:
                continue
            metric, filt = key.split(",", 1)
            name = metric if filt == "none" else f"{metric}_{filt}"
            if metric.endswith("_stderr"):
                base = metric[: -len("_stderr")]
                name = f"{base}_stderr" if filt == "none" else f"{base}_{filt}_stderr"
            try:
                metrics[name] = float(value)
            except (TypeError, ValueError):  # "N/A" stderr
                continue
        out[task] = metrics
    return out


def run_benchmarks(model: BenchmarkModel, options: BenchmarkOptions) -> tuple[Scores, dict[str, int], dict[str, str]]:
    """Score ``model`` on ``options.tasks`` with lm-eval.

    Returns:
        ``(scores, samples, sources)``: task -> metric -> value, task -> items scored, and task ->
        where its config came from.

    Raises:
        FrameworkError: lm-eval missing, an unknown task (listing the local ones), or a task whose
            data cannot be read offline.
    """
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
    except ImportError as exc:
        raise FrameworkError(f"evaluation.benchmarks needs lm-evaluation-harness ({exc}); {INSTALL_HINT}") from None

    _check_dirs(options.task_dirs)
    dirs = [*options.task_dirs, *[Path(d) for d in model.task_dirs]]
    manager, local = task_manager(options.tasks, dirs)
    specs = task_specs(options.tasks, manager, local)
    sources = {n: str(local[n]) if n in local else "lm-eval" for n in options.tasks}
    was_training = bool(getattr(model.model, "training", False))
    with _quiet("lm_eval.models.huggingface"):  # its warnings about a model passed in memory are the design here
        lm = HFLM(pretrained=model.model, tokenizer=model.tokenizer, batch_size=model.batch_size)
    try:
        with hub_offline(not options.downloads):
            out = simple_evaluate(model=lm, tasks=specs, task_manager=manager, num_fewshot=options.num_fewshot,
                                  limit=options.limit, log_samples=False, bootstrap_iters=1000,
                                  random_seed=options.seed, numpy_random_seed=options.seed,
                                  torch_random_seed=options.seed, fewshot_random_seed=options.seed)
    except (ConnectionError, OSError) as exc:  # offline hub, or a data file that is not there
        catalogue = [n for n in options.tasks if n not in local]
        if catalogue:
            hint = (f"catalogue tasks {catalogue} read their data sets from the Hugging Face hub: "
                    + ("set evaluation.benchmark_downloads=true to let lm-eval download them into the Hugging Face "
                       "cache, or write local task YAMLs over local files" if not options.downloads else "check the network"))
        else:
            hint = "check the data_files of the local task YAMLs " + ", ".join(str(local[n]) for n in options.tasks)
        raise FrameworkError(f"evaluation.benchmarks: a task's data could not be read ({type(exc).__name__}: {exc}); "
                             f"{hint}") from None
    finally:
        model.model.train(was_training)
    if out is None:  # only on non-zero ranks, which never get here
        return {}, {}, sources
    scores = _flatten(out["results"], options.tasks)
    samples = {n: int((out.get("n-samples") or {}).get(n, {}).get("effective", 0)) for n in options.tasks}
    for task in options.tasks:  # a group reports its own aggregate; its size is its members'
        if not samples.get(task):
            members = (out.get("group_subtasks") or {}).get(task, [])
            samples[task] = sum(int((out.get("n-samples") or {}).get(m, {}).get("effective", 0)) for m in members)
    return scores, samples, sources
