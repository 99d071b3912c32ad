"""One code path for the lake's files on `file://` (the local lake) and `s3://` (AWS, moto, LocalStack).

Every function that writes the lake resolves its URIs here (docs/decisions/0402).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import pyarrow.fs as pafs


@dataclass(frozen=True)
class Locations:
    raw_uri: str  # zone roots: file:///abs/path or s3://bucket
    staging_uri: str


def resolve(uri: str, make_parent: bool = True) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a file URI; for a local file about to be written (`make_parent`), its
    parent folder is made, since local folders are real and S3 prefixes are not."""
    if uri.startswith("s3://"):
        # pyarrow ignores AWS_ENDPOINT_URL, so it is passed on explicitly (moto, LocalStack).
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return s3_filesystem(endpoint, region), uri[len("s3://"):]
    fs, path = pafs.FileSystem.from_uri(uri)
    if make_parent and isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    return fs, path


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri, make_parent=False)
    with fs.open_input_stream(path, compression=None) as stream:  # as written: no decompression by name
        return stream.read()


def write_bytes(uri: str, data: bytes) -> None:
    fs, path = resolve(uri)
    # compression=None: pyarrow would otherwise gzip a ".gz" name a second time.
    with fs.open_output_stream(path, compression=None) as out:
        out.write(data)


@lru_cache(maxsize=4)
def s3_filesystem(endpoint: str | None, region: str | None) -> pafs.S3FileSystem:
    """One client per endpoint and region, kept across warm invocations."""
    return pafs.S3FileSystem(endpoint_override=endpoint, region=region)
