"""``python -m framework.annotation report EXPORT [--gold GOLD] [--gold-field F] [--out DIR]``.

Agreement, gold accuracy, adjudication and the review queue from an annotation export alone (no
media needed); see :mod:`framework.annotation.report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m framework.annotation",
                                     description="Annotation tools that need only the annotations.")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="agreement, gold accuracy, adjudication and review queue of an export")
    report.add_argument("export", type=Path, help="a Label Studio JSON export, or JSONL of item_id/annotator/label")
    report.add_argument("--gold", type=Path, help="known answers: JSONL lines of {\"id\", \"label\"}")
    report.add_argument("--gold-field", help="a task-data field holding the known answer")
    report.add_argument("--out", type=Path, help="output folder (default: <export name>_report in the current folder)")
    report.add_argument("--outlier-margin", type=float, default=0.25,
                        help="flag an annotator this far below the others' median kappa (default 0.25)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (2 for a problem with the input)."""
    from framework.annotation.report import write_report
    from framework.errors import FrameworkError

    args = _parser().parse_args(argv)
    out = args.out or Path.cwd() / f"{args.export.stem}_report"
    try:
        if not args.export.is_file():
            raise FrameworkError(f"{args.export}: no such file; pass a Label Studio JSON export or an annotations JSONL")
        text, written = write_report(args.export, out, gold_path=args.gold, gold_field=args.gold_field,
                                     outlier_margin=args.outlier_margin)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    print("Wrote: " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
