"""A real Label Studio server for the tests that talk to one, started once per test session.

The server (``label-studio==1.23.2``) pins Django and much else, so it lives in its own
virtualenv; its executable is found through ``LABEL_STUDIO_BIN``, then ``PATH``, then
``.venv-labelstudio/bin/label-studio`` at the repository root. It runs on SQLite in a temporary
data folder, on a free local port, with one user and a known legacy API token, and serves local
files from a temporary document root. Where it cannot start, the tests that need it are skipped
with the reason (and the tail of its log).

The first start of a server creates its SQLite database (Django migrations: most of the start-up
time). With ``LABEL_STUDIO_TEST_CACHE=DIR`` the freshly created database is kept in ``DIR`` (per
executable) and copied into later sessions' data folders, which then start without migrating.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMAIL, PASSWORD, TOKEN = "reviewer@example.com", "framework-tests-1", "framework-test-token-0123456789"
START_TIMEOUT_S = float(os.environ.get("LABEL_STUDIO_START_TIMEOUT", "480"))  # first start migrates SQLite
DATABASE = "label_studio.sqlite3"  # the server's SQLite file in its --data-dir


@dataclass(frozen=True)
class LiveLabelStudio:
    """A running server: where it is, its token, and the folder it serves local files from."""

    url: str
    token: str
    document_root: Path
    log: Path
    started_in_s: float

    def env(self) -> dict[str, str]:
        """The environment ``python -m framework.annotation push|pull`` reads."""
        return {"LABEL_STUDIO_URL": self.url, "LABEL_STUDIO_API_KEY": self.token,
                "LOCAL_FILES_DOCUMENT_ROOT": str(self.document_root)}


def executable() -> str | None:
    """The ``label-studio`` executable: ``LABEL_STUDIO_BIN``, then PATH, then ``.venv-labelstudio``."""
    given = os.environ.get("LABEL_STUDIO_BIN")
    if given:
        return given
    found = shutil.which("label-studio")
    if found:
        return found
    local = ROOT / ".venv-labelstudio" / "bin" / "label-studio"
    return str(local) if local.is_file() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def cached_database(exe: str) -> Path | None:
    """Where ``LABEL_STUDIO_TEST_CACHE`` keeps the migrated database of ``exe``, or ``None`` when unset."""
    folder = os.environ.get("LABEL_STUDIO_TEST_CACHE")
    if not folder:
        return None
    real = Path(exe).resolve()
    key = hashlib.sha1(f"{real}:{real.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    return Path(folder) / f"label_studio-{key}.sqlite3"


def _keep(database: Path, cache: Path) -> None:
    """A consistent copy of the live ``database`` at ``cache`` (SQLite's backup API), written atomically."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial")
    with sqlite3.connect(database) as source, sqlite3.connect(partial) as target:
        source.backup(target)
    partial.replace(cache)


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def start(base: Path):
    """Start a server under ``base``; yields a :class:`LiveLabelStudio`, stops it afterwards."""
    exe = executable()
    if exe is None:
        pytest.skip("no label-studio server: install label-studio==1.23.2 into .venv-labelstudio "
                    "(docs/annotation.md) or set LABEL_STUDIO_BIN")
    document_root, data_dir, log = base / "media", base / "data", base / "server.log"
    document_root.mkdir(parents=True)
    data_dir.mkdir()
    cache = cached_database(exe)
    if cache is not None and cache.is_file():
        shutil.copyfile(cache, data_dir / DATABASE)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
           "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}
    command = [exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(data_dir), "--username", EMAIL, "--password", PASSWORD, "--user-token", TOKEN,
               "--enable-legacy-api-token"]
    began = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base,
                                start_new_session=True)
    try:
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.skip(f"label-studio exited with status {proc.returncode} while starting:\n{_tail(log)}")
            if time.monotonic() - began > START_TIMEOUT_S:
                pytest.skip(f"label-studio did not answer {url}/health within {START_TIMEOUT_S:.0f} s "
                            f"(LABEL_STUDIO_START_TIMEOUT):\n{_tail(log)}")
            time.sleep(1.0)
        if cache is not None and not cache.is_file():
            _keep(data_dir / DATABASE, cache)  # before any test adds a project
        yield LiveLabelStudio(url, TOKEN, document_root, log, time.monotonic() - began)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group, started above
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
