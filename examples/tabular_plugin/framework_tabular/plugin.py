"""An out-of-tree modality: tabular classification with a small MLP.

This package touches nothing inside the framework. It registers through the entry point in its
``pyproject.toml``, ships its own config groups (``modality/tabular.yaml``, ``model/mlp.yaml``),
adds a data format (``tabular_csv``, through ``framework_register_readers``) and an audit check,
and writes its training loop on the framework's engine. After ``pip install``::

    python -m framework +modality=tabular
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from framework import (CheckContext, CheckResult, DataBundle, EvalReport, Finding, Modality, Predictions, ReaderRegistry,
                       Record, RunContext, StashKey, evaluation_report, hookimpl, load_bundle)

from framework_tabular.data import FORMAT, TabularDataset, feature_columns, read_tabular_csv


@dataclass
class TabularConfig:
    """The ``modality:`` node of ``+modality=tabular``."""

    name: str = "tabular"
    features: list[str] = field(default_factory=list)  # empty: every numeric column but id/label/slices
    eval_batch_size: int = 256


@dataclass
class MLPConfig:
    """The ``model:`` node (``model=mlp``)."""

    name: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    dropout: float = 0.1


class TabularTask(nn.Module):
    """An MLP classifier with its input standardisation and loss. State: weights + feature stats."""

    def __init__(self, n_features: int, n_classes: int, cfg: MLPConfig, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for hidden in cfg.hidden:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        # Buffers, so the standardisation travels with the checkpoint and the export.
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)  # (B, C)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.logits(batch["x"])
        loss = nn.functional.cross_entropy(logits, batch["y"])
        acc = (logits.argmax(-1) == batch["y"]).float().mean()
        return {"loss": loss, "acc": acc.detach()}


FEATURES = StashKey[list[str]]("tabular.features")  # the feature columns of this run, set by load_data

Ctx = RunContext[TabularConfig, MLPConfig]


class TabularModality(Modality[TabularConfig, MLPConfig]):
    """Tabular classification: CSV rows of numeric features and a ``label`` column."""

    name = "tabular"
    description = "tabular classification with an MLP (example out-of-tree plugin)"
    label_type = "class"
    sections = {"modality": TabularConfig, "model": MLPConfig}

    def load_data(self, ctx: Ctx) -> DataBundle:
        bundle = load_bundle(ctx.data, format=FORMAT, readers=ctx.plugins.readers)
        features = ctx.modality.features or feature_columns(bundle.records("train"), ctx.data.slices)
        ctx.stash[FEATURES] = features
        bundle.extras["features"] = features  # for the audit check, which sees the bundle only
        return bundle

    def build_task(self, ctx: Ctx, data: DataBundle) -> TabularTask:
        train = TabularDataset(data.records("train"), data.extras["features"], data.classes)
        mean, std = train.x.mean(0), train.x.std(0).clamp_min(1e-6)
        return TabularTask(train.x.shape[1], len(data.classes), ctx.model, mean, std)

    def train(self, ctx: Ctx, engine: Any, task: TabularTask, data: DataBundle) -> None:
        features, classes = data.extras["features"], data.classes
        model = engine.setup(task)
        loader = engine.dataloader(TabularDataset(data.records("train"), features, classes), shuffle=True)
        val = TabularDataset(data.records("val"), features, classes) if data.splits.get("val") else None

        def validate() -> dict[str, float]:
            out = model(val.batch(engine.device))
            return {"val_loss": float(out["loss"]), "val_acc": float(out["acc"])}

        for batch in engine.steps(loader, validate=validate if val else None):
            with engine.autocast():
                out = model(batch)
            engine.backward(out["loss"], out)

    def predict(self, ctx: Ctx, task: TabularTask, records: list[Record], split: str) -> Predictions:
        classes = ctx.classes  # set by the core after load_data, so unlabeled records work too
        dataset = TabularDataset(records, ctx.stash[FEATURES], classes, labeled=False)
        task.eval()
        with torch.no_grad():
            probs = torch.softmax(task.logits(dataset.x.to(task.mean.device)), -1).cpu()
        return Predictions(
            split=split, ids=[r.id for r in records], targets=[r.label for r in records],
            outputs=[classes[i] for i in probs.argmax(-1).tolist()], scores=probs.numpy(),
            classes=list(classes), slices=[dict(r.slices) for r in records],
        )

    def evaluate(self, ctx: Ctx, task: TabularTask, data: DataBundle, split: str) -> EvalReport:
        predictions = self.predict(ctx, task, data.records(split), split)
        return evaluation_report(predictions, run_dir=ctx.run_dir, out_dir=ctx.run_dir / "eval")


class ConstantFeatureCheck:
    """Warns about feature columns that never change in the training split (they carry no signal)."""

    name = "constant_features"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        records = data.records("train")
        columns = data.extras.get("features") or feature_columns(records, list(ctx.slice_fields))
        constant = [c for c in columns if len({r.fields.get(c) for r in records}) <= 1]
        return CheckResult(
            name=self.name, passed=not constant, gate=False,
            summary=f"{len(constant)} constant feature column(s)" + (f": {', '.join(constant)}" if constant else ""),
            measured={"constant": constant, "columns": len(columns)},
            findings=[Finding("constant_feature", (c,), "same value in every training row") for c in constant],
            override="drop the column, or list the useful ones in modality.features",
        )


@hookimpl
def framework_modalities() -> list[Modality]:
    """This package provides one modality."""
    return [TabularModality()]


@hookimpl
def framework_config_search_path() -> list[str]:
    """Our config groups: modality/tabular.yaml and model/mlp.yaml."""
    return ["pkg://framework_tabular.conf"]


@hookimpl
def framework_register_readers(registry: ReaderRegistry) -> None:
    """Our data format: ``data.format=tabular_csv``, which ``load_data`` reads with."""
    registry.add(FORMAT, read_tabular_csv)


@hookimpl
def framework_quality_checks(modality: str) -> list[Any]:
    """One extra audit check, for our modality only."""
    return [ConstantFeatureCheck()] if modality == "tabular" else []
