"""Image folders: ``root/<class name>/*.png`` with the folder name as the label."""

from __future__ import annotations

from pathlib import Path

from framework.data.dataset_card import CARD_FILES
from framework.data.errors import DataError
from framework.data.probes import IMAGE_EXTENSIONS
from framework.data.readers._common import Collector, ReadOptions
from framework.data.records import Quarantined, Record


def read_image_folder(path: Path, opts: ReadOptions) -> tuple[list[Record], list[Quarantined]]:
    """Read ``path/<class>/<file>`` images; the label is the class folder's name.

    Files that are not images, and files directly under ``path``, are quarantined (with the
    reason) rather than ignored, so a misplaced file shows up in the audit. Hidden files are
    skipped. Record ids are paths relative to the data root.

    Raises:
        DataError: when ``path`` is not a folder or holds no class folders.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(str(path), "not a folder", "Point data.train at a folder of class folders.")
    col = Collector(path, opts)
    class_dirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(str(path), "no class folders found", "Lay images out as <folder>/<class name>/<image>.")
    strays = (f for f in path.iterdir() if f.is_file() and not f.name.startswith(".") and f.name not in CARD_FILES)
    for stray in sorted(strays):
        col.quarantined.append(Quarantined(str(stray), "no_class_folder",
                                           f"{stray} is not inside a class folder; move it into one"))
    for class_dir in class_dirs:
        for file in sorted(f for f in class_dir.rglob("*") if f.is_file() and not f.name.startswith(".")):
            if file.suffix.lower() not in IMAGE_EXTENSIONS:
                col.quarantined.append(Quarantined(str(file), "unsupported_file",
                                                   f"{file.suffix or 'no extension'} is not an image type "
                                                   f"({', '.join(sorted(IMAGE_EXTENSIONS))}); convert or remove it"))
                continue
            with col.errors.at():
                col.add(file.relative_to(path).as_posix(), {"class": class_dir.name}, media=str(file.absolute()),
                        label=class_dir.name, where=str(file))
    return col.result()
