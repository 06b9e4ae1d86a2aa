"""Whole runs through the entry point: resume continues the same run, sweeps compare jobs, the
default-ish run learns, and planted caption swaps are found by the misalignment audit."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignment_fixtures import model_overrides, subset
from framework.testing import run_framework
from framework.training import latest_checkpoint

GATES = ["data.gates.enforce=false"]  # subsets lack some shapes: balance fails, reported only


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    root = subset(tmp_path / "shapes", {"train": 40, "val": 8})
    args = ["+modality=alignment", f"data.root={root}", "data.test=null", "stages=[train]", "trainer.max_steps=6",
            "trainer.batch_size=8", "trainer.checkpoint_every=3", "trainer.keep_checkpoints=5", "trainer.progress=false",
            *model_overrides(), *GATES]
    whole = tmp_path / "whole"
    assert run_framework(args, whole).status == "completed"
    # The same run stopped after its step-3 checkpoint: drop what came later, then rerun the command.
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    shutil.rmtree(cut / "checkpoints" / "step_00000006")
    assert latest_checkpoint(cut).name == "step_00000003"
    assert run_framework(args, cut).status == "completed"
    a, b = _weights(latest_checkpoint(whole)), _weights(latest_checkpoint(cut))
    assert latest_checkpoint(cut).name == "step_00000006" and a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), "resume must continue the same curve"


@pytest.mark.slow
def test_a_sweep_over_learning_rates_writes_one_ranked_table(cli, tmp_path: Path) -> None:
    root = subset(tmp_path / "shapes", {"train": 40, "val": 8})
    sweep_dir = tmp_path / "sweep"
    result = cli("-m", "+modality=alignment", "evaluation.enforce_success=false", f"data.root={root}", "data.test=null", "trainer.lr=1e-3,3e-3",
                 "trainer.max_steps=4", "trainer.batch_size=8", "stages=[train,evaluate]", "evaluation.splits=[val]",
                 f"hydra.sweep.dir={sweep_dir}", *model_overrides(), *GATES, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep_dir / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["overrides"] for row in rows} == {"trainer.lr=0.001", "trainer.lr=0.003"}
    assert all(row["status"] == "completed" for row in rows)
    recall = [float(row["t2i_r1"]) for row in rows]  # ranked by the success criterion t2i_r1, best first
    assert recall == sorted(recall, reverse=True)


# 14 pairs of training images (28 of 540, about 5%) swap their caption lists; the partners differ
# in shape (their combinations are 90 apart in the generator's order), so every caption of a
# swapped image names the wrong shape and often the wrong colour.
SWAPS = [(i, i + 270) for i in range(0, 270, 20)]


@pytest.fixture(scope="module")
def swapped_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The default config on the bundled shapes with planted swaps, and the same model untrained
    (stages=[evaluate] without a checkpoint: the starting weights), evaluated the same way."""
    tmp = tmp_path_factory.mktemp("swapped")
    root = subset(tmp / "shapes", {"train": 540, "val": 60, "test": 60}, swap=SWAPS)
    common = ["+modality=alignment", f"data.root={root}", "trainer.progress=false", "~modality.robustness"]
    untrained = run_framework([*common, "stages=[evaluate]"],  # the starting weights, not trained
                              tmp / "untrained")
    trained = run_framework([*common, "stages=[audit,train,evaluate]"], tmp / "trained")
    assert untrained.status == trained.status == "completed"
    return tmp / "trained", tmp / "untrained"


@pytest.mark.slow
def test_the_default_run_lifts_recall_far_above_the_untrained_model(swapped_runs: tuple[Path, Path]) -> None:
    trained, untrained = (json.loads((run / "summary.json").read_text())["metrics"] for run in swapped_runs)
    assert trained["t2i_r1"] >= untrained["t2i_r1"] + 0.3  # val: seen combinations, new renders
    assert trained["t2i_r1"] >= 10 * trained["chance_t2i_r1"]
    assert trained["test/t2i_r1"] >= untrained["test/t2i_r1"] + 0.3  # test: unseen colour-shape pairs
    assert trained["i2t_mean_rank"] < untrained["i2t_mean_rank"] / 3


@pytest.mark.slow
def test_planted_caption_swaps_are_flagged_at_the_stated_precision_and_recall(swapped_runs: tuple[Path, Path]) -> None:
    """Stated: at the default settings, after the default training, precision >= 0.7 and recall >= 0.5
    over (image, caption) pairs (measured: 0.82 and 0.62; base rate 5.2%). By the end of training
    the model has partly memorised the planted pairs, so the final scores alone find a fifth of
    them (0.72 / 0.21); the training margins (``hard_to_learn``) find most of the rest
    (docs/alignment.md)."""
    swapped_run = swapped_runs[0]
    planted = {f"train/{i:04d}" for pair in SWAPS for i in pair}
    rows = [json.loads(line) for line in (swapped_run / "audit" / "suspect_pairs.jsonl").read_text().splitlines()]
    flagged = {(r["id"], r["caption_index"]) for r in rows}
    truth = {(rid, k) for rid in planted for k in range(4)}
    precision = len(flagged & truth) / max(len(flagged), 1)
    recall = len(flagged & truth) / len(truth)
    print(f"misalignment audit on planted swaps: precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.7 and recall >= 0.5, (precision, recall)
    audit = json.loads((swapped_run / "audit" / "audit.json").read_text())
    row = next(r for r in audit["results"] if r["name"] == "misalignment")
    assert row["measured"]["suspected_rate"] == pytest.approx(len(flagged) / 2160)
    card = (swapped_run / "audit" / "datacard.md").read_text()
    assert f"{len(flagged)} of 2160 image-caption pairs suspected misaligned" in card
    review = json.loads((swapped_run / "audit" / "misalignment_review.json").read_text())
    assert {t["data"]["item_id"] for t in review} == {f"{i}#caption{k}" for i, k in flagged}
    assert all(r["training_margin"] is not None for r in rows)  # every train pair was drawn in training
    assert row["measured"]["hard_to_learn"] > 0
