"""Reads `phonenumber.json` from S3 once per cold start; a bad or missing file fails loudly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

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


class S3Directory:
    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._s3 = client
        self._bucket = bucket
        self._key = key
        self._cached: Directory | None = None

    def load(self) -> Directory:
        if self._cached is None:
            self._cached = parse_directory(self._read())
        return self._cached

    def _read(self) -> bytes:
        where = f"s3://{self._bucket}/{self._key}"
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=self._key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            problem = _UNREADABLE.get(code)
            if problem is None:
                raise  # throttling or a server error: the invocation's retry may succeed
            raise DirectoryError(
                f"directory {where} {problem} ({code}); upload phonenumber.json there "
                "(hotline directory push) or set DirectoryBucketName"
            ) from exc
