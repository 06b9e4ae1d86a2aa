"""Readers registered through the ``framework_register_readers`` hook, and the registry itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework import ReaderRegistry, hookimpl
from framework.data import DataConfig, DataError, ReadOptions, Record, load_bundle, read_manifest
from framework.data.readers import builtin_readers, detect_format, get_reader
from framework.errors import FrameworkError
from framework.plugins import load_plugins


def read_lines(path: Path, opts: ReadOptions) -> tuple[list[Record], list]:
    """One record per line of text, labelled by its first word."""
    lines = path.read_text().splitlines()
    return [Record(id=f"{path.name}:{i}", split=opts.split, source=f"{path}:{i + 1}", text=t, label=t.split()[0])
            for i, t in enumerate(lines)], []


class _LinesPlugin:
    @hookimpl
    def framework_register_readers(self, registry: ReaderRegistry) -> None:
        registry.add("lines_test", read_lines, detect=lambda p: p.suffix == ".lines")


class _SameNamePlugin:
    @hookimpl
    def framework_register_readers(self, registry: ReaderRegistry) -> None:
        registry.add("lines_test", read_lines)


def _lines(root: Path) -> Path:
    (root / "train.lines").write_text("cat one\ndog two\ncat three\n")
    return root


def test_a_plugins_reader_registers_through_the_hook_and_load_bundle_reads_with_it(tmp_path: Path) -> None:
    plugins = load_plugins(extra=[_LinesPlugin()])
    assert "lines_test" in plugins.readers and plugins.readers.frozen
    assert "tabular_csv" in plugins.readers  # the example package registers through the same hook
    root = _lines(tmp_path)
    bundle = load_bundle(DataConfig(root=str(root), train="train.lines"), readers=plugins.readers)  # format=auto
    assert [r.text for r in bundle.records("train")] == ["cat one", "dog two", "cat three"]
    assert bundle.classes == ["cat", "dog"]
    records, _ = read_manifest(root / "train.lines", root=root, split="val", format="lines_test", readers=plugins.readers)
    assert [r.split for r in records] == ["val"] * 3
    assert get_reader("lines_test", plugins.readers) is read_lines
    # A registry belongs to its plugin manager: one built without the plugin does not know the format.
    assert "lines_test" not in load_plugins().readers
    with pytest.raises(DataError, match="lines_test"):  # the error lists the formats to choose from
        detect_format(root / "train.unknown", plugins.readers)


def test_the_registry_is_frozen_once_every_plugin_registered() -> None:
    readers = load_plugins(extra=[_LinesPlugin()]).readers
    with pytest.raises(ValueError, match="framework_register_readers"):
        readers.add("late", read_lines)


def test_a_name_taken_by_another_plugin_is_an_error_naming_the_plugin_and_the_holder(tmp_path: Path) -> None:
    # pluggy calls the plugin registered last first: _LinesPlugin takes the name, _SameNamePlugin fails.
    with pytest.raises(FrameworkError) as info:
        load_plugins(extra=[_SameNamePlugin(), _LinesPlugin()])
    message = str(info.value)
    assert "_SameNamePlugin" in message and "framework_register_readers" in message
    assert "'lines_test' is already registered (test_reader_registry.read_lines)" in message
    listed = load_plugins(extra=[_SameNamePlugin(), _LinesPlugin()], strict=False)  # --plugins
    assert [f.error.startswith("plugin '_SameNamePlugin' failed") for f in listed.failures] == [True]
    assert listed.readers.detect(tmp_path / "x.lines") == "lines_test" and listed.readers.frozen


def test_registry_add_replace_and_detectors_most_recent_first(tmp_path: Path) -> None:
    registry = builtin_readers()
    assert {"jsonl", "csv", "image_folder", "chat", "preference", "nemo_audio", "label_studio", "hf"} <= set(registry.names())
    assert {"imagefolder", "common_voice", "kaldi", "librispeech", "audio_text_folder", "audiofolder"} <= set(registry.names())
    with pytest.raises(ValueError, match="'csv' is already registered \\(built-in\\)"):
        registry.add("csv", read_lines)
    registry.add("csv", read_lines, replace=True)
    assert registry.get("csv") is read_lines
    registry.add("a", read_lines, detect=lambda p: p.suffix == ".x")
    registry.add("b", read_lines, detect=lambda p: p.suffix == ".x")
    assert registry.detect(tmp_path / "f.x") == "b"
    assert registry.detect(tmp_path / "f.csv") == "csv" and registry.detect(tmp_path) == "image_folder"
    with pytest.raises(ValueError, match="unknown data format 'nope'; known formats: a, audio_text_folder, audiofolder, b, chat"):
        registry.get("nope")
