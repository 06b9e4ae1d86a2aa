"""SIGTERM to a training process: it saves a checkpoint and exits cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from framework.training import latest_checkpoint
from framework.training.checkpoint import load_state

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from engine_toy import NoisyRegression, TinyTask, make_cfg, make_run
    from framework.training import Engine, Interrupted

    run_dir = Path(sys.argv[1])
    try:
        with Engine(make_cfg(max_steps=100_000, log_every=50), make_run(run_dir)) as engine:
            model = engine.setup(TinyTask())
            for batch in engine.steps(engine.dataloader(NoisyRegression())):
                out = model(batch)
                engine.backward(out["loss"], out)
                if engine.state.step == 3:
                    print("READY", flush=True)
                time.sleep(0.005)
    except Interrupted as stop:
        print("INTERRUPTED", stop.step, stop.checkpoint, flush=True)
        sys.exit(0)
    sys.exit(3)
    """
)


def read_line(stream, timeout: float) -> str | None:
    """The next line of ``stream``, or ``None`` when none arrives within ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


@pytest.mark.slow
def test_sigterm_saves_and_exits_zero(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.getcwd()])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = read_line(proc.stdout, timeout=120)
        if line is None or line.strip() != "READY":
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"no READY line from the training process (got {line!r}): {err[-3000:]}")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    word, step, path = out.split()
    assert word == "INTERRUPTED"
    found = latest_checkpoint(tmp_path / "run")
    assert found is not None and str(found) == path
    assert load_state(found)["train_state"]["step"] == int(step) >= 3
