"""The text modality: SFT and DPO of causal language models (transformers + peft).

``python -m framework +modality=text`` fine-tunes the bundled tiny LM on unit-conversion chats
with LoRA (SFT); ``python -m framework +modality=text_dpo`` (the same modality with
``modality.method=dpo`` and the bundled preference pairs) runs DPO. See
``conf/modality/text.yaml`` for every setting and :mod:`plugins.text.config` for what each means.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from torch import nn

from framework.data.records import DataBundle, Record
from framework.errors import FrameworkError
from framework.evaluation.benchmarks import BenchmarkModel
from framework.evaluation.types import EvalReport, Predictions
from framework.modality import Modality, RunContext, StashKey
from plugins.text import chat
from plugins.text import evaluate as text_eval
from plugins.text.checks import ENCODING_KEY
from plugins.text.config import DPO_LOSSES, TextConfig, TextModelConfig
from plugins._bundled import resolve_root, with_root
from plugins.text.model import load_model, load_tokenizer
from plugins.text.packing import PairDataset, SFTDataset
from plugins.text.recipes import TextRecipe, recipe_for

if TYPE_CHECKING:
    from framework.training import Engine

log = logging.getLogger(__name__)

TOKENIZER_KEY = StashKey[Any]("text.tokenizer")  # the run's tokenizer, shared by the methods
RECIPE_KEY = StashKey[TextRecipe]("text.recipe")  # the run's recipe (SFT or DPO), chosen once
Ctx = RunContext[TextConfig, TextModelConfig]
BENCHMARK_TASKS = "examples/data/unit_bench"  # lm-eval task YAMLs the plugin ships (examples/make_unit_bench.py)


def reference_answer(record: Record) -> str:
    """What a correct model says: the last assistant turn of a chat, or a pair's ``chosen``."""
    if "messages" in record.fields:
        turns = [m["content"] for m in record.fields["messages"] if m["role"] == "assistant"]
        return turns[-1] if turns else ""
    return chat.response_text(record.fields.get("chosen", ""))


def _prompt_messages(record: Record) -> list[dict[str, Any]]:
    """The prompt of a record that may have no assistant turn yet (new data being monitored)."""
    messages = record.fields.get("messages")
    if isinstance(messages, list):
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
        return messages[:last]
    return chat.prompt_messages(record.fields.get("prompt", record.text or ""))


def dominant_script(text: str) -> str:
    """The Unicode script most of ``text``'s letters belong to (the first word of their names:
    ``LATIN``, ``DEVANAGARI``, ``CJK``...), ``none`` when it has no letters."""
    import unicodedata
    from collections import Counter

    scripts = Counter(unicodedata.name(ch, "UNKNOWN").split()[0] for ch in text if ch.isalpha())
    return scripts.most_common(1)[0][0] if scripts else "none"


def prompt_of(record: Record) -> list[dict[str, str]]:
    """The conversation a model answers: a chat up to its last assistant turn, or a pair's prompt."""
    if "messages" in record.fields:
        messages = list(record.fields["messages"])
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        return messages[:last]
    return chat.prompt_messages(record.fields.get("prompt", record.text or ""))


class TextModality(Modality[TextConfig, TextModelConfig]):
    """Causal-LM fine-tuning: chat SFT with assistant-only loss and packing, or DPO (sigmoid, IPO,
    hinge) against the adapters-disabled or precomputed reference; LoRA, full fine-tuning, FSDP2.

    What differs between SFT and DPO lives in their recipes (:mod:`plugins.text.recipes`), one of
    which ``modality.method`` selects once per run (:meth:`recipe`)."""

    name: ClassVar[str] = "text"
    description: ClassVar[str] = "causal LM fine-tuning: chat SFT and DPO (transformers + peft LoRA, FSDP2)"
    label_type: ClassVar[str] = "text"
    sections: ClassVar[Mapping[str, type]] = {"modality": TextConfig, "model": TextModelConfig}
    meta_init: ClassVar[bool] = True  # under FSDP2, ranks other than 0 build from the model's config alone

    # --- data --------------------------------------------------------------------------------

    def load_data(self, ctx: Ctx) -> DataBundle:
        """Read chats (SFT) or preference pairs (DPO) with the core readers and tokenize every
        example once with the chat template, so the audit sees token counts, truncation and
        loss masks (``extras["text_encoding"]``)."""
        from framework.data.loading import load_bundle

        cfg = ctx.modality
        recipe = self.recipe(ctx)
        if cfg.dpo.loss not in DPO_LOSSES:
            raise FrameworkError(f"modality.dpo.loss={cfg.dpo.loss!r} is unknown; use one of {', '.join(DPO_LOSSES)}")
        data_cfg = with_root(ctx.data, resolve_root(ctx.data.root))
        bundle = load_bundle(data_cfg, format=recipe.data_format, label_type="text")
        bundle.label_type = recipe.label_type
        ctx.stash[TOKENIZER_KEY] = load_tokenizer(ctx.model)
        recipe.check_records(bundle)
        bundle.extras[ENCODING_KEY] = self.encode(ctx, bundle)
        return bundle

    def recipe(self, ctx: Ctx) -> TextRecipe:
        """The run's recipe, chosen by ``modality.method`` on first use and kept in the stash."""
        recipe = ctx.stash.get(RECIPE_KEY)
        if recipe is None:
            recipe = ctx.stash[RECIPE_KEY] = recipe_for(ctx.modality.method)
        return recipe

    def template(self, ctx: Ctx) -> str:
        """The chat template of this run (see :func:`plugins.text.chat.resolve_template`)."""
        return chat.resolve_template(self.tokenizer(ctx), ctx.modality.chat_template)

    def tokenizer(self, ctx: Ctx) -> Any:
        """The run's tokenizer, loaded once."""
        if TOKENIZER_KEY not in ctx.stash:
            ctx.stash[TOKENIZER_KEY] = load_tokenizer(ctx.model)
        return ctx.stash[TOKENIZER_KEY]

    def encode(self, ctx: Ctx, bundle: DataBundle) -> dict[str, Any]:
        """Tokenized examples per split: ``{"max_length", "method", "splits": {split: {id: Encoded
        or (chosen, rejected)}}}``."""
        cfg, recipe = ctx.modality, self.recipe(ctx)
        tok, template = self.tokenizer(ctx), self.template(ctx)
        splits = {split: recipe.encode(tok, template, records, cfg) for split, records in bundle.splits.items()}
        return {"max_length": cfg.max_length, "method": recipe.method, "splits": splits}

    def _encoded(self, ctx: Ctx, data: DataBundle, split: str) -> list[Any]:
        enc = data.extras.get(ENCODING_KEY) or self.encode(ctx, data)
        data.extras[ENCODING_KEY] = enc
        return [enc["splits"][split][r.id] for r in data.records(split)]

    def sft_dataset(self, ctx: Ctx, data: DataBundle, split: str, packing: bool) -> SFTDataset:
        """SFT rows of ``split`` (packed when ``packing``)."""
        return SFTDataset(self._encoded(ctx, data, split), ctx.modality.max_length, packing)

    def pair_dataset(self, ctx: Ctx, data: DataBundle, split: str,
                     reference: list[tuple[float, float]] | None = None) -> PairDataset:
        """DPO pairs of ``split``."""
        pairs = self._encoded(ctx, data, split)
        return PairDataset([c for c, _ in pairs], [r for _, r in pairs], reference)

    # --- task --------------------------------------------------------------------------------

    def build_task(self, ctx: Ctx, data: DataBundle) -> nn.Module:
        """The causal LM (LoRA-wrapped when ``model.lora.rank > 0``) with its SFT or DPO loss."""
        return self.recipe(ctx).build_task(load_model(ctx.model, meta=ctx.meta_device), ctx.modality)

    # --- training ----------------------------------------------------------------------------

    def train(self, ctx: Ctx, engine: "Engine", task: nn.Module, data: DataBundle) -> None:
        """SFT on packed chats, or DPO on pairs; validation loss (and reward accuracy) on ``val``."""
        self.recipe(ctx).train(self, ctx, engine, task, data)

    # --- prediction and evaluation -----------------------------------------------------------

    def answer(self, ctx: Ctx, task: nn.Module, prompts: list[list[dict[str, str]]],
               max_new_tokens: int | None = None) -> list[str]:
        """Greedy answers of the model to conversations (each ending before the assistant turn),
        of at most ``max_new_tokens`` (default ``modality.max_new_tokens``)."""
        tok, template = self.tokenizer(ctx), self.template(ctx)
        ids = [chat.generation_prompt(tok, p, template) for p in prompts]
        budget = ctx.modality.max_new_tokens if max_new_tokens is None else max_new_tokens
        return text_eval.generate(task.model, tok, ids, max_new_tokens=budget, batch_size=ctx.modality.eval_batch_size)

    def predict(self, ctx: Ctx, task: nn.Module, records: list[Record], split: str) -> Predictions:
        """Generated answers (``outputs``) to each record's prompt; ``targets`` are the reference
        answers (``None`` for unlabeled records); ``extras["inputs"]`` the prompts as people read
        them (``role: content`` per turn), for human evaluation."""
        prompts = [prompt_of(r) for r in records]
        outputs = self.answer(ctx, task, prompts) if records else []
        targets = [reference_answer(r) or None for r in records]
        inputs = ["\n".join(f"{m['role']}: {m['content']}" for m in p) for p in prompts]
        return Predictions(split=split, ids=[r.id for r in records], targets=targets, outputs=outputs,
                           slices=[dict(r.slices) for r in records], extras={"inputs": inputs})

    def evaluate(self, ctx: Ctx, task: nn.Module, data: DataBundle, split: str) -> EvalReport:
        """Loss and perplexity (SFT), preference accuracy and margin with traps and gold pairs
        apart (DPO), generation exact match, per-slice exact match and the probe suite; with
        ``modality.baseline`` the same figures of the starting model as ``baseline/<metric>``.

        Writes ``eval/generations_<split>.jsonl`` and ``eval/probes_<split>.jsonl``.
        """
        cfg = ctx.modality
        report = EvalReport(split=split)
        report.metrics.update(self._measure(ctx, task, data, split, report, write=True))
        if cfg.baseline:
            with text_eval.base_policy(task.model):
                base = self._measure(ctx, task, data, split, None, write=False)
            report.metrics.update({f"baseline/{k}": v for k, v in base.items()})
            for key in ("exact_match", "preference_accuracy", "probe/pass_rate", "hallucination/pass_rate"):
                if key in base and key in report.metrics:
                    report.notes.append(f"{key}: {base[key]:.3f} for the starting model -> "
                                        f"{report.metrics[key]:.3f} after training")
        return report

    def _measure(self, ctx: Ctx, task: nn.Module, data: DataBundle, split: str,
                 report: EvalReport | None, write: bool) -> dict[str, float]:
        cfg = ctx.modality
        records = data.records(split)
        metrics = self.recipe(ctx).loss_metrics(self, ctx, task, data, split)
        sample = records[: cfg.generation_limit] if cfg.generation_limit > 0 else records
        preds = self.predict(ctx, task, sample, split)
        metrics["exact_match"] = text_eval.exact_match(preds.outputs, preds.targets)
        if report is not None:
            for field in ctx.data.slices:
                values = sorted({s.get(field) for s in preds.slices if s.get(field) is not None})
                for value in values:
                    idx = [i for i, s in enumerate(preds.slices) if s.get(field) == value]
                    report.per_slice[f"{field}={value}"] = {
                        "exact_match": text_eval.exact_match([preds.outputs[i] for i in idx],
                                                             [preds.targets[i] for i in idx]),
                        "count": float(len(idx))}
        if write:
            _write_jsonl(ctx.path("eval", f"generations_{split}.jsonl"),
                         [{"id": i, "target": t, "output": o} for i, t, o in zip(preds.ids, preds.targets, preds.outputs)])
        if cfg.probes.file:
            probes = text_eval.read_probes(resolve_root(cfg.probes.file))
            probe_metrics, rows = text_eval.run_probes(
                probes, lambda prompts: self.answer(ctx, task, [chat.prompt_messages(p) for p in prompts]))
            metrics.update(probe_metrics)
            if write:
                _write_jsonl(ctx.path("eval", f"probes_{split}.jsonl"), rows)
                failed = [r["id"] for r in rows if not r["passed"]]
                if report is not None and failed:
                    report.notes.append(f"{len(failed)} of {len(rows)} probes failed (e.g. {', '.join(failed[:3])}); "
                                        f"see eval/probes_{split}.jsonl")
        if cfg.probes.hallucination.files:
            metrics.update(self._hallucination(ctx, task, split, report, write))
        return metrics

    def _hallucination(self, ctx: Ctx, task: nn.Module, split: str, report: EvalReport | None,
                       write: bool) -> dict[str, float]:
        """The hallucination probes of ``modality.probes.hallucination``; with ``write``, their rows
        in ``eval/hallucination_<split>.jsonl`` and (with a report) a section and a note."""
        from plugins.text import hallucination

        cfg = ctx.modality.probes.hallucination
        probes = [p for name in cfg.files for p in hallucination.read_probes(resolve_root(name))]
        metrics, rows = hallucination.run_probes(
            probes, lambda turns: self.answer(ctx, task, [chat.prompt_messages(t) for t in turns], cfg.max_new_tokens),
            extra_accept=cfg.accept)
        if write:
            _write_jsonl(ctx.path("eval", f"hallucination_{split}.jsonl"), rows)
            if report is not None:
                report.sections[f"Hallucination probes (`{split}`)"] = hallucination.markdown(metrics, rows)
                failed = sum(not r["passed"] for r in rows)
                if failed:
                    report.notes.append(f"{failed} of {len(rows)} hallucination probes answered with an invention "
                                        f"rather than a refusal or correction; see eval/hallucination_{split}.jsonl")
        return metrics

    def benchmark_model(self, ctx: Ctx, task: nn.Module) -> BenchmarkModel:
        """The causal LM (LoRA adapters active) and tokenizer as they are in memory, with the
        plugin's bundled lm-eval tasks (:data:`BENCHMARK_TASKS`, e.g. ``unit_choice``)."""
        bundled = resolve_root(BENCHMARK_TASKS)
        return BenchmarkModel(model=task.model, tokenizer=self.tokenizer(ctx), batch_size=ctx.modality.eval_batch_size,
                              task_dirs=(bundled,) if bundled.is_dir() else ())

    # --- monitoring --------------------------------------------------------------------------

    def drift_features(self, ctx: Ctx, records: list[Record]) -> dict[str, list[Any]]:
        """Per example, of the prompt the model answers (a chat's turns before its last assistant
        turn, or a preference pair's prompt): ``prompt_chars``, ``prompt_words``, ``turns`` and the
        dominant ``script`` of its letters (a Unicode script name such as ``LATIN`` or
        ``DEVANAGARI``; ``none`` without letters)."""
        out: dict[str, list[Any]] = {k: [] for k in ("prompt_chars", "prompt_words", "turns", "script")}
        for record in records:
            messages = _prompt_messages(record)
            text = "\n".join(str(m.get("content", "")) for m in messages)
            out["prompt_chars"].append(len(text))
            out["prompt_words"].append(len(text.split()))
            out["turns"].append(len(messages))
            out["script"].append(dominant_script(text))
        return out

    # --- export ------------------------------------------------------------------------------

    def export(self, ctx: Ctx, task: nn.Module, out_dir: Path) -> list[Path]:
        """The LoRA adapter (``adapter/``, peft ``save_pretrained``) and the merged model with its
        tokenizer (``merged/``, safetensors, loadable by ``AutoModelForCausalLM.from_pretrained``)."""
        from plugins.text.export import export_model

        return export_model(task.model, self.tokenizer(ctx), out_dir, ctx.config_yaml, self.template(ctx))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
