"""A framework for training models across modalities, with the data work around training.

The public surface is small and importable without torch::

    from framework import hookimpl, Modality, RunContext

See ``docs/plugins.md`` for writing a plugin and ``docs/architecture.md`` for the layout.
"""

from framework.hookspecs import RunInfo, hookimpl
from framework.modality import Modality, RunContext

__all__ = ["Modality", "RunContext", "RunInfo", "hookimpl", "__version__"]
__version__ = "0.1.0"
