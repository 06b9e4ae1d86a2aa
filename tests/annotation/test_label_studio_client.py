"""The Label Studio client's pieces that need no server: settings, interfaces, task rewriting."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from framework.annotation.__main__ import main
from framework.annotation.interfaces import INTERFACES, classes_in, infer_interface, label_config
from framework.annotation.server import ServerSettings, server_tasks
from framework.errors import FrameworkError


def test_settings_come_from_the_environment_and_a_missing_one_is_named() -> None:
    with pytest.raises(FrameworkError, match="LABEL_STUDIO_URL is not set"):
        ServerSettings.from_env({})
    with pytest.raises(FrameworkError, match="LABEL_STUDIO_API_KEY is not set"):
        ServerSettings.from_env({"LABEL_STUDIO_URL": "http://x:8080"})
    settings = ServerSettings.from_env({"LABEL_STUDIO_URL": "http://x:8080/", "LABEL_STUDIO_API_KEY": "t",
                                        "LOCAL_FILES_DOCUMENT_ROOT": "/srv/media"})
    assert settings == ServerSettings("http://x:8080", "t", Path("/srv/media"))


def test_push_without_a_server_variable_is_a_one_line_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    tasks = tmp_path / "tasks.json"
    tasks.write_text('[{"data": {"text": "hi"}}]')
    assert main(["push", str(tasks), "--project", "anything"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LABEL_STUDIO_URL is not set" in err


@pytest.mark.parametrize("data, result_type, expected", [
    ({"image": "a.png"}, "choices", "image_class"),
    ({"image": "a.png", "text": "a red circle"}, "textarea", "image_caption"),
    ({"audio": "a.wav"}, "textarea", "audio_transcript"),
    ({"text": "a sentence"}, "choices", "text_class"),
    ({"text": "user: hi\nassistant: hello"}, "rating", "chat_rating"),
    ({"prompt": "p", "answer_a": "x", "answer_b": "y"}, "pairwise", "pairwise"),
])
def test_the_interface_follows_the_tasks(data, result_type, expected) -> None:
    task = {"data": data, "predictions": [{"result": [{"type": result_type, "value": {}}]}]}
    assert infer_interface([task]) == expected


def test_every_interface_is_well_formed_xml_with_its_control() -> None:
    controls = {"image_class": "Choices", "text_class": "Choices", "audio_transcript": "TextArea",
                "image_caption": "TextArea", "pairwise": "Pairwise", "chat_rating": "Rating"}
    for name in INTERFACES:
        view = ET.fromstring(label_config(name, ["cat", "dog & co"]))
        assert view.tag == "View" and view.find(controls[name]) is not None
    choices = ET.fromstring(label_config("image_class", ["cat", "dog & co"])).find("Choices")
    assert [c.get("value") for c in choices] == ["cat", "dog & co"]
    with pytest.raises(FrameworkError, match="needs the class names"):
        label_config("image_class", [])
    with pytest.raises(FrameworkError, match="unknown labelling interface 'boxes'"):
        label_config("boxes")
    with pytest.raises(FrameworkError, match="pass --interface"):
        infer_interface([{"data": {"html": "<p>"}}])


def test_classes_are_gathered_from_predictions_and_annotations() -> None:
    def result(label: str) -> list[dict]:
        return [{"type": "choices", "value": {"choices": [label]}}]

    tasks = [{"predictions": [{"result": result("b")}], "annotations": [{"result": result("a")}]}]
    assert classes_in(tasks) == ["a", "b"]


def test_media_become_document_root_paths_and_earlier_annotations_predictions(tmp_path) -> None:
    docroot = tmp_path / "media"
    (docroot / "week1" / "3").mkdir(parents=True)
    (docroot / "week1" / "3" / "a.png").write_bytes(b"png")
    task = {"data": {"item_id": "3/a.png", "image": "/data/local-files/?d=3/a.png"}, "meta": {"stratum": "3"},
            "annotations": [{"completed_by": "ann", "result": [{"type": "choices", "value": {"choices": ["3"]}}]}]}
    [out], folders = server_tasks([task], docroot / "week1", docroot)
    assert out["data"]["image"] == "/data/local-files/?d=week1/3/a.png"
    assert out["meta"] == {"stratum": "3", "media": {"image": str(docroot / "week1" / "3" / "a.png")}}
    assert out["predictions"] == [{"model_version": "annotator:ann", "result": task["annotations"][0]["result"]}]
    assert folders == {docroot / "week1" / "3"}

    with pytest.raises(FrameworkError, match="LOCAL_FILES_DOCUMENT_ROOT"):
        server_tasks([task], docroot / "week1", None)
    with pytest.raises(FrameworkError, match="pass --media-root"):
        server_tasks([task], None, docroot)
    with pytest.raises(FrameworkError, match="outside LOCAL_FILES_DOCUMENT_ROOT"):
        server_tasks([task], docroot / "week1", tmp_path / "elsewhere")
    with pytest.raises(FrameworkError, match="does not exist; check --media-root"):
        server_tasks([task], tmp_path, docroot)
