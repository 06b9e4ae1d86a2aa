"""Training on the engine, evaluation, prediction and the misalignment audit, on a subset of the bundled shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignment_fixtures import model_overrides, subset, trainer_config
from framework.data.records import Record
from framework.hookspecs import RunInfo
from framework.testing import run_framework
from framework.training import Engine, latest_checkpoint
from plugins.alignment.modality import AlignmentModality

SUBSET = {"train": 150, "val": 30, "test": 30}
GATES = ["data.gates.enforce=false"]  # a subset lacks some shapes: balance fails, reported only


def _train(ctx, data, **trainer):
    modality = AlignmentModality()
    task = modality.build_task(ctx, data)
    untrained = modality.evaluate(ctx, task, data, "train")
    info = RunInfo(run_dir=ctx.run_dir, modality="alignment", name="test", config_yaml=ctx.config_yaml)
    with Engine(trainer_config(**trainer), info, seed=ctx.seed) as engine:
        modality.train(ctx, engine, task, data)
    return modality, task, untrained


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny dual encoder trained on 150 shapes, shared by the tests that only read it."""
    from alignment_fixtures import context

    tmp = tmp_path_factory.mktemp("trained")
    root = subset(tmp / "shapes", SUBSET)
    ctx = context(root, tmp / "run")
    data = AlignmentModality().load_data(ctx)
    modality, task, untrained = _train(ctx, data, epochs=12, batch_size=32)
    return ctx, data, modality, task, untrained, root


@pytest.mark.slow
def test_training_improves_recall_over_the_untrained_model(trained) -> None:
    ctx, data, modality, task, untrained, _ = trained
    report = modality.evaluate(ctx, task, data, "train")
    chance = report.metrics["chance_t2i_r1"]
    assert chance == pytest.approx(1 / 150)
    assert report.metrics["t2i_r1"] >= max(untrained.metrics["t2i_r1"] + 0.05, 5 * chance)
    assert report.metrics["t2i_r5"] >= untrained.metrics["t2i_r5"] + 0.2
    assert report.metrics["t2i_mean_rank"] < untrained.metrics["t2i_mean_rank"] / 2
    rows = [json.loads(line) for line in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [r["metrics"] for r in rows if r["kind"] == "val"]
    assert len(val) == 12 and val[-1]["val_loss"] < val[0]["val_loss"]


def test_evaluate_reports_recall_zero_shot_slices_and_robustness(trained) -> None:
    ctx, data, modality, task, _, _ = trained
    report = modality.evaluate(ctx, task, data, "test")
    for key in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r10", "i2t_mean_rank", "t2i_mean_rank",
                "zeroshot_accuracy", "zeroshot_min_class_recall", "robust/blur/t2i_r1", "robust/jpeg_q20/i2t_r1"):
        assert key in report.metrics, key
    assert report.metrics["captions"] == 4 * report.metrics["images"] == 120
    assert {r.label for r in data.records("test")} <= set(report.per_class)
    assert "zeroshot_recall" in next(iter(report.per_class.values()))
    assert {"size=small", "size=large"} <= set(report.per_slice)
    assert set(report.robustness) == {"brightness_dark", "blur", "gaussian_noise", "jpeg_q20"}
    again = modality.evaluate(ctx, task, data, "test")
    assert again.robustness == report.robustness  # seeded perturbations


def test_predict_ranks_the_train_captions_for_images_without_captions(trained) -> None:
    ctx, data, modality, task, _, root = trained
    records = [Record(id=f"new{i}", split="unlabeled", source=f"new:{i}", media=root / "images" / "train" / f"{i:04d}.png")
               for i in range(3)]
    predictions = modality.predict(ctx, task, records, "unlabeled")
    pool = {c for r in data.records("train") for c in r.fields["captions"]}
    assert predictions.targets == [None, None, None]
    assert all(out in pool for out in predictions.outputs)
    assert len(predictions.extras["confidence"]) == 3


def test_audit_before_training_lists_the_misalignment_check_as_pending(tmp_path: Path) -> None:
    root = subset(tmp_path / "shapes", {"train": 20, "val": 4})
    result = run_framework(["+modality=alignment", f"data.root={root}", "data.test=null", "stages=[audit]", *GATES],
                           tmp_path / "run")
    assert result.status == "completed"
    audit = json.loads((tmp_path / "run" / "audit" / "audit.json").read_text())
    row = next(r for r in audit["results"] if r["name"] == "misalignment")
    assert row["measured"] == {"pending": True} and "checkpoint=PATH" in row["summary"]
    assert not (tmp_path / "run" / "audit" / "suspect_pairs.jsonl").exists()


def test_audit_stage_with_a_checkpoint_scores_every_pair(trained, tmp_path: Path) -> None:
    ctx, _, _, _, _, root = trained
    checkpoint = latest_checkpoint(ctx.run_dir)
    run = tmp_path / "run"
    result = run_framework(["+modality=alignment", f"data.root={root}", "stages=[audit]", f"checkpoint={checkpoint}",
                            *model_overrides(), *GATES], run)
    assert result.status == "completed"
    audit = json.loads((run / "audit" / "audit.json").read_text())
    row = next(r for r in audit["results"] if r["name"] == "misalignment")
    assert row["measured"]["pairs"] == 4 * SUBSET["train"]
    assert 0 <= row["measured"]["suspected_rate"] <= 1
    assert row["measured"]["hard_to_learn"] == 0 and "no training dynamics" in row["summary"]  # not trained here
    card = (run / "audit" / "datacard.md").read_text()
    assert "image-caption pairs suspected misaligned" in card
    suspects = [json.loads(line) for line in (run / "audit" / "suspect_pairs.jsonl").read_text().splitlines()]
    assert len(suspects) == row["measured"]["suspect"]
    review = json.loads((run / "audit" / "misalignment_review.json").read_text())
    assert len(review) == len(suspects)
    if review:
        task = review[0]
        assert task["data"]["image"].startswith("/data/local-files/?d=images/train/")
        assert task["data"]["text"] == suspects[0]["caption"]
        assert task["predictions"][0]["result"][0]["type"] == "textarea"


def test_missing_caption_names_the_file_and_line(make_ctx, tmp_path: Path) -> None:
    from framework.data.errors import DataError

    root = subset(tmp_path / "shapes", {"train": 3})
    lines = (root / "train.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["captions"]
    (root / "train.jsonl").write_text("\n".join([lines[0], json.dumps(broken), lines[2]]) + "\n")
    ctx = make_ctx(root, data={"val": None, "test": None})
    with pytest.raises(DataError, match=r"train\.jsonl:2.*no usable caption"):
        AlignmentModality().load_data(ctx)


def test_csv_manifest_with_several_captions_per_image(make_ctx, tmp_path: Path) -> None:
    import csv
    import random

    from plugins.alignment.data import CaptionDataset, TokenCache, captions_of
    from plugins.alignment.modality import STORE_KEY, task_from_config

    root = subset(tmp_path / "shapes", {"train": 2})
    rows = [json.loads(line) for line in (root / "train.jsonl").read_text().splitlines()]
    with (root / "train.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "caption", "label", "size"])
        writer.writerows([r["path"], "|".join(r["captions"]), r["label"], r["size"]] for r in rows)
    ctx = make_ctx(root, data={"train": "train.csv", "val": None, "test": None, "format": "csv", "slices": ["size"]})
    data = AlignmentModality().load_data(ctx)
    records = data.records("train")
    assert [captions_of(r) for r in records] == [r["captions"] for r in rows]
    task = task_from_config(ctx.model)
    dataset = CaptionDataset(records, ctx.stash[STORE_KEY], TokenCache(task.tokenize, rows[0]["captions"] +
                                                                                  rows[1]["captions"]))
    seen = set()
    for epoch in range(8):  # the engine seeds Python's RNG per (seed, epoch, item)
        random.seed(epoch)
        seen.add(tuple(dataset[0]["input_ids"].tolist()))
    assert len(seen) > 1  # a different caption in different epochs
    random.seed(3)
    first = dataset[0]["input_ids"]
    random.seed(3)
    assert first.equal(dataset[0]["input_ids"])


@pytest.mark.slow
def test_a_whole_run_audits_with_the_trained_model_then_evaluates_and_exports(tmp_path: Path) -> None:
    from plugins.alignment.export import load_encoder

    root = subset(tmp_path / "shapes", {"train": 24, "val": 6, "test": 6})
    run = tmp_path / "run"
    result = run_framework(["+modality=alignment", f"data.root={root}", "trainer.max_steps=2", "trainer.batch_size=8",
                            "trainer.progress=false", "~modality.robustness", *model_overrides(), *GATES], run)
    assert result.status == "completed" and "t2i_r1" in result.metrics and "test/i2t_r5" in result.metrics
    audit = json.loads((run / "audit" / "audit.json").read_text())
    row = next(r for r in audit["results"] if r["name"] == "misalignment")
    assert row["measured"]["pairs"] == 4 * 24  # scored after training, not pending
    assert "hard to learn in training" in row["summary"]  # the margins training left in the run's stash
    assert (run / "audit" / "suspect_pairs.jsonl").is_file() and (run / "audit" / "misalignment_review.json").is_file()
    assert "(see audit/datacard.md)" in (run / "report.md").read_text()  # the audit line, after the model checks
    encoder = load_encoder(run / "export")
    assert encoder.encode_texts(["a small red circle in the centre"]).shape == (1, 32)


@pytest.mark.gpu
def test_cuda_training_in_bf16_evaluates_and_encodes_on_the_device(make_ctx, tmp_path: Path) -> None:
    root = subset(tmp_path / "shapes", {"train": 64, "val": 16})
    ctx = make_ctx(root, data={"test": None})
    data = AlignmentModality().load_data(ctx)
    modality, task, _ = _train(ctx, data, epochs=6, batch_size=16, device="cuda", precision="auto")
    assert task.logit_scale.is_cuda
    rows = [json.loads(line) for line in (ctx.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["metrics"]["loss"] for r in rows if r["kind"] == "train"]
    assert losses[-1] < losses[0]
    report = modality.evaluate(ctx, task, data, "val")
    assert report.metrics["images"] == 16
    embedding = task.encode_texts(["a small red circle in the centre"])  # float32 on the host, from bf16 weights
    assert embedding.dtype.name == "float32" and abs(float((embedding ** 2).sum()) - 1.0) < 1e-3


def test_training_leaves_pair_margins_in_the_stash_for_the_misalignment_audit(trained, tmp_path: Path) -> None:
    import dataclasses

    from framework.data.checks import CheckContext
    from framework.modality import Stash
    from plugins.alignment.misalignment import MisalignmentCheck
    from plugins.alignment.modality import TRAINING_MARGINS_KEY

    ctx, data, _, task, _, _ = trained
    margins = ctx.stash[TRAINING_MARGINS_KEY]
    pairs = {(r.id, k) for r in data.records("train") for k in range(len(r.fields["captions"]))}
    drawn = [m for m in margins.values() if m == m]  # NaN for a caption no epoch drew
    assert set(margins) == pairs and len(drawn) > len(pairs) / 2 and all(abs(m) <= 2.0 for m in drawn)  # cosines
    check = MisalignmentCheck()
    scored = check.run(data, CheckContext("alignment", {}, (), tmp_path / "a", model=task, run=ctx))
    assert scored.measured["pairs"] == len(pairs) and "hard to learn in training" in scored.summary
    fresh = dataclasses.replace(ctx, stash=Stash())  # a run that did not train (stages=[audit] checkpoint=...)
    untrained = check.run(data, CheckContext("alignment", {}, (), tmp_path / "b", model=task, run=fresh))
    assert "no training dynamics" in untrained.summary and untrained.measured["hard_to_learn"] == 0
    outside = check.run(data, CheckContext("alignment", {}, (), tmp_path / "c", model=task))
    assert outside.summary.startswith("not applicable: no run context")


@pytest.mark.slow
def test_evaluate_without_training_scores_the_starting_weights(tmp_path: Path) -> None:
    from framework.stage import STARTING_WEIGHTS

    root = subset(tmp_path / "shapes", {"train": 8, "val": 8, "test": 0})
    result = run_framework(["+modality=alignment", f"data.root={root}", "data.test=null", "stages=[evaluate]",
                            "trainer.progress=false", "~modality.robustness", *model_overrides()], tmp_path / "run")
    assert result.status == "completed" and result.weights == STARTING_WEIGHTS and "t2i_r1" in result.metrics
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["weights"] == STARTING_WEIGHTS
