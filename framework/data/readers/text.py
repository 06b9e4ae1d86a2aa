"""Text data: chat-format SFT conversations and preference pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.data.errors import DataError
from framework.data.readers._common import Collector, ReadOptions, get_field
from framework.data.records import Quarantined, Record

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
    """Read chat SFT JSONL: ``{"messages": [{"role": "user", "content": ...}, ...]}`` per line.

    ``Record.text`` is the rendered conversation; ``Record.fields["messages"]`` the raw list;
    ``Record.label`` the last assistant reply (the answer a fine-tune learns to give), ``None``
    for a conversation without one.
    """
    col = Collector(path, opts)
    for line, obj in col.jsonl():
        with col.line(line):
            messages = validate_messages(obj.get("messages"), col.where(line))
            replies = [m["content"] for m in messages if m["role"] == "assistant"]
            col.add(line, obj, text=render_chat(messages), label=replies[-1] if replies else None,
                    record_id=obj.get("id"))
    return col.result()


def _response(obj: dict[str, Any], key: str, where: str) -> str:
    value = get_field(obj, key, (str, list), where)
    return render_chat(validate_messages(value, where)) if isinstance(value, list) else value


def read_preference(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read preference JSONL: ``prompt``, ``chosen``, ``rejected`` (strings or message lists).

    Optional: ``reason`` (why chosen wins), ``gold``/``trap`` (``true`` marks a gold item whose
    right answer is ``"chosen"``, e.g. a sycophancy trap where ``rejected`` flatters the user), or
    ``gold_label`` (an explicit answer). ``Record.text`` is the prompt; ``label`` stays ``None``.
    """
    col = Collector(path, opts)
    for line, obj in col.jsonl():
        with col.line(line):
            _add_preference(col, line, obj)
    return col.result()


def _add_preference(col: Collector, line: int, obj: dict[str, Any]) -> None:
    where = col.where(line)
    prompt = get_field(obj, "prompt", (str, list), where)
    _response(obj, "chosen", where)
    _response(obj, "rejected", where)
    get_field(obj, "reason", str, where, required=False)
    for marker in ("gold", "trap"):
        get_field(obj, marker, bool, where, required=False)
    if isinstance(prompt, list):  # a prompt is the conversation so far: no assistant turn needed
        prompt = render_chat(validate_messages(prompt, where, require_assistant=False))
    col.add(line, obj, text=prompt, record_id=obj.get("id"))
