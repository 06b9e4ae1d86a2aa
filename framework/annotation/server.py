"""A running Label Studio: push tasks with the model's pre-annotations, pull finished annotations.

The server is reached with ``label-studio-sdk`` (``pip install 'framework[labelstudio]'``); where
it is and who we are come from the environment, never from a file:

* ``LABEL_STUDIO_URL``: the server, e.g. ``http://localhost:8080``;
* ``LABEL_STUDIO_API_KEY``: an access token (Account & Settings in the UI; a legacy token or a
  personal access token);
* ``LOCAL_FILES_DOCUMENT_ROOT``: needed only for tasks that show local images or audio. It must
  be the same value the server was started with, alongside ``LOCAL_FILES_SERVING_ENABLED=true``.

Media are served by Label Studio's local-files storage: :func:`push` connects a local storage for
the media folder to the project (Label Studio serves a file only under such a storage) and rewrites
each task's ``/data/local-files/?d=`` path to be relative to the document root. The server must
therefore see the media at the same absolute paths as this machine (the same machine, or the same
mount).

Tasks are matched by ``data.item_id``: pushing a task file twice adds only the items the project
does not hold yet. :func:`pull` writes a Label Studio JSON export in which ``completed_by`` is
``{"id", "email"}`` (so annotators are named) and ``predictions`` are the full predictions (so the
model's earlier output travels with each item), the form
:func:`framework.annotation.label_studio.load_tasks` and
:func:`framework.annotation.merge.merge_corrections` read.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from framework.annotation.interfaces import classes_in, infer_interface, label_config
from framework.annotation.label_studio import LOCAL_FILES_PREFIX, MEDIA_KEYS, media_reference
from framework.errors import FrameworkError

log = logging.getLogger(__name__)

URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
DOCUMENT_ROOT_ENV = "LOCAL_FILES_DOCUMENT_ROOT"
STORAGE_TITLE = "framework media"  # the local storage push connects for a media folder


@dataclass(frozen=True)
class ServerSettings:
    """Where the server is and how to reach it.

    Attributes:
        url: The server's base URL.
        api_key: The access token.
        document_root: The server's ``LOCAL_FILES_DOCUMENT_ROOT``, or ``None`` when unset.
    """

    url: str
    api_key: str
    document_root: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ServerSettings":
        """Read :data:`URL_ENV`, :data:`KEY_ENV` and :data:`DOCUMENT_ROOT_ENV`.

        Raises:
            FrameworkError: naming the first required variable that is missing.
        """
        env = os.environ if environ is None else environ
        for name, example in ((URL_ENV, "http://localhost:8080"), (KEY_ENV, "<token from Account & Settings>")):
            if not env.get(name):
                raise FrameworkError(f"{name} is not set; export {name}={example}")
        root = env.get(DOCUMENT_ROOT_ENV)
        return cls(env[URL_ENV].rstrip("/"), env[KEY_ENV], Path(root).absolute() if root else None)


def connect(settings: ServerSettings) -> Any:
    """A ``label_studio_sdk.LabelStudio`` client for ``settings``, checked with one request.

    Raises:
        FrameworkError: when the SDK is not installed or the server refuses or cannot be reached.
    """
    try:
        from label_studio_sdk import LabelStudio
    except ImportError as exc:
        raise FrameworkError("label-studio-sdk is not installed; pip install 'framework[labelstudio]'") from exc
    client = LabelStudio(base_url=settings.url, api_key=settings.api_key)
    try:
        client.users.whoami()
    except Exception as exc:  # the SDK raises ApiError or httpx errors; either way the user fixes the setting
        raise FrameworkError(f"cannot use the Label Studio at {settings.url} ({type(exc).__name__}: "
                             f"{str(exc)[:200]}); check {URL_ENV} and {KEY_ENV}") from exc
    return client


def find_project(client: Any, title: str) -> Any | None:
    """The project titled exactly ``title``, or ``None``."""
    return next((p for p in client.projects.list(title=title) if p.title == title), None)


def ensure_project(client: Any, title: str, config: str) -> Any:
    """The project titled ``title`` with labelling interface ``config``, created when absent.

    An existing project whose interface differs gets ``config`` (Label Studio refuses the change
    when existing annotations do not fit it, and that error is passed on).
    """
    if len(title) < 3:
        raise FrameworkError(f"project title {title!r} is too short; Label Studio needs at least 3 characters")
    project = find_project(client, title)
    if project is None:
        project = client.projects.create(title=title, label_config=config)
        log.info("label studio: created project %r (id %s)", title, project.id)
    elif (project.label_config or "").strip() != config:
        project = client.projects.update(id=project.id, label_config=config)
        log.info("label studio: updated the labelling interface of project %r", title)
    return project


def _local_media(task: Mapping[str, Any]) -> dict[str, str]:
    data = task.get("data") or {}
    out = {}
    for key in MEDIA_KEYS:
        value = data.get(key)
        if isinstance(value, str) and (ref := media_reference(value)) is not None:
            out[key] = ref
    return out


def server_tasks(tasks: Sequence[Mapping[str, Any]], media_root: Path | None,
                 document_root: Path | None) -> tuple[list[dict[str, Any]], set[Path]]:
    """The tasks as Label Studio imports them, and the media folders the server must serve.

    Local media paths (relative to ``media_root``, or absolute) become ``/data/local-files/?d=``
    paths relative to ``document_root``; each task's ``meta.media`` keeps the absolute path so
    :func:`pull` can restore it. Earlier annotations (a review queue's) become predictions named
    ``annotator:<who>``, since their annotators are not users of the server.

    Raises:
        FrameworkError: when tasks show local media and ``document_root`` or ``media_root`` is
            missing, or a file is missing or outside the document root.
    """
    out, folders = [], set()
    for n, task in enumerate(tasks):
        data, meta = dict(task.get("data") or {}), dict(task.get("meta") or {})
        media = _local_media(task)
        if media and document_root is None:
            raise FrameworkError(f"the tasks show local media; set {DOCUMENT_ROOT_ENV} to the document root the "
                                 f"server was started with (and LOCAL_FILES_SERVING_ENABLED=true there)")
        for key, ref in media.items():
            path = Path(ref)
            if not path.is_absolute():
                if media_root is None:
                    raise FrameworkError(f"task {n} names {key} {ref!r} relative to a folder; pass --media-root DIR "
                                         f"(the batch folder for a monitor review sample, data.root for preannotations)")
                path = media_root / path
            path = path.absolute()
            if not path.is_file():
                raise FrameworkError(f"task {n}: {key} file {path} does not exist; check --media-root")
            if not path.is_relative_to(document_root):
                raise FrameworkError(f"task {n}: {path} is outside {DOCUMENT_ROOT_ENV}={document_root}; Label Studio "
                                     f"serves local files only under its document root")
            data[key] = LOCAL_FILES_PREFIX + path.relative_to(document_root).as_posix()
            meta.setdefault("media", {})[key] = str(path)
            folders.add(path.parent)
        predictions = [dict(p) for p in task.get("predictions") or []]
        predictions += [{"model_version": f"annotator:{a.get('completed_by')}", "result": a.get("result") or []}
                        for a in task.get("annotations") or []]
        entry: dict[str, Any] = {"data": data, "predictions": predictions}
        if meta:
            entry["meta"] = meta
        out.append(entry)
    return out, folders


def _connect_storage(client: Any, project_id: int, folders: set[Path]) -> None:
    """A local-files storage per media folder not yet covered by one of the project's storages."""
    have = [Path(s.path) for s in client.import_storage.local.list(project=project_id)]
    for folder in sorted(folders):
        if any(folder.is_relative_to(p) for p in have):
            continue
        client.import_storage.local.create(project=project_id, path=str(folder), title=STORAGE_TITLE,
                                           use_blob_urls=False)
        have.append(folder)
        log.info("label studio: serving media from %s", folder)


def _item_ids(client: Any, project_id: int) -> set[str]:
    return {str((t.data or {}).get("item_id")) for t in client.tasks.list(project=project_id, fields="all")
            if (t.data or {}).get("item_id") is not None}


@dataclass
class PushResult:
    """What :func:`push` did.

    Attributes:
        project_id: The project's id on the server.
        interface: The labelling interface used.
        created: Tasks added.
        skipped: Tasks whose ``item_id`` the project already held.
        url: The project's page.
    """

    project_id: int
    interface: str
    created: int
    skipped: int
    url: str


def push(tasks: Sequence[Mapping[str, Any]], *, title: str, settings: ServerSettings, interface: str | None = None,
         classes: Sequence[str] = (), media_root: Path | None = None, client: Any | None = None) -> PushResult:
    """Create or reuse the project ``title`` and add ``tasks`` (with their predictions) to it.

    Args:
        tasks: Label Studio tasks (a ``preannotate``, monitor or misalignment review file).
        title: The project's title; an existing project of that title is reused.
        settings: Server, token and document root (:meth:`ServerSettings.from_env`).
        interface: One of :data:`framework.annotation.interfaces.INTERFACES`; inferred from the
            tasks when ``None``.
        classes: The class names of a classification interface; default the choices the tasks name.
        media_root: What relative media paths in the tasks resolve against.
        client: An SDK client (default: :func:`connect`).
    """
    interface = interface or infer_interface(tasks)
    config = label_config(interface, list(classes) or classes_in(tasks))
    payload, folders = server_tasks(tasks, Path(media_root).absolute() if media_root else None, settings.document_root)
    client = client or connect(settings)
    project = ensure_project(client, title, config)
    if folders:
        _connect_storage(client, project.id, folders)
    known = _item_ids(client, project.id)
    new = [t for t in payload if str(t["data"].get("item_id")) not in known or t["data"].get("item_id") is None]
    if new:
        client.projects.import_tasks(id=project.id, request=new)
    log.info("label studio: %d tasks added to %r, %d already there", len(new), title, len(payload) - len(new))
    return PushResult(project.id, interface, len(new), len(payload) - len(new), f"{settings.url}/projects/{project.id}")


def _restore(task: dict[str, Any], users: Mapping[int, str], predictions: Mapping[int, list[dict[str, Any]]]) -> dict[str, Any]:
    for ann in task.get("annotations") or []:
        who = ann.get("completed_by")
        if isinstance(who, int):
            ann["completed_by"] = {"id": who, "email": users.get(who, str(who))}
    task["predictions"] = predictions.get(int(task["id"]), [])
    for key, path in ((task.get("meta") or {}).get("media") or {}).items():
        task.setdefault("data", {})[key] = path
    return task


def pull(*, title: str, settings: ServerSettings, out: Path, client: Any | None = None) -> tuple[Path, int, int]:
    """Write the finished tasks of project ``title`` as a Label Studio JSON export.

    Tasks with no annotation are left out; annotators are named by e-mail; each task carries
    its predictions and the absolute media paths it was pushed with.

    Returns:
        ``(out, tasks written, annotations written)``.

    Raises:
        FrameworkError: when the server has no project of that title.
    """
    client = client or connect(settings)
    project = find_project(client, title)
    if project is None:
        raise FrameworkError(f"no Label Studio project titled {title!r} at {settings.url}; push tasks to it first")
    raw = b"".join(client.projects.exports.download_sync(project.id, export_type="JSON", download_all_tasks=False))
    users = {u.id: u.email or u.username or str(u.id) for u in client.users.list()}
    predictions: dict[int, list[dict[str, Any]]] = {}
    for p in client.predictions.list(project=project.id):
        predictions.setdefault(int(p.task), []).append(
            {"model_version": p.model_version, "score": p.score, "result": list(p.result or [])})
    tasks = [_restore(t, users, predictions) for t in json.loads(raw)
             if any(not a.get("was_cancelled") for a in t.get("annotations") or [])]
    from framework.annotation.label_studio import write_tasks

    write_tasks(tasks, out)
    count = sum(len(t.get("annotations") or []) for t in tasks)
    log.info("label studio: %d finished tasks (%d annotations) from %r -> %s", len(tasks), count, title, out)
    return Path(out), len(tasks), count
