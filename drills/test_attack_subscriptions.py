"""A production server that subscribes to a publication (logical replication) carries its
subscriptions in its base backup. A scratch copy started from it is a primary at once; its
apply workers would log into the publisher (production) with the subscription's
connection string and stream from its slot: the copy takes the slot while the real
subscriber is away, and the changes it confirms are lost to the real subscriber."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pgvdrill.cluster import Cluster
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.backup import base_backup


def _password(cluster: Cluster) -> str:
    return cluster.conninfo.passfile.read_text().strip().rsplit(":", 1)[1]


def test_a_restored_copy_of_a_subscriber_never_reaches_the_publisher(
        make_cluster: Callable[..., Cluster], wal_workdir: Path, tmp_path: Path,
        restore_backup: Callable[[BaseBackup, str], tuple[Cluster, float]]) -> None:
    publisher = make_cluster("publisher")
    publisher.configure(wal_level="logical")
    publisher.stop()
    publisher.start()
    publisher.query("CREATE TABLE items (id int PRIMARY KEY)")
    publisher.query("CREATE PUBLICATION pub FOR TABLE items")
    subscriber = make_cluster("subscriber")
    subscriber.query("CREATE TABLE items (id int PRIMARY KEY)")
    info = publisher.conninfo
    subscriber.query(f"CREATE SUBSCRIPTION sub CONNECTION 'host={info.host} port={info.port} "
                     f"user={info.user} dbname=postgres password={_password(publisher)}' "
                     "PUBLICATION pub")
    backup = base_backup(subscriber, BASE_BACKUP_SETTINGS["tar-stream"],
                         wal_workdir / f"base-{tmp_path.name}", fast_checkpoint=True)
    subscriber.stop()  # the real subscriber away (a restore's usual moment): slot free

    copy, _ = restore_backup(backup, "copy-of-subscriber")
    copy.start()

    # no apply worker can start (before, within a second or two the copy's took the slot)
    assert copy.query("SHOW max_logical_replication_workers") == [("0",)]
    assert copy.query("SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL") \
        == [(0,)]
    assert publisher.query("SELECT active FROM pg_replication_slots "
                           "WHERE slot_name = 'sub'") == [(False,)]
