"""Registers pgvdrill's pytest plugins; each fixtures/ module owns its options and fixtures."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.clusters",
    "fixtures.installations",
    "fixtures.datasets",
    "fixtures.backups",
    "fixtures.reporting",
    "fixtures.wal",
    "fixtures.cli",
    "fixtures.ops",
    "fixtures.pgctl",
    "fixtures.production",
    "fixtures.production_container",
    "fixtures.provider_command",
    "fixtures.provider_pgbackrest",
    "fixtures.s3",
    "fixtures.provider_barman_cloud",
]
