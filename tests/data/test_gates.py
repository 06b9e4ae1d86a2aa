"""Each core gate finds its planted problem and makes the right decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from planted_data import brightened_copy, make_image, make_wav, truncate, write_jsonl
from sklearn.metrics import cohen_kappa_score

from framework.annotation import AnnotationRecord
from framework.data import CheckContext, DataBundle, DataConfig, Record, load_bundle
from framework.data.gates import (
    AccuracyGate,
    BalanceGate,
    CleanlinessGate,
    ConsistencyGate,
    CoverageGate,
    DocumentationGate,
    LabelIssuesCheck,
)


def ctx(settings: dict | None = None, slices: tuple[str, ...] = ()) -> CheckContext:
    return CheckContext(modality="test", settings=settings or {}, slice_fields=slices, out_dir=Path("."))


def kinds(result) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in result.findings:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out


# --- cleanliness -----------------------------------------------------------------------------


def test_cleanliness_finds_every_planted_image_problem(image_root: Path) -> None:
    cfg = DataConfig(root=str(image_root), train="train.jsonl", test="test.jsonl", probe_media=False)
    result = CleanlinessGate().run(load_bundle(cfg), ctx())
    found = {f.kind: f for f in result.findings}
    assert kinds(result) == {"corrupt": 1, "exact_duplicate": 1, "near_duplicate": 1, "leak": 1}
    assert set(found["exact_duplicate"].items) == {"img/a0.png", "img/a0_copy.png"}
    assert set(found["near_duplicate"].items) == {"img/a1.png", "img/a1_bright.png"}
    assert found["leak"].items == ("img/b0.png", "img/leak.png") and "identical" in found["leak"].detail
    assert found["corrupt"].items == ("img/bad.png",)
    assert not result.passed
    assert result.measured["exact_duplicates"] == 1 and result.measured["near_duplicates"] == 1
    assert "leaked eval items 1 > 0 (over by 1)" in result.summary
    assert "data.gates.cleanliness.max_leaked" in result.override


def test_cleanliness_thresholds_can_be_relaxed(image_root: Path) -> None:
    cfg = DataConfig(root=str(image_root), train="train.jsonl", test="test.jsonl", probe_media=False)
    relaxed = {"max_duplicate_fraction": 0.2, "max_near_duplicate_fraction": 0.2, "max_leaked": 1, "max_corrupt_fraction": 0.2}
    assert CleanlinessGate().run(load_bundle(cfg), ctx(relaxed)).passed


def test_cleanliness_counts_quarantined_corrupt_files(image_root: Path) -> None:
    cfg = DataConfig(root=str(image_root), train="train.jsonl", test="test.jsonl")  # probe while loading
    bundle = load_bundle(cfg)
    assert [q.reason for q in bundle.quarantine] == ["undecodable"]
    result = CleanlinessGate().run(bundle, ctx({"max_corrupt_fraction": 0.0}))
    assert kinds(result)["corrupt"] == 1 and "corrupt fraction 0.0909 > 0" in result.summary


def test_cleanliness_passes_clean_data(clean_image_root: Path) -> None:
    result = CleanlinessGate().run(load_bundle(DataConfig(root=str(clean_image_root), train="train.jsonl")), ctx())
    assert result.passed, result.summary
    assert result.findings == []


def test_cleanliness_audio_empty_transcript_truncated_and_mixed_rates(tmp_path: Path) -> None:
    make_wav(tmp_path / "a.wav", 300)
    make_wav(tmp_path / "b.wav", 900, sr=22050)
    make_wav(tmp_path / "c.wav", 2000)
    truncate(tmp_path / "c.wav", tmp_path / "cut.wav")
    make_wav(tmp_path / "a_quiet.wav", 300, gain=0.3)  # near duplicate of a.wav
    rows = [{"audio_filepath": n, "duration": 0.5, "text": t} for n, t in
            [("a.wav", "one"), ("b.wav", ""), ("cut.wav", "three"), ("a_quiet.wav", "one again")]]
    write_jsonl(tmp_path / "m.jsonl", rows)
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="m.jsonl", probe_media=False))
    result = CleanlinessGate().run(bundle, ctx())
    found = kinds(result)
    assert found["empty_label"] == 1 and found["corrupt"] == 1 and found["near_duplicate"] == 1
    assert any("samplerate" in f.detail for f in result.findings if f.kind == "mixed_format")
    assert not result.passed and "empty-label fraction" in result.summary


def test_cleanliness_text_duplicates_and_leak(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"text": "How do I reset my password?", "label": "account"},
                                           {"text": "how do i reset my password", "label": "account"},
                                           {"text": "Where is my parcel right now?", "label": "shipping"}])
    write_jsonl(tmp_path / "val.jsonl", [{"text": "Where is my parcel right now", "label": "shipping"}])
    bundle = load_bundle(DataConfig(root=str(tmp_path), train="train.jsonl", val="val.jsonl"))
    result = CleanlinessGate().run(bundle, ctx())
    assert kinds(result) == {"exact_duplicate": 1, "leak": 1}


# --- consistency -----------------------------------------------------------------------------


def two_annotators(flips_yes: int, flips_no: int, n: int = 40) -> list[AnnotationRecord]:
    """A labels half yes/half no; B copies A but flips some yes->no and some no->yes."""
    a = ["yes"] * (n // 2) + ["no"] * (n // 2)
    b = list(a)
    for i in range(flips_yes):
        b[i] = "no"
    for i in range(flips_no):
        b[n // 2 + i] = "yes"
    return [AnnotationRecord(f"i{k}", who, lab) for who, labs in (("A", a), ("B", b)) for k, lab in enumerate(labs)]


@pytest.mark.parametrize(("flips", "kappa", "passed", "flagged"),
                         [((2, 2), 0.80, True, False), ((4, 3), 0.65, False, False), ((5, 5), 0.50, False, True)])
def test_consistency_gate_at_known_kappa(flips, kappa, passed, flagged) -> None:
    anns = two_annotators(*flips)
    a = [x.label for x in anns if x.annotator == "A"]
    b = [x.label for x in anns if x.annotator == "B"]
    assert cohen_kappa_score(a, b) == pytest.approx(kappa)
    result = ConsistencyGate().run(DataBundle(Path("."), {"train": []}, annotations=anns), ctx())
    assert result.measured["method"] == "cohen" and result.measured["value"] == pytest.approx(kappa)
    assert result.passed is passed
    assert ("would learn disagreement" in result.summary) is flagged
    if not passed:
        assert f"< 0.70 (short by {0.70 - kappa:.2f})" in result.summary
        assert "data.gates.consistency.min_kappa" in result.override
    assert ConsistencyGate().run(DataBundle(Path("."), {}, annotations=anns), ctx({"min_kappa": kappa - 0.01})).passed


def test_consistency_fleiss_krippendorff_and_not_applicable() -> None:
    three = [AnnotationRecord(f"i{k}", who, "x" if (k + (who == "C")) % 3 else "y") for k in range(30) for who in "ABC"]
    result = ConsistencyGate().run(DataBundle(Path("."), {}, annotations=three), ctx())
    assert result.measured["method"] == "fleiss" and set(result.measured["per_annotator"]) == {"A", "B", "C"}
    missing = three[:-1]  # one item lost a label: counts vary, so alpha
    assert ConsistencyGate().run(DataBundle(Path("."), {}, annotations=missing), ctx()).measured["method"] == "krippendorff"
    single = [AnnotationRecord("i1", "A", "x"), AnnotationRecord("i2", "B", "y")]
    result = ConsistencyGate().run(DataBundle(Path("."), {}, annotations=single), ctx())
    assert result.passed and "not applicable" in result.summary


# --- accuracy --------------------------------------------------------------------------------


def test_accuracy_gate_flags_bad_annotator_on_gold() -> None:
    gold = {f"g{k}": ("chosen" if k % 2 else "rejected") for k in range(10)}
    flip = {"chosen": "rejected", "rejected": "chosen"}
    anns = [AnnotationRecord(i, "good", lab) for i, lab in gold.items()]
    anns += [AnnotationRecord(i, "sycophant", flip[lab] if k < 6 else lab) for k, (i, lab) in enumerate(gold.items())]
    bundle = DataBundle(Path("."), {}, annotations=anns, extras={"gold": gold})
    result = AccuracyGate().run(bundle, ctx())
    assert not result.passed and [f.items for f in result.findings] == [("sycophant",)]
    assert "4/10 = 0.40 < 0.80 (short by 0.40)" in result.summary
    assert result.measured["per_annotator"]["good"]["accuracy"] == 1.0
    assert AccuracyGate().run(bundle, ctx({"min_gold_items": 11})).passed  # too few to judge
    assert "not applicable" in AccuracyGate().run(DataBundle(Path("."), {}, annotations=anns), ctx()).summary


# --- coverage, balance, documentation, label issues --------------------------------------------


def _records(labels_langs: list[tuple[str, str]], split: str = "train") -> list[Record]:
    return [Record(f"{split}{i}", split, "m:1", label=lab, slices={"language": lang}) for i, (lab, lang) in enumerate(labels_langs)]


def test_coverage_gate() -> None:
    bundle = DataBundle(Path("."), {"train": _records([("a", "en")] * 5 + [("a", "hi")] * 2)})
    assert CoverageGate().run(bundle, ctx(slices=("language",))).passed
    result = CoverageGate().run(bundle, ctx({"min_per_slice": {"language": {"hi": 3}}, "expected": {"language": ["ta"]}},
                                            slices=("language",)))
    assert not result.passed and "train language=hi: 2 < 3 (short by 1)" in result.summary
    failing = CoverageGate().run(bundle, ctx({"min_per_slice": 3, "expected": {"language": ["ta"]}}, slices=("language",)))
    assert "language=ta: 0 < 3" in failing.summary
    assert "not applicable" in CoverageGate().run(bundle, ctx()).summary


def test_balance_gate() -> None:
    bundle = DataBundle(Path("."), {"train": _records([("a", "en")] * 30 + [("b", "en")])}, classes=["a", "b", "c"])
    result = BalanceGate().run(bundle, ctx({"min_per_class": 1}))
    assert not result.passed and "smallest class 0 < 1" in result.summary
    assert result.measured["class_counts"]["train"] == {"a": 30, "b": 1, "c": 0}
    bundle.classes = ["a", "b"]
    result = BalanceGate().run(bundle, ctx())
    assert not result.passed and "imbalance ratio (max/min) 30.0 > 20.0 (over by 10.0)" in result.summary
    bundle.extras["item_losses"] = {f"train{i}": 0.01 for i in range(31)}
    result = BalanceGate().run(bundle, ctx({"max_imbalance_ratio": 40}))
    assert not result.passed and "easy fraction" in result.summary and result.measured["easy_fraction"] == 1.0


def test_documentation_gate() -> None:
    bundle = DataBundle(Path("."), {})
    assert DocumentationGate({"guidelines_version": ""}).run(bundle, ctx()).passed
    result = DocumentationGate({"guidelines_version": ""}).run(bundle, ctx({"require_guidelines_version": True}))
    assert not result.passed and "data.guidelines_version" in result.summary
    assert DocumentationGate({"guidelines_version": "v2"}).run(bundle, ctx({"require_guidelines_version": True})).passed


def test_label_issues_check_finds_flipped_labels() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    probs = np.full((300, 3), 0.05)
    probs[np.arange(300), truth] = 0.9
    labels = truth.copy()
    flipped = np.arange(0, 300, 30)
    labels[flipped] = (truth[flipped] + 1) % 3
    names = ["a", "b", "c"]
    recs = [Record(f"r{i}", "train", "m", label=names[v]) for i, v in enumerate(labels)]
    bundle = DataBundle(Path("."), {"train": recs}, classes=names, extras={"pred_probs": probs})
    result = LabelIssuesCheck().run(bundle, ctx())
    assert {f.items[0] for f in result.findings} == {f"r{i}" for i in flipped}
    assert result.gate is False and result.passed  # 10/300 is under the 10% warning level


def test_unknown_gate_setting_names_valid_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['min_kapa'\]; valid keys: \["):
        ConsistencyGate().run(DataBundle(Path("."), {}), ctx({"min_kapa": 0.5}))


def test_records_without_local_content_are_compared_by_their_fields() -> None:
    distinct = [Record(f"t{i}", "train", "export.json", label="cat", fields={"image": f"https://x/{i}.png"})
                for i in range(3)]
    result = CleanlinessGate().run(DataBundle(Path("."), {"train": distinct}), ctx())
    assert result.passed and result.findings == []
    same = [Record(f"t{i}", "train", "export.json", label="cat", fields={"image": "https://x/1.png"}) for i in range(3)]
    result = CleanlinessGate().run(DataBundle(Path("."), {"train": same}), ctx())
    assert not result.passed and result.measured["exact_duplicates"] == 2


def test_consistency_gate_passes_at_exactly_min_kappa() -> None:
    anns = two_annotators(2, 2)
    measured = ConsistencyGate().run(DataBundle(Path("."), {}, annotations=anns), ctx()).measured["value"]
    at_threshold = ConsistencyGate().run(DataBundle(Path("."), {}, annotations=anns), ctx({"min_kappa": measured}))
    assert at_threshold.passed, at_threshold.summary  # the gate is kappa >= min_kappa
    assert f"{measured:.2f} >= {measured:.2f}" in at_threshold.summary
    above = ConsistencyGate().run(DataBundle(Path("."), {}, annotations=anns), ctx({"min_kappa": measured + 1e-9}))
    assert not above.passed


def test_near_identical_eval_item_is_a_leak(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for i in range(3):
        make_image(root / f"train{i}.png", seed=i)
    make_image(root / "test_distinct.png", seed=42)
    brightened_copy(root / "train1.png", root / "test_near.png")  # brighter and resized: not byte-identical
    write_jsonl(root / "train.jsonl", [{"path": f"train{i}.png", "label": "cat"} for i in range(3)])
    write_jsonl(root / "test.jsonl", [{"path": "test_distinct.png", "label": "cat"},
                                      {"path": "test_near.png", "label": "cat"}])
    bundle = load_bundle(DataConfig(root=str(root), train="train.jsonl", test="test.jsonl", probe_media=False))
    result = CleanlinessGate().run(bundle, ctx())
    [leak] = [f for f in result.findings if f.kind == "leak"]
    assert leak.items == ("train1.png", "test_near.png")
    assert "near-identical" in leak.detail
    assert not result.passed and result.measured["leaked"] == 1
