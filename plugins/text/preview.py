"""Print a few rendered training examples with the trained tokens marked.

Usage, with the same overrides as a run::

    python -m plugins.text.preview +modality=text [modality.preview=5] [data.train=...]
    python -m plugins.text.preview +modality=text_dpo

Each example is shown as the chat template renders it, with the tokens the loss sees wrapped in
``[[...]]`` (SFT: assistant tokens; DPO: each answer), then its token count and whether it was
truncated. Nothing is trained.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from plugins.text.chat import Encoded

START, END = "[[", "]]"


def marked(tokenizer: Any, enc: Encoded) -> str:
    """The example's text with trained spans wrapped in ``[[`` ``]]``."""
    out, span, inside = [], [], False
    for tid, m in zip(enc.input_ids, enc.mask):
        if bool(m) != inside:
            out.append(tokenizer.decode(span))
            span, inside = [], bool(m)
            out.append(START if inside else "")
            if not inside:
                out[-2] += END
        span.append(tid)
    out.append(tokenizer.decode(span) + (END if inside else ""))
    return "".join(out)


def describe(tokenizer: Any, enc: Encoded) -> str:
    """One line of counts under an example."""
    note = f", TRUNCATED from {enc.length}" if enc.truncated else ""
    return f"({len(enc.input_ids)} tokens, {enc.trained} trained{note})"


def preview(overrides: Sequence[str], out: Any = sys.stdout) -> None:
    """Compose the config from ``overrides`` and print ``modality.preview`` training examples."""
    from pathlib import Path
    import tempfile

    from omegaconf import OmegaConf

    from framework import RunContext, compose_config, modality_sections
    from plugins.text.modality import TextModality

    cfg = compose_config(list(overrides))
    modality = TextModality()
    sections = modality_sections(cfg, modality)
    ctx = RunContext(run_dir=Path(tempfile.mkdtemp(prefix="text-preview-")), modality=sections["modality"],
                     model=sections["model"], data=OmegaConf.to_object(cfg.data), seed=int(cfg.seed), plugins=None)
    data = modality.load_data(ctx)
    tok = modality.tokenizer(ctx)
    records = data.records("train")[: ctx.modality.preview]
    encoded = data.extras["text_encoding"]["splits"]["train"]
    print(f"# {len(records)} of {len(data.records('train'))} training examples; trained tokens in {START} {END}",
          file=out)
    for record in records:
        print(f"\n--- {record.id} ({record.source})", file=out)
        value = encoded[record.id]
        for label, enc in (zip(("chosen", "rejected"), value) if isinstance(value, tuple) else [("", value)]):
            if label:
                print(f"[{label}]", file=out)
            print(marked(tok, enc), file=out)
            print(describe(tok, enc), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m plugins.text.preview``."""
    from framework import FrameworkError

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("+modality=") for a in args):
        args.insert(0, "+modality=text")
    try:
        preview(args)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
