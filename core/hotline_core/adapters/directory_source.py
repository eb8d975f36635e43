"""Reads `phonenumber.json` from S3 and keeps it for a minute: after that, the next load asks
S3 again with the copy's ETag (`If-None-Match`), so an unchanged file costs a 304 and no parse,
and a pushed one reaches every warm container within a minute. A bad or missing file fails
loudly when there is no good copy yet; a bad new copy leaves the good one in use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from hotline_core.clock import now as clock_now
from hotline_core.directory import Directory, DirectoryError, parse_directory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Errors that no retry fixes: the deployment points at a file that is not there. Without
# s3:ListBucket (this function has only s3:GetObject), S3 reports a missing key as AccessDenied.
_UNREADABLE = {
    "NoSuchKey": "does not exist",
    "NoSuchBucket": "names a bucket that does not exist",
    "AccessDenied": "cannot be read: it is missing, or this function may not read it",
}


# How long a copy is used before S3 is asked whether it changed.
FRESH_FOR = timedelta(seconds=60)


class S3Directory:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        clock: Callable[[], datetime] = clock_now,
        fresh_for: timedelta = FRESH_FOR,
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        self._key = key
        self._clock = clock
        self._fresh_for = fresh_for
        self._cached: Directory | None = None
        self._etag: str | None = None
        self._checked_at: datetime | None = None
        self.problem: str | None = None  # why the newest copy in S3 is not the one in use

    def load(self) -> Directory:
        now = self._clock()
        if (
            self._cached is not None
            and self._checked_at is not None
            and now - self._checked_at < self._fresh_for
        ):
            return self._cached
        read = self._read()
        self._checked_at = now
        if read is None:  # 304: unchanged since the copy in use
            assert self._cached is not None
            return self._cached
        raw, etag = read
        try:
            directory = parse_directory(raw)
        except DirectoryError as exc:
            if self._cached is None:
                raise
            # A bad upload must not take the hotline down: keep the good copy, say why.
            self.problem = str(exc)
            self._etag = etag
            return self._cached
        self._cached, self._etag, self.problem = directory, etag, None
        return directory

    def _read(self) -> tuple[bytes, str | None] | None:
        """The file and its ETag; None when it is unchanged since the copy in use."""
        where = f"s3://{self._bucket}/{self._key}"
        try:
            if self._etag is not None and self._cached is not None:
                got = self._s3.get_object(
                    Bucket=self._bucket, Key=self._key, IfNoneMatch=self._etag
                )
            else:
                got = self._s3.get_object(Bucket=self._bucket, Key=self._key)
            return got["Body"].read(), got.get("ETag")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("304", "NotModified") or status == 304:
                return None
            problem = _UNREADABLE.get(code)
            if problem is None:
                raise  # throttling or a server error: the invocation's retry may succeed
            raise DirectoryError(
                f"directory {where} {problem} ({code}); upload phonenumber.json there "
                "(hotline directory push) or set DirectoryBucketName"
            ) from exc
