"""``python -m framework.monitoring RUN_DIR NEW_MANIFEST``: check a new batch for drift.

    python -m framework.monitoring outputs/vision/<run> new_batch.jsonl
    python -m framework.monitoring outputs/vision/<run> new_batch.jsonl --review-share 0.05 --fail-on-drift

Writes ``RUN_DIR/monitor/{drift.json,report.html,review_tasks.json}`` (``--out`` elsewhere).
Exit codes: 0 done (drift or not, unless ``--fail-on-drift``); 2 a problem the user fixes (a
missing run or manifest, bad data); 4 drift found with ``--fail-on-drift``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DRIFT_EXIT_CODE = 4


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; defaults are :class:`framework.monitoring.DriftConfig`'s."""
    from framework.monitoring.drift import DriftConfig

    d = DriftConfig()
    p = argparse.ArgumentParser(prog="python -m framework.monitoring", description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, help="a trained run's directory (python -m framework output)")
    p.add_argument("manifest", type=Path, help="the new batch: a manifest (JSONL/CSV, labels optional) or folder")
    p.add_argument("--weights", type=Path, help="export or checkpoint directory (default: RUN_DIR/export, "
                                                "else the newest checkpoint)")
    p.add_argument("--root", type=Path, help="what the batch's relative paths resolve against (default: its folder)")
    p.add_argument("--format", default="auto", help="the batch's reader (default: from the extension)")
    p.add_argument("--out", type=Path, help="output directory (default: RUN_DIR/monitor)")
    p.add_argument("--review-share", type=float, default=d.review_share, help="share of the batch sent for review")
    p.add_argument("--alpha", type=float, default=d.alpha, help="significance level of every test")
    p.add_argument("--psi", type=float, default=d.psi_threshold, help="PSI from which a shift counts as drift")
    p.add_argument("--reference-split", default=d.reference_split, help="the run's split to compare with")
    p.add_argument("--max-reference", type=int, default=d.max_reference, help="reference subsample size")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--fail-on-drift", action="store_true", help=f"exit with code {DRIFT_EXIT_CODE} on drift")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the monitor; return the exit code."""
    from framework.errors import FrameworkError
    from framework.monitoring.drift import DriftConfig
    from framework.monitoring.monitor import monitor

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = DriftConfig(alpha=args.alpha, psi_threshold=args.psi, review_share=args.review_share,
                      reference_split=args.reference_split, max_reference=args.max_reference, seed=args.seed)
    try:
        report = monitor(args.run_dir, args.manifest, cfg=cfg, out_dir=args.out, weights=args.weights,
                         root=args.root, format=args.format)
    except FrameworkError as exc:  # data errors included: they name the file and line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return DRIFT_EXIT_CODE if report.drifted and args.fail_on_drift else 0


if __name__ == "__main__":
    sys.exit(main())
