"""evaluation.sets: names checked, each set read as a split of its own, reported as a set."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.config import EvaluationConfig
from framework.data.config import DataConfig
from framework.data.records import DataBundle
from framework.errors import FrameworkError
from framework.evaluation import report as report_md
from framework.evaluation.sets import load_sets
from framework.evaluation.types import EvalReport


def _manifest(folder: Path, labels: list[str | None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [('{"text": "item %d"' % i) + ("" if label is None else ', "label": "%s"' % label) + "}"
             for i, label in enumerate(labels)]
    path = folder / "set.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", ["test", "retention", "robust", "1st", "a/b"])
def test_a_set_named_like_a_split_or_a_prefix_is_refused(tmp_path: Path, name: str) -> None:
    _manifest(tmp_path, ["x"])
    with pytest.raises(FrameworkError, match=f"evaluation.sets.{name}"):
        load_sets(EvaluationConfig(sets={name: "set.jsonl"}), DataBundle(root=tmp_path, splits={}), DataConfig())


def test_each_set_becomes_a_split_with_its_labeled_items(tmp_path: Path) -> None:
    _manifest(tmp_path / "ood", ["x", None, "y"])
    data = DataBundle(root=tmp_path, splits={})
    sets = load_sets(EvaluationConfig(sets={"ood": "ood/set.jsonl"}), data, DataConfig())
    assert [(s.name, s.items, s.source) for s in sets] == [("ood", 2, tmp_path / "ood" / "set.jsonl")]
    assert [r.label for r in data.splits["ood"]] == ["x", "y"]


def test_a_set_without_labels_is_an_error_naming_it(tmp_path: Path) -> None:
    _manifest(tmp_path, [None])
    with pytest.raises(FrameworkError, match="evaluation.sets.edge=.*no labeled items"):
        load_sets(EvaluationConfig(sets={"edge": "set.jsonl"}), DataBundle(root=tmp_path, splits={}), DataConfig())


def test_report_md_heads_a_set_apart_from_the_splits(tmp_path: Path) -> None:
    text = report_md.render("m", [EvalReport("val", {"accuracy": 0.9}), EvalReport("ood", {"accuracy": 0.5})], [],
                            tmp_path, sources={"ood": tmp_path / "ood.jsonl"})
    assert "## Split `val`" in text and "## Set `ood`" in text and "`ood/<metric>`" in text


@pytest.mark.slow  # composing the whole config
def test_sets_are_named_on_the_command_line_without_plus_and_typos_still_fail() -> None:
    from framework.compose import compose_config

    cfg = compose_config(["+modality=vision", "evaluation.sets={ood: night.jsonl, edge: edge/}"])
    assert dict(cfg.evaluation.sets) == {"ood": "night.jsonl", "edge": "edge/"}
    with pytest.raises(Exception, match="evaluation.setz"):
        compose_config(["+modality=vision", "evaluation.setz={ood: night.jsonl}"])
