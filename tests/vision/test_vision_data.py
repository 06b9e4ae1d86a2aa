"""Loading images: one decode into RGB at the model's size, quarantine of bad files, image checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from framework.data.checks import CheckContext
from plugins.vision.checks import ImageModeCheck, ResolutionCheck
from framework.media.images import ImageStore, decode_image, draft_for
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


def _tone(value: float) -> str:
    return "white" if value > 200 else "black" if value < 50 else "gray" if 90 < value < 170 else f"unclear {value:.0f}"


# What each policy makes of a 120x30 image (4:1) brought to 24x8 (3:1): whether the white band on
# its left edge and the black band on its right edge survive, and what the top row is.
RESIZED = {
    "stretch": ("white", "black", "gray"),  # squeezed whole: both bands stay, content to the top
    "pad": ("white", "black", "black"),  # aspect kept, 24x6 letterboxed: both bands stay, black bars
    "crop": ("gray", "gray", "gray"),  # aspect kept, 32x8 centre-cropped: both bands cut off, no bars
}


@pytest.mark.parametrize("mode", sorted(RESIZED))
def test_resize_policies_reach_the_input_size_each_its_own_way(tmp_path, mode) -> None:
    path = tmp_path / "wide.png"
    pixels = np.full((30, 120, 3), 128, np.uint8)
    pixels[:, :10] = 255  # white band on the left edge
    pixels[:, -10:] = 0  # black band on the right edge
    Image.fromarray(pixels).save(path)
    out, info = decode_image(path, (8, 24), mode)
    assert out.shape == (8, 24, 3) and (info.width, info.height) == (120, 30)
    left, right, top = out[2:6, 0].mean(), out[2:6, -1].mean(), out[0, 8:16].mean()
    assert (_tone(left), _tone(right), _tone(top)) == RESIZED[mode]


def _photo(path: Path, width: int, height: int, orientation: int | None = None) -> Path:
    """A smooth colour-field JPEG (a quarter of it white, to tell the corners apart)."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 50 + 2, width // 50 + 2, 3), dtype=np.uint8))
    pixels = np.array(coarse.resize((width, height), Image.Resampling.BICUBIC))
    pixels[: height // 2, : width // 2] = 255
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    return path


def test_a_large_jpeg_decodes_at_a_reduced_scale_that_still_covers_the_target(tmp_path) -> None:
    path = _photo(tmp_path / "big.jpg", 1000, 600)
    with Image.open(path) as img:
        draft_for(img, (224, 224))  # 600 // 224 = 2: half scale
        assert img.size == (500, 300)
    with Image.open(path) as img:
        draft_for(img, (100, 60))  # 1000 // 100 = 10, 600 // 100 = 6: quarter scale (by the larger side)
        assert img.size == (250, 150)
    with Image.open(path) as img:
        draft_for(img, (400, 400))  # under twice the target: full size, as without a draft
        assert img.size == (1000, 600)
    png = tmp_path / "big.png"
    Image.open(path).save(png)
    with Image.open(png) as img:
        draft_for(img, (100, 60))  # not a JPEG: untouched
        assert img.size == (1000, 600)


@pytest.mark.parametrize("orientation", [None, 6])
def test_a_drafted_jpeg_matches_the_full_decode_within_a_few_levels(tmp_path, orientation) -> None:
    path = _photo(tmp_path / "big.jpg", 1200, 800, orientation)
    out, info = decode_image(path, (224, 112), "stretch")
    with Image.open(path) as img:  # the full-size decode, resized once
        full = np.asarray(ImageOps.exif_transpose(img).convert("RGB").resize((112, 224), Image.Resampling.BICUBIC))
    assert out.shape == (224, 112, 3) and (info.width, info.height) == (1200, 800)
    assert np.abs(out.astype(int) - full.astype(int)).mean() < 3
    white = out[:40, -30:] if orientation == 6 else out[:40, :30]  # rotated 90 degrees clockwise: top right
    assert white.min() > 200


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


def _window_of(source: np.ndarray, out: np.ndarray) -> bool:
    """Whether ``out`` is one exact window of ``source`` (both ``(H, W, 3)``)."""
    h, w = out.shape[:2]
    return any(np.array_equal(source[y:y + h, x:x + w], out)
               for y in range(source.shape[0] - h + 1) for x in range(source.shape[1] - w + 1))


def test_a_pipeline_that_crops_to_the_input_size_gets_the_file_at_its_own_size(tmp_path) -> None:
    import albumentations as A

    from framework.data.records import Record
    from framework.media.augment import crops_to_size
    from framework.media.images import SampleImages
    from plugins.vision.dataset import ImageDataset

    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    Image.fromarray(noise).save(path)
    # A crop of a sixteenth of the area, square: 16x16 source pixels, the model's size: no resize.
    crop = A.Compose([A.RandomResizedCrop(size=(16, 16), scale=(1 / 16, 1 / 16), ratio=(1.0, 1.0))])
    assert crops_to_size(crop, (16, 16)) and not crops_to_size(crop, (32, 32))
    assert not crops_to_size(A.Compose([A.RandomResizedCrop(size=(16, 16), p=0.5)]), (16, 16))
    assert not crops_to_size(A.Compose([A.HorizontalFlip(), A.RandomResizedCrop(size=(16, 16))]), (16, 16))
    assert not crops_to_size(None, (16, 16))

    record = Record(id="n", split="train", source=str(path), media=str(path), label="a")
    uncached = ImageDataset([record], ImageStore((16, 16), "stretch", cache_limit_mb=0), ["a"], crop)
    uncached.reseed(3)
    out = uncached[0]["image"].numpy().transpose(1, 2, 0)
    assert out.shape == (16, 16, 3) and _window_of(noise, out)  # cropped from the file's own pixels

    cached_store = ImageStore((16, 16), "stretch", cache_limit_mb=1)
    assert cached_store.probe(path).ok
    cached = ImageDataset([record], cached_store, ["a"], crop)
    cached.reseed(3)
    small = cached[0]["image"].numpy().transpose(1, 2, 0)  # cropped from the cached 16x16 resize
    assert small.shape == (16, 16, 3) and not _window_of(noise, small)

    class Sample:  # a shard sample's image member
        def media(self, kind: str) -> tuple[str, bytes]:
            return "noise.png", path.read_bytes()

    images = SampleImages((16, 16), "stretch", crop)
    images.reseed(5)
    streamed = images(Sample()).numpy().transpose(1, 2, 0)
    assert images.crop_first and _window_of(noise, streamed)
