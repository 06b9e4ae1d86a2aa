"""framework.evaluation.classification on planted predictions with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from framework.evaluation.classification import (
    classification_report,
    confusion_markdown,
    critical_classes,
    plot_confusion,
    slice_accuracy,
    top_k,
    weakest_class,
    weakest_class_note,
)
from framework.evaluation.types import Predictions


@pytest.fixture
def planted() -> Predictions:
    # 10 labeled items and one unlabeled (ignored):
    #   cat: 4 items, predicted cat, cat, cat, dog      -> recall 3/4
    #   dog: 3 items, predicted dog, dog, bird          -> recall 2/3
    #   bird: 3 items, predicted bird, bird, bird       -> recall 3/3
    # predicted cat 3x (all right)                      -> precision 3/3
    # predicted dog 3x (2 right)                        -> precision 2/3
    # predicted bird 4x (3 right)                       -> precision 3/4
    targets = ["cat"] * 4 + ["dog"] * 3 + ["bird"] * 3 + [None]
    outputs = ["cat", "cat", "cat", "dog", "dog", "dog", "bird", "bird", "bird", "bird", "cat"]
    slices = [{"light": "day"}] * 5 + [{"light": "night"}] * 5 + [{"light": "day"}]
    return Predictions(
        split="test",
        ids=[str(i) for i in range(11)],
        targets=targets,
        outputs=outputs,
        classes=["cat", "dog", "bird"],
        slices=slices,
    )


def test_per_class_figures(planted: Predictions) -> None:
    result = classification_report(planted)
    pc = result.per_class
    assert pc["cat"]["recall"] == pytest.approx(3 / 4)
    assert pc["cat"]["precision"] == pytest.approx(1.0)
    assert pc["cat"]["f1"] == pytest.approx(2 * 1.0 * 0.75 / 1.75)
    assert pc["dog"]["recall"] == pytest.approx(2 / 3)
    assert pc["dog"]["precision"] == pytest.approx(2 / 3)
    assert pc["bird"]["recall"] == pytest.approx(1.0)
    assert pc["bird"]["precision"] == pytest.approx(3 / 4)
    assert [pc[c]["support"] for c in ("cat", "dog", "bird")] == [4, 3, 3]


def test_overall_and_averages(planted: Predictions) -> None:
    m = classification_report(planted).metrics
    assert m["count"] == 10
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["macro_recall"] == pytest.approx((3 / 4 + 2 / 3 + 1) / 3)
    assert m["macro_precision"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # weighted recall equals accuracy for single-label classification
    assert m["weighted_recall"] == pytest.approx(0.8)
    assert m["weighted_precision"] == pytest.approx(0.4 * 1 + 0.3 * 2 / 3 + 0.3 * 3 / 4)
    assert m["min_class_recall"] == pytest.approx(2 / 3)


def test_confusion_matrix_rows_true_columns_predicted(planted: Predictions) -> None:
    result = classification_report(planted)
    assert result.classes == ["cat", "dog", "bird"]
    np.testing.assert_array_equal(result.confusion, [[3, 1, 0], [0, 2, 1], [0, 0, 3]])
    table = confusion_markdown(result.confusion, result.classes)
    assert table.splitlines()[0] == "| true \\ predicted | `cat` | `dog` | `bird` |"
    assert "| `dog` | 0 | 2 | 1 |" in table


def test_weakest_class_and_note(planted: Predictions) -> None:
    result = classification_report(planted)
    assert weakest_class(result) == "dog"
    assert weakest_class_note(result).startswith("weakest class `dog`: recall 0.67 vs accuracy 0.80 overall")


def test_critical_classes(planted: Predictions) -> None:
    result = classification_report(planted)
    metrics, notes = critical_classes(result, ["cat", "dog", "fish"], "test")
    assert metrics == {"critical_min_recall": pytest.approx(2 / 3)}
    assert notes[0].startswith("critical class `cat`: recall 0.75")
    assert "`fish` has no items in split `test`" in notes[2]


def test_unknown_labels_get_a_row_and_column() -> None:
    preds = Predictions("val", ["a", "b"], ["x", "zebra"], ["x", "x"], classes=["x", "y"])
    result = classification_report(preds)
    assert result.classes == ["x", "y", "zebra"]
    np.testing.assert_array_equal(result.confusion, [[1, 0, 0], [0, 0, 0], [1, 0, 0]])
    assert result.per_class["zebra"]["recall"] == 0.0


def test_no_labeled_items_is_an_error() -> None:
    preds = Predictions("val", ["a"], [None], ["x"], classes=["x"])
    with pytest.raises(ValueError, match="no labeled items"):
        classification_report(preds)


def test_slice_accuracy(planted: Predictions) -> None:
    # day: items 0-4 -> 4 right of 5; night: items 5-9 -> 4 right of 5 (item 6 wrong)
    assert slice_accuracy(planted) == {
        "light=day": {"accuracy": pytest.approx(4 / 5), "count": 5.0},
        "light=night": {"accuracy": pytest.approx(4 / 5), "count": 5.0},
    }


def test_plot_confusion_writes_png(planted: Predictions, tmp_path) -> None:
    result = classification_report(planted)
    path = plot_confusion(result.confusion, result.classes, tmp_path / "plots" / "cm.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_top_k_orders_by_probability() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert top_k(scores, ["a", "b", "c"], 2) == [[("b", 0.7), ("c", 0.2)], [("a", 0.5), ("c", 0.3)]]
    assert len(top_k(scores, ["a", "b", "c"], 10)[0]) == 3
