"""Imports each production module so that it appends its register function to
commands.REGISTRARS (one line per module)."""
from pgvdrill.ops import backup  # noqa: F401
from pgvdrill.ops import sync  # noqa: F401
from pgvdrill.ops import retention  # noqa: F401
from pgvdrill.ops import verify  # noqa: F401
from pgvdrill.ops import schedule  # noqa: F401
