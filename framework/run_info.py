"""The identity of a run (:class:`RunInfo`): a neutral module both the engine and the plugin contract use.

It lives apart from :mod:`framework.hookspecs` so that the training engine can name a run without
importing the plugin contract. ``from framework.hookspecs import RunInfo`` and ``framework.RunInfo``
keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunInfo:
    """Identity of a run, passed to every event hook.

    Attributes:
        run_dir: The run's output directory.
        modality: The modality's name.
        name: A short run name (the Hydra job name plus overrides, or ``run``).
        config_yaml: The resolved config as YAML text.
        rank: This process's rank (0 when not distributed).
        world_size: Number of processes (1 when not distributed).
    """

    run_dir: Path
    modality: str
    name: str
    config_yaml: str
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes (rank 0)."""
        return self.rank == 0
