"""SIGINT, SIGTERM and SIGHUP end pgvdrill promptly and cleanly.

`handle_signals` (the CLI calls it first) makes each of them raise `Interrupted` in the
main thread, once: the runner then ends the process group of the tool running (SIGTERM,
SIGKILL after a grace), every `with`/`finally` on the way out runs (servers stopped, a
partial backup left without a catalog entry), and the CLI exits 128 + the signal's number
(130, 143, 129). A signal the launcher ignored stays ignored (nohup, a background job of
a non-interactive shell ignores SIGINT), but is caught by a handler that does nothing, so
the programs pgvdrill starts get the default disposition back on exec.
"""

from __future__ import annotations

import signal
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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _stopping:  # already unwinding: let the cleanup finish
        return
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
