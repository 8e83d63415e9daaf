"""Backups of the configured source: taking one into the repository (take.py), the source
and its client tools (source.py), and a catalog backup's files as the libraries know them
(stored.py). Used by the production commands and the DR drill alike."""
