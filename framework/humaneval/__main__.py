"""``python -m framework.humaneval``: blind human evaluation of a trained run, and an LLM judge.

    python -m framework.humaneval export RUN [--n 150] [--baseline RUN2] [--interface pairwise|rating]
    python -m framework.humaneval import RUN ANNOTATIONS.json
    python -m framework.humaneval judge RUN --judge PATH

``export`` writes ``RUN/humaneval/annotate/{tasks.json,config.xml}`` (the Label Studio project)
and ``RUN/humaneval/key.json`` (which side is which: keep it from annotators); ``import`` reads
the project's JSON export; ``judge`` scores the same pairs with a local causal LM. Both write their
results into the run: ``summary.json`` (``human/*``, ``judge/*``, success verdicts checked again)
and ``report.html``. Exit codes: 0 done; 2 a problem the user fixes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    from framework.humaneval.export import DEFAULT_GOLD_RATE, DEFAULT_N
    from framework.humaneval.judge import TIE_MARGIN

    p = argparse.ArgumentParser(prog="python -m framework.humaneval", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="sample blind pairs and write Label Studio tasks")
    e.add_argument("run_dir", type=Path, help="a trained run's directory")
    e.add_argument("--n", type=int, default=DEFAULT_N, help="inputs to sample, stratified by slice")
    e.add_argument("--baseline", type=Path, help="another run to compare with (default: the starting model)")
    e.add_argument("--interface", default="pairwise", choices=("pairwise", "rating"))
    e.add_argument("--split", help="split to sample (default: the run's first evaluated split)")
    e.add_argument("--gold-rate", type=float, default=DEFAULT_GOLD_RATE, help="gold pairs planted per model pair")
    e.add_argument("--weights", type=Path, help="export or checkpoint directory (default: export, else newest checkpoint)")
    e.add_argument("--seed", type=int, default=0)
    i = sub.add_parser("import", help="read a Label Studio JSON export back into the run")
    i.add_argument("run_dir", type=Path)
    i.add_argument("annotations", type=Path, help="the project's JSON export")
    i.add_argument("--seed", type=int, default=0, help="seeds the bootstrap intervals")
    j = sub.add_parser("judge", help="score the exported pairs with a local causal LM, both orders")
    j.add_argument("run_dir", type=Path)
    j.add_argument("--judge", type=Path, required=True, help="a local causal LM directory")
    j.add_argument("--tie-margin", type=float, default=TIE_MARGIN, help="|P(A better) - 0.5| under which it is a tie")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code."""
    from framework.errors import FrameworkError

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "export":
            from framework.humaneval.export import export

            export(args.run_dir, n=args.n, baseline=args.baseline, interface=args.interface, split=args.split,
                   gold_rate=args.gold_rate, seed=args.seed, weights=args.weights)
        elif args.command == "import":
            from framework.humaneval.results import import_annotations

            results = import_annotations(args.run_dir, args.annotations, seed=args.seed)
            o = results["overall"]
            print(f"win {o.get('win_rate', float('nan')):.3f} [{o.get('win_rate_low', float('nan')):.3f}, "
                  f"{o.get('win_rate_high', float('nan')):.3f}], tie {o.get('tie_rate', float('nan')):.3f}, "
                  f"loss {o.get('loss_rate', float('nan')):.3f} over {int(o.get('pairs', 0))} pairs; "
                  f"gold accuracy {results['gold']['accuracy']:.3f}; flagged raters: {results['flagged'] or 'none'}")
        else:
            from framework.humaneval.judge import judge_run

            judge_run(args.run_dir, args.judge, margin=args.tie_margin)
    except FrameworkError as exc:  # data errors included: they name the file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
