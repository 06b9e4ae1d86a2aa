"""``python -m framework.monitoring``: check a new batch for drift, or score a labelled one.

    python -m framework.monitoring outputs/vision/<run> new_batch.jsonl
    python -m framework.monitoring outputs/vision/<run> new_batch.jsonl --review-share 0.05 --fail-on-drift
    python -m framework.monitoring evaluate outputs/vision/<run> labelled_batch.jsonl --max-increase error_rate=0.05

The drift check writes ``RUN_DIR/monitor/{drift.json,drift_figures/,review_tasks.json}``; both
append one entry to ``RUN_DIR/monitor/history.jsonl`` and rebuild ``RUN_DIR/monitor/report.html``
(``--out`` elsewhere). Exit codes: 0 done (drift or not, unless ``--fail-on-drift``; no metric
past its threshold); 2 a problem the user fixes (a missing run or manifest, bad data, an unknown
metric); 4 drift found with ``--fail-on-drift``; 5 ``evaluate``: a metric's error rate rose past
its allowed increase over the launch evaluation (one ``ALERT:`` line on stderr).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DRIFT_EXIT_CODE = 4
DEGRADED_EXIT_CODE = 5


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; defaults are :class:`framework.monitoring.DriftConfig`'s."""
    from framework.monitoring.drift import DriftConfig

    d = DriftConfig()
    p = argparse.ArgumentParser(prog="python -m framework.monitoring", description=__doc__.split("\n")[0],
                                epilog="python -m framework.monitoring evaluate --help: score a labelled batch")
    p.add_argument("run_dir", type=Path, help="a trained run's directory (python -m framework output)")
    p.add_argument("manifest", type=Path, help="the new batch: a manifest (JSONL/CSV, labels optional) or folder")
    _common(p)
    p.add_argument("--review-share", type=float, default=d.review_share, help="share of the batch sent for review")
    p.add_argument("--alpha", type=float, default=d.alpha, help="significance level of every test")
    p.add_argument("--psi", type=float, default=d.psi_threshold, help="PSI from which a shift counts as drift")
    p.add_argument("--reference-split", default=d.reference_split, help="the run's split to compare with")
    p.add_argument("--max-reference", type=int, default=d.max_reference, help="reference subsample size")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--fail-on-drift", action="store_true", help=f"exit with code {DRIFT_EXIT_CODE} on drift")
    return p.parse_args(argv)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, help="export or checkpoint directory (default: RUN_DIR/export, "
                                                "else the newest checkpoint)")
    p.add_argument("--root", type=Path, help="what the batch's relative paths resolve against (default: its folder)")
    p.add_argument("--format", default="auto", help="the batch's reader (default: from the extension)")
    p.add_argument("--out", type=Path, help="output directory (default: RUN_DIR/monitor)")
    p.add_argument("--name", help="the batch's name in history.jsonl (default: its folder or manifest stem)")


def parse_evaluate_args(argv: list[str]) -> argparse.Namespace:
    """The ``evaluate`` command line."""
    from framework.monitoring.history import DEFAULT_MAX_INCREASE

    default = " ".join(f"{k}={v:g}" for k, v in DEFAULT_MAX_INCREASE.items())
    p = argparse.ArgumentParser(prog="python -m framework.monitoring evaluate",
                                description="Score a labelled production batch; append its error rates (with 95%% "
                                            "Wilson intervals) to RUN_DIR/monitor/history.jsonl and compare them "
                                            "with the run's launch evaluation.")
    p.add_argument("run_dir", type=Path, help="a trained and evaluated run's directory")
    p.add_argument("manifest", type=Path, help="the labelled batch: a manifest with labels, or a class-per-folder tree")
    _common(p)
    p.add_argument("--max-increase", action="append", metavar="METRIC=INCREASE",
                   help=f"alert (exit {DEGRADED_EXIT_CODE}) when METRIC's error rate exceeds its launch figure by more "
                        f"than INCREASE; repeat for several; METRIC is error_rate, max_class_error_rate, "
                        f"class/NAME or slice/FIELD=VALUE (default: {default})")
    return p.parse_args(argv)


def evaluate_main(argv: list[str]) -> int:
    """``evaluate``: return 0, or :data:`DEGRADED_EXIT_CODE` with one ``ALERT:`` line per degraded metric."""
    from framework.errors import FrameworkError
    from framework.monitoring.evaluate import evaluate_batch
    from framework.monitoring.history import parse_max_increase

    args = parse_evaluate_args(argv)
    try:
        thresholds = None if args.max_increase is None else parse_max_increase(args.max_increase)
        result = evaluate_batch(args.run_dir, args.manifest, max_increase=thresholds, name=args.name,
                                out_dir=args.out, weights=args.weights, root=args.root, format=args.format)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.alerts:
        print(f"ALERT: batch {result.entry.batch}: " + "; ".join(a.line() for a in result.alerts), file=sys.stderr)
        return DEGRADED_EXIT_CODE
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the monitor (or ``evaluate``); return the exit code."""
    from framework.errors import FrameworkError
    from framework.monitoring.drift import DriftConfig
    from framework.monitoring.monitor import monitor

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["evaluate"]:
        return evaluate_main(argv[1:])
    args = parse_args(argv)
    cfg = DriftConfig(alpha=args.alpha, psi_threshold=args.psi, review_share=args.review_share,
                      reference_split=args.reference_split, max_reference=args.max_reference, seed=args.seed)
    try:
        report = monitor(args.run_dir, args.manifest, cfg=cfg, out_dir=args.out, weights=args.weights,
                         root=args.root, format=args.format, name=args.name)
    except FrameworkError as exc:  # data errors included: they name the file and line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return DRIFT_EXIT_CODE if report.drifted and args.fail_on_drift else 0


if __name__ == "__main__":
    sys.exit(main())
