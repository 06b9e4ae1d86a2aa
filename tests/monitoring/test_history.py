"""Error-rate history: Wilson intervals, rates per class and slice, launch figures, alerts, the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.evaluation.types import Predictions
from framework.monitoring import history
from framework.monitoring.history import Entry, Rate


def test_wilson_interval_matches_the_closed_form_and_stays_in_range() -> None:
    # Wilson (1927) for 3 errors in 20 at 95%: centre (p + z²/2n) / (1 + z²/n).
    low, high = history.wilson_interval(3, 20)
    assert low == pytest.approx(0.05236, abs=1e-4) and high == pytest.approx(0.36040, abs=1e-4)
    assert history.wilson_interval(0, 10)[0] == 0.0 and 0.0 < history.wilson_interval(0, 10)[1] < 0.35
    assert history.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one item"):
        history.wilson_interval(0, 0)


def test_error_rates_per_class_slice_and_worst_class() -> None:
    predictions = Predictions("monitor", ids=list("abcdef"), targets=["cat", "cat", "dog", "dog", "dog", None],
                              outputs=["cat", "dog", "dog", "cat", "cat", "cat"], classes=["cat", "dog"],
                              slices=[{"light": "day"}, {"light": "dark"}, {"light": "day"}, {"light": "dark"},
                                      {"light": "dark"}, {"light": "day"}])
    rates = history.error_rates(predictions)
    assert (rates["error_rate"].errors, rates["error_rate"].n) == (3, 5)  # the unlabelled item is left out
    assert rates["class/cat"].rate == 0.5 and rates["class/dog"].rate == pytest.approx(2 / 3)
    assert rates["slice/light=dark"].rate == 1.0 and rates["slice/light=day"].rate == 0.0
    assert rates["max_class_error_rate"] == rates["class/dog"]
    text = Predictions("monitor", ids=["x", "y"], targets=["hello there", "bye"], outputs=["hello there ", "by"])
    assert set(history.error_rates(text, "text")) == {"error_rate"}
    assert history.error_rates(text, "text")["error_rate"].errors == 1
    with pytest.raises(FrameworkError, match="no labelled item"):
        history.error_rates(Predictions("monitor", ids=["x"], targets=[None], outputs=["a"]))


def _launch_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"status": "completed", "metrics": {
        "accuracy": 0.9, "count": 100.0, "test/accuracy": 0.95, "test/count": 200.0}}))
    (run / "eval" / "reports.json").write_text(json.dumps({"splits": [
        {"split": "val", "metrics": {"accuracy": 0.9}, "per_class": {"cat": {"recall": 0.5, "support": 50.0}}},
        {"split": "test", "metrics": {"accuracy": 0.95},
         "per_class": {"cat": {"recall": 0.9, "support": 100.0}, "dog": {"recall": 1.0, "support": 100.0}},
         "per_slice": {"light=dark": {"accuracy": 0.8, "count": 40.0}}}]}))
    return run


def test_launch_rates_are_the_test_split_figures(tmp_path: Path) -> None:
    split, launch = history.launch_rates(_launch_run(tmp_path))
    assert split == "test"
    assert (launch["error_rate"].errors, launch["error_rate"].n) == (10, 200)
    assert launch["class/cat"].rate == pytest.approx(0.1) and launch["class/dog"].rate == 0.0
    assert launch["slice/light=dark"].errors == 8 and launch["max_class_error_rate"] == launch["class/cat"]
    assert history.launch_rates(tmp_path / "never-ran") == (None, {})


def test_alerts_fire_past_the_allowed_increase_only() -> None:
    launch = {"error_rate": Rate.of(10, 200), "class/cat": Rate.of(10, 100)}
    now = {"error_rate": Rate.of(20, 100), "class/cat": Rate.of(6, 40)}
    changes, alerts = history.compare_with_launch(now, launch, {"error_rate": 0.1, "class/cat": 0.2})
    assert [a.metric for a in alerts] == ["error_rate"]  # +0.15 > 0.1; cat +0.05 < 0.2
    assert alerts[0].line() == "error_rate rose from 0.0500 at launch to 0.2000 (+0.1500, allowed +0.1)"
    assert changes["error_rate"]["beyond_noise"] and not changes["class/cat"]["beyond_noise"]
    assert history.compare_with_launch(now, {}, {"error_rate": 0.0})[1] == []  # nothing to compare with
    with pytest.raises(FrameworkError, match="class/dog.*known metrics: class/cat, error_rate"):
        history.compare_with_launch(now, launch, {"class/dog": 0.1})


def test_max_increase_parsing() -> None:
    assert history.parse_max_increase(["error_rate=0.05", "slice/light=dark=0.2"]) == {
        "error_rate": 0.05, "slice/light=dark": 0.2}  # a slice name keeps its own '='
    for bad in ("error_rate", "error_rate=lots", "error_rate=1.5", "=0.1"):
        with pytest.raises(FrameworkError, match="METRIC=INCREASE"):
            history.parse_max_increase([bad])


def test_history_file_round_trip_and_a_bad_line_named(tmp_path: Path) -> None:
    path = tmp_path / "monitor" / "history.jsonl"
    first = Entry(kind="evaluate", batch="week-1", timestamp="2026-12-01T00:00:00Z", manifest="a.jsonl",
                  weights="export", size=5, rates=history.rate_fields({"error_rate": Rate.of(1, 5)}))
    second = Entry(kind="drift", batch="week-2", timestamp=history.now_utc(), manifest="b", weights="export", size=9,
                   signals={"input/width": {"verdict": "drift", "psi": 4.0, "p_value": 0.0}}, drifted=["input/width"])
    history.append(path, first)
    history.append(path, second)
    assert history.read(path) == [first, second]
    assert [i for i, _, _ in history.series(history.read(path), "error_rate")] == [0]
    assert history.batch_name(tmp_path / "b.jsonl") == "b" and history.batch_name(tmp_path) == tmp_path.name
    with open(path, "a") as fh:
        fh.write('{"kind": "evaluate"}\n')
    with pytest.raises(FrameworkError, match=r"history.jsonl:3: not a monitoring history entry"):
        history.read(path)
