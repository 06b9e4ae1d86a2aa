"""Chat layouts people already have (TRL, ShareGPT, Alpaca) read into the same chat records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from framework.data import DataConfig, load_bundle
from framework.data.errors import DataError
from framework.data.readers import detect_format


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ALPACA = [{"instruction": f"Convert {n} km to m.", "input": "", "output": f"{n * 1000} m"} for n in range(1, 41)]
SHAREGPT = [{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": f"{n} km in m?"},
                               {"from": "gpt", "value": f"{n * 1000} m"}]} for n in range(1, 6)]
TRL_COMPLETION = [{"prompt": f"{n} kg in g?", "completion": f"{n * 1000} g"} for n in range(1, 6)]
TRL_CONVERSATIONAL = [{"prompt": [{"role": "user", "content": f"{n} m in cm?"}],
                       "completion": [{"role": "assistant", "content": f"{n * 100} cm"}]} for n in range(1, 6)]


@pytest.mark.parametrize("rows, layout", [(ALPACA, "alpaca"), (SHAREGPT, "sharegpt"),
                                          (TRL_COMPLETION, "prompt_completion"),
                                          (TRL_CONVERSATIONAL, "prompt_completion")])
def test_each_chat_layout_is_read_as_messages(tmp_path, caplog, rows, layout) -> None:
    path = _jsonl(tmp_path / "train.jsonl", rows)
    assert detect_format(path) == "chat"
    with caplog.at_level(logging.INFO):
        bundle = load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl"), format="chat", label_type="text")
    records = bundle.records("train")
    assert len(records) == len(rows)
    messages = records[0].fields["messages"]
    assert messages[-1]["role"] == "assistant" and messages[-2]["role"] == "user"
    assert records[0].label == messages[-1]["content"]
    assert f"read as {layout}" in caplog.text  # says which layout it chose


def test_alpaca_input_joins_the_instruction_and_sharegpt_keeps_the_system_turn(tmp_path) -> None:
    _jsonl(tmp_path / "a.jsonl", [{"instruction": "Translate.", "input": "chat", "output": "cat"}])
    (record,) = load_bundle(DataConfig(root=str(tmp_path), train="a.jsonl"), format="chat").records()
    assert record.fields["messages"] == [{"role": "user", "content": "Translate.\n\nchat"},
                                         {"role": "assistant", "content": "cat"}]
    assert record.fields["instruction"] == "Translate."  # the line's own keys stay
    _jsonl(tmp_path / "s.jsonl", SHAREGPT[:1])
    (record,) = load_bundle(DataConfig(root=str(tmp_path), train="s.jsonl"), format="chat").records()
    assert [m["role"] for m in record.fields["messages"]] == ["system", "user", "assistant"]


def test_keys_that_fit_no_layout_give_one_line_naming_them_and_the_layouts(tmp_path) -> None:
    _jsonl(tmp_path / "train.jsonl", [{"question": f"q{i}", "answer": f"a{i}"} for i in range(40)])
    with pytest.raises(DataError) as err:
        load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl"), format="chat")
    text = str(err.value)
    assert len(text.splitlines()) == 1  # not 40 identical lines
    assert "['answer', 'question']" in text and "and 39 more lines" in text
    assert "alpaca" in text and "sharegpt" in text and "data.columns" in text


def test_distinct_problems_are_listed_once_each(tmp_path) -> None:
    rows = [{"question": "q", "answer": "a"}] * 3 + [{"conversations": [{"from": "alien", "value": "x"}]}] * 2
    _jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl"), format="chat")
    lines = str(err.value).splitlines()
    assert "5 bad lines, 2 distinct problems" in lines[0] and len(lines) == 3
    assert "'alien'" in lines[2] and ":4 (and 1 more lines: 4, 5)" in lines[2]


def test_column_mapping_renames_keys_into_a_layout(tmp_path) -> None:
    _jsonl(tmp_path / "train.jsonl", [{"question": "2 km in m?", "answer": "2000 m"}])
    cfg = DataConfig(root=str(tmp_path), train="train.jsonl", columns={"instruction": "question", "output": "answer", "text": None})
    (record,) = load_bundle(cfg, format="chat").records()
    assert record.label == "2000 m"


def test_trl_preference_forms_explicit_and_implicit_prompt(tmp_path) -> None:
    convo = [{"role": "user", "content": "3 km in m?"}]
    rows = [{"prompt": convo, "chosen": [{"role": "assistant", "content": "3000 m"}],
             "rejected": [{"role": "assistant", "content": "30 m"}]},
            {"chosen": convo + [{"role": "assistant", "content": "3000 m"}],
             "rejected": convo + [{"role": "assistant", "content": "300 m"}]}]
    path = _jsonl(tmp_path / "p.jsonl", rows)
    assert detect_format(path) == "preference"
    records = load_bundle(DataConfig(root=str(tmp_path), train="p.jsonl"), format="preference").records()
    assert records[1].fields["prompt"] == convo  # the shared turns became the prompt
    assert records[1].fields["chosen"] == [{"role": "assistant", "content": "3000 m"}]
    assert records[0].text == records[1].text == "user: 3 km in m?"


def test_text_sft_trains_two_steps_on_alpaca_jsonl(tmp_path) -> None:
    from framework.testing import run_framework

    _jsonl(tmp_path / "data" / "train.jsonl", ALPACA[:16])
    _jsonl(tmp_path / "data" / "val.jsonl", ALPACA[30:34])
    (tmp_path / "data" / "datacard.yaml").write_text("sources: [alpaca-style unit chats written by the test]\n")
    result = run_framework(["+modality=text", f"data.root={tmp_path / 'data'}", "data.test=null", "data.slices=[]",
                            "trainer.max_steps=2", "trainer.batch_size=4", "trainer.progress=false",
                            "stages=[audit,train]"], tmp_path / "run")
    assert result.status == "completed"
    assert (tmp_path / "run" / "audit" / "datacard.md").is_file()
