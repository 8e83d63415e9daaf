"""The `pgvdrill` command: the ordered command table (main) and one module per command
holding its parser, epilog and handler."""
