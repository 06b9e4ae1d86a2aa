"""Exit codes are decided in one place (framework.__main__.outcome) for single runs and sweeps."""

from __future__ import annotations

from framework.__main__ import ExitCode, outcome
from framework.errors import FrameworkError
from framework.evaluation.success import NOT_FIT_EXIT_CODE


def test_outcomes_map_to_exit_codes() -> None:
    from framework.app import ModalityFailure
    from framework.training import Interrupted

    assert outcome(None, []).code == ExitCode.OK == 0
    assert outcome(None, [True]).code == ExitCode.OK
    assert outcome(None, [False]).code == ExitCode.NOT_FIT == NOT_FIT_EXIT_CODE == 3
    assert outcome(None, [False, True]).code == ExitCode.OK  # a sweep with one job fit to ship
    assert outcome(FrameworkError("bad value")) == type(outcome(None))(ExitCode.USAGE, "bad value")
    assert outcome(ModalityFailure.__new__(ModalityFailure)).code == ExitCode.FAILED
    assert outcome(Interrupted.__new__(Interrupted)).code == ExitCode.OK
    full = OSError(28, "No space left on device")
    assert outcome(full).code == ExitCode.FAILED and "no space left" in outcome(full).message
    assert outcome(RuntimeError("a bug")) is None  # a genuine bug keeps its traceback
