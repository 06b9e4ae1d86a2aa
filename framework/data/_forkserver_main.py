"""Imported by the audit pool's forkserver, once: imports the main script there, so that the
workers forked from it find it imported instead of each running it again.

``multiprocessing`` means ``set_forkserver_preload(["__main__"])`` to do this, but in Python 3.11,
3.12 and early 3.13 releases the forkserver never receives the script's path (CPython gh-126631,
gh-137996) and every worker re-runs the script's imports; nor, in older releases, does it get the
parent's ``sys.path`` (gh-117378), without which a script importing its neighbours fails there.
:func:`framework.data.parallel.ItemPool.map` starts the forkserver with the path and the parent's
``sys.path`` in ``FRAMEWORK_FORKSERVER_MAIN`` and ``FRAMEWORK_FORKSERVER_SYS_PATH``; this module
takes them out of the environment (the workers, and what they start, do not see them) and imports
the script as ``__mp_main__``, as a spawned worker would. Where the forkserver has imported it
already (fixed Pythons), the import is skipped; where the import fails, the workers import the
script themselves, as without this module, and the error shows there.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import process, spawn

MAIN_ENV = "FRAMEWORK_FORKSERVER_MAIN"
SYS_PATH_ENV = "FRAMEWORK_FORKSERVER_SYS_PATH"


def _import_main() -> None:
    path = os.environ.pop(MAIN_ENV, None)
    sys_path = os.environ.pop(SYS_PATH_ENV, None)
    if sys_path:
        sys.path[:] = sys_path.split(os.pathsep)
    if not path:
        return
    main = sys.modules["__main__"]
    process.current_process()._inheriting = True  # type: ignore[attr-defined]  # what forkserver.main sets
    try:
        spawn.import_main_path(path)
    except BaseException:  # noqa: BLE001 - the workers import it themselves and report the error
        sys.modules["__main__"] = main
    finally:
        del process.current_process()._inheriting  # type: ignore[attr-defined]


_import_main()
