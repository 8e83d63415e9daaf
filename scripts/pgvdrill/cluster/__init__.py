"""Where PostgreSQL runs: one `Cluster` interface, one module per backend."""

from pgvdrill.cluster.base import Backend, Cluster, ConnInfo, Server

__all__ = ["Backend", "Cluster", "ConnInfo", "Server"]
