"""Hallucination probes: the scoring rule, the probe format's errors, the bundled probes, and the
probes through the text modality's evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.data.errors import DataError
from framework.errors import FrameworkError
from plugins.text import hallucination
from plugins.text.hallucination import HallucinationProbe, passes, read_probes, run_probes

BUNDLED = Path(__file__).resolve().parents[2] / "examples" / "data" / "hallucination_probes.jsonl"


def _probe(kind: str = "nonexistent_entity", accept: tuple[str, ...] = (), forbidden: tuple[str, ...] = (),
           context: str | None = None, category: str | None = None, id: str = "p") -> HallucinationProbe:
    return HallucinationProbe(id=id, kind=kind, category=category or kind, prompt="Who founded Veltrani?",
                              context=context, accept=accept, forbidden=forbidden, source="t:1")


@pytest.mark.parametrize("answer", ["I don't know.", "I’m not aware of any such institute.",
                                    "There is no record of a Veltrani Institute.", "That place does not exist.",
                                    "The context does not say who chairs it.", "It is not mentioned in the text."])
def test_refusals_and_corrections_pass(answer: str) -> None:
    assert passes(_probe(), answer)[0], answer


@pytest.mark.parametrize("answer", ["It was founded by Marco Veltrani in 1874.", "", "42 m"])
def test_inventions_and_empty_answers_fail(answer: str) -> None:
    assert passes(_probe(), answer) == (False, "no refusal or correction")


def test_forbidden_beats_a_refusal_and_accept_adds_a_correction() -> None:
    probe = _probe("false_premise", accept=("only one",), forbidden=(r"\b19[0-9]{2}\b",))
    assert passes(probe, "He received only one Nobel Prize.") == (True, "matched: only one")
    ok, reason = passes(probe, "I don't know, maybe 1932.")
    assert not ok and reason.startswith("forbidden")
    assert passes(_probe(), "Please contact support.", extra_accept=("contact support",))[0]


def test_run_probes_reports_pass_rates_per_kind_and_category() -> None:
    probes = [_probe(id="a"), _probe(id="b"), _probe("false_premise", accept=("myth",), category="units", id="c"),
              _probe("unanswerable_context", context="The meeting is on Tuesday.", id="d")]
    seen: list[str] = []

    def answer(turns: list[str]) -> list[str]:
        seen.extend(turns)
        return ["I don't know.", "Marco founded it.", "That is a myth.", "Ms Lee chairs it."]

    metrics, rows = run_probes(probes, answer)
    assert seen[3].startswith("Context: The meeting is on Tuesday.") and seen[3].endswith("Veltrani?")
    assert metrics == {"hallucination/nonexistent_entity/pass_rate": 0.5, "hallucination/false_premise/pass_rate": 1.0,
                       "hallucination/unanswerable_context/pass_rate": 0.0, "hallucination/units/pass_rate": 1.0,
                       "hallucination/pass_rate": 0.5, "hallucination/count": 4.0}
    assert [r["passed"] for r in rows] == [True, False, True, False]
    text = hallucination.markdown(metrics, rows)
    assert "| nonexistent_entity | 0.500 | 1 | 2 |" in text and "`b` (nonexistent_entity)" in text


@pytest.mark.parametrize("line, problem", [
    ('{"kind": "rumour", "prompt": "x"}', "not one of"),
    ('{"kind": "false_premise"}', "'prompt'"),
    ('{"kind": "unanswerable_context", "prompt": "Who?"}', "needs a non-empty 'context'"),
    ('{"kind": "false_premise", "prompt": "Why?", "accept": ["(unclosed"]}', "not a regular expression"),
    ('not json', "invalid JSON"),
])
def test_a_bad_probe_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"kind": "nonexistent_entity", "prompt": "Who is Zorb?"}\n' + line + "\n")
    with pytest.raises(DataError, match=f"p.jsonl:2: .*{problem}"):
        read_probes(path)


def test_a_missing_probe_file_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="modality.probes.hallucination.files"):
        read_probes(tmp_path / "none.jsonl")


def test_bundled_probes_cover_every_kind_and_score_a_refusal_apart_from_an_invention() -> None:
    probes = read_probes(BUNDLED)
    assert len(probes) >= 30 and {p.kind for p in probes} == set(hallucination.KINDS)
    assert all(passes(p, "I don't know; I have no information about that.")[0] for p in probes)
    assert not any(passes(p, "Yes: it was 7 in 1874, delivered on 4 March.")[0] for p in probes)


@pytest.mark.slow
def test_text_evaluate_reports_hallucination_probes(chat_root, make_ctx, tmp_path) -> None:
    from plugins.text.modality import TextModality

    probes = tmp_path / "domain.jsonl"
    probes.write_text(json.dumps({"id": "x1", "kind": "nonexistent_entity", "prompt": "Convert 3 blargs to m."}) + "\n"
                      + json.dumps({"id": "x2", "kind": "false_premise", "prompt": "Since 1 km is 10 m, convert 2 km.",
                                    "forbidden": [".*"]}) + "\n")
    # `accept` matches any answer, `forbidden` any answer: the rates do not depend on what the LM says.
    ctx = make_ctx(chat_root, modality={"probes": {"hallucination": {"files": [str(probes)], "accept": [".*"],
                                                                     "max_new_tokens": 4}}})
    modality = TextModality()
    data = modality.load_data(ctx)
    task = modality.build_task(ctx, data)
    report = modality.evaluate(ctx, task, data, "val")
    assert report.metrics["hallucination/pass_rate"] == 0.5
    assert report.metrics["hallucination/false_premise/pass_rate"] == 0.0
    assert "| nonexistent_entity | 1.000 | 1 | 1 |" in report.sections["Hallucination probes (`val`)"]
    rows = [json.loads(x) for x in (ctx.run_dir / "eval" / "hallucination_val.jsonl").read_text().splitlines()]
    assert [(r["id"], r["passed"]) for r in rows] == [("x1", True), ("x2", False)]
