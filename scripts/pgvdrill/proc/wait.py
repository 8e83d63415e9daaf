"""Waiting for a condition: one loop with a timeout, a poll interval and transient errors.

`wait_until(probe, timeout=..., message=..., hint=...)` calls `probe` every `interval`
seconds until it answers something true, and returns that answer. An exception listed in
`transient` is remembered and retried; a probe raises `GiveUp` when waiting cannot change
the answer (a server that stopped). A timeout or a give-up raises `error(message, hint)`:
by default `WaitTimeout`. A plain-text `message` (which names what was awaited and for
how long) is followed by the last transient error; `message` and `hint` may instead be
functions of what the wait saw (`Waited`), so each caller keeps its own words.
`poll_until` is the same loop for callers to whom a timeout is an answer (None), not a
failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pgvdrill.errors import DrillError

T = TypeVar("T")

INTERVAL = 0.05


class WaitTimeout(DrillError):
    """A wait ended without its condition: what was awaited, the last error, a hint."""


class GiveUp(Exception):
    """Raised by a probe: stop waiting now, the answer cannot change (its cause, if any,
    becomes the wait's last error)."""


@dataclass(frozen=True)
class Waited:
    """What a wait saw: for the message of one that ended without its condition."""

    timeout: float
    error: BaseException | None  # the last transient error (or the cause of a give-up)
    gave_up: bool  # ended by `GiveUp` before the timeout

    def last_error(self) -> str:
        """The last error as one clause (empty without one)."""
        return f": {str(self.error).strip()}" if self.error is not None else ""


Text = str | Callable[[Waited], str]


def poll_until(probe: Callable[[], T | None], *, timeout: float, interval: float = INTERVAL,
               transient: tuple[type[Exception], ...] = ()) -> T | None:
    """`probe`'s first true answer within `timeout` seconds, or None."""
    answer, _ = _poll(probe, timeout, interval, transient)
    return answer


def wait_until(probe: Callable[[], T | None], *, timeout: float, message: Text,
               hint: Text = "", interval: float = INTERVAL,
               transient: tuple[type[Exception], ...] = (),
               error: Callable[[str, str], Exception] = WaitTimeout) -> T:
    """`probe`'s first true answer; after `timeout` seconds (or a `GiveUp`), raise
    `error(message, hint)`. A plain-text `message` is followed by the last transient error;
    a function of `Waited` words the whole message (before `hint` is worded)."""
    answer, waited = _poll(probe, timeout, interval, transient)
    if answer:
        return answer
    said = message + waited.last_error() if isinstance(message, str) else message(waited)
    raise error(said, hint if isinstance(hint, str) else hint(waited))


def _poll(probe: Callable[[], T | None], timeout: float, interval: float,
          transient: tuple[type[Exception], ...]) -> tuple[T | None, Waited]:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            answer = probe()
        except GiveUp as stop:
            return None, Waited(timeout, stop.__cause__ or last, gave_up=True)
        except transient as exc:
            last = exc
        else:
            if answer:
                return answer, Waited(timeout, last, gave_up=False)
        if time.monotonic() > deadline:
            return None, Waited(timeout, last, gave_up=False)
        time.sleep(interval)
