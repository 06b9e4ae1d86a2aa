"""The Label Studio side of human evaluation: the labelling config, the import file, the export.

Two interfaces (``--interface``):

* ``pairwise``: the input, answers A and B side by side, one choice ``A``, ``B`` or ``Tie``
  (control ``preference``);
* ``rating``: the same view, each answer rated 1-5 (controls ``rating_a`` and ``rating_b``); the
  higher rating wins, equal ratings tie.

The input is a text panel (``$prompt``), an audio player (``$audio``) for speech, or an image
(``$image``), as the pairs have them. Tasks carry only ``pair_id``, the input and the two answers:
nothing says which model wrote which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from xml.sax.saxutils import quoteattr

from framework.data.errors import DataError
from framework.humaneval.pairs import Pair, media_url

INTERFACES = ("pairwise", "rating")
VERDICTS = ("A", "B", "Tie")
MAX_RATING = 5
_AUDIO = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}


def media_kind(path: str | None) -> str | None:
    """``audio`` or ``image`` for a media path, by its extension."""
    if path is None:
        return None
    return "audio" if Path(path).suffix.lower() in _AUDIO else "image"


def labelling_config(interface: str, pairs: Sequence[Pair]) -> str:
    """The Label Studio labelling config (XML) for ``pairs`` under ``interface``."""
    if interface not in INTERFACES:
        raise ValueError(f"interface {interface!r} is not one of {', '.join(INTERFACES)}")
    kinds = {media_kind(p.media) for p in pairs} - {None}
    has_prompt = any(p.prompt for p in pairs)
    noun = "transcript" if kinds == {"audio"} else "answer"
    view = [f'  <Header value={quoteattr(f"Which {noun} is better? The order is random.")}/>']
    if "audio" in kinds:
        view.append('  <Audio name="audio" value="$audio"/>')
    if "image" in kinds:
        view.append('  <Image name="image" value="$image"/>')
    if has_prompt:
        view.append('  <Text name="prompt" value="$prompt"/>')
    view += ['  <View style="display: flex; gap: 1em">',
             f'    <View style="flex: 50%"><Header value={quoteattr(f"{noun.capitalize()} A")}/>'
             '<Text name="a" value="$a"/></View>',
             f'    <View style="flex: 50%"><Header value={quoteattr(f"{noun.capitalize()} B")}/>'
             '<Text name="b" value="$b"/></View>',
             "  </View>"]
    if interface == "pairwise":
        view += ['  <Choices name="preference" toName="a" choice="single" required="true" showInline="true">',
                 *[f'    <Choice value="{v}"/>' for v in VERDICTS], "  </Choices>"]
    else:
        view += [f'  <Header value="Rate A"/><Rating name="rating_a" toName="a" maxRating="{MAX_RATING}" required="true"/>',
                 f'  <Header value="Rate B"/><Rating name="rating_b" toName="b" maxRating="{MAX_RATING}" required="true"/>']
    return "<View>\n" + "\n".join(view) + "\n</View>\n"


def tasks(pairs: Iterable[Pair], root: Path | None) -> list[dict[str, Any]]:
    """Label Studio import tasks: ``{"data": {"pair_id", "prompt"?, "audio"|"image"?, "a", "b"}}``."""
    out = []
    for pair in pairs:
        data: dict[str, Any] = {"pair_id": pair.pair_id, "a": pair.output_a, "b": pair.output_b}
        if pair.prompt:
            data["prompt"] = pair.prompt
        kind = media_kind(pair.media)
        if kind:
            data[kind] = media_url(pair.media, root)
        out.append({"data": data})
    return out


@dataclass(frozen=True)
class Judgment:
    """One annotator's verdict on one pair.

    Attributes:
        pair_id: The pair.
        annotator: Who (Label Studio's ``completed_by``: e-mail or id).
        verdict: ``A``, ``B`` or ``Tie``.
        ratings: ``(rating of A, rating of B)`` under the rating interface.
    """

    pair_id: str
    annotator: str
    verdict: str
    ratings: tuple[float, float] | None = None


def _annotator(completed_by: Any) -> str:
    if isinstance(completed_by, Mapping):
        return str(completed_by.get("email") or completed_by.get("id"))
    return str(completed_by)


def _verdict(results: Sequence[Mapping[str, Any]], where: str) -> tuple[str, tuple[float, float] | None] | None:
    """The verdict of one annotation's ``result`` list, or ``None`` when it holds none."""
    by_name = {str(r.get("from_name")): r.get("value") or {} for r in results}
    if "preference" in by_name:
        choices = by_name["preference"].get("choices") or []
        if len(choices) != 1 or choices[0] not in VERDICTS:
            raise DataError(where, f"choice {choices!r} is not one of {', '.join(VERDICTS)}",
                            "Export the project labelled with the config humaneval export wrote.")
        return choices[0], None
    if "rating_a" in by_name and "rating_b" in by_name:
        a, b = float(by_name["rating_a"].get("rating")), float(by_name["rating_b"].get("rating"))
        return ("A" if a > b else "B" if b > a else "Tie"), (a, b)
    return None


def read_export(export: Sequence[Mapping[str, Any]], source: Path) -> list[Judgment]:
    """Judgments in a Label Studio JSON export; cancelled, ground-truth and empty annotations are
    skipped. A task without ``data.pair_id`` is an error naming it."""
    out = []
    for i, task in enumerate(export):
        where = f"{source}: task[{i}]"
        pair_id = (task.get("data") or {}).get("pair_id")
        if pair_id is None:
            raise DataError(where, "has no data.pair_id", "Import the tasks humaneval export wrote, and export those.")
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled") or ann.get("ground_truth"):
                continue
            verdict = _verdict(ann.get("result") or [], where)
            if verdict is not None:
                out.append(Judgment(str(pair_id), _annotator(ann.get("completed_by")), *verdict))
    return out
