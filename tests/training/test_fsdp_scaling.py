"""FSDP2 scales with the number of processes, on CPU (gloo): a Llama of ~240M parameters built from
a config (random init, nothing downloaded) costs each rank about 1/world of the single-process
memory for weights, gradients and AdamW state, and a small Llama's loss curve over the same global
batches matches the single-process one at world sizes 2 and 4.

Ranks other than 0 build both models on the meta device, as a run does (``Modality.meta_init``).
Each rank records its resident memory (``/proc/self/status``: ``VmRSS`` after the imports, after
``engine.setup`` and after one optimizer step, and the peak ``VmHWM``) into ``rank<r>.json``;
``FSDP_SCALING_REPORT=path`` keeps every figure as JSON (docs/training.md states them).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_toy import make_cfg, make_run
from torch import nn

from framework.testing.ddp import join_group, spawn
from framework.training import Engine, latest_checkpoint
from framework.training.config import FSDPConfig
from framework.training.distributed import all_reduce_mean, shutdown_distributed
from framework.training.fsdp import read_full_weights

pytest.importorskip("transformers", reason="the test models are transformers' Llama (pip install transformers)")

BIG = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=16,
           num_attention_heads=16, num_key_value_heads=16)  # 238M parameters, tied embeddings
SMALL = dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2)
GLOBAL_BATCH, SEQ, STEPS = 8, 16, 4


class LlamaTask(nn.Module):
    """A Llama causal LM from a config and its next-token loss; each decoder layer is an FSDP unit."""

    def __init__(self, **config: Any) -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        self.model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, **config))

    def fsdp_units(self) -> list[nn.Module]:
        return list(self.model.model.layers)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": self.model(input_ids=batch["ids"], labels=batch["ids"], use_cache=False).loss}


class Tokens(torch.utils.data.Dataset):
    """``n`` fixed rows of random token ids ``(SEQ,)``."""

    def __init__(self, n: int, vocab: int) -> None:
        self.ids = torch.randint(0, vocab, (n, SEQ), generator=torch.Generator().manual_seed(7))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"ids": self.ids[i]}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def _build(rank: int, **config: Any) -> LlamaTask:
    """Rank 0 builds real weights (seeded: the same at every world size); the others on the meta device."""
    torch.manual_seed(0)
    if rank == 0:
        return LlamaTask(**config)
    with torch.device("meta"):
        return LlamaTask(**config)


def _loss_curve(rank: int, world: int, run_dir: Path, **fsdp: Any) -> list[float]:
    """STEPS optimizer steps of the small Llama on GLOBAL_BATCH rows a step, with ``trainer.fsdp``
    settings ``fsdp``; the mean loss over every rank at each step."""
    cfg = make_cfg(distributed="fsdp", batch_size=GLOBAL_BATCH // world, max_steps=STEPS, lr=1e-3,
                   clip_grad_norm=1.0, warmup_ratio=0.0, fsdp=FSDPConfig(**fsdp))
    losses = []
    with Engine(cfg, make_run(run_dir), seed=1) as engine:
        model = engine.setup(_build(rank, **SMALL))
        for batch in engine.steps(engine.dataloader(Tokens(GLOBAL_BATCH * STEPS, SMALL["vocab_size"]))):
            out = model(batch)
            engine.backward(out["loss"])
            losses.append(all_reduce_mean(out["loss"].detach().clone()).item())
    return losses


def _memory(rank: int, world: int, run_dir: Path) -> dict[str, int]:
    """Resident memory (KiB) around setting up the big Llama and taking one optimizer step."""
    figures: dict[str, Any] = {"imports_kib": _status_kib("VmRSS")}
    started = time.perf_counter()
    cfg = make_cfg(distributed="fsdp", batch_size=1, max_steps=1, lr=1e-4)
    with Engine(cfg, make_run(run_dir), seed=1) as engine:
        task = _build(rank, **BIG)
        figures["params"] = sum(p.numel() for p in task.parameters())
        figures["built_s"] = time.perf_counter() - started
        model = engine.setup(task)
        figures["after_setup_kib"] = _status_kib("VmRSS")
        figures["peak_setup_kib"] = _status_kib("VmHWM")
        figures["setup_s"] = time.perf_counter() - started
        steps = engine.steps(engine.dataloader(Tokens(world, BIG["vocab_size"])))
        for batch in steps:
            engine.backward(model(batch)["loss"])
            break  # one optimizer step; closing the loop early writes no 3 GB checkpoint
        steps.close()
        figures["after_step_kib"] = _status_kib("VmRSS")
        figures["step_s"] = time.perf_counter() - started
    figures["peak_kib"] = _status_kib("VmHWM")
    return figures


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    join_group(rank, world, port)
    try:
        out = Path(out_dir)
        result: dict[str, Any] = {"losses": _loss_curve(rank, world, out / "small")}
        if world == 2:  # bf16 compute, fp32 reduce-scatter
            result["losses_bf16"] = _loss_curve(rank, world, out / "small_bf16", param_dtype="bfloat16")
        if world == 4:  # each block recomputed in the backward pass, the state in host memory: the same losses
            result["losses_recomputed"] = _loss_curve(rank, world, out / "small_ac", activation_checkpointing=True,
                                                      cpu_offload=True)
            saved = latest_checkpoint(out / "small_ac")
            result["checkpoint_keys"] = sorted(read_full_weights(saved / "sharded")) if saved else []
        result.update(_memory(rank, world, out / "big"))
        (out / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        shutdown_distributed()


def _run(world: int, out: Path) -> list[dict[str, Any]]:
    out.mkdir()
    spawn(_worker, world, str(out))
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def _mib(rank_result: dict[str, Any], key: str) -> float:
    """What the model cost a rank at ``key`` (``peak_kib``, ``after_step_kib``): above what the imports left."""
    return (rank_result[key] - rank_result["imports_kib"]) / 1024


@pytest.mark.slow
def test_fsdp2_memory_per_rank_falls_with_world_size_and_losses_match(tmp_path: Path) -> None:
    results = {world: _run(world, tmp_path / f"world{world}") for world in (1, 2, 4)}
    report = os.environ.get("FSDP_SCALING_REPORT")
    if report:
        Path(report).write_text(json.dumps(results, indent=1))
    single = results[1][0]
    params = single["params"]
    assert params > 200_000_000
    # fp32 weights, gradients and AdamW's two moments: 16 bytes a parameter, split over the ranks.
    # One more fp32 copy of the weights would be a quarter of it.
    state_mib = 16 * params / 2**20
    assert _mib(single, "peak_kib") > 0.95 * state_mib  # the single process holds all of it
    peaks = {1: _mib(single, "peak_kib")}
    for world in (2, 4):
        for rank, result in enumerate(results[world]):
            torch.testing.assert_close(result["losses"], single["losses"], rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"world {world} rank {rank}: {m}")
            # What stays resident after a step is this rank's share of the state, and less than
            # another copy of the weights besides (the allocator keeps some freed buffers).
            assert _mib(result, "after_step_kib") < state_mib / world + 0.15 * state_mib, (world, rank, result)
        # The peak adds an amount that does not shrink with the world size (the gathered
        # embeddings and blocks, their full gradients before the reduce-scatter, gloo's buffers).
        peaks[world] = max(_mib(r, "peak_kib") for r in results[world])
        assert peaks[world] < peaks[1] / world + 0.3 * peaks[1], (world, peaks)
    assert peaks[4] < peaks[2] < peaks[1], peaks
    for rank in range(2):
        torch.testing.assert_close(results[2][rank]["losses_bf16"], single["losses"], rtol=2e-2, atol=0)
    for rank in range(4):
        torch.testing.assert_close(results[4][rank]["losses_recomputed"], single["losses"], rtol=1e-4, atol=1e-5)
    # Activation checkpointing's wrappers leave the checkpoint's names alone.
    assert results[4][0]["checkpoint_keys"] == sorted(LlamaTask(**SMALL).state_dict())
