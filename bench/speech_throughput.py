"""Training throughput of the speech plugin's loop on the engine vs transformers'
``WhisperForConditionalGeneration`` of the same dimensions in a plain loop, and the share of the
plugin's step time spent computing features.

Both loops train a model of the shipped default dimensions (``model=whisper_tiny_scratch``) on
the same data (the bundled corpus, decoded once by the plugin, the same decoder sequences and
collation), on the same device and precision, with AdamW, a warmup + cosine schedule and
gradient clipping, and compute the same log-mel features on the device per batch. The plugin's
loop adds what the engine gives (seeded fetches, a resumable sampler, non-finite-loss
checks, logging, the final checkpoint) and SpecAugment; the transformers loop computes logits at
every decoder position, the plugin only where the loss needs them.

Each round runs ``2 * steps`` optimizer steps per loop and times the second half (data loading
included). Rounds are paired (``bench/paired.py``): the figure reported is the median of the
rounds' ratios, with their min-max.

Usage::

    python bench/speech_throughput.py --device cpu --steps 10 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from paired import plain_loop, run_rounds, sync

from framework.hookspecs import RunInfo
from framework.modality import RunContext
from framework.testing import prepared
from framework.training import Engine, TrainerConfig
from framework.training.device import autocast, resolve_device, resolve_precision
from plugins.speech.dataset import collate
from plugins.speech.features import LogMel
from plugins.speech.loop import train_asr
from plugins.speech.modality import SpeechModality
from plugins.speech.tokens import tokenizer_for

def load(tmp: Path) -> tuple[RunContext, SpeechModality, object]:
    """The config ``python -m framework +modality=speech`` runs, and its corpus, decoded once."""
    modality, ctx = prepared(["+modality=speech"], tmp)
    return ctx, modality, modality.load_data(ctx)  # type: ignore[return-value]


def train_set(ctx: RunContext, modality: SpeechModality, task, data):
    return modality._dataset(ctx, task, data.records("train"))


def plugin_round(ctx, modality, data, args, run_dir: Path) -> tuple[float, float]:
    """(utterances/s over the timed window, share of a step's time spent on features)."""
    task = modality.build_task(ctx, data)
    cfg = TrainerConfig(max_steps=2 * args.steps, batch_size=args.batch_size, lr=2e-3, warmup_ratio=0.1,
                        device=args.device, progress=False, log_every=args.steps, resume="never",
                        clip_grad_norm=1.0)
    info = RunInfo(run_dir=run_dir, modality="speech", name="bench", config_yaml="")
    with Engine(cfg, info, seed=0) as engine:
        train_asr(engine, task, train_set(ctx, modality, task, data))
        device = engine.device
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    per_s = [r["metrics"]["items_per_s"] for r in rows if r["kind"] == "train"][-1]
    # Features (log-mel + SpecAugment) of the same batches, timed alone, against the step time.
    loader = torch.utils.data.DataLoader(train_set(ctx, modality, task, data), batch_size=args.batch_size,
                                         collate_fn=collate)
    task.train()
    batches = [b["audio"].to(device) for _, b in zip(range(args.steps), loader)]
    sync(device)
    started = time.perf_counter()
    with torch.no_grad():
        for audio in batches:
            task.mel(audio)
    sync(device)
    feature_s = (time.perf_counter() - started) / len(batches)
    return per_s, feature_s / (args.batch_size / per_s)


def hf_round(ctx, modality, data, args) -> float:
    """Utterances/s of transformers' WhisperForConditionalGeneration (same dims) in a plain loop."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    task = modality.build_task(ctx, data)  # for the data pipeline and the dims only
    d = task.dims
    tok = tokenizer_for(None)
    config = WhisperConfig(
        vocab_size=d.n_vocab, num_mel_bins=d.n_mels, d_model=d.n_audio_state,
        encoder_layers=d.n_audio_layer, encoder_attention_heads=d.n_audio_head, encoder_ffn_dim=4 * d.n_audio_state,
        decoder_layers=d.n_text_layer, decoder_attention_heads=d.n_text_head, decoder_ffn_dim=4 * d.n_text_state,
        max_source_positions=d.n_audio_ctx, max_target_positions=d.n_text_ctx, pad_token_id=tok.eot,
        bos_token_id=tok.sot, eos_token_id=tok.eot, decoder_start_token_id=tok.sot, dropout=0.0,
    )
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    model = WhisperForConditionalGeneration(config).to(device).train()
    features = LogMel(d.n_mels).to(device)
    loader = torch.utils.data.DataLoader(train_set(ctx, modality, task, data), batch_size=args.batch_size,
                                         shuffle=True, collate_fn=collate, pin_memory=device.type == "cuda")

    def forward(batch: dict) -> torch.Tensor:
        with autocast(precision, device):
            return model(input_features=features(batch["audio"]), decoder_input_ids=batch["tokens"],
                         labels=batch["labels"]).loss

    return plain_loop([p for p in model.parameters() if p.requires_grad], loader, forward, steps=args.steps, lr=2e-3,
                      weight_decay=0.01, warmup_ratio=0.1, device=device, items_key="audio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per round (after as many warmup)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds (each runs both loops)")
    args = parser.parse_args()
    torch.manual_seed(0)
    shares: list[float] = []

    def plugin(i: int) -> float:
        per_s, share = plugin_round(ctx, modality, data, args, Path(tmp) / f"round{i}")
        shares.append(share)
        return per_s

    with tempfile.TemporaryDirectory() as tmp:
        ctx, modality, data = load(Path(tmp))
        result = run_rounds(args.rounds, lambda i: hf_round(ctx, modality, data, args), plugin, "utt/s")
    device = resolve_device(args.device)
    print(f"device={device} ({resolve_precision('auto', device)}) batch={args.batch_size} steps={args.steps}x2 "
          f"rounds={args.rounds} torch_threads={torch.get_num_threads()}")
    print(result.summary("utterances/s", "transformers Whisper in a plain loop", "plugin/transformers"))
    print(f"share of the plugin's step time spent on features (log-mel + SpecAugment): {statistics.median(shares):.1%}")

if __name__ == "__main__":
    main()
