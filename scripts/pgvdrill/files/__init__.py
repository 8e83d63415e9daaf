"""Files pgvdrill did not create: trust checks on owners and modes, hard links, ELF search
paths; and durable writes (fsync) and gzip streams."""
