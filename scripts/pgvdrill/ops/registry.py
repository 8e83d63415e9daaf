"""Imports each production module so that it appends its register function to
commands.REGISTRARS (one line per module)."""
from pgvdrill.cli import procedure as command  # noqa: F401
from pgvdrill.ops import (
    backup,  # noqa: F401
    image,  # noqa: F401
    restore,  # noqa: F401
    retention,  # noqa: F401
    schedule,  # noqa: F401
    sync,  # noqa: F401
    verify,  # noqa: F401
)
