"""Idempotent, atomic file writes on the lake, for `file://` and `s3://` URIs alike.

Built on lambdas/common/storage.py (one code path for the local lake and S3; docs/decisions/0402).
What this adds: a file whose content would not change is not written at all (a re-run changes nothing,
not even a modification time). Every write is atomic (lambdas/common/storage.py `writing`).
"""
from __future__ import annotations

import pyarrow.fs as pafs

from lambdas.common.storage import resolve, write_bytes


def _locate(uri: str) -> tuple[pafs.FileSystem, str]:
    """A file that is only read or removed: no parent folder is made for it."""
    return resolve(uri, make_parent=False)


def read(uri: str) -> bytes | None:
    """The file's bytes, or None when there is no such file."""
    fs, path = _locate(uri)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path, compression=None) as stream:
        return stream.read()


def put(uri: str, data: bytes) -> bool:
    """Write `data` unless the file already holds exactly it; True if it was written."""
    if read(uri) == data:
        return False
    write_bytes(uri, data)
    return True


def put_once(uri: str, data: bytes) -> bool:
    """Write an immutable, content-addressed file unless it exists; True if it was written."""
    fs, path = _locate(uri)
    if fs.get_file_info(path).type == pafs.FileType.File:
        return False
    write_bytes(uri, data)
    return True


def remove(uri: str) -> bool:
    """Delete the file if it exists; True if there was one."""
    fs, path = _locate(uri)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return False
    fs.delete_file(path)
    return True
