"""Hydra search-path plugin: adds every installed framework plugin's config folder.

Hydra discovers this module through the ``hydra_plugins`` namespace package. It asks the
framework's plugin manager for the entries plugins contribute with the
``framework_config_search_path`` hook, so ``+modality=NAME`` and plugin groups such as
``model=vit`` resolve whether the plugin is built in or installed from another package.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class FrameworkSearchPath(SearchPathPlugin):
    """Appends the plugins' ``pkg://...`` config folders after the core's ``conf/``."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from framework.config import conf_dir
        from framework.plugins import default_plugins

        # Hydra offers this plugin to every Hydra app installed here; act for the framework only.
        ours = str(conf_dir())
        if not any(ours in (entry.path or "") for entry in search_path.get_path()):
            return
        for entry in default_plugins().config_search_path():
            search_path.append(provider="framework-plugin", path=entry)
