"""SIGINT, SIGTERM and SIGHUP end pgvdrill promptly and cleanly.

`handle_signals` (the CLI calls it first) makes each of them raise `Interrupted` in the
main thread, once: the runner then ends the process group of the tool running (SIGTERM,
SIGKILL after a grace), every `with`/`finally` on the way out runs (servers stopped, a
partial backup left without a catalog entry), and the CLI exits 128 + the signal's number
(130, 143, 129). A signal the launcher ignored stays ignored (nohup, a background job of
a non-interactive shell ignores SIGINT), but is caught by a handler that does nothing, so
the programs pgvdrill starts get the default disposition back on exec.

`held()` makes a few steps indivisible: a signal that arrives inside waits until the block
ends (starting a tool and registering its group; ending a group), then is raised.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """pgvdrill received `signum`: everything it started is being ended."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {self.name}")


_stopping: list[int] = []  # the signal being handled, once one arrived
_held: list[int] = []  # one entry per `held()` block the main thread is in
_pending: list[int] = []  # a signal that arrived inside a `held()` block


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _stopping:  # already unwinding: let the cleanup finish
        return
    if _held:  # inside steps that must not be cut in two: raised when they are done
        _pending[:] = [signum]
        return
    _stopping.append(signum)
    raise Interrupted(signum)


@contextmanager
def held() -> Iterator[None]:
    """Hold `Interrupted` while the block runs: a signal that arrives meanwhile raises it
    when the block ends (in the main thread, where handlers run; elsewhere nothing is
    held). Not a signal mask: the programs started inside would inherit it, and a tool
    with SIGTERM blocked could not be ended."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held.append(1)
    try:
        yield
    finally:
        _held.pop()
        if not _held and _pending and not _stopping:
            signum = _pending.pop()
            _stopping.append(signum)
            raise Interrupted(signum)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The launcher ignored this signal: so do we (children get the default on exec)."""


def handle_signals() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise `Interrupted` (once), unless ignored at start.
    Call from the main thread."""
    for sig in SIGNALS:
        ignored = signal.getsignal(sig) == signal.SIG_IGN
        signal.signal(sig, _ignore if ignored else _interrupt)
