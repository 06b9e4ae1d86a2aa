"""The split command and several weighted training sources."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from framework.data import DataConfig, load_bundle
from framework.data.__main__ import main
from framework.data.audit import run_audit
from framework.data.errors import DataError
from framework.data.records import Record
from framework.data.sources import MIXTURE_KEY, parse_sources, training_view, weighted_records
from framework.data.split import split_records


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _records(n: int = 60) -> list[Record]:
    return [Record(id=str(i), split="all", source=f"m:{i}", label="ab"[i % 3 == 0], text=f"t{i}",
                   fields={"speaker": f"s{i // 3}"}) for i in range(n)]


def test_split_keeps_groups_whole_stratifies_and_is_deterministic() -> None:
    records = _records()
    result = split_records(records, val=0.2, test=0.2, seed=0, group_by="speaker", stratify="label")
    speakers = {name: {r.fields["speaker"] for r in rs} for name, rs in result.splits.items()}
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"] or speakers["val"] & speakers["test"])
    assert sum(len(r) for r in result.splits.values()) == 60
    assert all({r.label for r in rs} == {"a", "b"} for rs in result.splits.values())  # every label in every split
    assert 8 <= len(result.splits["val"]) <= 16 and 8 <= len(result.splits["test"]) <= 16
    again = split_records(list(reversed(records)), val=0.2, test=0.2, seed=0, group_by="speaker", stratify="label")
    assert {n: sorted(r.id for r in rs) for n, rs in again.splits.items()} == \
        {n: sorted(r.id for r in rs) for n, rs in result.splits.items()}
    other = split_records(records, val=0.2, test=0.2, seed=1, group_by="speaker", stratify="label")
    assert sorted(r.id for r in other.splits["val"]) != sorted(r.id for r in result.splits["val"])
    with pytest.raises(DataError, match="sum to less than 1"):
        split_records(records, val=0.5, test=0.5)


def test_split_command_writes_manifests_and_a_card_entry_that_train_reads(tmp_path, capsys) -> None:
    root = tmp_path / "data"
    _jsonl(root / "all.jsonl", [{"text": f"item {i}", "label": "xy"[i % 2], "speaker": f"s{i // 2}"} for i in range(40)])
    (root / "datacard.yaml").write_text("sources: [test items]\n")
    code = main(["split", str(root / "all.jsonl"), str(root / "splits"), "--val", "0.1", "--test", "0.1",
                 "--seed", "0", "--group-by", "speaker", "--stratify", "label"])
    assert code == 0 and "train" in capsys.readouterr().out
    card = yaml.safe_load((root / "splits" / "datacard.yaml").read_text())
    assert card["sources"] == ["test items"] and "seed 0" in card["notes"]
    summary = json.loads((root / "splits" / "split.json").read_text())
    assert sum(summary["counts"].values()) == 40 and summary["group_by"] == "speaker"
    bundle = load_bundle(DataConfig(root=str(root), train="splits/train.jsonl", val="splits/val.jsonl",
                                    test="splits/test.jsonl"))
    assert sum(bundle.counts().values()) == 40
    assert main(["split", str(root / "missing.jsonl"), str(tmp_path / "o")]) == 2


def _two_sources(root: Path) -> None:
    _jsonl(root / "a.jsonl", [{"text": f"alpha item number {i} about cats", "label": "x"} for i in range(8)])
    _jsonl(root / "b.jsonl", [{"text": f"beta entry {i} on the subject of dogs", "label": "y"} for i in range(2)])


def test_weighted_sources_keep_provenance_and_set_epoch_ratios(tmp_path) -> None:
    _two_sources(tmp_path)
    cfg = DataConfig(root=str(tmp_path), train=[{"path": "a.jsonl", "weight": 1}, {"path": "b.jsonl", "weight": 1, "name": "bees"}],
                     slices=["source"])
    bundle = load_bundle(cfg)
    assert bundle.counts() == {"train": 10}  # the audit sees each item once
    assert [(e["name"], e["records"], e["weight"]) for e in bundle.extras[MIXTURE_KEY]] == [("a.jsonl", 8, 1.0), ("bees", 2, 1.0)]
    assert bundle.records()[-1].slices["source"] == "bees"
    epoch = weighted_records(bundle, seed=0)
    assert len(epoch) == 10 and Counter(r.slices["source"] for r in epoch) == {"a.jsonl": 5, "bees": 5}
    assert training_view(bundle, 0).records("train") == epoch
    plain = load_bundle(DataConfig(root=str(tmp_path), train=["a.jsonl", "b.jsonl"]))
    assert training_view(plain, 0) is plain  # no weights: the sources are concatenated
    report = run_audit(bundle, cfg, modality="test", out_dir=tmp_path / "audit")
    card = (tmp_path / "audit" / "datacard.md").read_text()
    assert "train source `bees`: `b.jsonl`, format jsonl, weight 1" in card and report.results


def test_the_same_item_in_two_sources_fails_the_cleanliness_gate(tmp_path) -> None:
    _two_sources(tmp_path)
    _jsonl(tmp_path / "c.jsonl", [{"text": "alpha item number 3 about cats", "label": "x"}])
    cfg = DataConfig(root=str(tmp_path), train=["a.jsonl", "b.jsonl", "c.jsonl"])
    report = run_audit(load_bundle(cfg), cfg, modality="test", out_dir=tmp_path / "audit")
    cleanliness = next(r for r in report.results if r.name == "cleanliness")
    assert not cleanliness.passed


def test_bad_source_entries_name_the_key() -> None:
    assert parse_sources("train.jsonl") is None
    assert parse_sources("hf:owner/name")[0].path == "hf:owner/name"
    with pytest.raises(DataError, match=r"data.train\[1\]"):
        parse_sources(["a.jsonl", {"path": "b.jsonl", "weight": -1}])
