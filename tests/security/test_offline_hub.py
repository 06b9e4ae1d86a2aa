"""Hub names on a machine without network: one line within seconds naming the local options, not
the hub client's minutes of retries (framework.hub)."""

from __future__ import annotations

import socket
import time

import pytest

from framework.errors import FrameworkError

HUB_NAME = "example-org/model-that-is-not-cached"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The network unreachable: every TCP connect fails at once, as it does without DNS. Returns
    the addresses tried."""
    tried: list[tuple] = []

    def unreachable(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        tried.append(address)
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    return tried


def test_a_text_hub_name_offline_fails_in_one_line_within_seconds(no_network: list[tuple]) -> None:
    import transformers  # noqa: F401 - imported before the clock starts

    from plugins.text.config import TextModelConfig
    from plugins.text.model import load_model, load_tokenizer

    cfg = TextModelConfig(name=HUB_NAME, local_files_only=False)
    for timed in (False, True):  # the first round also imports what transformers loads lazily
        started = time.perf_counter()
        for load in (load_tokenizer, load_model):
            with pytest.raises(FrameworkError) as error:
                load(cfg)
            message = str(error.value)
            assert "\n" not in message and "not in the local cache and the hub does not answer" in message
            assert "GGUF file" in message and "requirements-weights.txt" in message
        assert not timed or time.perf_counter() - started < 3  # the hub client's retries take 23 s per file
    assert no_network and {host for host, _ in no_network} == {"huggingface.co"}


def test_an_alignment_text_tower_by_hub_name_offline_fails_within_seconds(no_network: list[tuple]) -> None:
    from transformers import AutoTokenizer

    from plugins.alignment.model import _load

    started = time.perf_counter()
    with pytest.raises(FrameworkError, match=r"model.text.name='example-org/.*local transformers directory"):
        _load("model.text.name", HUB_NAME, AutoTokenizer.from_pretrained)
    assert time.perf_counter() - started < 5 and no_network


@pytest.mark.slow  # imports timm and torchvision
def test_a_pretrained_image_tower_offline_names_the_local_options(no_network: list[tuple]) -> None:
    import timm  # noqa: F401 - imported before the clock starts
    import timm.data  # noqa: F401

    from plugins.alignment.config import ImageTowerConfig
    from plugins.alignment.model import image_tower

    started = time.perf_counter()
    with pytest.raises(FrameworkError) as error:
        image_tower(ImageTowerConfig(name="vit_tiny_patch16_224", pretrained=True, kwargs_by_name=None))
    assert time.perf_counter() - started < 5
    message = str(error.value)
    assert "\n" not in message and "model.image.checkpoint_path=" in message and "local-dir:" in message


def test_hf_hub_offline_needs_no_probe_at_all(no_network: list[tuple], monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.hub import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False and no_network == []


def test_a_released_whisper_name_offline_fails_in_one_line_before_any_download(
        no_network: list[tuple], tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import whisper

    from plugins.speech.config import SpeechModelConfig
    from plugins.speech.model import build_whisper

    def no_download(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("whisper's download was reached")

    monkeypatch.setattr(whisper, "_download", no_download)
    started = time.perf_counter()
    with pytest.raises(FrameworkError) as error:
        build_whisper(SpeechModelConfig(name="base", download_root=str(tmp_path)))
    assert time.perf_counter() - started < 5
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "base.pt") in message and "openaipublic" in message
    assert "model.download_root" in message and "CTranslate2" in message
    assert {host for host, _ in no_network} == {"openaipublic.azureedge.net"}
