"""The text audit: the loss-mask gate stops a run, and the turn, role, pair and length checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.data.audit import GateFailure, enforce, run_audit
from framework.data.checks import CheckContext
from framework.testing import run_framework
from plugins.text import checks
from plugins.text.chat import FALLBACK_TEMPLATE
from plugins.text.modality import TextModality
from text_fixtures import chat_line, pair_line, write_jsonl

NO_MARKERS = FALLBACK_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")


def _check(check, data):
    return check.run(data, CheckContext("text", {}, (), Path(".")))


def test_mask_audit_stops_a_run_whose_template_masks_nothing(chat_root: Path, tmp_path: Path) -> None:
    template = tmp_path / "plain.jinja"
    template.write_text(NO_MARKERS)
    args = ["+modality=text", f"data.root={chat_root}", "data.test=null", f"modality.chat_template={template}",
            "modality.sft.mask_source=generation", "modality.probes.file=null", "stages=[audit,train]"]
    refused = run_framework(args, tmp_path / "run")
    assert refused.status == "refused" and "loss_mask" in refused.message
    assert '"status": "refused"' in (tmp_path / "run" / "summary.json").read_text()
    assert not (tmp_path / "run" / "checkpoints").exists()
    # The override the message names lets the audit pass (reported, not enforced).
    result = run_framework(args[:-1] + ["stages=[audit]", "data.gates.plugins.loss_mask.gate=false"],
                           tmp_path / "run2")
    assert result.status == "completed"
    card = (tmp_path / "run2" / "audit" / "datacard.md").read_text()
    assert "loss_mask" in card and "no trained token" in card


def test_training_on_the_prompt_is_flagged(chat_root: Path, make_ctx) -> None:
    ctx = make_ctx(chat_root, modality={"sft": {"assistant_only": False}})
    data = TextModality().load_data(ctx)
    result = _check(checks.LossMaskCheck(), data)
    assert not result.passed and result.gate and result.measured["all_ones"] == len(data.records())


def test_turn_role_and_pair_checks_name_the_bad_records(tmp_path: Path, make_ctx) -> None:
    good = [chat_line(i, n) for i, n in enumerate(range(10, 20))]
    empty = chat_line(50, 5)
    empty["messages"][1]["content"] = " "
    twice = chat_line(51, 6)
    twice["messages"].insert(1, {"role": "user", "content": "again"})
    late_system = chat_line(52, 7)
    late_system["messages"].append({"role": "system", "content": "late"})
    late_system["messages"].append({"role": "assistant", "content": "7000 m"})
    dup = chat_line(53, 10)
    root = tmp_path / "bad"
    write_jsonl(root / "train.jsonl", good + [empty, twice, late_system, dup])
    write_jsonl(root / "val.jsonl", [chat_line(99, 77)])
    data = TextModality().load_data(make_ctx(root, modality={"max_length": 20}))
    empty_res = _check(checks.EmptyTurnCheck(), data)
    assert not empty_res.passed and empty_res.findings[0].items == ("c50",)
    roles = _check(checks.RoleOrderCheck(), data)
    assert {f.kind: f.items for f in roles.findings} == {"repeated_user": ("c51",), "system_not_first": ("c52",)}
    dups = _check(checks.DuplicatePromptCheck(), data)
    assert dups.findings[0].items == ("c53",) and not dups.gate
    trunc = _check(checks.TruncationCheck(), data)
    assert trunc.measured["truncated"] >= 1 and trunc.measured["longest"] > 20 and not trunc.gate


def test_preference_checks(tmp_path: Path, make_ctx) -> None:
    pairs = [pair_line(i, n, i % 2 == 0) for i, n in enumerate(range(10, 20))]
    pairs[0]["rejected"] = pairs[0]["chosen"].upper()
    del pairs[1]["reason"]
    root = tmp_path / "prefs"
    write_jsonl(root / "train.jsonl", pairs)
    write_jsonl(root / "val.jsonl", [pair_line(99, 77, False)])
    data = TextModality().load_data(make_ctx(root, modality={"method": "dpo"}))
    same = _check(checks.ChosenRejectedCheck(), data)
    assert not same.passed and same.gate and same.findings[0].items == ("p0",)
    reasons = _check(checks.PreferenceReasonCheck(), data)
    assert not reasons.passed and not reasons.gate and reasons.findings[0].items == ("p1",)
    required = checks.PreferenceReasonCheck().run(data, CheckContext("text", {"require": True}, (), Path(".")))
    assert required.gate
    # The answer side of a pair is all answer: the mask check does not call it prompt training.
    assert _check(checks.LossMaskCheck(), data).passed
    audit = run_audit(data, make_ctx(root, modality={"method": "dpo"}).data, modality="text",
                      extra_checks=checks.quality_checks(), out_dir=tmp_path / "audit", label_type="text")
    with pytest.raises(GateFailure, match="chosen_equals_rejected"):
        enforce(audit, enforce=True)


def test_dpo_method_on_chat_data_names_the_fix(chat_root: Path, make_ctx) -> None:
    from framework.errors import FrameworkError

    ctx = make_ctx(chat_root, modality={"method": "dpo"})
    ctx.data.format = "chat"
    with pytest.raises(FrameworkError, match="text_dpo"):
        TextModality().load_data(ctx)


def test_drift_features_describe_the_prompt_the_model_answers() -> None:
    from framework.data.records import Record
    from plugins.text.modality import TextModality, dominant_script

    chat = Record(id="c", split="new", source="m", media=None, label=None, fields={"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How many grams in 2 kg?"},
        {"role": "assistant", "content": "2000 g"},
    ]})
    unanswered = Record(id="u", split="new", source="m", media=None, label=None,
                        fields={"messages": [{"role": "user", "content": "कितने ग्राम हैं?"}]})
    pair = Record(id="p", split="new", source="m", media=None, label=None,
                  fields={"prompt": "Convert 3 m to cm", "chosen": "300 cm", "rejected": "30 cm"})
    out = TextModality().drift_features(None, [chat, unanswered, pair])  # type: ignore[arg-type]
    assert out["turns"] == [2, 1, 1]  # the answer itself is not part of the prompt
    assert out["prompt_chars"] == [len("Be brief.\nHow many grams in 2 kg?"), len("कितने ग्राम हैं?"),
                                   len("Convert 3 m to cm")]
    assert out["prompt_words"] == [8, 3, 5]
    assert out["script"] == ["LATIN", "DEVANAGARI", "LATIN"]
    assert dominant_script("42 + 7") == "none"
