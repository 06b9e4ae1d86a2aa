"""Bad manifests: every bad line in one run, the right JSON column, bytes that are not UTF-8,
symbolic links that leave the data root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framework.data import DataError, read_manifest
from framework.data.errors import DataErrors
from framework.data.readers import MAX_LINE_ERRORS


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_bad_line_is_reported_in_one_run(tmp_path: Path) -> None:
    good = json.dumps({"text": "fine", "label": "a"})
    path = _write(tmp_path / "m.jsonl", [
        good,
        '{"text": "cut short", "label": "a"',  # line 2: truncated JSON
        good,
        json.dumps({"label": "a"}),  # line 4: neither media nor text
        json.dumps({"text": 3, "label": "a"}),  # line 5: wrong type
        "[1, 2]",  # line 6: not an object
    ])
    with pytest.raises(DataErrors) as info:
        read_manifest(path, root=tmp_path, split="train")
    message = str(info.value)
    assert info.value.total == 4
    for line in (2, 4, 5, 6):
        assert f"{path}:{line}: " in message
    assert f"{path}:1:" not in message and f"{path}:3:" not in message
    assert "4 bad lines" in message.splitlines()[0]


def test_json_column_points_at_the_problem(tmp_path: Path) -> None:
    truncated = '{"path": "img/a.png", "label": "cat"'  # 36 characters, the missing brace is column 37
    path = _write(tmp_path / "m.jsonl", [truncated])
    with pytest.raises(DataError, match=r"m.jsonl:1: not valid JSON \(Expecting ',' delimiter at column 37, the end of the line\)"):
        read_manifest(path, root=tmp_path, split="train")
    path = _write(tmp_path / "n.jsonl", ['{"path": "img/a.png" "label": "cat"}'])  # the second key starts at column 22
    with pytest.raises(DataError, match=r"n.jsonl:1: not valid JSON \(Expecting ',' delimiter at column 22\)"):
        read_manifest(path, root=tmp_path, split="train")


def test_bad_lines_are_capped_with_a_count(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", ["{nope"] * (MAX_LINE_ERRORS + 7))
    with pytest.raises(DataErrors) as info:
        read_manifest(path, root=tmp_path, split="train")
    assert len(info.value.errors) == MAX_LINE_ERRORS and info.value.total == MAX_LINE_ERRORS + 7
    assert "... and 7 more bad lines" in str(info.value)


@pytest.mark.parametrize("name,header,bad_line,column", [("m.jsonl", None, 2, 14), ("m.csv", b"text,label\n", 3, 4)])
def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path, name: str, header: bytes | None, bad_line: int,
                                               column: int) -> None:
    path = tmp_path / name
    if header is None:
        body = b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "a"}\n'
    else:
        body = header + b"ok,a\ncaf\xe9,a\n"
    path.write_bytes(body)
    with pytest.raises(DataError) as info:
        read_manifest(path, root=tmp_path, split="train")
    assert not isinstance(info.value, UnicodeDecodeError)
    assert f"{path}:{bad_line}: byte e9 at column {column} is not UTF-8" in str(info.value) and "UTF-8" in str(info.value)


def test_a_symlink_leaving_the_root_is_refused_unless_allowed(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "secret.png"
    outside.parent.mkdir()
    outside.write_bytes(b"\x89PNG")
    root = tmp_path / "root"
    (root / "img").mkdir(parents=True)
    os.symlink(outside, root / "img" / "cat.png")
    manifest = _write(root / "m.jsonl", [json.dumps({"path": "img/cat.png", "label": "cat"})])
    with pytest.raises(DataError, match=r"m.jsonl:1: media path 'img/cat.png' is a symbolic link to .*secret.png, "
                                        r"outside the data root.*data.allow_outside_root=true"):
        read_manifest(manifest, root=root, split="train")
    records, _ = read_manifest(manifest, root=root, split="train", allow_outside_root=True)
    assert [r.id for r in records] == ["img/cat.png"]


def test_a_symlinked_class_folder_outside_the_root_is_refused(tmp_path: Path) -> None:
    from planted_data import make_image

    make_image(tmp_path / "other" / "x.png", seed=1)
    make_image(tmp_path / "root" / "train" / "cat" / "a.png", seed=2)
    os.symlink(tmp_path / "other", tmp_path / "root" / "train" / "dog")
    with pytest.raises(DataError, match=r"x.png.*symbolic link.*outside the data root"):
        read_manifest(tmp_path / "root" / "train", root=tmp_path / "root", split="train")
