"""``python -m framework.annotation report|push|pull|merge``.

* ``report EXPORT [--gold GOLD] [--gold-field F] [--out DIR]``: agreement, gold accuracy,
  adjudication and the review queue from an annotation export alone (no media needed); see
  :mod:`framework.annotation.report`.
* ``push TASKS --project TITLE [--interface I] [--classes a,b] [--media-root DIR]`` and
  ``pull --project TITLE --out FILE``: tasks to, and finished annotations from, a running Label
  Studio (``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``); see :mod:`framework.annotation.server`.
* ``merge RUN_DIR EXPORT... [--out MANIFEST] [--min-kappa K]``: reviewed items into a new training
  manifest; see :mod:`framework.annotation.merge`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.annotation.interfaces import INTERFACES
from framework.wording import plural


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m framework.annotation",
                                     description="Annotation tools: reports from an export, a running Label Studio (push, pull), "
                                                 "reviewed items into training (merge).")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="agreement, gold accuracy, adjudication and review queue of an export")
    report.add_argument("export", type=Path, help="a Label Studio JSON export, or JSONL of item_id/annotator/label")
    report.add_argument("--gold", type=Path, help="known answers: JSONL lines of {\"id\", \"label\"}")
    report.add_argument("--gold-field", help="a task-data field holding the known answer")
    report.add_argument("--out", type=Path, help="output folder (default: <export name>_report in the current folder)")
    report.add_argument("--outlier-margin", type=float, default=0.25,
                        help="flag an annotator this far below the others' median kappa (default 0.25)")
    push = commands.add_parser("push", help="send tasks with pre-annotations to a running Label Studio")
    push.add_argument("tasks", type=Path, help="a task file: annotation/preannotations.json, monitor/review_tasks.json, "
                                               "a misalignment review queue")
    push.add_argument("--project", required=True, help="the project's title; created when absent, reused otherwise")
    push.add_argument("--interface", choices=INTERFACES, help="the labelling interface (default: inferred from the tasks)")
    push.add_argument("--classes", help="comma-separated class names for a classification interface "
                                        "(default: the classes the tasks' predictions name)")
    push.add_argument("--media-root", type=Path, help="what the tasks' relative media paths resolve against "
                                                      "(the batch folder, or data.root for preannotations)")
    pull = commands.add_parser("pull", help="write a project's finished annotations as a Label Studio JSON export")
    pull.add_argument("--project", required=True, help="the project's title")
    pull.add_argument("--out", type=Path, required=True, help="the export file to write")
    merge = commands.add_parser("merge", help="fold reviewed items into a new training manifest")
    merge.add_argument("run_dir", type=Path, help="the trained run whose data the corrections join")
    merge.add_argument("exports", type=Path, nargs="+", help="pulled Label Studio exports")
    merge.add_argument("--out", type=Path, help="the new manifest, under the run's data.root "
                                                "(default: DATA_ROOT/corrections/<UTC time>/train.jsonl)")
    merge.add_argument("--min-kappa", type=float, help="the agreement gate over items several annotators labelled "
                                                       "(default: the run's data.gates.consistency.min_kappa)")
    return parser


def _push(args: argparse.Namespace) -> str:
    from framework.annotation.label_studio import load_tasks
    from framework.annotation.server import ServerSettings, push

    settings = ServerSettings.from_env()
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else []
    done = push(load_tasks(args.tasks), title=args.project, settings=settings, interface=args.interface,
                classes=classes, media_root=args.media_root)
    return (f"{done.created} tasks added to project {args.project!r} ({done.interface}), {done.skipped} already there: "
            f"{done.url}")


def _pull(args: argparse.Namespace) -> str:
    from framework.annotation.server import ServerSettings, pull

    out, tasks, annotations = pull(title=args.project, settings=ServerSettings.from_env(), out=args.out)
    return f"{tasks} finished tasks ({annotations} annotations) from {args.project!r} -> {out}"


def _merge(args: argparse.Namespace) -> str:
    from datetime import datetime, timezone

    from omegaconf import OmegaConf

    from framework.annotation.merge import merge_corrections
    from framework.compose import stored_run_config, stored_run_context
    from framework.errors import FrameworkError

    config = stored_run_config(args.run_dir)
    for export in args.exports:
        if not export.is_file():
            raise FrameworkError(f"{export}: no such file; pass exports written by python -m framework.annotation pull")
    modality, ctx = stored_run_context(OmegaConf.load(config), args.run_dir)
    data = modality.load_data(ctx)
    now = datetime.now(timezone.utc)
    out = args.out or data.root / "corrections" / now.strftime("%Y%m%dT%H%M%SZ") / "train.jsonl"
    min_kappa = args.min_kappa if args.min_kappa is not None else float(ctx.data.gates.consistency["min_kappa"])
    done = merge_corrections(data, args.exports, out=out, min_kappa=min_kappa, model_version=args.run_dir.name, now=now,
                             label_type=data.label_type_for(modality.label_type))
    lines = [f"{plural(len(done.added), 'item')} added, {len(done.relabelled)} relabelled, {len(done.refused)} refused -> {done.manifest}"]
    if done.agreement:
        lines.append("agreement over {2} items labelled by several annotators: {0} {1:.3f}".format(*done.agreement))
    lines += [f"refused {item}: {why}" for item, why in done.refused.items()]
    lines.append(f"recorded in {done.card}; train on it with data.train={done.manifest}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (2 for a problem with the input)."""
    from framework.annotation.report import write_report
    from framework.errors import FrameworkError

    args = _parser().parse_args(argv)
    if args.command != "report":
        try:
            print({"push": _push, "pull": _pull, "merge": _merge}[args.command](args))
        except FrameworkError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
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
