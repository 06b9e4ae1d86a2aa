"""The chat layouts people already have, recognised per line and normalised to ``messages``.

Every layout becomes the same record: ``Record.fields["messages"]`` holds the conversation as
``[{"role", "content"}]`` (the original keys stay in ``fields`` beside it), so the text plugin,
the audit and the reports never see the difference.

======================== ======================================================== ==========
layout                   keys of a line                                           kind
======================== ======================================================== ==========
``messages``             TRL conversational: ``messages`` list of role/content    chat
``sharegpt``             ``conversations`` list of ``from``/``value``              chat
``alpaca``               ``instruction``, optional ``input``, ``output``           chat
``prompt_completion``    TRL ``prompt`` + ``completion`` (strings or message lists) chat
``preference``           TRL ``prompt`` + ``chosen`` + ``rejected``                preference
``implicit_preference``  TRL ``chosen`` + ``rejected`` message lists (shared prompt) preference
======================== ======================================================== ==========
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

from framework.data.errors import DataError, DataErrors
from framework.data.readers._common import LineErrors

#: Layout name -> (kind, what its lines hold), in the order they are tried.
LAYOUTS: dict[str, tuple[str, str]] = {
    "messages": ("chat", "'messages': [{role, content}, ...] (TRL conversational)"),
    "sharegpt": ("chat", "'conversations': [{from, value}, ...] (ShareGPT)"),
    "alpaca": ("chat", "'instruction', optional 'input', 'output' (Alpaca)"),
    "prompt_completion": ("chat", "'prompt' + 'completion' (TRL prompt-completion)"),
    "preference": ("preference", "'prompt' + 'chosen' + 'rejected' (TRL preference)"),
    "implicit_preference": ("preference", "'chosen' + 'rejected' message lists (TRL implicit prompt)"),
}

#: ShareGPT speaker names -> chat roles.
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
                  "bing": "assistant", "bard": "assistant", "model": "assistant", "system": "system", "tool": "tool",
                  "function_call": "assistant", "observation": "tool", "function": "tool"}


def accepted_layouts(kind: str | None = None) -> str:
    """The layouts of ``kind`` (``chat``, ``preference``, or all), as one line for messages."""
    return "; ".join(f"{name}: {what}" for name, (k, what) in LAYOUTS.items() if kind in (None, k))


def detect_layout(obj: Mapping[str, Any]) -> str | None:
    """The layout name of one line (see :data:`LAYOUTS`), ``None`` when its keys fit none.

    Called per line by the chat and preference readers and by ``format=auto`` on a file's first line.
    """
    keys = set(obj)
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if {"chosen", "rejected"} <= keys:
        return "preference" if "prompt" in keys else "implicit_preference"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    return None


def layout_kind(layout: str | None) -> str | None:
    """``chat`` or ``preference`` for a layout name; ``None`` for ``None``."""
    return LAYOUTS[layout][0] if layout else None


def no_layout_error(obj: Mapping[str, Any], where: str, kind: str) -> DataError:
    """The error for a line whose keys fit no ``kind`` layout: names the keys found and the layouts accepted."""
    example = "data.columns.instruction=question data.columns.output=answer" if kind == "chat" else \
        "data.columns.chosen=good data.columns.rejected=bad"
    fix = f"Accepted layouts: {accepted_layouts(kind)}. Rename the keys, or map them with data.columns (e.g. {example})"
    return DataError(where, f"no {kind} layout fits the keys found {sorted(obj)}", fix)


def _as_messages(value: Any, role: str) -> list[dict[str, Any]]:
    return [dict(m) for m in value] if isinstance(value, list) else [{"role": role, "content": value}]


def to_messages(obj: Mapping[str, Any], layout: str, where: str) -> list[dict[str, Any]]:
    """The conversation of a chat-kind line as ``[{"role", "content"}]`` (not yet validated).

    Raises:
        DataError: naming the key when a layout's field has the wrong shape.
    """
    if layout == "messages":
        return obj["messages"]
    if layout == "sharegpt":
        turns = obj["conversations"]
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise DataError(where, "'conversations' must be a list of {from, value} objects", "Fix the conversation.")
        out = []
        for i, turn in enumerate(turns):
            speaker = str(turn.get("from", turn.get("role", "")))
            role = SHAREGPT_ROLES.get(speaker.lower())
            if role is None:
                raise DataError(where, f"conversations[{i}] is from {speaker!r}; expected one of {sorted(SHAREGPT_ROLES)}",
                                "Rename the speaker (human/gpt/system).")
            out.append({"role": role, "content": turn.get("value", turn.get("content"))})
        system = obj.get("system")
        return ([{"role": "system", "content": system}] if isinstance(system, str) and system else []) + out
    if layout == "alpaca":
        instruction, extra = obj["instruction"], obj.get("input")
        if not isinstance(instruction, str) or (extra is not None and not isinstance(extra, str)):
            raise DataError(where, "'instruction' and 'input' must be strings", "Fix the line.")
        prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        system = obj.get("system")
        return (([{"role": "system", "content": system}] if isinstance(system, str) and system else [])
                + [{"role": "user", "content": prompt}, {"role": "assistant", "content": obj["output"]}])
    if layout == "prompt_completion":
        return _as_messages(obj["prompt"], "user") + _as_messages(obj["completion"], "assistant")
    raise ValueError(f"{layout!r} is not a chat layout")


def implicit_prompt(obj: Mapping[str, Any], where: str) -> tuple[list[dict[str, Any]], Any, Any]:
    """Split TRL's implicit-prompt preference (``chosen``/``rejected`` full conversations) into
    ``(prompt messages, chosen reply, rejected reply)``: the prompt is their shared prefix.

    Raises:
        DataError: when the two are not message lists that share a prefix and end differently.
    """
    chosen, rejected = obj["chosen"], obj["rejected"]
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise DataError(where, "'chosen' and 'rejected' without 'prompt' must be message lists",
                        "Add a 'prompt' field, or write both as full conversations.")
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise DataError(where, "'chosen' and 'rejected' share no prompt turns", "Add a 'prompt' field.")
    return list(chosen[:shared]), list(chosen[shared:]), list(rejected[shared:])


class GroupedLineErrors(LineErrors):
    """Bad lines grouped by problem: a file whose 40 lines share one mistake reports it once,
    with the lines it affects, instead of 40 identical lines.

    Used by the chat and preference readers in place of a :class:`Collector`'s own errors.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, limit=10**9)

    def check(self) -> None:
        """Raise one :class:`DataError` per distinct problem (``file:first line (and N more lines)``)."""
        if not self.total:
            return
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for error in self.errors:
            line = error.where.rsplit(":", 1)[-1] if error.where.startswith(str(self.path)) else error.where
            groups[(error.problem, error.fix)].append(line)
        merged = [DataError(_lines_where(self.path, lines), problem, fix) for (problem, fix), lines in groups.items()]
        if len(merged) == 1:
            raise merged[0]
        exc = DataErrors(str(self.path), merged, len(merged))
        exc.args = ("\n".join([f"{self.path}: {self.total} bad lines, {len(merged)} distinct problems; fix each and rerun:"]
                              + [f"  {e}" for e in merged]),)
        raise exc


def _lines_where(path: Path, lines: list[str]) -> str:
    if len(lines) == 1:
        return f"{path}:{lines[0]}"
    shown = ", ".join(lines[:5]) + (", ..." if len(lines) > 5 else "")
    return f"{path}:{lines[0]} (and {len(lines) - 1} more lines: {shown})"


__all__ = ["LAYOUTS", "GroupedLineErrors", "accepted_layouts", "detect_layout", "implicit_prompt", "layout_kind",
           "no_layout_error", "to_messages"]
