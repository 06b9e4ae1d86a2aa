"""``python -m framework.data split SOURCE OUT [--val F] [--test F] [--seed N] [--group-by FIELD] [--stratify FIELD]``.

Makes train/val/test manifests from one source (see :mod:`framework.data.split`). Exit status 0 on
success, 2 on bad input (the one-line error names the file and the fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from framework.data.errors import DataError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m framework.data", description="Data tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("split", help="make train/val/test manifests from one source",
                           description="Split one source into OUT/train.jsonl, val.jsonl, test.jsonl, "
                                       "stratified by label and grouped so no group crosses splits.")
    split.add_argument("source", type=Path, help="a manifest, a class folder, a chat file or a Hugging Face dataset")
    split.add_argument("out", type=Path, help="folder the manifests, split.json and datacard.yaml go to")
    split.add_argument("--val", type=float, default=0.1, help="fraction for val (default 0.1)")
    split.add_argument("--test", type=float, default=0.1, help="fraction for test (default 0.1)")
    split.add_argument("--seed", type=int, default=0, help="seed of the assignment (default 0)")
    split.add_argument("--group-by", default=None, help="a field (speaker, source, patient) whose values never cross splits")
    split.add_argument("--stratify", default="label", help="the field whose distribution each split keeps (default label; '' for none)")
    split.add_argument("--format", default="auto", help="the source's data.format (default auto)")
    split.add_argument("--root", type=Path, default=None, help="data root media resolve against (default: the source's folder)")
    return parser


def split_command(args: argparse.Namespace) -> int:
    """Run ``split``: read the source, assign groups, write the outputs; prints where they went."""
    from framework.data.dataset_card import read_dataset_card
    from framework.data.readers import read_manifest
    from framework.data.split import split_records, write_split

    source = args.source
    root = args.root or (source if source.is_dir() and not _is_dataset(source) else source.parent)
    records, quarantined = read_manifest(source, root=root, split="all", format=args.format)
    if not records:
        raise DataError(str(source), "no records to split", "Check the source and --format.")
    result = split_records(records, val=args.val, test=args.test, seed=args.seed, group_by=args.group_by,
                           stratify=args.stratify or None)
    card = read_dataset_card(root)
    settings = {"val": args.val, "test": args.test, "seed": args.seed, "group_by": args.group_by,
                "stratify": args.stratify or None, "quarantined": len(quarantined)}
    fields = {"sources": list(card.sources)} if card is not None and card.sources else None
    write_split(result, args.out, source=str(source), settings=settings, card=fields)
    counts = ", ".join(f"{n} {len(r)}" for n, r in result.splits.items())
    print(f"split {source}: {counts} (groups {result.groups}); wrote {args.out}/train.jsonl, val.jsonl, test.jsonl, "
          f"split.json, datacard.yaml")
    return 0


def _is_dataset(path: Path) -> bool:
    from framework.data.readers.hf import is_hf_source

    return is_hf_source(path)


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return split_command(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
