"""The S3 store of `pgvdrill sync`: S3 or S3-compatible storage through boto3.

Each object carries the sha256 of its file as metadata (x-amz-meta-sha256); an object is
identical when its size and that sha256 match the local file. Credentials come only from
boto3's own chain (environment, ~/.aws, instance roles), never from the configuration.
boto3 is optional (pip install 'pgvdrill[s3]') and imported when an S3 store is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from collections.abc import Iterator, Sequence
from posixpath import commonpath
from typing import Any, BinaryIO, Protocol, cast

from pgvdrill.config import S3Target
from pgvdrill.errors import BackupError, ConfigError, DrillError, classified
from pgvdrill.ops.sync_plan import Item
from pgvdrill.ops.sync_store import Comparison
from pgvdrill.repository.paths import open_regular

META = "sha256"  # stored as x-amz-meta-sha256
_CHUNK = 1 << 20
_CREDENTIALS_HINT = ("give the job credentials through boto3's chain: AWS_ACCESS_KEY_ID and "
                     "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in its environment, "
                     "~/.aws/credentials, or an instance role; never in the pgvdrill "
                     "configuration")


class StorageError(DrillError):
    """The remote storage failed (unreachable, or refused a request)."""

    exit_code = 3


class S3Client(Protocol):
    """The part of boto3's S3 client this module uses."""

    def get_paginator(self, operation: str) -> Any: ...

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...

    def upload_fileobj(self, Fileobj: BinaryIO, Bucket: str, Key: str,
                       ExtraArgs: dict[str, Any] | None = None) -> None: ...


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"[sync.s3] needs {name.split('.')[0]}, which is not installed",
                          "pip install 'pgvdrill[s3]' (or pip install boto3)") from None


class S3Store:
    """Objects below `prefix` in `bucket`; `download` re-reads every object when verifying."""

    def __init__(self, target: S3Target, *, download: bool = False) -> None:
        session = _module("boto3").session.Session()
        self.client = cast(S3Client, session.client(
            "s3", endpoint_url=target.endpoint_url, region_name=target.region))
        self.errors = _module("botocore.exceptions")
        self.upload_failed = _module("boto3.exceptions").S3UploadFailedError
        self.bucket = target.bucket
        prefix = target.prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""  # "prod", "/prod/" -> "prod/"
        self.storage_class = target.storage_class
        self.download = download
        self.name = f"s3://{self.bucket}/{self.prefix}"

    def compare(self, items: Sequence[Item]) -> Comparison:
        keys = [i.key for i in items]
        sizes = self._sizes(commonpath(keys)) if keys else {}
        comparison = Comparison()
        for item in items:
            if item.key not in sizes:
                comparison.new.append(item)
            elif (why := self._difference(item, sizes[item.key])) is None:
                comparison.identical.append(item)
            else:
                comparison.differ.append((item, why))
        return comparison

    def upload(self, items: Sequence[Item]) -> None:
        for item in items:
            extra: dict[str, Any] = {"Metadata": {META: item.sha256}}
            if self.storage_class:
                extra["StorageClass"] = self.storage_class
            with self._errors(f"uploading {item.path} to {self.name}{item.key}"), \
                    os.fdopen(open_regular(item.path), "rb") as handle:  # never a symlink
                self.client.upload_fileobj(handle, self.bucket, self.prefix + item.key,
                                           ExtraArgs=extra)

    def verify(self, items: Sequence[Item]) -> list[Item | tuple[Item, str]]:
        sizes = self._sizes("")
        bad: list[Item | tuple[Item, str]] = []
        for item in items:
            if item.key not in sizes:
                bad.append(item)
            elif (why := self._difference(item, sizes[item.key])) is not None:
                bad.append((item, why))
            elif self.download and (digest := self._download_sha256(item)) != item.sha256:
                bad.append((item, f"downloaded has sha256 {digest}, the local file "
                                  f"{item.sha256}"))
        return bad

    def _sizes(self, key_prefix: str) -> dict[str, int]:
        """Size of every object whose key (below our prefix) starts with `key_prefix`."""
        sizes: dict[str, int] = {}
        with self._errors(f"listing {self.name}{key_prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + key_prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    sizes[obj["Key"][len(self.prefix):]] = int(obj["Size"])
        return sizes

    def _difference(self, item: Item, size: int) -> str | None:
        """How the object of `item` (of `size` bytes) differs from the local file, if it does."""
        if size != item.bytes:
            return f"has {size} bytes remotely, {item.bytes} locally"
        with self._errors(f"reading the metadata of {self.name}{item.key}"):
            meta = self.client.head_object(Bucket=self.bucket, Key=self.prefix + item.key)
        remote = meta.get("Metadata", {}).get(META)
        if remote is None:
            return ("has no sha256 metadata (x-amz-meta-sha256) remotely, so it cannot be "
                    "compared: not written by pgvdrill sync")
        if remote != item.sha256:
            return f"has sha256 {remote} remotely, {item.sha256} locally"
        return None

    def _download_sha256(self, item: Item) -> str:
        digest = hashlib.sha256()
        with self._errors(f"downloading {self.name}{item.key}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + item.key)["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """boto3's exceptions as DrillErrors that say what to do."""
        errors = self.errors
        try:
            yield
        except (errors.NoCredentialsError, errors.PartialCredentialsError) as exc:
            raise ConfigError(f"{doing}: no usable S3 credentials ({exc})",
                              _CREDENTIALS_HINT) from None
        except errors.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise ConfigError(f"{doing}: bucket {self.bucket} does not exist",
                                  "create it (with versioning or object lock, so that an "
                                  "overwrite cannot destroy the copy) or fix [sync.s3] "
                                  "bucket") from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                raise ConfigError(f"{doing}: access denied ({code})",
                                  "the credentials need s3:ListBucket, s3:GetObject and "
                                  f"s3:PutObject on {self.name}; {_CREDENTIALS_HINT}"
                                  ) from None
            raise StorageError(f"{doing}: {exc}", "check the storage service; run "
                               "pgvdrill sync again: identical files are skipped") from None
        except OSError as exc:
            raise classified(exc, doing) or BackupError(f"{doing}: {exc.strerror or exc}",
                              "a local file vanished or became unreadable (did retention run "
                              "at the same time?); run pgvdrill sync again") from None
        except (errors.BotoCoreError, self.upload_failed) as exc:
            raise StorageError(f"{doing}: {exc}", "check [sync.s3] endpoint_url and the "
                               "network; run pgvdrill sync again: identical files are skipped"
                               ) from None
