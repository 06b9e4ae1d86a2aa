"""Loading causal LMs and tokenizers through transformers' Auto classes, and adding LoRA (peft).

Hub names and local directories go through the same ``from_pretrained`` calls; the bundled tiny
model is a local directory. ``trust_remote_code`` stays off unless the config turns it on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

import plugins
from framework.errors import FrameworkError
from plugins.text.config import TextModelConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(plugins.__file__).resolve().parents[1]
DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_name(name: str) -> str:
    """A local directory (relative to the working directory, else the repository) or a hub name."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.absolute())
    if not path.is_absolute() and (REPO_ROOT / path).is_dir():
        return str(REPO_ROOT / path)
    return name


def _common(cfg: TextModelConfig) -> dict[str, Any]:
    return {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code,
            "local_files_only": cfg.local_files_only}


def _load_error(what: str, name: str, cfg: TextModelConfig, exc: Exception) -> FrameworkError:
    hint = (" (model.local_files_only=true: set it false to download from the hub)"
            if cfg.local_files_only and not Path(name).exists() else "")
    return FrameworkError(f"cannot load the {what} {name!r}{hint}: {type(exc).__name__}: {exc}")


def load_tokenizer(cfg: TextModelConfig) -> Any:
    """``AutoTokenizer.from_pretrained`` of ``model.tokenizer`` (or ``model.name``), with a pad
    token (the eos token when the tokenizer has none)."""
    from transformers import AutoTokenizer

    name = resolve_name(cfg.tokenizer or cfg.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **_common(cfg))
    except Exception as exc:  # noqa: BLE001 - every loading failure is the user's to fix
        raise _load_error("tokenizer", name, cfg, exc) from None
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
    kwargs: dict[str, Any] = {"dtype": DTYPES[cfg.dtype]}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.lora.quantize:
        kwargs["quantization_config"] = quantization_config(cfg.lora.quantize)
    try:
        if meta:
            config = AutoConfig.from_pretrained(name, **_common(cfg))
            if kwargs["dtype"] == "auto":
                kwargs["dtype"] = getattr(config, "dtype", None) or torch.float32
            kwargs.pop("quantization_config", None)
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code, **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(name, **_common(cfg), **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise _load_error("model", name, cfg, exc) from None
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora.rank > 0:
        model = add_lora(model, cfg)
    return model


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
