"""Drift statistics and verdicts on planted samples with fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest

from framework.monitoring import DriftConfig, compare
from framework.monitoring import stats
from framework.monitoring.drift import judge

RNG_SEED = 7


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def test_psi_is_small_for_one_distribution_and_large_for_a_shift(rng) -> None:
    ref = rng.normal(100, 15, 800)
    same = rng.normal(100, 15, 300)
    darker = rng.normal(70, 15, 300)
    assert stats.psi_numeric(ref, same) < 0.1
    assert stats.psi_numeric(ref, darker) > 1.0
    assert stats.psi_numeric(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert stats.psi_numeric([16.0] * 50, [16.0] * 70) == pytest.approx(0.0, abs=1e-12)  # one constant value


def test_psi_bins_shrink_for_small_samples() -> None:
    assert stats.psi_bins(1000, 1000) == 10
    assert stats.psi_bins(1000, 40) == 4
    assert stats.psi_bins(5, 1000) == 2


def test_categorical_psi_and_chi_square_see_a_class_mix_change(rng) -> None:
    ref = list(rng.choice(["a", "b", "c"], 600))
    same = list(rng.choice(["a", "b", "c"], 300))
    skewed = list(rng.choice(["a", "b", "c"], 300, p=[0.7, 0.15, 0.15]))
    assert stats.psi_categorical(ref, same) < 0.05
    assert stats.psi_categorical(ref, skewed) > 0.2
    assert stats.chi2_test(ref, same)[1] > 0.01
    assert stats.chi2_test(ref, skewed)[1] < 1e-6
    assert stats.chi2_test(["x"] * 5, ["x"] * 9) == (0.0, 1.0)  # one category: nothing to test


def test_ks_detects_a_mean_shift_and_not_a_resample(rng) -> None:
    ref = rng.normal(0, 1, 500)
    assert stats.ks_test(ref, rng.normal(0, 1, 200))[1] > 0.01
    assert stats.ks_test(ref, rng.normal(0.8, 1, 200))[1] < 1e-6
    assert stats.ks_test([3.0] * 10, [3.0] * 10)[1] == 1.0


def test_mmd_detects_shifted_vectors_with_a_permutation_p_value(rng) -> None:
    ref = rng.normal(0, 1, (150, 5))
    same = rng.normal(0, 1, (100, 5))
    moved = rng.normal(0, 1, (100, 5)) + np.array([1.0, 0, 0, 0, 0])
    mmd_same, p_same = stats.mmd_test(ref, same, permutations=100, seed=0)
    mmd_moved, p_moved = stats.mmd_test(ref, moved, permutations=100, seed=0)
    assert p_same > 0.05 and p_moved == pytest.approx(1 / 101)
    assert mmd_moved > 5 * mmd_same
    assert stats.mmd_test(ref, moved, permutations=100, seed=0) == (mmd_moved, p_moved)  # seeded


def test_verdict_needs_both_evidence_and_size() -> None:
    cfg = DriftConfig(alpha=0.01, psi_threshold=0.2)
    assert judge(0.001, 0.5, cfg) == "drift"
    assert judge(0.001, 0.05, cfg) == "watch"  # certain but tiny
    assert judge(0.3, 0.5, cfg) == "watch"  # large but could be noise
    assert judge(0.3, 0.05, cfg) == "stable"
    assert judge(0.001, None, cfg) == "drift" and judge(0.2, None, cfg) == "stable"  # vectors: the test alone


def test_compare_gives_one_verdict_per_signal_and_skips_missing_values(rng) -> None:
    ref = {"input/brightness": list(rng.normal(120, 10, 400)), "input/mode": ["RGB"] * 400,
           "model/scores": rng.dirichlet([5, 5, 5], 400), "only/in_reference": [1.0] * 400}
    batch = {"input/brightness": [*rng.normal(80, 10, 99), None], "input/mode": ["RGB"] * 100,
             "model/scores": rng.dirichlet([5, 5, 5], 100)}
    report = compare(ref, batch, DriftConfig(permutations=50), reference_size=400, batch_size=100)
    assert [s.name for s in report.signals] == ["input/brightness", "input/mode", "model/scores"]
    brightness = report.signal("input/brightness")
    assert brightness.verdict == "drift" and brightness.batch_n == 99 and brightness.kind == "numeric"
    assert report.signal("input/mode").verdict == "stable" and report.signal("input/mode").kind == "categorical"
    assert report.signal("model/scores").kind == "vectors" and report.signal("model/scores").verdict == "stable"
    assert report.drifted == ["input/brightness"]
    payload = report.to_json()
    assert payload["verdict"] == "drift" and payload["signals"][1]["psi"] is not None


def test_a_single_valued_reference_sees_a_changed_value_as_drift() -> None:
    ref = [32.0] * 260  # every training image 32 px wide
    assert stats.psi_numeric(ref, [96.0] * 60) > 2.0
    assert stats.psi_numeric(ref, [16.0] * 60) > 2.0  # below the reference's value too
    assert stats.psi_numeric(ref, [32.0] * 60) == pytest.approx(0.0, abs=1e-12)
    assert list(stats.psi_edges(ref, 10)) == [32.0, np.nextafter(32.0, np.inf)]  # below, at, above
    report = compare({"input/width": ref}, {"input/width": [96.0] * 60}, DriftConfig(), reference_size=260,
                     batch_size=60)
    width = report.signal("input/width")
    assert width.verdict == "drift" and width.statistic == 1.0, (width.psi, width.p_value)
    # A few-valued reference: a value above its largest one no longer shares that value's bin.
    assert stats.psi_numeric([32.0] * 100 + [64.0] * 100, [96.0] * 60) > 2.0


def test_the_monitor_tries_the_export_before_the_checkpoint(tmp_path, monkeypatch, caplog) -> None:
    import framework.training
    from framework.errors import FrameworkError
    from framework.monitoring.monitor import weights_of

    checkpoint = tmp_path / "checkpoints" / "step_00000010"
    monkeypatch.setattr(framework.training, "latest_checkpoint", lambda run_dir: checkpoint)
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.yaml").write_text("modality: {name: toy}\n")
    with caplog.at_level("WARNING"):
        assert weights_of(tmp_path) == checkpoint  # an export in another format: named, then the checkpoint
    assert "has no model.safetensors" in caplog.text and str(checkpoint) in caplog.text
    (export / "model.safetensors").write_bytes(b"")
    assert weights_of(tmp_path) == export
    monkeypatch.setattr(framework.training, "latest_checkpoint", lambda run_dir: None)
    with pytest.raises(FrameworkError, match="neither export/"):
        weights_of(tmp_path / "nothing")


def test_review_sample_of_one_item_is_worded_in_the_singular() -> None:
    from framework.evaluation.html_report import drift_section
    from framework.wording import plural

    assert (plural(1, "item"), plural(0, "item"), plural(2, "class", "classes")) == ("1 item", "0 items", "2 classes")
    payload = {"signals": [], "batch_size": 60, "reference_size": 260, "alpha": 0.01, "psi_threshold": 0.2,
               "review": {"size": 1, "share": 0.02, "strata": {"9": 1}, "path": "review_tasks.json"}}
    text = drift_section(payload)
    assert "1 item (0.02 of the batch" in text and "1 items" not in text
