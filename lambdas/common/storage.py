"""One code path for the lake's files on `file://` (the local lake) and `s3://` (AWS, moto, LocalStack).

Every function that writes the lake resolves its URIs here (docs/decisions/0402). A reader never sees half a
file: an S3 object appears only when its upload completes, and a local file is written under a hidden temporary
name and renamed into place (`writing`). That matters where a file is rewritten under its own name while it is
read: a redelivered batch restages its files, which the live tables may already have registered.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def writing(uri: str) -> Iterator[tuple[pafs.FileSystem, str]]:
    """(filesystem, path) to write `uri`'s content at; once the block ends, the file is `uri`, whole. S3 writes
    in place; a local file goes under a hidden name beside it (Spark, pyarrow datasets and DuckDB globs skip
    names with a leading dot), then rename(2) moves it into place atomically."""
    fs, path = resolve(uri)
    if not isinstance(fs, pafs.LocalFileSystem):
        yield fs, path
        return
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        yield fs, temporary
        fs.move(temporary, path)
    except BaseException:
        if fs.get_file_info(temporary).type == pafs.FileType.File:
            fs.delete_file(temporary)
        raise


def write_bytes(uri: str, data: bytes) -> None:
    with writing(uri) as (fs, path):
        # compression=None: pyarrow would otherwise gzip a ".gz" name a second time.
        with fs.open_output_stream(path, compression=None) as out:
            out.write(data)


@lru_cache(maxsize=4)
def s3_filesystem(endpoint: str | None, region: str | None) -> pafs.S3FileSystem:
    """One client per endpoint and region, kept across warm invocations."""
    return pafs.S3FileSystem(endpoint_override=endpoint, region=region)
