"""Text data: chat SFT conversations and preference pairs, in every layout of
:mod:`framework.data.readers.chat_layouts`."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from framework.data.errors import DataError
from framework.data.readers._common import Collector, ReadOptions, get_field, map_columns
from framework.data.readers.chat_layouts import (
    LAYOUTS,
    GroupedLineErrors,
    detect_layout,
    implicit_prompt,
    layout_kind,
    no_layout_error,
    to_messages,
)
from framework.data.records import Quarantined, Record

log = logging.getLogger(__name__)

CHAT_ROLES = frozenset({"system", "user", "assistant", "tool"})


def validate_messages(messages: Any, where: str, *, require_assistant: bool = True) -> list[dict[str, str]]:
    """Check a chat ``messages`` list: objects with a known ``role`` and a string ``content``.

    Raises:
        DataError: naming the first bad message, or (when ``require_assistant``) a conversation
            without an assistant turn.
    """
    if not isinstance(messages, list) or not messages:
        raise DataError(where, "'messages' must be a non-empty list", "Write [{\"role\": ..., \"content\": ...}, ...].")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise DataError(where, f"messages[{i}] must be an object, got {type(msg).__name__}", "Fix the message.")
        role, content = msg.get("role"), msg.get("content")
        if role not in CHAT_ROLES:
            raise DataError(where, f"messages[{i}] has role {role!r}; expected one of {sorted(CHAT_ROLES)}",
                            "Rename the role (e.g. 'human' -> 'user', 'gpt' -> 'assistant').")
        if not isinstance(content, str):
            raise DataError(where, f"messages[{i}].content must be a string, got {type(content).__name__}",
                            "Flatten multi-part content to text.")
    if require_assistant and not any(m["role"] == "assistant" for m in messages):
        raise DataError(where, "conversation has no assistant message to learn from", "Add the assistant reply or drop the line.")
    return messages


def render_chat(messages: list[dict[str, str]]) -> str:
    """A plain rendering (``role: content`` per line), used for hashing, dedup and reports."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def read_chat(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read chat SFT data in any chat layout of :data:`~framework.data.readers.chat_layouts.LAYOUTS`:
    TRL ``messages`` or ``prompt``/``completion``, ShareGPT ``conversations``, Alpaca
    ``instruction``/``input``/``output``, recognised per line; a Hugging Face dataset (a
    ``save_to_disk`` folder, parquet or arrow files) under ``data.format=auto`` is read by the ``hf`` format.

    ``Record.fields["messages"]`` is the normalised conversation (the line's own keys stay beside
    it); ``Record.text`` its rendering; ``Record.label`` the last assistant reply (the answer a
    fine-tune learns to give), ``None`` for a conversation without one. Lines whose keys fit no
    layout are reported once per distinct problem, naming the keys found and the layouts accepted.
    Rows of a Hugging Face dataset in these layouts are read by :mod:`framework.data.readers.hf`.
    """
    return _read_layouts(path, opts, add_chat)


def add_chat(col: Collector, line: int | str, obj: dict[str, Any], *, where: str | None = None) -> str:
    """Add one chat-kind line (any chat layout) to ``col``; returns the layout it had.

    Raises:
        DataError: when the keys fit no chat layout (naming them), or the conversation is malformed.
    """
    where = where or col.where(line)
    layout = detect_layout(obj)
    if layout_kind(layout) != "chat":
        raise no_layout_error(obj, where, "chat")
    messages = validate_messages(to_messages(obj, layout, where), where)
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    col.add(line, {**obj, "messages": messages}, text=render_chat(messages),
            label=replies[-1] if replies else None, record_id=obj.get("id"), where=where)
    return layout


def _read_layouts(path: Path, opts: ReadOptions,
                  add: Callable[[Collector, int, dict[str, Any]], str]) -> tuple[list[Record], list[Quarantined]]:
    """Each JSONL line of ``path`` (its columns mapped by ``data.columns``) through ``add``; the
    layouts seen are logged, and a problem shared by many lines is reported once."""
    col = Collector(path, opts)
    col.errors = GroupedLineErrors(col.path)
    layouts: Counter[str] = Counter()
    for line, obj in col.jsonl():
        with col.line(line):
            layouts[add(col, line, map_columns(obj, opts.columns))] += 1
    _log_layouts(path, layouts)
    return col.result()


def _log_layouts(path: Path, layouts: Counter[str]) -> None:
    if layouts:
        found = ", ".join(f"{name} ({LAYOUTS[name][1]}) on {n} lines" for name, n in layouts.most_common())
        log.info("%s: read as %s", path, found)


def _response(obj: dict[str, Any], key: str, where: str) -> str:
    value = get_field(obj, key, (str, list), where)
    return render_chat(validate_messages(value, where)) if isinstance(value, list) else value


def read_preference(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read preference JSONL: ``prompt``, ``chosen``, ``rejected`` (strings or message lists), or
    TRL's implicit-prompt form (``chosen``/``rejected`` full conversations sharing their prompt
    turns, which become ``fields["prompt"]``).

    Optional: ``reason`` (why chosen wins), ``gold``/``trap`` (``true`` marks a gold item whose
    right answer is ``"chosen"``, e.g. a sycophancy trap where ``rejected`` flatters the user), or
    ``gold_label`` (an explicit answer). ``Record.text`` is the prompt; ``label`` stays ``None``.
    """
    return _read_layouts(path, opts, add_preference)


def add_preference(col: Collector, line: int | str, obj: dict[str, Any], *, where: str | None = None) -> str:
    """Add one preference pair (explicit or implicit prompt) to ``col``; returns its layout.

    Raises:
        DataError: when the keys fit no preference layout (naming them), or a field is malformed.
    """
    where = where or col.where(line)
    layout = detect_layout(obj)
    if layout is None and {"prompt", "chosen", "rejected"} & set(obj):
        layout = "preference"  # a pair with a field missing: get_field names it below
    if layout_kind(layout) != "preference":
        raise no_layout_error(obj, where, "preference")
    if layout == "implicit_preference":
        prompt_turns, chosen, rejected = implicit_prompt(obj, where)
        obj = {**obj, "prompt": prompt_turns, "chosen": chosen, "rejected": rejected}
    prompt = get_field(obj, "prompt", (str, list), where)
    _response(obj, "chosen", where)
    _response(obj, "rejected", where)
    get_field(obj, "reason", str, where, required=False)
    for marker in ("gold", "trap"):
        get_field(obj, marker, bool, where, required=False)
    if isinstance(prompt, list):  # a prompt is the conversation so far: no assistant turn needed
        prompt = render_chat(validate_messages(prompt, where, require_assistant=False))
    col.add(line, obj, text=prompt, record_id=obj.get("id"), where=where)
    return layout
