"""Split paths fitted to the layout a user has, and missing ones named with what is there and the fix."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from planted_data import write_jsonl

from framework.data import DataConfig, load_bundle
from framework.data.errors import DataError
from framework.data.readers.layouts import resolve_splits

DEFAULTS = {"train": "train.jsonl", "val": "val.jsonl", "test": "test.jsonl"}


def _manifests(root: Path, *names: str) -> Path:
    for name in names:
        write_jsonl(root / name, [{"text": f"{name} line {i}", "label": "a" if i % 2 else "b"} for i in range(4)])
    return root


def test_a_split_left_at_its_default_is_found_under_its_usual_name_or_skipped(tmp_path, caplog) -> None:
    root = _manifests(tmp_path, "train.jsonl", "dev.jsonl")
    with caplog.at_level(logging.INFO):
        bundle = load_bundle(DataConfig(root=str(root), **DEFAULTS), split_defaults=DEFAULTS)
    assert bundle.counts() == {"train": 4, "val": 4}
    assert bundle.records("val")[0].text == "dev.jsonl line 0"
    assert "data.val: val.jsonl not found; reading dev.jsonl" in caplog.text
    assert "data.test: no test.jsonl in" in caplog.text and "data.test=null to silence this" in caplog.text
    # The same on an OmegaConf node (the plugins' data config may be one).
    node = resolve_splits(OmegaConf.structured(DataConfig(root=str(root), **DEFAULTS)), root, DEFAULTS)
    assert (node.train, node.val, node.test) == ("train.jsonl", "dev.jsonl", None)


def test_a_split_the_user_set_that_is_missing_is_an_error_naming_the_fix(tmp_path) -> None:
    root = _manifests(tmp_path, "train.jsonl", "dev.jsonl")
    with pytest.raises(DataError, match=r"^data\.val=valid\.jsonl: .*valid\.jsonl not found; .* holds dev\.jsonl, "
                       r"train\.jsonl \(2 \.jsonl files\)\. Fix the path \(set data\.val=dev\.jsonl, relative to "
                       r"data\.root\), or set data\.val=null to run without a val split\.$"):
        load_bundle(DataConfig(root=str(root), train="train.jsonl", val="valid.jsonl"), split_defaults=DEFAULTS)
    with pytest.raises(DataError, match=r"data\.train=training\.jsonl: .* Fix the path \(set data\.train=train\.jsonl"):
        load_bundle(DataConfig(root=str(root), train="training.jsonl"))


def test_a_file_of_no_known_format_names_its_first_line(tmp_path) -> None:
    (tmp_path / "table.tsv").write_text("id\tvalue\n1\tx\n")
    with pytest.raises(DataError, match=r"cannot tell the data format from the path \(table\.tsv starts with "
                       r"'id\\tvalue'\)\. Set data\.format to one of: .*common_voice"):
        load_bundle(DataConfig(root=str(tmp_path), train="table.tsv"))
