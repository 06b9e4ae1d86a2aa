"""Decoding images once, into one colour space and one size, and keeping them in memory.

Shared by every plugin that reads images (vision, alignment, any third-party one).

Every image the plugin sees goes through :func:`decode_image`: Pillow opens it, EXIF rotation is
applied, the mode is converted to RGB (grayscale, palette, CMYK, RGBA, 16-bit all end up as
8-bit RGB; transparency is composited on white) and the size policy brings it to the model's
input size. The original mode and size are kept in :class:`ImageInfo` so that the audit can
report mixes and outliers without opening the files again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageOps

from framework.data.probes import ProbeResult
from framework.data.records import Record
from framework.data.shards import media_is_file, open_media
from framework.errors import FrameworkError
from framework.media.augment import crops_to_size

RESIZE_MODES = ("stretch", "pad", "crop")  # size policies of :func:`resize_to`


@dataclass(frozen=True)
class ImageSpec:
    """What an image model expects of its input (derived from the model, e.g. timm's data config).

    Attributes:
        size: ``(height, width)`` in pixels.
        mean: Per-channel RGB mean on the ``[0, 1]`` scale.
        std: Per-channel RGB standard deviation on the ``[0, 1]`` scale.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for JSON."""
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "ImageSpec":
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(raw["size"]), tuple(raw["mean"]), tuple(raw["std"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ImageInfo:
    """What an image was before decoding: Pillow mode (``L``, ``RGB``, ``CMYK``...), size, format."""

    mode: str
    width: int
    height: int
    format: str | None = None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent pixels become white, not black."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bits by the image's own range rather than clipping.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), mode="L").convert("RGB")
    return img.convert("RGB")


def resize_to(img: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """Bring an RGB image to ``size`` = ``(height, width)`` by the ``mode`` policy.

    ``stretch`` resizes directly; ``pad`` fits the longer side and pads with black, keeping the
    aspect ratio; ``crop`` fits the shorter side and centre-crops.
    """
    height, width = size
    if img.size == (width, height):
        return img
    if mode == "stretch":
        return img.resize((width, height), Image.Resampling.BICUBIC)
    if mode == "pad":
        return ImageOps.pad(img, (width, height), Image.Resampling.BICUBIC, color=(0, 0, 0))
    if mode == "crop":
        return ImageOps.fit(img, (width, height), Image.Resampling.BICUBIC)
    raise ValueError(f"modality.resize must be one of stretch, pad, crop; got {mode!r}")


def draft_for(img: Image.Image, size: tuple[int, int]) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when it stays at least ``size`` either way round.

    libjpeg scales in the DCT domain while decoding (an averaging, anti-aliased reduction), so a
    photograph several times the model's input size decodes several times faster and leaves the
    resize a fraction of the pixels. The draft is asked for a square of the larger target side,
    so the reduced image still covers ``size`` after EXIF rotation and under every size policy;
    an image under twice that side decodes at full size, exactly as without it. Other formats
    are left alone (Pillow's ``draft`` is a no-op for them).
    """
    side = max(size)
    img.draft(None, (side, side))


def decode_image(path: Path | IO[bytes], size: tuple[int, int], mode: str = "stretch",
                 keep_size: bool = False) -> tuple[np.ndarray, ImageInfo]:
    """Decode one image file to the model's input.

    Args:
        path: The image file, a member of a tar shard (``shard.tar/KEY.jpg``) or an open binary file.
        size: Target ``(height, width)``.
        mode: Size policy, see :func:`resize_to`.
        keep_size: Return the decoded image at its own size (still reduced in the DCT domain
            while it stays at least ``size``, see :func:`draft_for`) instead of resizing it: for a
            training pipeline that crops to ``size`` itself (:func:`~framework.media.augment.crops_to_size`).

    Returns:
        The pixels, ``(H, W, 3)`` uint8 RGB, and what the file was.

    Raises:
        OSError, ValueError: when Pillow cannot decode the file (the caller quarantines it).
    """
    with Image.open(open_media(path) if isinstance(path, (str, Path)) else path) as img:
        info = ImageInfo(img.mode, img.width, img.height, img.format)
        draft_for(img, size)
        img = ImageOps.exif_transpose(img)  # phone photos store rotation in EXIF
        rgb = _to_rgb(img)
        if not keep_size:
            rgb = resize_to(rgb, size, mode)
        return np.asarray(rgb, dtype=np.uint8).copy(), info  # (H, W, 3)


class ImageStore:
    """Decoded pixels by file path: cached in memory when they fit, else decoded on each access.

    Its :meth:`probe` is what the core readers run on every image while loading, so the one
    full decode that checks a file is also the one that fills the cache, and an undecodable file
    is quarantined by the reader with the reason.

    Args:
        size: Target ``(height, width)``.
        mode: Size policy (``stretch``/``pad``/``crop``).
        cache_limit_mb: Memory budget of the cache; images decoded once it is full are not kept
            (0 disables caching).
    """

    def __init__(self, size: tuple[int, int], mode: str = "stretch", cache_limit_mb: float = 0) -> None:
        if mode not in RESIZE_MODES:
            raise FrameworkError(f"modality.resize={mode!r} is not a size policy; valid: {', '.join(RESIZE_MODES)}")
        self.size = size
        self.mode = mode
        self.cache_limit = int(cache_limit_mb * 1024 * 1024)
        self.cached_bytes = 0
        self.info: dict[str, ImageInfo] = {}  # by path, for the audit's mode and size checks
        self._pixels: dict[str, np.ndarray] = {}

    def probe(self, path: Path) -> ProbeResult:
        """Decode ``path`` (a :data:`framework.data.probes.Probe`): ok with mode/size, or undecodable."""
        path = Path(path)
        if not media_is_file(path):
            return ProbeResult(False, "missing_file", f"{path} does not exist; fix the path or restore the file")
        try:
            self._decode(path)
        except Exception as exc:  # Pillow raises many types for bad files
            return ProbeResult(False, "undecodable", f"{path}: {type(exc).__name__}: {exc}; re-export or remove it")
        info = self.info[str(path)]
        return ProbeResult(True, info={"mode": info.mode, "size": [info.width, info.height], "format": info.format})

    def _decode(self, path: Path) -> np.ndarray:
        pixels, info = decode_image(path, self.size, self.mode)
        self.info[str(path)] = info
        key = str(path)
        if key not in self._pixels and self.cached_bytes + pixels.nbytes <= self.cache_limit:
            self._pixels[key] = pixels
            self.cached_bytes += pixels.nbytes
        return pixels

    def get(self, record: Record, keep_size: bool = False) -> np.ndarray:
        """The decoded ``(H, W, 3)`` uint8 RGB pixels of ``record``'s image.

        Args:
            record: The item.
            keep_size: For a training pipeline that crops to the model's size itself: cached
                pixels are returned as they are (at the model's size), an image not in the cache is
                decoded at its own size (:func:`decode_image`) and not cached, so the crop is
                taken from the file's pixels and resized once.
        """
        if record.media is None:
            raise ValueError(f"{record.source}: record {record.id!r} names no image file")
        pixels = self._pixels.get(str(record.media))
        if pixels is not None:
            return pixels
        if keep_size:
            return decode_image(Path(record.media), self.size, self.mode, keep_size=True)[0]
        return self._decode(Path(record.media))

    def release(self, records: Sequence[Record]) -> None:
        """Drop the cached pixels of ``records`` (a streamed train split's, which training decodes
        as it reads them), keeping what the files were; freed room caches later decodes."""
        for record in records:
            pixels = self._pixels.pop(str(record.media), None)
            if pixels is not None:
                self.cached_bytes -= pixels.nbytes

    def info_of(self, record: Record) -> ImageInfo | None:
        """What ``record``'s file was before decoding, if it has been decoded."""
        return self.info.get(str(record.media)) if record.media is not None else None



STATS_SIDE = 64  # images are reduced to at most this side before brightness/contrast are measured


def image_statistics(records: Sequence[Record]) -> dict[str, list[Any]]:
    """Per image, from the file as it is (before decoding to the model's input): ``brightness``
    and ``contrast`` (mean and standard deviation of the 8-bit luminance), ``width``, ``height``
    and ``mode`` (the Pillow colour mode). Unreadable files get ``None`` everywhere."""
    out: dict[str, list[Any]] = {k: [] for k in ("brightness", "contrast", "width", "height", "mode")}
    for record in records:
        try:
            with Image.open(open_media(record.media)) as img:
                size, mode = img.size, img.mode
                small = _to_rgb(img)
                small.thumbnail((STATS_SIDE, STATS_SIDE))
                luma = np.asarray(small.convert("L"), dtype=np.float32)  # (h, w)
        except (OSError, ValueError, TypeError):
            for values in out.values():
                values.append(None)
            continue
        out["brightness"].append(float(luma.mean()))
        out["contrast"].append(float(luma.std()))
        out["width"].append(size[0])
        out["height"].append(size[1])
        out["mode"].append(mode)
    return out


def timm_kwargs(model_cfg: Any) -> dict[str, Any]:
    """The ``timm.create_model`` arguments of an image model's config node (``name``, ``kwargs``,
    ``kwargs_by_name``): ``kwargs_by_name[name]`` (a shipped config's shrinking of its default
    architecture, dropped when another ``name`` is chosen) updated by ``kwargs`` (always applied).
    ``model_cfg`` is the config object or its plain dict (as a serving file keeps it)."""
    def get(key: str) -> Any:
        return model_cfg.get(key) if isinstance(model_cfg, dict) else getattr(model_cfg, key, None)

    by_name = dict(get("kwargs_by_name") or {})
    return {**dict(by_name.get(get("name")) or {}), **dict(get("kwargs") or {})}


class SampleImages:
    """The image member of a tar-shard sample, decoded for a training stream
    (:func:`framework.train_stream`): decoded to RGB at ``size`` with the ``resize`` policy, through
    ``pipeline``, as a ``(3, H, W)`` uint8 tensor. When ``pipeline`` starts with a random crop to
    ``size`` (:func:`~framework.media.augment.crops_to_size`), the crop gets the decoded file at its
    own size instead (crop, then one resize). A decoder of a modality holds one and adds its
    targets (a class, a caption).

    Args:
        size: The model's ``(height, width)``.
        resize: The size policy (``stretch``/``pad``/``crop``).
        pipeline: An albumentations pipeline applied to each ``(H, W, 3)`` image, or ``None``.
    """

    def __init__(self, size: tuple[int, int], resize: str = "stretch", pipeline: Any = None) -> None:
        if resize not in RESIZE_MODES:
            raise FrameworkError(f"modality.resize={resize!r} is not a size policy; valid: {', '.join(RESIZE_MODES)}")
        self.size, self.resize, self.pipeline = (int(size[0]), int(size[1])), resize, pipeline
        # A pipeline that starts with a random crop to the model's size gets the decoded file as is.
        self.crop_first = crops_to_size(pipeline, self.size)

    def reseed(self, seed: int) -> None:
        """Seed the pipeline's own generators; the stream calls it before each item."""
        if self.pipeline is not None:
            import random

            self.pipeline.set_random_state(np.random.Generator(np.random.PCG64(seed)), random.Random(seed))

    def __call__(self, sample: Any) -> Any:
        """The ``(3, H, W)`` uint8 tensor of ``sample``'s (a :class:`~framework.data.shards.LoadedSample`) image.

        Raises:
            ValueError: without an image member; Pillow's errors for a corrupt one (the stream
                quarantines the sample with the message).
        """
        import io

        import torch

        from framework.media.augment import apply

        _, data = sample.media("image")
        pixels, _ = decode_image(io.BytesIO(data), self.size, self.resize, keep_size=self.crop_first)  # (H, W, 3)
        if self.pipeline is not None:
            pixels = apply(self.pipeline, pixels)
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))  # (3, H, W)


#: timm's prefix for a model folder on disk: ``local-dir:/path`` holds ``config.json`` (the
#: architecture, its arguments and input config) and the weights, as ``timm.models.save_for_hf``
#: writes them (an alignment export's ``image_tower/``, or a hub repository copied by hand).
LOCAL_DIR = "local-dir:"


def local_timm_dir(name: str) -> Path | None:
    """The folder of a ``local-dir:PATH`` model name, else ``None``.

    Raises:
        FrameworkError: the folder, or its ``config.json``, does not exist.
    """
    if not name.startswith(LOCAL_DIR):
        return None
    folder = Path(name[len(LOCAL_DIR):]).expanduser()
    if not (folder / "config.json").is_file():
        raise FrameworkError(f"{name}: {folder} has no config.json; give a folder written by "
                             "timm.models.save_for_hf (config.json and model.safetensors or pytorch_model.bin)")
    return folder


def timm_pretrained_cfg(name: str, key: str = "model.name") -> dict[str, Any]:
    """The pretrained config (``input_size``, ``mean``, ``std``, ``fixed_input_size``...) of a timm
    model name or of a ``local-dir:PATH`` folder (its ``config.json``), without building the model.

    Raises:
        FrameworkError: ``name`` is neither a timm model (naming similar ones) nor a timm folder.
    """
    import timm  # timm (and torchvision under it) load when a model is described or built

    folder = local_timm_dir(name)
    if folder is not None:
        from timm.models._hub import load_model_config_from_path  # what create_model reads for local-dir:

        return dict(load_model_config_from_path(folder)[0])
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:10]
        raise FrameworkError(
            f"{key}={name!r} is not a timm model. Similar names: {', '.join(close) or 'none'}; see "
            f"timm.list_models() for all, or give {LOCAL_DIR}/path/to/folder for a model saved on disk.")
    cfg = timm.models.get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}
