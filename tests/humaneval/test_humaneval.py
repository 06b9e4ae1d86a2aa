"""Blind human evaluation: sampling, blind sides and the key, Label Studio files, import with
intervals, agreement, gold accuracy and position bias, results back into the run, the LLM judge."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from framework.data.errors import DataError
from framework.data.records import Record
from framework.errors import FrameworkError
from framework.humaneval import label_studio
from framework.humaneval.export import write
from framework.humaneval.pairs import GOOD, TRAINED, Key, key_path, make_pairs, shown_input, stratified_sample
from framework.humaneval.results import import_annotations, summarise


def records(n: int = 40) -> list[Record]:
    return [Record(id=f"r{i}", split="val", source=f"f:{i}", label=f"{i}000 m", text=f"user: {i} km?\nassistant: {i}000 m",
                   slices={"unit": "km->m" if i % 4 else "m->cm"}) for i in range(n)]


def key_for(recs: list[Record], interface: str = "pairwise", gold_rate: float = 0.25) -> Key:
    pairs = make_pairs(recs, [f"{i}000 m" for i in range(len(recs))], [f"{i}0 m" for i in range(len(recs))],
                       [f"user: {r.id}" for r in recs], [None] * len(recs), gold_rate=gold_rate, seed=3)
    return Key(run="run", baseline="starting weights", split="val", interface=interface, gold_rate=gold_rate, seed=3,
               pairs={p.pair_id: p for p in pairs})


def test_the_sample_keeps_every_slice_in_proportion() -> None:
    recs = records(40)  # 30 km->m, 10 m->cm
    sample = stratified_sample(recs, 8, seed=0)
    units = [r.slices["unit"] for r in sample]
    assert len(sample) == 8 and units.count("m->cm") == 2 and len({r.id for r in sample}) == 8
    assert stratified_sample(recs, 8, seed=0) == sample and stratified_sample(recs, 100, seed=0) == recs
    rare = records(40) + [Record(id="odd", split="val", source="x", slices={"unit": "kg->g"})]
    assert "odd" in {r.id for r in stratified_sample(rare, 5, seed=1)}  # a tiny stratum still gets one


def test_sides_are_random_the_gold_pairs_known_and_the_reference_never_shown() -> None:
    key = key_for(records(40))
    model = [p for p in key.pairs.values() if p.kind == "model"]
    gold = [p for p in key.pairs.values() if p.kind == "gold"]
    assert len(model) == 40 and len(gold) == 10
    trained_first = sum(p.a == TRAINED for p in model)
    assert 10 < trained_first < 30  # both orders occur
    for p in model:
        shown = p.output_a if p.a == TRAINED else p.output_b
        assert shown.endswith("000 m")
    for p in gold:
        good = p.output_a if p.side_of(GOOD) == "A" else p.output_b
        bad = p.output_b if p.side_of(GOOD) == "A" else p.output_a
        assert good.endswith("000 m") and (bad == "" or bad != good)
    assert {p.gold_kind for p in gold} == {"empty", "mismatched"}
    chat = records(1)[0]
    assert shown_input(chat, None) is None  # its text holds the reference answer
    assert shown_input(chat, "user: 0 km?") == "user: 0 km?"
    speech = Record(id="u", split="val", source="s", label="hello there", text="hello there", media=Path("a.wav"))
    assert shown_input(speech, None) is None


def test_annotators_get_tasks_and_a_config_without_the_key(tmp_path) -> None:
    key = key_for(records(12))
    written = write(tmp_path, key, root=None)
    tasks = json.loads(written.tasks.read_text())
    assert len(tasks) == written.pairs == len(key.pairs)
    assert set(tasks[0]["data"]) == {"pair_id", "prompt", "a", "b"}
    shown = written.tasks.read_text() + written.config.read_text()
    assert "trained" not in shown and "baseline" not in shown and "gold" not in shown
    assert written.key.parent != written.tasks.parent
    config = ET.fromstring(written.config.read_text())
    assert [c.get("value") for c in config.iter("Choice")] == ["A", "B", "Tie"]
    assert Key.read(key_path(tmp_path)).pairs.keys() == key.pairs.keys()
    rating = ET.fromstring(label_studio.labelling_config("rating", list(key.pairs.values())))
    assert {r.get("name") for r in rating.iter("Rating")} == {"rating_a", "rating_b"}
    audio = key_for(records(2)).pairs
    for p in audio.values():
        p.media, p.prompt = str(tmp_path / "data" / "clip.wav"), None
    audio_tasks = label_studio.tasks(audio.values(), root=tmp_path / "data")
    assert audio_tasks[0]["data"]["audio"] == "/data/local-files/?d=clip.wav" and "prompt" not in audio_tasks[0]["data"]
    assert "<Audio" in label_studio.labelling_config("pairwise", list(audio.values()))


def _annotation(who: str, verdict: str | None = None, ratings: tuple[int, int] | None = None) -> dict:
    if ratings:
        result = [{"from_name": "rating_a", "to_name": "a", "type": "rating", "value": {"rating": ratings[0]}},
                  {"from_name": "rating_b", "to_name": "b", "type": "rating", "value": {"rating": ratings[1]}}]
    else:
        result = [{"from_name": "preference", "to_name": "a", "type": "choices", "value": {"choices": [verdict]}}]
    return {"completed_by": {"email": who}, "result": result}


def export_of(key: Key, careful: tuple[str, ...] = ("ann", "bob"), always_a: str | None = "lazy") -> list[dict]:
    """Careful raters pick the trained side (and the gold's good side); one rater always picks A."""
    out = []
    for p in key.pairs.values():
        right = p.side_of(TRAINED) if p.kind == "model" else p.side_of(GOOD)
        anns = [_annotation(w, right) for w in careful]
        if always_a:
            anns.append(_annotation(always_a, "A"))
        out.append({"data": {"pair_id": p.pair_id}, "annotations": anns})
    return out


def test_rates_intervals_agreement_gold_and_position_bias() -> None:
    key = key_for(records(40))
    judgments = label_studio.read_export(export_of(key), Path("export.json"))
    results = summarise(key, judgments)
    overall = results["overall"]
    assert overall["pairs"] == 40 and overall["judgments"] == 120
    share_a = sum(p.side_of(TRAINED) == "A" for p in key.pairs.values() if p.kind == "model") / 40
    assert overall["win_rate"] == pytest.approx((80 + 40 * share_a) / 120)
    assert overall["win_rate_low"] < overall["win_rate"] < overall["win_rate_high"] <= 1.0
    assert overall["tie_rate"] == 0.0
    assert set(results["per_slice"]) == {"unit=km->m", "unit=m->cm"}
    assert results["flagged"] == ["lazy"] and results["position_bias"]["lazy"]["share_a"] == 1.0
    assert results["per_rater"]["ann"]["gold_accuracy"] == 1.0
    gold = [p for p in key.pairs.values() if p.kind == "gold"]
    assert results["per_rater"]["lazy"]["gold_accuracy"] == sum(p.side_of(GOOD) == "A" for p in gold) / len(gold)
    assert results["agreement"]["method"] == "fleiss" and results["agreement"]["value"] < 1.0
    unanimous = summarise(key, label_studio.read_export(export_of(key, always_a=None), Path("e.json")))
    assert unanimous["agreement"]["method"] == "cohen" and unanimous["agreement"]["value"] == 1.0
    assert unanimous["overall"]["win_rate"] == 1.0 and unanimous["gold"]["accuracy"] == 1.0 and not unanimous["flagged"]


def test_ratings_become_verdicts_and_bad_exports_are_named() -> None:
    key = key_for(records(4), interface="rating", gold_rate=0)
    pid = next(iter(key.pairs))
    judgments = label_studio.read_export([{"data": {"pair_id": pid}, "annotations": [
        _annotation("ann", ratings=(4, 2)), _annotation("bob", ratings=(3, 3)),
        {"completed_by": 1, "was_cancelled": True, "result": []}]}], Path("e.json"))
    assert [(j.verdict, j.ratings) for j in judgments] == [("A", (4.0, 2.0)), ("Tie", (3.0, 3.0))]
    with pytest.raises(DataError, match=r"e.json: task\[0\]: has no data.pair_id"):
        label_studio.read_export([{"data": {}, "annotations": []}], Path("e.json"))
    with pytest.raises(DataError, match="not one of A, B, Tie"):
        label_studio.read_export([{"data": {"pair_id": pid}, "annotations": [_annotation("x", "C")]}], Path("e.json"))
    with pytest.raises(FrameworkError, match="the key does not know"):
        summarise(key, label_studio.read_export([{"data": {"pair_id": "zzz"}, "annotations": [_annotation("x", "A")]}],
                                                Path("e.json")))


def fake_run(run_dir: Path, success: dict[str, str]) -> Path:
    """A finished run: its summary, one evaluated split and its config."""
    from framework.evaluation.report import write_reports_json
    from framework.evaluation.types import EvalReport

    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(json.dumps({"modality": {"name": "text"}, "success": success}))
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "metrics": {"exact_match": 0.5},
                                                      "fit_to_ship": None, "enforce_success": True, "success": []}))
    write_reports_json([EvalReport(split="val", metrics={"exact_match": 0.5})], run_dir / "eval" / "reports.json")
    return run_dir


def test_import_writes_the_results_into_summary_report_and_success(tmp_path) -> None:
    run = fake_run(tmp_path / "run", {"human/win_rate": ">=0.6", "exact_match": ">=0.4"})
    key = key_for(records(20))
    write(run, key, root=None)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(export_of(key, always_a=None)))
    import_annotations(run, export)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["human/win_rate"] == 1.0 and summary["metrics"]["exact_match"] == 0.5
    assert [s["passed"] for s in summary["success"]] == [True, True] and summary["fit_to_ship"] is True
    assert summary["metrics"]["human/gold_accuracy"] == 1.0 and summary["metrics"]["human/flagged_raters"] == 0
    page = (run / "report.html").read_text()
    assert 'id="human"' in page and "Blind human evaluation" in page and 'id="split-val"' in page
    assert json.loads((run / "humaneval" / "results.json").read_text())["overall"]["pairs"] == 20
    with pytest.raises(FrameworkError, match="humaneval export RUN"):
        import_annotations(tmp_path / "other", export)


@pytest.fixture
def tiny_judge(tmp_path) -> Path:
    """A random-weight two-layer Llama with the bundled tiny LM's tokenizer."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(Path(__file__).resolve().parents[2] / "examples" / "models"
                                                     / "tiny-unit-lm")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)
    path = tmp_path / "judge"
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.slow  # builds and saves a model, loads transformers
def test_the_judge_scores_both_orders_and_agrees_with_the_humans(tmp_path, tiny_judge) -> None:
    from framework.humaneval.judge import judge_pairs, judge_run, load_judge

    run = fake_run(tmp_path / "run", {"judge/consistency": ">=0.0"})
    key = key_for(records(6), gold_rate=0.5)
    write(run, key, root=None)
    model, tok = load_judge(tiny_judge)
    rows = judge_pairs(key, model, tok)
    for row in rows:  # the swapped order is scored separately and mapped back to the exported sides
        assert row["p_a"] != row["p_a_swapped"] and row["p"] == pytest.approx((row["p_a"] + row["p_a_swapped"]) / 2)
    assert {r["verdict"] for r in rows} <= {"A", "B", "Tie"}
    export = tmp_path / "export.json"
    export.write_text(json.dumps(export_of(key, always_a=None)))
    import_annotations(run, export)
    result = judge_run(run, tiny_judge)
    assert result["human_agreement"]["pairs"] == len(key.pairs)
    agreed = sum(r["verdict"] == (p.side_of(TRAINED) or p.side_of(GOOD)) for r in rows
                 for p in [key.pairs[r["pair_id"]]])
    assert result["human_agreement"]["accuracy"] == pytest.approx(agreed / len(rows))
    summary = json.loads((run / "summary.json").read_text())
    assert "judge/human_kappa" in summary["metrics"] and "human/win_rate" in summary["metrics"]
    assert summary["success"][0]["passed"]
    assert "LLM judge" in (run / "report.html").read_text()


@pytest.mark.slow
def test_export_pairs_a_trained_text_run_with_its_starting_model(tmp_path) -> None:
    from framework.humaneval.export import export
    from framework.testing import run_framework

    run = tmp_path / "run"
    result = run_framework(["+modality=text", "trainer.max_steps=30", "trainer.progress=false", "modality.baseline=false",
                            "modality.generation_limit=4", "modality.probes.file=null", "evaluation.benchmarks=[]",
                            "stages=[train,evaluate]", "evaluation.enforce_success=false"], run)
    assert result.status == "completed"
    written = export(run, n=12, gold_rate=0.25)
    key = Key.read(written.key)
    model = [p for p in key.pairs.values() if p.kind == "model"]
    assert len(model) == 12 and written.gold == 3 and key.baseline == "starting weights" and key.split == "val"
    assert all(p.prompt and p.prompt.startswith(("user:", "system:")) for p in model)
    units = {p.slices["unit"] for p in model}
    assert len(units) == 6  # every unit pair of the bundled chats is sampled
    trained = [p.output_a if p.a == TRAINED else p.output_b for p in model]
    starting = [p.output_b if p.a == TRAINED else p.output_a for p in model]
    assert trained != starting  # thirty steps of SFT changed the answers
    tasks = json.loads(written.tasks.read_text())
    assert {t["data"]["pair_id"] for t in tasks} == set(key.pairs)
    against_itself = Key.read(export(run, n=6, baseline=run, gold_rate=0).key)  # --baseline RUN2: another run's weights
    assert against_itself.baseline == str(run)
    assert all(p.output_a == p.output_b for p in against_itself.pairs.values())


def test_the_command_line_exits_2_with_the_fix_named(tmp_path, capsys) -> None:
    from framework.humaneval.__main__ import main

    export = tmp_path / "export.json"
    export.write_text("[]")
    assert main(["import", str(tmp_path / "run"), str(export)]) == 2
    assert "humaneval export RUN" in capsys.readouterr().err
    assert main(["judge", str(tmp_path / "run"), "--judge", str(tmp_path / "nowhere")]) == 2

