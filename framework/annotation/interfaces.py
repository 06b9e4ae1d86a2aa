"""Label Studio labelling interfaces: the ``label_config`` XML a project needs for each kind of task.

The control names match what :mod:`framework.annotation.label_studio` writes and reads: choices
are ``label``, transcripts and captions are ``transcription`` (a text area), ratings ``rating``
and pairwise comparisons ``pairwise``; the object names are the task-data keys (``image``,
``audio``, ``text``, ``answer_a``/``answer_b``).

==================  ==========================================  ============================
interface           task data                                   control (result type)
==================  ==========================================  ============================
image_class         ``image``                                   ``label`` (choices)
text_class          ``text``                                    ``label`` (choices)
audio_transcript    ``audio`` (+ ``text``: the model's output)  ``transcription`` (textarea)
image_caption       ``image``, ``text`` (the caption)           ``transcription`` (textarea)
pairwise            ``prompt``, ``answer_a``, ``answer_b``      ``pairwise`` (left/right)
chat_rating         ``text`` (the rendered conversation)        ``rating`` (1-5)
==================  ==========================================  ============================
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence
from xml.sax.saxutils import quoteattr

from framework.errors import FrameworkError

INTERFACES = ("image_class", "text_class", "audio_transcript", "image_caption", "pairwise", "chat_rating")


def _choices(classes: Sequence[str], to_name: str) -> str:
    if not classes:
        raise FrameworkError("a classification interface needs the class names; pass --classes a,b,c "
                             "(or push tasks whose predictions name them)")
    options = "".join(f"<Choice value={quoteattr(str(c))}/>" for c in classes)
    return f'<Choices name="label" toName="{to_name}" choice="single" showInLine="true">{options}</Choices>'


def label_config(interface: str, classes: Sequence[str] = ()) -> str:
    """The labelling interface XML for ``interface`` (one of :data:`INTERFACES`).

    Raises:
        FrameworkError: for an unknown interface, or a classification one without classes.
    """
    if interface == "image_class":
        body = '<Image name="image" value="$image"/>' + _choices(classes, "image")
    elif interface == "text_class":
        body = '<Text name="text" value="$text"/>' + _choices(classes, "text")
    elif interface == "audio_transcript":
        body = ('<Audio name="audio" value="$audio"/>'
                '<TextArea name="transcription" toName="audio" editable="true" maxSubmissions="1" rows="3"/>')
    elif interface == "image_caption":
        body = ('<Image name="image" value="$image"/><Header value="Caption"/><Text name="text" value="$text"/>'
                '<TextArea name="transcription" toName="image" editable="true" maxSubmissions="1" rows="2"/>')
    elif interface == "pairwise":
        body = ('<Text name="prompt" value="$prompt"/><Text name="answer_a" value="$answer_a"/>'
                '<Text name="answer_b" value="$answer_b"/><Pairwise name="pairwise" toName="answer_a,answer_b"/>')
    elif interface == "chat_rating":
        body = '<Text name="text" value="$text"/><Rating name="rating" toName="text" maxRating="5"/>'
    else:
        raise FrameworkError(f"unknown labelling interface {interface!r}; choose one of {', '.join(INTERFACES)}")
    return f"<View>{body}</View>"


def _result_types(tasks: Sequence[Mapping[str, Any]]) -> set[str]:
    types = set()
    for task in tasks:
        for entry in [*(task.get("predictions") or []), *(task.get("annotations") or [])]:
            if isinstance(entry, Mapping):
                types.update(str(r.get("type")) for r in entry.get("result") or [] if isinstance(r, Mapping))
    return types


def infer_interface(tasks: Sequence[Mapping[str, Any]]) -> str:
    """The interface a task list needs, from its data keys and its predictions' result types.

    Raises:
        FrameworkError: when the tasks fit none (naming the data keys found and ``--interface``).
    """
    keys = set().union(*((t.get("data") or {}).keys() for t in tasks)) if tasks else set()
    types = _result_types(tasks)
    if {"answer_a", "answer_b"} <= keys:
        return "pairwise"
    if "audio" in keys:
        return "audio_transcript"
    if "image" in keys:
        return "image_caption" if "textarea" in types else "image_class"
    if "text" in keys:
        return "chat_rating" if "rating" in types else "text_class"
    raise FrameworkError(f"cannot tell which labelling interface these tasks need (data keys: {sorted(keys)}); "
                         f"pass --interface with one of {', '.join(INTERFACES)}")


def classes_in(tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every choice named by the tasks' predictions and annotations, sorted."""
    found: set[str] = set()
    for task in tasks:
        for entry in [*(task.get("predictions") or []), *(task.get("annotations") or [])]:
            if isinstance(entry, Mapping):
                for res in entry.get("result") or []:
                    found.update(map(str, ((res.get("value") or {}).get("choices") or [])))
    return sorted(found)
