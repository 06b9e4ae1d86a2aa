"""Checks the tests share for data in tar shards: which samples a stream's decoder turned into
items, across ranks and loader workers, and across a resume; what an audit decided."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pytest

from framework.data.stream import ShardStream
from framework.training.data import make_dataloader

if TYPE_CHECKING:
    from framework.data.audit import AuditReport


class WithId:
    """A stream decoder whose items also carry their sample's id (``"id"``)."""

    def __init__(self, decode: Callable[[Any], dict[str, Any]]) -> None:
        self.decode = decode
        self.reseed = getattr(decode, "reseed", None)

    def __call__(self, sample: Any) -> dict[str, Any]:
        return {**self.decode(sample), "id": sample.id}


def ids_across_ranks(make_stream: Callable[[], ShardStream], *, world_size: int = 2, num_workers: int = 2,
                     batch_size: int = 4, collate_fn: Callable[[list[Any]], Any] | None = None) -> list[list[str]]:
    """Per rank, the ids one epoch hands out through the engine's loader (``make_dataloader``:
    the stream bound to the rank, the world size and ``num_workers`` loader workers); the stream's
    decoder must be a :class:`WithId`."""
    per_rank = []
    for rank in range(world_size):
        stream = make_stream()
        loader = make_dataloader(stream, batch_size=batch_size, seed=0, rank=rank, world_size=world_size,
                                 num_workers=num_workers,
                                 collate_fn=collate_fn or (lambda items: [it["id"] for it in items]))
        stream.start(0)
        per_rank.append([i for batch in loader for i in batch])
    return per_rank


def record_decoded(monkeypatch: pytest.MonkeyPatch, decoder: type) -> list[str]:
    """The ids of the samples ``decoder`` (a class) decodes from now on, in order (in this process:
    a loader without workers), successful decodes only."""
    seen: list[str] = []
    original = decoder.__call__

    def recording(self: Any, sample: Any) -> Any:
        item = original(self, sample)
        seen.append(sample.id)
        return item

    monkeypatch.setattr(decoder, "__call__", recording)
    return seen


def assert_resume_continues(train: Callable[[int, str], None], seen: list[str], *, batch_size: int, cut: int,
                            end: int) -> list[str]:
    """Train to ``end`` steps in one go, then in another run dir to ``cut`` steps and, resumed from
    its checkpoint, on to ``end``: the resumed run must train on exactly the items the
    uninterrupted one trained on after step ``cut``. ``train(max_steps, run)`` trains (resuming
    what run dir ``run``, ``"full"`` or ``"cut"``, holds); ``seen`` is :func:`record_decoded`'s
    list. Returns the uninterrupted run's items."""
    train(end, "full")
    full = seen[: end * batch_size]
    seen.clear()
    train(cut, "cut")
    first = seen[: cut * batch_size]
    seen.clear()
    train(end, "cut")
    rest = seen[: (end - cut) * batch_size]
    assert len(full) == end * batch_size and len(set(full)) == len(full)  # within one epoch: no item twice
    assert first == full[: cut * batch_size]
    assert rest == full[cut * batch_size :]
    return full


def train_steps(modality: Any, ctx: Any, data: Any, cfg: Any) -> None:
    """Train ``modality`` on ``data`` through the engine under ``cfg``, as a run does, and check
    the engine took ``cfg.max_steps`` steps."""
    from framework.hookspecs import RunInfo
    from framework.training import Engine

    task = modality.build_task(ctx, data)
    info = RunInfo(run_dir=ctx.run_dir, modality=modality.name, name="test", config_yaml=ctx.config_yaml)
    with Engine(cfg, info, seed=ctx.seed) as engine:
        modality.train(ctx, engine, task, data)
        assert engine.state.step == cfg.max_steps


def audit_outcome(report: "AuditReport") -> list[Any]:
    """Everything an audit decided (every check's verdict, measurements and findings), less its timings."""
    rows = []
    for r in report.results:
        measured = {k: v for k, v in r.measured.items() if k != "seconds"}
        rows.append((r.name, r.passed, measured, [(f.kind, f.items, f.detail) for f in r.findings]))
    return rows
