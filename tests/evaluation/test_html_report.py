"""report.html from a synthetic run directory: sections, marks, embedded plots, retention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from framework.evaluation import html_report
from framework.evaluation.classification import plot_confusion
from framework.evaluation.retention import Retention
from framework.evaluation.success import check, parse_criteria
from framework.evaluation.types import EvalReport
from html_checks import assert_self_contained, embedded_images, section_ids


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "audit").mkdir(parents=True)
    (run / "audit" / "audit.json").write_text(json.dumps({
        "passed": False, "enforce": False, "counts": {"train": 90, "val": 30},
        "results": [{"name": "balance", "gate": True, "passed": False, "summary": "smallest class 3 < 10",
                     "override": "data.gates.balance.min_per_class=3"},
                    {"name": "coverage", "gate": True, "passed": True, "summary": "ok"}]}))
    (run / "audit" / "datacard.md").write_text("# Data card\n")
    rows = [{"step": s, "kind": "train", "metrics": {"loss": 2.0 / s}} for s in range(1, 11)]
    rows += [{"step": s, "kind": "val", "split": "val", "metrics": {"val_loss": 2.2 / s, "val_acc": 0.1 * s}}
             for s in (5, 10)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    plot_confusion(np.array([[5, 1], [2, 4]]), ["cat", "dog"], run / "eval" / "confusion_val.png")
    return run


def _report() -> EvalReport:
    return EvalReport(
        "val", metrics={"accuracy": 0.75, "count": 12.0, "robust/dark/accuracy": 0.5},
        per_class={c: {"recall": r, "f1": r, "support": 6.0} for c, r in
                   (("cat", 0.83), ("dog", 0.67), ("eel", 0.9), ("fox", 0.95), ("gnu", 0.91))},
        per_slice={"light=dark": {"accuracy": 0.5, "count": 4.0}, "light=day": {"accuracy": 0.9, "count": 8.0}},
        robustness={"dark": {"accuracy": 0.5, "drop": 0.25}},
        notes=["weakest class `dog`: recall 0.67"], artifacts=[Path("eval/confusion_val.png")],
        sections={"Confusion matrix (`val`)": "| true | cat | dog |\n|---|---|---|\n| cat | 5 | 1 |\n| dog | 2 | 4 |"})


def test_report_has_every_section_in_order_with_embedded_plots(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    verdicts = check(parse_criteria({"accuracy": ">=0.9", "count": ">=10"}), {"accuracy": 0.75, "count": 12.0})
    start = EvalReport("retention_start", metrics={"accuracy": 0.95, "val_loss": 0.2})
    trained = EvalReport("retention", metrics={"accuracy": 0.80, "val_loss": 0.5})
    retention = Retention(source=Path("old/test"), start=start, trained=trained)
    page = html_report.RunReport("toy", run, [_report()], verdicts, enforce=True,
                                 config_yaml="modality: {name: toy}\nmodel: {name: tiny, width: 8}\nseed: 3\n",
                                 retention=retention, checkpoint=run / "checkpoints" / "step_00000010",
                                 export_dir=run / "export")
    text = html_report.render(page)
    assert section_ids(text) == ["verdict", "config", "audit", "curves", "split-val", "retention", "artifacts"]
    assert text.index("Fit to ship: no") < text.index('id="config"')  # the verdict comes first
    assert "1 of 2 success criteria met" in text
    assert 'href="audit/datacard.md"' in text and "data.gates.balance.min_per_class=3" in text
    assert "FAILED (not enforced)" in text
    assert "model.width" in text and "Full resolved config" in text
    images = embedded_images(text)
    assert len(images) == 3  # curves, per-class bars, the modality's confusion matrix PNG
    assert all(img.width > 100 and img.height > 100 for img in images)
    # The weakest fifth of the classes by recall is marked: one of five.
    assert text.count("◀ weakest") == 2 and "dog <span" in text  # per class (dog) and per slice (dark)
    assert "<th>true</th>" in text  # the Markdown section became a table
    assert "+0.1500" in text and "+0.3000" in text  # retention cost: accuracy down, loss up
    assert "step_00000010" in text and "not written" in text
    assert_self_contained(text)


def test_no_criteria_and_no_training_are_said_plainly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    text = html_report.render(html_report.RunReport("toy", run, [EvalReport("test", metrics={"wer": 0.2})], []))
    assert "No success criteria were set" in text
    assert "did not train" in text and "audit stage did not run" in text
    embedded_images(text)


def test_criteria_failures_not_enforced_are_labelled(tmp_path: Path) -> None:
    verdicts = check(parse_criteria({"accuracy": ">=0.9"}), {"accuracy": 0.5})
    text = html_report.verdict_section(verdicts, enforce=False)
    assert "Fit to ship: no" in text and "not enforced" in text


@pytest.mark.parametrize(("rows", "weak"), [
    ({"a": {"recall": 1.0}, "b": {"recall": 1.0}}, []),  # ties with the best are never weak
    ({"a": {"wer": 0.1}, "b": {"wer": 0.4}, "c": {"wer": 0.2}}, ["b"]),  # lower is better
    ({"a": {"recall": 0.2, "support": 9}}, []),
])
def test_weakest_rows(rows, weak) -> None:
    assert html_report.weakest_rows(rows)[1] == weak


def test_tied_weakest_classes_are_all_marked_and_said_tied() -> None:
    rows = {c: {"recall": r, "support": 6.0} for c, r in (("cat", 0.5), ("dog", 0.5), ("eel", 0.9), ("fox", 1.0),
                                                           ("gnu", 1.0), ("hen", 1.0), ("ant", 1.0), ("bee", 1.0),
                                                           ("cow", 1.0), ("elk", 1.0))}
    key, weak = html_report.weakest_rows(rows)
    assert key == "recall" and weak == ["cat", "dog"]  # a fifth of ten is two; never one of a tie by name
    rows["eel"]["recall"] = 0.5  # three tied at the bottom: all three, not the first two by name
    assert sorted(html_report.weakest_rows(rows)[1]) == ["cat", "dog", "eel"]
    text, _, _ = html_report.breakdown_table(rows, "class")
    assert text.count("◀ weakest (tied)") == 3


def test_nothing_is_weakest_when_every_class_is_perfect() -> None:
    from framework.evaluation.classification import classification_report, weakest_class, weakest_class_note
    from framework.evaluation.types import Predictions

    perfect = Predictions("val", list("abcd"), ["x", "x", "y", "y"], ["x", "x", "y", "y"], classes=["x", "y"])
    result = classification_report(perfect)
    assert weakest_class(result) is None and weakest_class_note(result) is None
    rows = {c: {"recall": 1.0, "support": 2.0} for c in ("x", "y")}
    assert html_report.weakest_rows(rows)[1] == []
    report = EvalReport("val", metrics={"accuracy": 1.0}, per_class=rows)
    assert "weakest" not in html_report.split_section(report, Path("."))
    tied = Predictions("val", list("abcdef"), ["x", "x", "y", "y", "z", "z"], ["x", "y", "y", "x", "z", "z"],
                       classes=["x", "y", "z"])
    assert weakest_class_note(classification_report(tied)) == (
        "weakest classes `x`, `y` (tied): recall 0.50 each vs accuracy 0.67 overall")


def test_numbers_have_one_format_and_counts_are_integers() -> None:
    report = EvalReport("val", metrics={"accuracy": 1.0, "macro_f1": 0.963, "count": 27.0},
                        per_class={"a": {"recall": 1.0, "f1": 0.9630, "support": 13.0},
                                   "b": {"recall": 0.9286, "f1": 0.9630, "support": 14.0}})
    text = html_report.split_section(report, Path("."))
    assert '<td class="num">1.0000</td>' in text and '<td class="num">0.9630</td>' in text
    assert '<td class="num">27</td>' in text and '<td class="num">13</td>' in text
    assert '<td class="num">1</td>' not in text
    from framework.evaluation.report import render

    md = render("toy", [report], [], Path("."), "")
    assert "| accuracy | 1.0000 |" in md and "| count | 27 |" in md


def test_loss_plot_draws_the_train_loss_once_with_clear_labels(tmp_path: Path, monkeypatch) -> None:
    from framework.evaluation import plots

    run = _run_dir(tmp_path)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 10, "kind": "val", "split": "val",
                             "metrics": {"val_loss": 0.3, "val_acc": 0.9, "train_loss": 0.25}}) + "\n")
    drawn = {}
    monkeypatch.setattr(plots, "training_curves",
                        lambda series, losses, metric: drawn.update(losses=list(losses), metric=metric) or "data:,")
    html_report.curves_section(run)
    assert drawn == {"losses": ["train/loss", "val/val_loss"], "metric": "val/val_acc"}
    assert [plots.series_label(k) for k in ("train/loss", "val/val_loss", "val/val_acc", "test/mse")] == [
        "train loss", "val loss", "val acc", "test mse"]


def test_a_class_at_zero_recall_gets_a_visible_marker() -> None:
    from framework.evaluation import plots

    plt = plots._pyplot()
    fig, ax = plt.subplots()
    try:
        plots.draw_per_class(ax, {"cat": 0.9, "dog": 0.0, "eel": 0.7}, "recall", weakest=["dog"])
        markers = [(tuple(line.get_xdata()), line.get_marker()) for line in ax.get_lines()]
        assert markers == [((1,), "^")]
        assert [(t.get_text(), t.xy) for t in ax.texts] == [("0", (1, 0))]
    finally:
        plt.close(fig)
    assert plots.per_class_bars({"cat": 0.0}, "recall").startswith("data:image/png;base64,")


def test_config_table_shows_yaml_values() -> None:
    text = html_report.config_section("modality: {name: toy}\nmodel: {pretrained: false, name: tiny}\n"
                                      "trainer: {lr: 0.001, device: null, max_steps: 10}\nstages: [audit, train]\nsuccess: {accuracy: '>=0.9'}\n")
    assert "<td>false</td>" in text and "False" not in text
    assert "<td>[audit, train]</td>" in text and "<td>{accuracy: &#x27;&gt;=0.9&#x27;}</td>" in text
    assert [html_report.yaml_value(v) for v in (False, None, True, 3, "x", 0.5)] == [
        "false", "null", "true", "3", "x", "0.5"]
