"""wait_until: the answer, the timeout's message (last error, hint), transient errors, give-up."""

from __future__ import annotations

import itertools

import pytest

from pgvdrill.errors import DrillError, RestoreError
from pgvdrill.proc.wait import GiveUp, Waited, WaitTimeout, poll_until, wait_until


def test_returns_the_first_true_answer() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_until(lambda: next(answers), timeout=60, interval=0, message="never") == "ready"


def test_a_timeout_raises_the_message_and_the_hint() -> None:
    with pytest.raises(WaitTimeout) as caught:
        wait_until(lambda: False, timeout=0, message="the server is not up after 0s",
                   hint="read the server log")
    assert caught.value.message == "the server is not up after 0s"
    assert caught.value.hint == "read the server log"
    assert str(caught.value) == "the server is not up after 0s\n  hint: read the server log"
    assert isinstance(caught.value, DrillError)


def test_transient_errors_are_retried_and_the_last_one_is_named() -> None:
    calls = itertools.count()

    def probe() -> bool:
        raise ConnectionError(f"refused #{next(calls)}")

    with pytest.raises(WaitTimeout) as caught:
        wait_until(probe, timeout=0, message="no connection", transient=(ConnectionError,))
    assert caught.value.message == "no connection: refused #0"

    tries = iter([ConnectionError("refused"), ConnectionError("still refused"), "up"])

    def flaky() -> str:
        answer = next(tries)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(flaky, timeout=60, interval=0, message="never",
                      transient=(ConnectionError,)) == "up"


def test_other_errors_are_not_retried() -> None:
    def probe() -> bool:
        raise ValueError("a bug, not a wait")

    with pytest.raises(ValueError, match="a bug"):
        wait_until(probe, timeout=60, message="never", transient=(ConnectionError,))


def test_a_probe_gives_up_at_once_with_its_cause() -> None:
    def probe() -> bool:
        try:
            raise ConnectionError("the server stopped")
        except ConnectionError as exc:
            raise GiveUp from exc

    seen: list[Waited] = []

    def message(waited: Waited) -> str:
        seen.append(waited)
        return f"did not start{waited.last_error()}"

    with pytest.raises(RestoreError) as caught:
        wait_until(probe, timeout=3600, message=message, error=RestoreError,
                   hint=lambda waited: "gave up" if waited.gave_up else "timed out")
    assert caught.value.message == "did not start: the server stopped"
    assert caught.value.hint == "gave up"
    assert seen[0].timeout == 3600


def test_poll_until_answers_none_after_the_timeout() -> None:
    assert poll_until(lambda: None, timeout=0) is None
    assert poll_until(lambda: 7, timeout=0) == 7
