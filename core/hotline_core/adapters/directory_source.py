"""Reads `phonenumber.json` from S3 once per cold start; a bad file fails loudly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotline_core.directory import Directory, parse_directory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Directory:
    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._s3 = client
        self._bucket = bucket
        self._key = key
        self._cached: Directory | None = None

    def load(self) -> Directory:
        if self._cached is None:
            body = self._s3.get_object(Bucket=self._bucket, Key=self._key)["Body"].read()
            self._cached = parse_directory(body)
        return self._cached
