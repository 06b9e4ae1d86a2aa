"""Text audit checks, contributed through ``framework_quality_checks`` for text runs.

Settings live in ``data.gates.plugins.<check name>``. Gates by default (a failure stops the run
before training): ``loss_mask``, ``empty_turns``, ``role_order``, ``chosen_equals_rejected``;
warnings by default: ``truncation``, ``duplicate_prompts``, ``preference_reasons`` (a gate when
``require: true``). Exact and near-duplicate examples, including pairs repeated across splits,
are the core cleanliness gate's findings (text SimHash over the prompt and both answers).

The loss-mask audit reads the tokenization ``load_data`` did (``extras["text_encoding"]``): an
example whose mask is all ones trains on its prompt, one whose mask is all zeros has nothing to
learn (an empty answer, a template without assistant markers, or truncation that cut the answer).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping

from framework.data.checks import CheckContext, CheckResult, Finding, check_settings
from framework.data.fingerprints import normalise_text
from framework.data.records import DataBundle, Record

ENCODING_KEY = "text_encoding"  # DataBundle.extras key filled by TextModality.load_data


def _encoded(data: DataBundle) -> Iterable[tuple[str, str, Any]]:
    """``(record id, side, Encoded)`` of every tokenized example (side ``""`` for SFT)."""
    enc = data.extras.get(ENCODING_KEY) or {}
    for split in enc.get("splits", {}).values():
        for rid, value in split.items():
            if isinstance(value, tuple):
                yield rid, "chosen", value[0]
                yield rid, "rejected", value[1]
            else:
                yield rid, "", value


def _messages(record: Record) -> list[dict[str, Any]] | None:
    msgs = record.fields.get("messages")
    if msgs is None and isinstance(record.fields.get("prompt"), list):
        msgs = record.fields["prompt"]
    return msgs


def _ids(items: Iterable[str], limit: int = 20) -> tuple[str, ...]:
    return tuple(sorted(set(items)))[:limit]


def _result(name: str, bad: Mapping[str, list[str]], total: int, settings: Mapping[str, Any], what: str,
            explain: Mapping[str, str], override: str) -> CheckResult:
    flagged = {rid for ids in bad.values() for rid in ids}
    fraction = len(flagged) / total if total else 0.0
    passed = fraction <= float(settings["max_fraction"])
    findings = [Finding(kind, _ids(ids), f"{len(set(ids))} {explain[kind]}") for kind, ids in bad.items() if ids]
    summary = (f"{len(flagged)} of {total} {what} flagged ({fraction:.1%}, allowed {float(settings['max_fraction']):.1%})"
               + (": " + "; ".join(f"{len(set(v))} {explain[k]}" for k, v in bad.items() if v) if flagged else ""))
    return CheckResult(name, passed, bool(settings["gate"]), summary,
                       measured={"flagged": len(flagged), "total": total, "fraction": fraction,
                                 **{k: len(set(v)) for k, v in bad.items()}},
                       findings=findings, override=override)


@dataclass
class LossMaskCheck:
    """Examples whose loss mask is all ones (the prompt is trained on) or all zeros (nothing to
    learn). Settings: ``max_fraction`` (0), ``gate`` (true)."""

    name: str = "loss_mask"
    defaults: ClassVar[dict[str, Any]] = {"max_fraction": 0.0, "gate": True}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        bad: dict[str, list[str]] = {"all_ones": [], "all_zeros": []}
        total = 0
        for rid, side, enc in _encoded(data):
            total += 1
            label = f"{rid}:{side}" if side else rid
            if enc.mask and all(enc.mask) and not side:  # a pair's answer side is all answer by design
                bad["all_ones"].append(label)
            elif not any(enc.mask):
                bad["all_zeros"].append(label)
        explain = {"all_ones": "example(s) train on every token, prompt included (check modality.sft.assistant_only "
                               "and the template's assistant markers)",
                   "all_zeros": "example(s) have no trained token (empty answer, a template without assistant "
                                "markers under mask_source=generation, or truncation cut the answer)"}
        return _result(self.name, bad, total, s, "tokenized examples", explain,
                       f"fix the template or data; data.gates.plugins.{self.name}.gate=false trains anyway")


@dataclass
class TruncationCheck:
    """Examples longer than ``modality.max_length`` (truncated, never dropped). Settings:
    ``max_fraction`` (0.01), ``gate`` (false)."""

    name: str = "truncation"
    defaults: ClassVar[dict[str, Any]] = {"max_fraction": 0.01, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        enc = data.extras.get(ENCODING_KEY) or {}
        bad: dict[str, list[str]] = {"truncated": []}
        total, longest = 0, 0
        for rid, side, e in _encoded(data):
            total += 1
            longest = max(longest, e.length)
            if e.truncated:
                bad["truncated"].append(f"{rid}:{side}" if side else rid)
        explain = {"truncated": f"example(s) longer than max_length={enc.get('max_length')} tokens were truncated "
                                f"(longest {longest})"}
        result = _result(self.name, bad, total, s, "tokenized examples", explain,
                         "raise modality.max_length or shorten the examples")
        result.measured["longest"] = longest
        return result


@dataclass
class EmptyTurnCheck:
    """Messages whose content is empty or whitespace. Settings: ``max_fraction`` (0), ``gate``."""

    name: str = "empty_turns"
    defaults: ClassVar[dict[str, Any]] = {"max_fraction": 0.0, "gate": True}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        bad: dict[str, list[str]] = defaultdict(list)
        records = data.records()
        for r in records:
            for m in _messages(r) or []:
                if not str(m.get("content", "")).strip():
                    bad[f"empty_{m.get('role')}"].append(r.id)
            for key in ("prompt", "chosen", "rejected"):
                if isinstance(r.fields.get(key), str) and not r.fields[key].strip():
                    bad[f"empty_{key}"].append(r.id)
        explain = {k: f"record(s) with an empty {k[6:]} turn" for k in bad}
        return _result(self.name, dict(bad), len(records), s, "records", explain,
                       f"fill or remove the turns; data.gates.plugins.{self.name}.gate=false")


def role_problem(messages: list[dict[str, Any]], needs_assistant_last: bool) -> str | None:
    """What is wrong with the order of roles, or ``None``: a system turn only first, then a user
    turn, user and assistant alternating (tool turns after an assistant turn), ending with the
    assistant when ``needs_assistant_last``."""
    roles = [m.get("role") for m in messages]
    if "system" in roles[1:]:
        return "system_not_first"
    body = [r for r in roles if r != "system"]
    if not body or body[0] != "user":
        return "first_not_user"
    prev = None
    for role in body:
        if role == prev and role in ("user", "assistant"):
            return f"repeated_{role}"
        if role == "tool" and prev not in ("assistant", "tool"):
            return "tool_without_call"
        prev = role
    if needs_assistant_last and body[-1] != "assistant":
        return "last_not_assistant"
    return None


@dataclass
class RoleOrderCheck:
    """Conversations whose roles are out of order (see :func:`role_problem`). Settings:
    ``max_fraction`` (0), ``gate`` (true)."""

    name: str = "role_order"
    defaults: ClassVar[dict[str, Any]] = {"max_fraction": 0.0, "gate": True}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        bad: dict[str, list[str]] = defaultdict(list)
        records = data.records()
        for r in records:
            msgs = _messages(r)
            if msgs:
                problem = role_problem(msgs, needs_assistant_last="messages" in r.fields)
                if problem:
                    bad[problem].append(r.id)
        explain = {k: f"conversation(s): {k.replace('_', ' ')}" for k in bad}
        return _result(self.name, dict(bad), len(records), s, "records", explain,
                       f"fix the role order; data.gates.plugins.{self.name}.gate=false")


def prompt_key(record: Record) -> str:
    """A record's prompt, normalised: a chat up to its last assistant turn, or a pair's prompt."""
    msgs = record.fields.get("messages")
    if msgs:
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=len(msgs))
        text = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in msgs[:last])
    else:
        text = str(record.fields.get("prompt", record.text or ""))
    return normalise_text(text)


@dataclass
class DuplicatePromptCheck:
    """Training prompts that appear more than once (with different answers they teach
    contradictions; with the same one, they are over-weighted). Settings: ``max_fraction``
    (0.0), ``gate`` (false)."""

    name: str = "duplicate_prompts"
    defaults: ClassVar[dict[str, Any]] = {"max_fraction": 0.0, "gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        groups: dict[str, list[str]] = defaultdict(list)
        train = data.records("train")
        for r in train:
            groups[prompt_key(r)].append(r.id)
        bad = {"duplicate_prompt": [rid for ids in groups.values() if len(ids) > 1 for rid in ids[1:]]}
        explain = {"duplicate_prompt": "training record(s) repeat an earlier prompt"}
        return _result(self.name, bad, len(train), s, "training records", explain,
                       f"data.gates.plugins.{self.name}.max_fraction=<fraction>")


@dataclass
class ChosenRejectedCheck:
    """Preference pairs whose chosen and rejected answers are the same (after whitespace and case
    normalisation): no preference to learn. Settings: ``max_fraction`` (0), ``gate`` (true)."""

    name: str = "chosen_equals_rejected"
    defaults: ClassVar[dict[str, Any]] = {"max_fraction": 0.0, "gate": True}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        pairs = [r for r in data.records() if "chosen" in r.fields]
        bad = {"same_answer": [r.id for r in pairs
                               if normalise_text(str(r.fields["chosen"])) == normalise_text(str(r.fields["rejected"]))]}
        explain = {"same_answer": "pair(s) have chosen == rejected"}
        return _result(self.name, bad, len(pairs), s, "preference pairs", explain,
                       "fix or remove the pairs")


@dataclass
class PreferenceReasonCheck:
    """Preference pairs without a ``reason`` (why chosen wins). Settings: ``require`` (false: a
    warning; true: a gate), ``max_fraction`` (0)."""

    name: str = "preference_reasons"
    defaults: ClassVar[dict[str, Any]] = {"require": False, "max_fraction": 0.0}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        pairs = [r for r in data.records() if "chosen" in r.fields]
        bad = {"no_reason": [r.id for r in pairs if not str(r.fields.get("reason") or "").strip()]}
        explain = {"no_reason": "pair(s) have no reason"}
        return _result(self.name, bad, len(pairs), {**s, "gate": s["require"]}, "preference pairs", explain,
                       f"add a reason to each pair, or data.gates.plugins.{self.name}.require=false")


def quality_checks() -> list[Any]:
    """The text plugin's checks, in report order."""
    return [LossMaskCheck(), TruncationCheck(), EmptyTurnCheck(), RoleOrderCheck(), DuplicatePromptCheck(),
            ChosenRejectedCheck(), PreferenceReasonCheck()]
