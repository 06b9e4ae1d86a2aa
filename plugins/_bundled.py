"""Where the built-in plugins' bundled default data is found, shared by every built-in modality.

Not a plugin and not public: outside plugins point ``data.root`` at data they ship with the
``${framework.pkg:my_package/data}`` resolver instead (docs/plugins.md, Config).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_root(root: str | Path) -> Path:
    """``data.root`` as an absolute path: relative roots resolve against the working directory
    when they exist there, else against the repository (so bundled defaults under ``examples/data``
    work from any directory)."""
    path = Path(root).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path.absolute()


def with_root(data_cfg: Any, root: Path) -> Any:
    """A copy of the ``data:`` node (dataclass or OmegaConf) with ``root`` replaced."""
    if dataclasses.is_dataclass(data_cfg):
        return dataclasses.replace(data_cfg, root=str(root))
    copy = data_cfg.copy()
    copy.root = str(root)
    return copy


def split_defaults(conf_file: Path) -> dict[str, Any]:
    """``data.train``/``val``/``test`` as a built-in modality's shipped config file sets them: the
    ``split_defaults`` its ``load_data`` passes to ``load_bundle`` (a default split that the
    user's data lacks is fitted or skipped, one the user set is an error naming the fix)."""
    from omegaconf import OmegaConf

    data = OmegaConf.load(conf_file).get("data") or {}
    return {split: data.get(split) for split in ("train", "val", "test")}
