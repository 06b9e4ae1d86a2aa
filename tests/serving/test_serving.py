"""The serving file a modality writes beside its weights: written, read back, found."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.serving import ServingFile, find_serving_file


@dataclass
class Info(ServingFile):
    classes: list[str]
    language: str = "hi"
    extra: dict[str, int] = field(default_factory=dict)


def test_a_serving_file_round_trips_and_is_found_from_export_or_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    info = Info(["बिल्ली", "dog"], extra={"size": 32})
    written = info.write(run / "export" / "m.json")
    assert "बिल्ली" in written.read_text(encoding="utf-8")  # text kept readable, not \\u-escaped
    assert Info.read(written) == info
    assert find_serving_file(run / "export", "m.json", "demo") == written
    beside_checkpoints = info.write(run / "m.json")
    (run / "checkpoints" / "step_00000010").mkdir(parents=True)
    assert find_serving_file(run / "checkpoints" / "step_00000010", "m.json", "demo") == beside_checkpoints
    with pytest.raises(FrameworkError, match=r"has no m.json: give an export directory .* of the demo modality"):
        find_serving_file(tmp_path / "elsewhere", "m.json", "demo")
