"""Image-specific audit checks, contributed through ``framework_quality_checks``.

They are warnings by default (``gate: false``): a mix of colour modes or a few odd sizes is worth
knowing about, not a reason to refuse training, since decoding normalises both. Settings live in
``data.gates.plugins.<check name>``; ``gate: true`` makes a failure stop the run.

Unreadable files, exact and near duplicates (perceptual hashes) and split leakage are the core
cleanliness gate's job and are not repeated here.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from PIL import Image

from framework.data.checks import CheckContext, CheckResult, Finding, check_settings
from framework import media_infos, open_media
from framework.data.records import DataBundle
from framework.media.images import ImageInfo

IMAGE_INFO_KEY = "image_info"  # DataBundle.extras key: media path -> ImageInfo, filled by load_data
HEADER_INFO_KEY = "image_info.headers"  # DataBundle.extras: media path -> ImageInfo the audit read from headers

# What each Pillow mode means, for findings a person reads.
MODE_NAMES = {
    "1": "1-bit",
    "L": "grayscale",
    "LA": "grayscale+alpha",
    "P": "palette",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "I;16": "16-bit grayscale",
    "I": "32-bit grayscale",
    "F": "float grayscale",
}


def header_info(path: str) -> ImageInfo | None:
    """Mode and size from an image's header (no pixel decoding); ``None`` for an unreadable file
    (the cleanliness gate's finding). Module-level, so it runs on the audit's pool."""
    try:
        with Image.open(open_media(path)) as img:
            return ImageInfo(img.mode, img.width, img.height, img.format)
    except Exception:  # Pillow raises many types for bad files
        return None


def image_infos(data: DataBundle, ctx: CheckContext | None = None) -> dict[str, ImageInfo]:
    """Mode and size of every record's image, by record id: from decoding when the vision plugin
    loaded the bundle, else read from the file headers (no pixel decoding) on the audit's pool
    (``ctx.pool``; in process without a context), once per bundle for every check."""
    by_path = media_infos(data, header_info, cache_key=HEADER_INFO_KEY, known=data.extras.get(IMAGE_INFO_KEY),
                          pool=ctx.pool if ctx is not None else None)
    return {r.id: by_path[str(r.media)] for r in data.records() if r.media is not None and str(r.media) in by_path}


def _gate(settings: Mapping[str, Any]) -> bool:
    return bool(settings.get("gate", False))


@dataclass
class ImageModeCheck:
    """Finds images whose colour mode differs from the majority (grayscale among RGB, CMYK...).

    Settings: ``gate`` (default false).
    """

    name: str = "image_modes"
    defaults: ClassVar[dict[str, Any]] = {"gate": False}

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        settings = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        infos = image_infos(data, ctx)
        if not infos:
            return CheckResult(self.name, True, _gate(settings), "not applicable: no readable images")
        modes = Counter(info.mode for info in infos.values())
        majority = modes.most_common(1)[0][0]
        findings = []
        for mode in sorted(m for m in modes if m != majority):
            ids = tuple(sorted(rid for rid, info in infos.items() if info.mode == mode))
            findings.append(Finding(
                f"mode_{mode}", ids,
                f"{len(ids)} {MODE_NAMES.get(mode, mode)} image(s) among mostly {MODE_NAMES.get(majority, majority)}; "
                f"converted to RGB when decoded, check they belong in the data set",
            ))
        counts = ", ".join(f"{MODE_NAMES.get(m, m)} {n}" for m, n in modes.most_common())
        summary = (
            f"one colour mode ({counts})" if len(modes) == 1
            else f"mixed colour modes: {counts}; every image is converted to RGB at decode"
        )
        return CheckResult(
            self.name, passed=len(modes) == 1, gate=_gate(settings), summary=summary,
            measured={"modes": dict(modes)}, findings=findings,
            override=f"data.gates.plugins.{self.name}.gate=false keeps this a warning",
        )


@dataclass
class ResolutionCheck:
    """Finds resolution and aspect-ratio outliers against the data set's median.

    Settings: ``min_side`` (pixels; smaller images are flagged), ``max_size_ratio`` (an image's
    longer side may be at most this many times larger or smaller than the median's),
    ``max_aspect_deviation`` (width/height may differ from the median's by at most this factor),
    ``max_outlier_fraction`` (pass threshold) and ``gate``.
    """

    name: str = "image_resolution"
    defaults: ClassVar[dict[str, Any]] = {
        "min_side": 8,
        "max_size_ratio": 4.0,
        "max_aspect_deviation": 2.0,
        "max_outlier_fraction": 0.0,
        "gate": False,
    }

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        s = check_settings(f"data.gates.plugins.{self.name}", ctx.settings, self.defaults)
        infos = image_infos(data, ctx)
        if not infos:
            return CheckResult(self.name, True, _gate(s), "not applicable: no readable images")
        median_side = statistics.median(max(i.width, i.height) for i in infos.values())
        median_aspect = statistics.median(i.width / i.height for i in infos.values())
        flagged: dict[str, list[str]] = {"small": [], "size_outlier": [], "aspect_outlier": []}
        for rid, info in sorted(infos.items()):
            side, aspect = max(info.width, info.height), info.width / info.height
            if min(info.width, info.height) < s["min_side"]:
                flagged["small"].append(rid)
            elif max(side / median_side, median_side / side) > s["max_size_ratio"]:
                flagged["size_outlier"].append(rid)
            if max(aspect / median_aspect, median_aspect / aspect) > s["max_aspect_deviation"]:
                flagged["aspect_outlier"].append(rid)
        explain = {
            "small": f"shorter side under {s['min_side']} px",
            "size_outlier": f"longer side over {s['max_size_ratio']}x away from the median {median_side:.0f} px",
            "aspect_outlier": f"aspect ratio over {s['max_aspect_deviation']}x away from the median {median_aspect:.2f}",
        }
        findings = [Finding(kind, tuple(ids), f"{len(ids)} image(s) with {explain[kind]}")
                    for kind, ids in flagged.items() if ids]
        outliers = {rid for ids in flagged.values() for rid in ids}
        fraction = len(outliers) / len(infos)
        passed = fraction <= s["max_outlier_fraction"]
        summary = (
            f"{len(outliers)} of {len(infos)} images are size or aspect outliers ({fraction:.1%}, "
            f"allowed {s['max_outlier_fraction']:.1%}); median {median_side:.0f} px, aspect {median_aspect:.2f}"
        )
        return CheckResult(
            self.name, passed, _gate(s), summary,
            measured={"outliers": len(outliers), "fraction": fraction, "median_side": median_side,
                      "median_aspect": median_aspect, **{k: len(v) for k, v in flagged.items()}},
            findings=findings,
            override=f"data.gates.plugins.{self.name}.max_outlier_fraction=<fraction>",
        )


def quality_checks() -> list[Any]:
    """The vision plugin's checks, in report order."""
    return [ImageModeCheck(), ResolutionCheck()]
