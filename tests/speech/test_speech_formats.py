"""Released formats in (transformers, CTranslate2, parts), exports out, and the decoding guards, on tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from whisper.model import ModelDimensions, Whisper

from framework.errors import FrameworkError
from plugins.speech.config import FallbackConfig
from plugins.speech.decode import NO_FALLBACK, cut_repetition, transcribe, transcript_text
from plugins.speech.features import LogMel
from plugins.speech.formats import assemble_ctranslate2, load_released, model_format, read_ct2_variables
from plugins.speech.model import window_samples
from plugins.speech.text import TextNormalizer
from plugins.speech.tokens import tokenizer_for
from speech_fixtures import TINY_DIMS


def sharp_tiny(seed: int = 0) -> Whisper:
    """A tiny Whisper whose logits are far apart (token embedding N(0, 1), whisper's own draw), so
    greedy decoding has no near-ties and two runtimes must agree token for token."""
    torch.manual_seed(seed)
    model = Whisper(ModelDimensions(**TINY_DIMS))
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder.positional_embedding, std=3.0)
    return model.eval()


def audio(n: int = 2, seed: int = 0) -> list:
    gen = torch.Generator().manual_seed(seed)
    samples = window_samples(ModelDimensions(**TINY_DIMS))
    return [(0.1 * torch.randn(samples - 4000 * i, generator=gen)).numpy() for i in range(n)]


def mel_of(model: Whisper, clips: list) -> torch.Tensor:
    from plugins.speech.dataset import pad_or_trim
    import numpy as np

    batch = torch.from_numpy(np.stack([pad_or_trim(c, window_samples(model.dims)) for c in clips]))
    return LogMel(model.dims.n_mels)(batch)


# --- decoding guards ------------------------------------------------------------------------------


def test_special_tokens_never_reach_a_transcript() -> None:
    tok = tokenizer_for("hi")
    tokens = tok.encode(" Jaiya") + [tok.special_tokens["<|hi|>"]] + tok.encode(" Commission.") + [tok.eot]
    assert "<|hi|>" in tok.decode(tokens)  # whisper's own decode keeps it
    assert transcript_text(tokens, tok) == "Jaiya Commission."
    assert transcript_text([tok.timestamp_begin, *tok.encode(" ok"), tok.timestamp_begin + 5], tok) == "ok"


def test_cut_repetition_keeps_one_copy_of_a_loop() -> None:
    assert cut_repetition([1, 2, 3, 3, 3, 3, 3, 3], 3) == [1, 2, 3]
    assert cut_repetition([5, 6, 7, 6, 7, 6, 7, 6, 7, 9], 3) == [5, 6, 7]
    assert cut_repetition([1, 1, 1, 2], 3) == [1, 1, 1, 2]  # three copies are speech ("no no no")
    assert cut_repetition([4, 4, 4, 4], 0) == [4, 4, 4, 4]


def looping(model: Whisper, token: int) -> Whisper:
    """``model`` made to predict ``token`` at every step (a decoding loop): the final layer norm
    outputs that token's embedding direction, scaled up."""
    with torch.no_grad():
        emb = model.decoder.token_embedding.weight
        emb[token] = emb[token] / emb[token].norm() * 50
        model.decoder.ln.weight.zero_()
        model.decoder.ln.bias.copy_(emb[token])
    return model


def test_a_forced_repetition_loop_is_cut_and_not_scored() -> None:
    tok = tokenizer_for("en")
    word = tok.encode(" go")[0]
    model = looping(sharp_tiny(), word)
    clips = audio(1)
    raw = transcribe(model, clips, ["en"], sample_len=12, fallback=NO_FALLBACK)[0]
    assert raw.split() == ["go"] * 12  # the loop runs to the token limit without guards
    guarded = transcribe(model, clips, ["en"], sample_len=12, fallback=FallbackConfig(temperatures=[0.0, 1.0], best_of=2))
    assert guarded == ["go"]


def test_number_normalisation_is_optional() -> None:
    plain, numbers = TextNormalizer(), TextNormalizer(numbers=True)
    assert plain("Twenty five रुपये") == "twenty five रुपये"
    assert numbers("Twenty five रुपये") == numbers("25 रुपये") == numbers("२५ रुपये") == "25 रुपये"


# --- formats in -------------------------------------------------------------------------------


def test_unknown_directories_and_parts_are_named(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="not a Whisper model"):
        model_format(tmp_path)
    (tmp_path / "model.bin.part1").write_bytes(b"ab")
    with pytest.raises(FrameworkError, match="assemble_ctranslate2"):
        model_format(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(FrameworkError, match="model_type 'bert'"):
        model_format(tmp_path)


def test_ctranslate2_parts_are_joined_in_a_cache(tmp_path: Path) -> None:
    a, b = tmp_path / "p1" / "model.bin.part1", tmp_path / "p2" / "model.bin.part2"
    for part, data in ((a, b"\x06\x00"), (b, b"\x00\x00")):
        part.parent.mkdir()
        part.write_bytes(data)
    (a.parent / "config.json").write_text("{}")
    out = assemble_ctranslate2([a, b], tmp_path / "cache")
    assert (out / "model.bin").read_bytes() == b"\x06\x00\x00\x00" and (out / "config.json").is_file()
    assert not (a.parent / "model.bin").exists()  # nothing written beside the parts
    with pytest.raises(FrameworkError, match="truncated"):
        read_ct2_variables(out / "model.bin")
    from plugins.speech.formats import main

    main(["join", str(a), str(b), "--out", str(tmp_path / "cli")])  # the command the docs give
    assert (tmp_path / "cli" / "model.bin").read_bytes() == b"\x06\x00\x00\x00"
    with pytest.raises(SystemExit, match="no such model part"):
        main(["join", str(tmp_path / "nope"), "--out", str(tmp_path / "cli2")])


@pytest.mark.slow
def test_transformers_export_round_trip_and_same_transcripts(tmp_path: Path) -> None:
    from plugins.speech.runtimes import export_transformers, transcribe_transformers

    model = sharp_tiny()
    hf_dir = export_transformers(model, tmp_path / "hf")
    back = load_released(hf_dir)  # transformers directory -> the plugin's model, name by name
    for name, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name
    clips = audio(2)
    ours = transcribe(model, clips, ["en", "en"], sample_len=12)
    assert ours[0] and ours == transcribe_transformers(hf_dir, mel_of(model, clips), "en", 12)
    # transformers' own pipeline loads the directory with its processor files.
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(hf_dir), device="cpu")
    out = asr(clips[0], generate_kwargs={"language": "en", "task": "transcribe", "max_new_tokens": 12})
    assert isinstance(out["text"], str)
    # A tensor the plugin's model has no slot for is named.
    from safetensors.torch import load_file, save_file

    state = load_file(str(hf_dir / "model.safetensors"))
    state["model.decoder.extra.weight"] = torch.zeros(2)
    save_file(state, str(hf_dir / "model.safetensors"))
    with pytest.raises(FrameworkError, match="unexpected tensor model.decoder.extra.weight"):
        load_released(hf_dir)


@pytest.mark.slow
def test_ctranslate2_export_loads_back_and_transcribes_the_same(tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2", reason="the CTranslate2 export needs the real extra")
    pytest.importorskip("faster_whisper", reason="faster-whisper loads the CTranslate2 export (the real extra)")
    from plugins.speech.runtimes import export_ctranslate2, export_transformers, transcribe_ctranslate2

    model = sharp_tiny(1)
    hf_dir = export_transformers(model, tmp_path / "hf")
    ct2 = export_ctranslate2(hf_dir, tmp_path / "ct2")
    assert (ct2 / "tokenizer.json").is_file() and (ct2 / "preprocessor_config.json").is_file()
    back = load_released(ct2)  # the CTranslate2 reader on the converter's own output
    for name, value in model.state_dict().items():
        assert torch.allclose(back.state_dict()[name], value), name
    clips = audio(2, seed=3)
    ours = transcribe(model, clips, ["en", "en"], sample_len=12)
    assert ours[0] and ours == transcribe_ctranslate2(ct2, mel_of(model, clips), "en", 12)
    # int8 and float16 weights are dequantised: within the quantisation step of each row.
    for quantization, tol in (("int8", 0.02), ("float16", 1e-3)):
        q = load_released(export_ctranslate2(hf_dir, tmp_path / quantization, quantization))
        for name, value in model.state_dict().items():
            err = (q.state_dict()[name] - value).abs().max().item()
            assert err <= tol * max(1.0, value.abs().max().item()), (quantization, name, err)
    # A missing tensor is named.
    from plugins.speech.formats import ct2_to_whisper_state, dequantize_ct2, load_converted, resolve_aliases

    variables = resolve_aliases(*read_ct2_variables(ct2 / "model.bin"), ct2)
    del variables["decoder/layer_0/ffn/linear_1/bias"]
    with pytest.raises(FrameworkError, match=r"missing decoder\.blocks\.0\.mlp\.2\.bias"):
        load_converted(Whisper(model.dims), ct2_to_whisper_state(dequantize_ct2(variables), ct2), ct2)


def test_whisper_base_recipe_sets_finetuning_settings_and_scratch_keeps_its_own() -> None:
    from framework.testing import compose

    base = compose(["+modality=speech", "model=whisper_base", "model.name=/models/whisper-base"])
    assert base.model.finetune == "decoder" and base.model.name == "/models/whisper-base"
    assert base.trainer.lr == 1e-4 and base.trainer.batch_size == 4 and base.trainer.max_steps <= 100
    assert base.trainer.warmup_ratio > 0 and list(base.modality.fallback.temperatures)[-1] == 1.0
    scratch = compose(["+modality=speech"])
    assert scratch.trainer.lr == 2e-3 and scratch.trainer.batch_size == 16 and scratch.model.name is None
    assert list(scratch.modality.fallback.temperatures) == [0.0]
