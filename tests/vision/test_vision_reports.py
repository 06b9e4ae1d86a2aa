"""A vision run's report.html, drift on planted batches, the review sample, and planted forgetting.

One tiny run on the colour folder is shared; the monitor reads it as a deployed model would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from framework.monitoring import DriftConfig, monitor
from framework.testing import run_framework
from framework.training import latest_checkpoint
from html_checks import assert_self_contained, embedded_images, section_ids
from vision_fixtures import COLOURS, write_folder, write_image

FAST = ["+modality=vision", "model.image_size=16", "++model.kwargs.depth=1", "++model.kwargs.embed_dim=32",
        "trainer.epochs=6", "trainer.batch_size=8", "trainer.progress=false", "trainer.device=cpu",
        "data.gates.balance.min_per_class=1"]


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run dir, image root) of one trained, evaluated and exported colour classifier."""
    tmp = tmp_path_factory.mktemp("colours")
    root = write_folder(tmp / "images", {"train": 16, "val": 20, "test": 6})
    run = tmp / "run"
    result = run_framework([*FAST, f"data.root={root}"], run)
    assert result.status == "completed" and result.fit_to_ship
    return run, root


def _batch(folder: Path, counts: dict[str, int], brightness: float = 1.0, seed: int = 11,
           labels: dict[str, str] | None = None) -> Path:
    """A JSONL manifest of new colour squares, ``brightness`` times as bright as training's;
    ``labels`` gives each colour's label (none when omitted)."""
    rng = np.random.default_rng(seed)
    lines = []
    for name, n in counts.items():
        colour = tuple(int(c * brightness) for c in COLOURS[name])
        for i in range(n):
            write_image(folder / name / f"{i:03d}.png", colour, rng)
            row = {"path": f"{name}/{i:03d}.png"} | ({"label": labels[name]} if labels else {})
            lines.append(json.dumps(row))
    manifest = folder / "batch.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.mark.slow
def test_report_html_has_every_section_curves_and_embedded_plots(colour_run) -> None:
    run, _ = colour_run
    text = (run / "report.html").read_text()
    assert section_ids(text) == ["verdict", "config", "audit", "curves", "split-val", "split-test", "artifacts"]
    assert "Fit to ship: yes" in text and 'href="audit/datacard.md"' in text
    assert "val acc (right axis)" in text  # the curves and their caption
    images = embedded_images(text)
    # curves + per split: the per-class bar chart, the confusion matrix and the reliability diagram
    assert len(images) == 1 + 2 * 3
    assert "Calibration (<code>test</code>)" in text
    assert "Robustness" in text and "brightness_dark" in text
    assert 'href="export"' in text and "model.safetensors" in text and "checkpoints/step_" in text
    assert_self_contained(text)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["fit_to_ship"] is True and summary["enforce_success"] is True
    assert set(json.loads((run / "eval" / "reports.json").read_text())["splits"][0]) >= {"per_class", "metrics"}


@pytest.mark.slow
def test_drift_found_on_darker_skewed_batch_and_not_on_a_same_distribution_one(colour_run, tmp_path: Path) -> None:
    run, _ = colour_run
    same = monitor(run, _batch(tmp_path / "same", {"red": 20, "green": 20, "blue": 20}), out_dir=tmp_path / "m1")
    assert same.drifted == [], [(s.name, s.verdict, s.p_value, s.psi) for s in same.signals]
    shifted_manifest = _batch(tmp_path / "shifted", {"red": 44, "green": 8, "blue": 8}, brightness=0.5, seed=12)
    shifted = monitor(run, shifted_manifest, out_dir=tmp_path / "m2")
    names = {s.name for s in shifted.signals}
    assert {"input/brightness", "input/contrast", "input/mode", "input/width", "model/confidence",
            "model/predicted_class", "model/scores"} <= names
    assert {"input/brightness", "model/predicted_class"} <= set(shifted.drifted)
    assert shifted.signal("input/brightness").summary["batch_mean"] < shifted.signal("input/brightness").summary[
        "reference_mean"]
    assert shifted.signal("input/mode").verdict == "stable"  # every image is still RGB
    payload = json.loads((tmp_path / "m2" / "drift.json").read_text())
    assert payload["verdict"] == "drift" and payload["reference_size"] == 60 and payload["batch_size"] == 60
    page = (tmp_path / "m2" / "report.html").read_text()
    assert section_ids(page) == ["history", "drift"] and "input/brightness" in page
    assert len(embedded_images(page)) >= 6  # the PSI history and one plot per scalar or categorical signal
    (entry,) = [json.loads(line) for line in (tmp_path / "m2" / "history.jsonl").read_text().splitlines()]
    assert entry["kind"] == "drift" and entry["batch"] == "batch" and entry["size"] == 60
    assert set(entry["drifted"]) == set(shifted.drifted) and entry["signals"]["input/brightness"]["verdict"] == "drift"
    assert_self_contained(page)


@pytest.mark.slow
def test_review_sample_has_the_configured_size_and_strata(colour_run, tmp_path: Path) -> None:
    run, _ = colour_run
    manifest = _batch(tmp_path / "batch", {"red": 30, "green": 20, "blue": 10}, seed=13)
    report = monitor(run, manifest, cfg=DriftConfig(review_share=0.1), out_dir=tmp_path / "out")
    assert report.review["size"] == 6
    assert report.review["strata"] == {"red": 3, "green": 2, "blue": 1}  # the model predicts every colour right
    tasks = json.loads((tmp_path / "out" / "review_tasks.json").read_text())
    assert len(tasks) == 6 and {t["meta"]["stratum"] for t in tasks} == {"red", "green", "blue"}
    assert all(t["data"]["image"].startswith("/data/local-files/?d=") for t in tasks)


@pytest.mark.slow
def test_monitor_command_line_exit_codes(colour_run, tmp_path: Path, capsys) -> None:
    from framework.monitoring.__main__ import DRIFT_EXIT_CODE, main

    run, _ = colour_run
    manifest = _batch(tmp_path / "dark", {"red": 30, "green": 15, "blue": 15}, brightness=0.4, seed=14)
    args = [str(run), str(manifest), "--out", str(tmp_path / "o"), "--review-share", "0.05"]
    assert main([*args, "--fail-on-drift"]) == DRIFT_EXIT_CODE == 4
    assert json.loads((tmp_path / "o" / "drift.json").read_text())["review"]["size"] == 3
    assert main(args) == 0  # drift is reported, not failed, without --fail-on-drift
    assert main([str(run), str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_appends_error_rates_and_alerts_when_they_rise(colour_run, tmp_path: Path, capsys) -> None:
    from framework.monitoring.__main__ import DEGRADED_EXIT_CODE, main

    run, _ = colour_run
    out = tmp_path / "monitor"
    right = _batch(tmp_path / "good", {"red": 10, "green": 10, "blue": 10}, labels={c: c for c in COLOURS}, seed=15)
    assert main(["evaluate", str(run), str(right), "--out", str(out)]) == 0
    # Half the blue squares filed as red: the model (right) now disagrees with their labels.
    wrong = _batch(tmp_path / "relabelled", {"red": 10, "green": 10, "blue": 10},
                   labels={"red": "red", "green": "green", "blue": "red"}, seed=16)
    code = main(["evaluate", str(run), str(wrong), "--out", str(out), "--name", "week-2",
                 "--max-increase", "error_rate=0.1", "--max-increase", "class/green=0.5"])
    assert code == DEGRADED_EXIT_CODE == 5
    (alert,) = capsys.readouterr().err.strip().splitlines()
    assert alert.startswith("ALERT: batch week-2: error_rate rose from 0.0000 at launch to 0.3333")
    first, second = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert first["kind"] == second["kind"] == "evaluate" and second["batch"] == "week-2"
    assert first["rates"]["error_rate"]["rate"] == 0.0 and first["alerts"] == []
    assert second["rates"]["error_rate"]["errors"] == 10 and second["rates"]["error_rate"]["n"] == 30
    assert second["rates"]["class/red"]["rate"] == pytest.approx(0.5) and "class/blue" not in second["rates"]
    assert second["changes"]["error_rate"]["beyond_noise"] and second["launch_split"] == "test"
    assert second["max_increase"] == {"error_rate": 0.1, "class/green": 0.5}
    assert second["weights"] == str(run / "export")  # the export is tried first
    page = (out / "report.html").read_text()
    assert section_ids(page) == ["history"] and "week-2" in page and "ALERT" in page
    assert len(embedded_images(page)) == 1
    assert main(["evaluate", str(run), str(right), "--out", str(out), "--max-increase", "class/nope=0.1"]) == 2
    assert "class/nope" in capsys.readouterr().err


def _swapped_folder(root: Path) -> Path:
    """The colour folder with the labels rotated: red squares filed as green, green as blue, blue as red."""
    rng = np.random.default_rng(5)
    rotate = {"red": "green", "green": "blue", "blue": "red"}
    for split, n in (("train", 16), ("val", 4)):
        for colour, label in rotate.items():
            for i in range(n):
                write_image(root / split / label / f"{i:03d}.png", COLOURS[colour], rng)
    return root


@pytest.mark.slow
def test_retention_measures_planted_forgetting(colour_run, tmp_path: Path) -> None:
    run, root = colour_run
    new_data = _swapped_folder(tmp_path / "swapped")
    result = run_framework([*FAST, f"data.root={new_data}", "data.test=null", f"trainer.init_from={run / 'export'}",
                            f"evaluation.retention={root / 'test'}", "stages=[train,evaluate]",
                            "++success={retention/accuracy_drop:'<=0.02'}"], tmp_path / "finetune")
    metrics = result.metrics
    assert metrics["retention/start/accuracy"] == 1.0  # the starting weights knew the original task
    assert metrics["retention/accuracy"] < 0.5  # the fine-tune overwrote it
    assert metrics["retention/accuracy_drop"] == pytest.approx(1.0 - metrics["retention/accuracy"])
    failed = [v.criterion.metric for v in result.verdicts if not v.passed]
    assert "retention/accuracy_drop" in failed and result.fit_to_ship is False
    text = (tmp_path / "finetune" / "report.html").read_text()
    assert "retention" in section_ids(text) and "starting weights" in text
    assert "## Retention (forgetting)" in (tmp_path / "finetune" / "report.md").read_text()


def test_retention_costs_nothing_without_forgetting(colour_run, tmp_path: Path) -> None:
    run, root = colour_run
    result = run_framework([*FAST, f"data.root={root}", f"trainer.init_from={latest_checkpoint(run)}", "trainer.epochs=1",
                            "evaluation.retention=test", "evaluation.splits=[val]", "stages=[train,evaluate]"],
                           tmp_path / "again")
    assert result.metrics["retention/accuracy_drop"] <= 0.0 + 1e-9


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# Injected into a copy of the page: records script errors and failed resources, then whether every
# image decoded, into the DOM that --dump-dom prints.
_CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || (e.target && e.target.src))), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const out = document.createElement('pre');
  out.id = 'check';
  out.textContent = JSON.stringify({images: imgs.length, broken: bad, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (Debian package chromium)")
def test_report_opens_in_headless_chromium(colour_run, tmp_path: Path) -> None:
    run, _ = colour_run
    page = tmp_path / "report_check.html"
    page.write_text((run / "report.html").read_text().replace("<head>", "<head>" + _CHECK, 1))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
             "--v=0", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    check = json.loads(dom.stdout.split('<pre id="check">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    # curves, then per split (val, test) the per-class bars and the reliability diagram, and the confusion matrix
    assert check == {"images": 7, "broken": 0, "errors": []}
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "report_check" in line]
    assert not console, console
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,1600", f"--screenshot={shot}", (run / "report.html").as_uri()],
                   capture_output=True, text=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 1600)
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # something was drawn


@pytest.mark.slow
def test_evaluate_without_training_scores_the_starting_weights(tmp_path: Path) -> None:
    from framework.stage import STARTING_WEIGHTS

    root = write_folder(tmp_path / "images", {"train": 4, "val": 6, "test": 0})
    result = run_framework([*FAST, f"data.root={root}", "data.test=null", "stages=[evaluate]", "~modality.robustness"],
                           tmp_path / "run")
    assert result.status == "completed" and result.weights == STARTING_WEIGHTS and "accuracy" in result.metrics
    assert STARTING_WEIGHTS in (tmp_path / "run" / "report.md").read_text()
