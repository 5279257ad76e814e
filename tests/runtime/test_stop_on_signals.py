"""A stop signal stops the stage even when the code it interrupted turned the `Stopped` into
another exception (numpy does so inside its buffer-format parser, mid-fit)."""

from __future__ import annotations

import os
import signal

import pytest

from mlops_runtime.project import Stopped, stop_on_signals, stop_received


def interrupted_inside_a_converting_library() -> None:
    try:
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)  # let the handler run here, inside the `try`
        for _ in range(1000):
            pass
    except BaseException as error:
        raise ValueError("not a valid PEP 3118 buffer format string") from error


def test_a_converted_stop_still_stops_with_its_signal_and_notes() -> None:
    with pytest.raises(Stopped) as caught, stop_on_signals():
        try:
            interrupted_inside_a_converting_library()
        except ValueError as error:
            error.add_note("registered version 3 as challenger before stopping")
            raise
    assert caught.value.signum == signal.SIGINT
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.__notes__ == ["registered version 3 as challenger before stopping"]


def test_an_error_without_a_stop_is_left_as_it_is() -> None:
    with pytest.raises(ValueError), stop_on_signals():
        raise ValueError("a real error")
    assert stop_received() is None
