"""Push and pull against a real Label Studio server (the session's ``label_studio`` fixture)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework.annotation.label_studio import import_label_studio, load_tasks, parse_result
from framework.annotation.server import ServerSettings, connect, find_project, pull, push

pytestmark = pytest.mark.slow


def _settings(server) -> ServerSettings:  # type: ignore[no-untyped-def]
    return ServerSettings(server.url, server.token, server.document_root)


def _choice(label: str, to_name: str = "image") -> list[dict]:
    return [{"from_name": "label", "to_name": to_name, "type": "choices", "value": {"choices": [label]}}]


def _image_tasks(folder: Path) -> list[dict]:
    tasks = []
    for n, (name, colour) in enumerate((("red", (200, 10, 10)), ("blue", (10, 10, 200)))):
        (folder / name).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), colour).save(folder / name / f"{n}.png")
        tasks.append({"data": {"item_id": f"{name}/{n}.png", "image": f"/data/local-files/?d={name}/{n}.png"},
                      "meta": {"stratum": "red"},
                      "predictions": [{"model_version": "run-1", "score": 0.55, "result": _choice("red")}]})
    return tasks


def test_push_reuses_the_project_serves_media_and_pull_names_annotators(label_studio, tmp_path) -> None:
    settings = _settings(label_studio)
    batch = label_studio.document_root / "colour_batch"
    tasks = _image_tasks(batch)
    first = push(tasks, title="colours review", settings=settings, classes=["red", "blue", "green"], media_root=batch)
    again = push(tasks, title="colours review", settings=settings, classes=["red", "blue", "green"], media_root=batch)
    assert (first.interface, first.created, first.skipped) == ("image_class", 2, 0)
    assert (again.project_id, again.created, again.skipped) == (first.project_id, 0, 2)

    client = connect(settings)
    project = find_project(client, "colours review")
    assert 'name="image"' in project.label_config and '<Choice value="green"/>' in project.label_config
    on_server = list(client.tasks.list(project=project.id, fields="all"))
    media = on_server[0].data["image"]
    assert media.startswith("/data/local-files/?d=colour_batch/")
    import httpx

    served = httpx.get(settings.url + media, headers={"Authorization": f"Token {settings.api_key}"})
    assert served.status_code == 200 and served.content == (batch / media.split("colour_batch/")[1]).read_bytes()

    second = client.users.create(email="second@example.com", username="second")
    for task in on_server:
        truth = task.data["item_id"].split("/")[0]
        client.annotations.create(id=task.id, result=_choice(truth))
        client.annotations.create(id=task.id, result=_choice("red"), completed_by=second.id)

    out, count, annotations = pull(title="colours review", settings=settings, out=tmp_path / "pulled.json")
    assert (count, annotations) == (2, 4)
    pulled = {t["data"]["item_id"]: t for t in load_tasks(out)}
    assert pulled["blue/1.png"]["data"]["image"] == str((batch / "blue" / "1.png").absolute())
    assert parse_result(pulled["blue/1.png"]["predictions"][0]["result"]) == "red"
    assert pulled["blue/1.png"]["meta"]["stratum"] == "red"
    records = {(r.item_id, r.annotator): r.label for r in import_label_studio(out)}
    assert records == {("red/0.png", "reviewer@example.com"): "red", ("red/0.png", "second@example.com"): "red",
                       ("blue/1.png", "reviewer@example.com"): "blue", ("blue/1.png", "second@example.com"): "red"}


def test_audio_transcription_round_trip(label_studio, tmp_path) -> None:
    settings = _settings(label_studio)
    folder = label_studio.document_root / "speech_batch"
    folder.mkdir()
    with wave.open(str(folder / "a.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes((np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes())
    model = [{"from_name": "transcription", "to_name": "audio", "type": "textarea", "value": {"text": ["helo world"]}}]
    task = {"data": {"item_id": "a.wav", "audio": "/data/local-files/?d=a.wav"},
            "predictions": [{"model_version": "asr-1", "result": model}]}
    done = push([task], title="speech review", settings=settings, media_root=folder)
    assert done.interface == "audio_transcript"
    client = connect(settings)
    task_id = next(iter(client.tasks.list(project=done.project_id, fields="all"))).id
    client.annotations.create(id=task_id, result=[{**model[0], "value": {"text": ["hello world"]}}])
    out, count, _ = pull(title="speech review", settings=settings, out=tmp_path / "speech.json")
    assert count == 1
    assert [(r.item_id, r.label) for r in import_label_studio(out)] == [("a.wav", "hello world")]
    assert json.loads(out.read_text())[0]["data"]["audio"] == str((folder / "a.wav").absolute())


def test_pull_of_an_unknown_project_names_it(label_studio, tmp_path) -> None:
    from framework.errors import FrameworkError

    with pytest.raises(FrameworkError, match="no Label Studio project titled 'nothing here'"):
        pull(title="nothing here", settings=_settings(label_studio), out=tmp_path / "x.json")
