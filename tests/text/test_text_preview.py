"""``python -m plugins.text.preview``: rendered examples with the trained tokens marked, composed
through the public config API (not the test kit)."""

from __future__ import annotations

import io

from plugins.text.preview import preview


def test_preview_prints_examples_with_the_trained_tokens_marked() -> None:
    out = io.StringIO()
    preview(["+modality=text", "modality.preview=2"], out=out)
    text = out.getvalue()
    assert text.startswith("# 2 of ") and text.count("\n--- ") == 2
    assert "<|assistant|>\n[[" in text and "]]" in text and "trained)" in text
