"""Rendering conversations with a chat template, and the assistant-only loss mask.

The tokenizer's own chat template renders every conversation (``tokenizer.chat_template``); a
tokenizer without one gets :data:`FALLBACK_TEMPLATE`. The loss mask comes from one of two places:

* ``generation``: the template's ``{% generation %}`` markers, through
  ``apply_chat_template(return_assistant_tokens_mask=True)`` (exact, and what the bundled
  tokenizer and the fallback template use);
* ``prefix``: for templates without markers, each assistant turn's span is what rendering the
  conversation up to that turn adds to rendering it up to the turn before (with the generation
  prompt); the tokens inside those character spans are trained.

Over-length examples are truncated to ``max_length`` tokens and marked ``truncated``, so the
audit counts them; nothing is dropped here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from framework.errors import FrameworkError

# Used when the tokenizer has no chat template: role markers on their own line, each turn ended
# by the tokenizer's eos token; assistant turns inside {% generation %} so the mask is exact.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + eos_token + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
_GENERATION = re.compile(r"{%-?\s*generation\s*-?%}")


def resolve_template(tokenizer: Any, setting: str | None) -> str:
    """The Jinja template to render with: the tokenizer's (``setting`` null), the fallback
    (``setting`` ``fallback``, or a tokenizer without a template), a ``.jinja`` file, or
    ``setting`` itself."""
    if setting == "fallback":
        return FALLBACK_TEMPLATE
    if setting and setting.endswith(".jinja"):
        path = Path(setting).expanduser()
        if not path.is_file():
            raise FrameworkError(f"modality.chat_template={setting}: no such template file")
        return path.read_text(encoding="utf-8")
    if setting:
        return setting
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one
        template = template.get("default")
    return template or FALLBACK_TEMPLATE


def has_generation_markers(template: str) -> bool:
    """True when the template wraps assistant content in ``{% generation %}``."""
    return bool(_GENERATION.search(template))


@dataclass
class Encoded:
    """One tokenized example.

    Attributes:
        input_ids: Token ids, at most ``max_length``.
        mask: 1 where the token is trained on (a target), 0 elsewhere; aligned with ``input_ids``.
        length: Tokens before truncation.
        truncated: Whether tokens were cut.
    """

    input_ids: list[int]
    mask: list[int]
    length: int
    truncated: bool

    @property
    def trained(self) -> int:
        """Number of tokens the loss sees."""
        return sum(self.mask)


def render(tokenizer: Any, messages: Sequence[dict[str, str]], template: str, *,
           add_generation_prompt: bool = False) -> str:
    """The conversation as text, rendered by ``template``."""
    return tokenizer.apply_chat_template(list(messages), chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def _tokenize(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _generation_mask(tokenizer: Any, messages: Sequence[dict[str, str]], template: str) -> tuple[list[int], list[int]]:
    out = tokenizer.apply_chat_template(list(messages), chat_template=template, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


def _prefix_mask(tokenizer: Any, messages: Sequence[dict[str, str]], template: str) -> tuple[list[int], list[int]]:
    text = render(tokenizer, messages, template)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], template, add_generation_prompt=True) if i else ""
        upto = render(tokenizer, messages[: i + 1], template)
        if not (text.startswith(upto) and upto.startswith(before)):
            raise FrameworkError(
                "the chat template does not render conversations incrementally (a turn changes what came "
                "before it), so the assistant mask cannot be found by prefixes; add {% generation %} markers "
                "to the template or set modality.chat_template=fallback"
            )
        spans.append((len(before), len(upto)))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start < e and end > s for s, e in spans)) for start, end in enc["offset_mapping"]]
    return list(enc["input_ids"]), mask


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, str]], template: str, max_length: int, *,
                assistant_only: bool = True, mask_source: str = "auto") -> Encoded:
    """Tokenize a conversation with its loss mask, truncated to ``max_length`` tokens.

    ``assistant_only=False`` trains on every token. See the module docstring for ``mask_source``.
    """
    source = mask_source
    if source == "auto":
        source = "generation" if has_generation_markers(template) else "prefix"
    if source == "generation":
        ids, mask = _generation_mask(tokenizer, messages, template)
    elif source == "prefix":
        ids, mask = _prefix_mask(tokenizer, messages, template)
    else:
        raise FrameworkError(f"modality.sft.mask_source={mask_source!r} is unknown; use auto, generation or prefix")
    if not assistant_only:
        mask = [1] * len(ids)
    length = len(ids)
    return Encoded(ids[:max_length], mask[:max_length], length, length > max_length)


def prompt_messages(prompt: Any) -> list[dict[str, str]]:
    """A preference prompt (a string, or the conversation so far) as a message list."""
    if isinstance(prompt, list):
        return [dict(m) for m in prompt]
    return [{"role": "user", "content": str(prompt)}]


def response_text(response: Any) -> str:
    """A preference answer (a string, or messages whose last assistant turn is the answer)."""
    if isinstance(response, list):
        turns = [m["content"] for m in response if m.get("role") == "assistant"]
        return turns[-1] if turns else ""
    return str(response)


def encode_pair_side(tokenizer: Any, prompt: Any, response: Any, template: str, max_length: int) -> Encoded:
    """Prompt + one answer, with the mask on the answer's tokens (the completion the template adds
    after the generation prompt). Over-length: the prompt loses tokens from its start, then the
    answer from its end."""
    messages = prompt_messages(prompt)
    before = render(tokenizer, messages, template, add_generation_prompt=True)
    full = render(tokenizer, messages + [{"role": "assistant", "content": response_text(response)}], template)
    if not full.startswith(before):
        raise FrameworkError("the chat template renders the answer differently from its generation prompt; "
                             "set modality.chat_template=fallback or fix the template")
    prompt_ids, answer_ids = _tokenize(tokenizer, before), _tokenize(tokenizer, full[len(before):])
    length = len(prompt_ids) + len(answer_ids)
    if length > max_length:
        answer_ids = answer_ids[: max(max_length // 2, max_length - len(prompt_ids))]
        prompt_ids = prompt_ids[len(prompt_ids) - (max_length - len(answer_ids)):] if max_length > len(answer_ids) else []
    return Encoded(prompt_ids + answer_ids, [0] * len(prompt_ids) + [1] * len(answer_ids), length,
                   length > max_length)


def generation_prompt(tokenizer: Any, prompt: Any, template: str) -> list[int]:
    """Token ids of a prompt followed by the template's generation prompt (what a model answers)."""
    return _tokenize(tokenizer, render(tokenizer, prompt_messages(prompt), template, add_generation_prompt=True))
