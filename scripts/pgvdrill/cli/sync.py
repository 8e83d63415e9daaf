"""`pgvdrill sync`: copy the backup repository off-site ([sync.rsync], [sync.s3]) and
verify the copies (see ops/sync.py)."""

from __future__ import annotations

import argparse

from pgvdrill.cli import common
from pgvdrill.config import find_config
from pgvdrill.ops.sync import TARGETS, sync

HELP = ("copy the backup repository off-site (rsync, S3) and verify the copies; never "
        "deletes remotely")
DESCRIPTION = """\
Copy the backup repository off-site: to [sync.rsync] dest (a local directory or
host:path, by rsync over ssh) and/or to [sync.s3] (S3 or S3-compatible storage, through
boto3 with credentials from its usual chain: environment, ~/.aws, instance role).

What is copied: the archived WAL (wal/) and every complete backup, i.e. one with a catalog
entry, whose files still match the sha256 sums of that entry; the entry is copied after
the backup's files, so an entry on the remote side means the whole backup is there. A
backup whose local files do not match its entry, or whose entry is invalid, is refused
(not copied, exit 4): its off-site copy stays as it was. A backup without an entry
(running or failed) is skipped. No symlink in the repository is ever followed: a symlink,
a hard link to a file elsewhere, a FIFO or device in wal/ or in a backup, a non-WAL name
in wal/ and a WAL segment whose size is not the segment size are refused by name (exit 4),
the rest is copied; a missing catalog/ is refused too (no backup is copied).

Nothing is ever deleted remotely, and no remote file is overwritten: a file that is
already there with the same size and sha256 is skipped, one that differs is reported
(exit 4) and left alone: the local and the off-site copy diverged and someone must find
out which is right. Unlike the runbook's `rsync -av --delete`, which propagates a local
deletion or corruption to the only off-site copy, remote files outlive local retention:
expire them on the remote side (an S3 lifecycle rule, a cleanup job on the backup host).

After copying, every file is verified on the remote side: S3 object sizes and their
x-amz-meta-sha256 against the catalog (and, with --verify-download, the downloaded
bytes); in a local directory the copies are hashed; on host:path rsync compares by
checksum.
"""

EPILOG = """\
examples:
  pgvdrill sync                              # every [sync.*] target of the configuration
  pgvdrill sync --to s3 --dry-run            # what would be uploaded, what is identical
  pgvdrill sync --to rsync --config /etc/pgvdrill/pgvdrill.toml
  pgvdrill sync --to s3 --verify-download    # also download and hash every object

exit codes:
  0  every file copied (or identical) and verified
  2  bad configuration: no such [sync.*] section, no repository, rsync or boto3 missing,
     no S3 credentials or access, no such bucket
  3  rsync or the storage service failed (run again: identical files are skipped)
  4  a backup's local files do not match its catalog entry or the entry is invalid, a
     symlink or a stray or wrong-size file in wal/ (refused), a remote file
     differs from the local one (not overwritten), or a copy failed verification
  8  the machine failed, not the backup: a full disk, a permission, a read-only file
     system, a server that died (the cause is named; fix it and run again)
"""


def add_parser(sub: common.SubParsers) -> None:
    parser = common.command_parser(sub, "sync", HELP, DESCRIPTION, EPILOG)
    common.add_config_option(parser)
    parser.add_argument("--to", choices=TARGETS, default="all",
                        help="which configured target: rsync ([sync.rsync]), s3 ([sync.s3]) "
                             "or all configured ones (default)")
    common.add_switches(parser, {
        "--dry-run": "compare only: show what would be uploaded, what is identical and what "
                     "differs; copy and verify nothing",
        "--verify-download": "S3: after the upload, also download every object and hash it"})


def run(args: argparse.Namespace) -> int:
    return sync(find_config(args.config), args.to, dry_run=args.dry_run,
                download=args.verify_download, say=common.say)


COMMAND = common.Command("sync", add_parser, run)
