"""Loading images: one decode into RGB at the model's size, quarantine of bad files, image checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework.data.checks import CheckContext
from plugins.vision.checks import ImageModeCheck, ResolutionCheck
from framework.media.images import ImageStore, decode_image
from plugins.vision.modality import STORE_KEY, VisionModality
from vision_fixtures import COLOURS, write_image


def _check_ctx(tmp_path: Path, **settings) -> CheckContext:
    return CheckContext(modality="vision", settings=settings, slice_fields=(), out_dir=tmp_path / "audit")


@pytest.fixture
def messy_root(image_root: Path) -> Path:
    """The tiny folder plus a grayscale image, a CMYK one and a truncated (corrupt) one."""
    rng = np.random.default_rng(1)
    write_image(image_root / "train" / "red" / "gray.png", COLOURS["red"], rng, mode="L")
    write_image(image_root / "train" / "blue" / "cmyk.jpg", COLOURS["blue"], rng, mode="CMYK")
    good = write_image(image_root / "train" / "green" / "broken.png", COLOURS["green"], rng)
    good.write_bytes(good.read_bytes()[:60])  # a header and a few bytes: a cut-off copy
    return image_root


def test_grayscale_and_cmyk_decode_to_rgb_and_corrupt_is_quarantined(messy_root, make_ctx) -> None:
    ctx = make_ctx(messy_root)
    data = VisionModality().load_data(ctx)

    ids = {r.id for r in data.records("train")}
    assert {"train/red/gray.png", "train/blue/cmyk.jpg"} <= ids
    assert "train/green/broken.png" not in ids
    [bad] = data.quarantine
    assert bad.reason == "undecodable" and bad.record_id == "train/green/broken.png"
    assert "re-export or remove it" in bad.detail

    store: ImageStore = ctx.stash[STORE_KEY]
    gray = next(r for r in data.records("train") if r.id == "train/red/gray.png")
    pixels = store.get(gray)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])  # gray replicated into R, G, B
    assert data.classes == ["blue", "green", "red"]


def test_mode_check_reports_the_grayscale_and_cmyk_images(messy_root, make_ctx, tmp_path) -> None:
    ctx = make_ctx(messy_root)
    data = VisionModality().load_data(ctx)
    result = ImageModeCheck().run(data, _check_ctx(tmp_path))
    assert not result.passed and not result.gate
    assert result.measured["modes"] == {"RGB": 72, "L": 1, "CMYK": 1}
    found = {f.kind: f.items for f in result.findings}
    assert found == {"mode_CMYK": ("train/blue/cmyk.jpg",), "mode_L": ("train/red/gray.png",)}
    assert "mixed colour modes" in result.summary
    assert ImageModeCheck().run(data, _check_ctx(tmp_path, gate=True)).gate


def test_mode_check_passes_on_one_mode(image_root, make_ctx, tmp_path) -> None:
    data = VisionModality().load_data(make_ctx(image_root))
    assert ImageModeCheck().run(data, _check_ctx(tmp_path)).passed


def test_resolution_check_flags_size_and_aspect_outliers(image_root, make_ctx, tmp_path) -> None:
    Image.new("RGB", (200, 16), (200, 30, 30)).save(image_root / "train" / "red" / "wide.png")
    Image.new("RGB", (4, 4), (200, 30, 30)).save(image_root / "train" / "red" / "tiny.png")
    data = VisionModality().load_data(make_ctx(image_root))
    result = ResolutionCheck().run(data, _check_ctx(tmp_path))
    found = {f.kind: f.items for f in result.findings}
    assert found["small"] == ("train/red/tiny.png",)
    assert found["size_outlier"] == ("train/red/wide.png",)
    assert found["aspect_outlier"] == ("train/red/wide.png",)
    assert not result.passed and result.measured["outliers"] == 2
    relaxed = ResolutionCheck().run(data, _check_ctx(tmp_path, max_outlier_fraction=0.05))
    assert relaxed.passed


def test_check_settings_typo_names_valid_keys(image_root, make_ctx, tmp_path) -> None:
    data = VisionModality().load_data(make_ctx(image_root))
    with pytest.raises(Exception, match=r"data.gates.plugins.image_resolution has unknown setting\(s\) \['min_sid'\]; valid keys: \['gate', 'max_aspect_deviation'"):
        ResolutionCheck().run(data, _check_ctx(tmp_path, min_sid=3))


def test_checks_read_headers_when_the_bundle_has_no_decode_info(image_root, make_ctx, tmp_path) -> None:
    data = VisionModality().load_data(make_ctx(image_root))
    data.extras.clear()
    assert ImageModeCheck().run(data, _check_ctx(tmp_path)).measured["modes"] == {"RGB": 72}


@pytest.mark.parametrize(("mode", "expected"), [("stretch", (8, 24)), ("pad", (8, 24)), ("crop", (8, 24))])
def test_resize_policies_reach_the_input_size(tmp_path, mode, expected) -> None:
    path = tmp_path / "wide.png"
    pixels = np.zeros((10, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    Image.fromarray(pixels).save(path)
    out, info = decode_image(path, expected, mode)
    assert out.shape == (*expected, 3) and (info.width, info.height) == (40, 10)
    if mode == "pad":  # aspect kept: 40x10 -> 24x6, padded top and bottom with black
        assert out[0].max() == 0 and out[4, 2].min() > 200


def test_transparent_pixels_become_white(tmp_path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    out, info = decode_image(path, (8, 8))
    assert info.mode == "RGBA" and out.min() == 255


def test_cache_respects_its_budget(image_root) -> None:
    files = sorted((image_root / "train" / "red").glob("*.png"))
    store = ImageStore((16, 16), "stretch", cache_limit_mb=(16 * 16 * 3 * 5) / 2**20)
    assert all(store.probe(f).ok for f in files)
    assert store.cached_bytes == 16 * 16 * 3 * 5 and len(store.info) == len(files)


def test_a_plugin_check_settings_typo_stops_the_audit(image_root, make_ctx, tmp_path) -> None:
    from framework.data.audit import run_audit
    from framework.data.checks import SettingsError
    from framework.data.config import DataConfig
    from plugins.vision.checks import quality_checks

    data = VisionModality().load_data(make_ctx(image_root))
    cfg = DataConfig(root=str(image_root), train="train")
    cfg.gates.plugins = {"image_resolution": {"min_sid": 3}}
    with pytest.raises(SettingsError, match=r"data.gates.plugins.image_resolution has unknown setting\(s\) \['min_sid'\]"):
        run_audit(data, cfg, modality="vision", extra_checks=quality_checks(), out_dir=tmp_path / "audit")
