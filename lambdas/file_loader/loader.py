"""Load one dropped catalog file: every data line ends up clean, quarantined or a duplicate.

Two streaming passes over the object, each in fixed-size chunks:
1. `content_id` hashes it (SHA-256). The hash names every output, and a manifest under that name
   means these bytes were loaded already, whatever key or event brought them.
2. `load_file` copies the bytes to the raw zone as they are read, checks each line against the
   contract, drops repeated product_ids (the first wins), writes clean rows and quarantined lines
   a row group at a time, checks the hash again, and writes the manifest last.
Memory is a chunk, a batch of lines (BATCH_ROWS or BATCH_BYTES) and 24 bytes per distinct
product_id (dedupe.FirstSeen): never the file.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime
from typing import Any

import pyarrow.fs as pafs

from lambdas.common.manifests import write_manifest
from lambdas.common.storage import resolve
from lambdas.contracts import products as contract
from lambdas.contracts.products import Reason
from lambdas.file_loader.dedupe import FirstSeen
from lambdas.file_loader.lines import Line, chunks, split_lines
from lambdas.file_loader.outputs import CLEAN_SCHEMA, QUARANTINE_SCHEMA, Locations, ParquetSink
from lambdas.file_loader.rules import Header, Product, Rejected, parse_header, parse_row

CHUNK_BYTES = 8 * 1024 * 1024  # per read: on S3 one ranged GET, so not too small
# Lines judged, deduplicated and written together (a row group), up to either limit.
BATCH_ROWS = 50_000
BATCH_BYTES = 8 * 1024 * 1024


class ConservationError(RuntimeError):
    """The file's ledger does not balance: a row would be lost or counted twice (a bug, never data)."""


class ObjectChanged(RuntimeError):
    """The object's bytes changed between the two passes (it was overwritten): load it again."""


def content_id(uri: str, chunk_bytes: int = CHUNK_BYTES) -> str:
    """SHA-256 (hex) of the object's bytes, streamed. FileNotFoundError when it does not exist."""
    digest = hashlib.sha256()
    fs, path = resolve(uri)
    with fs.open_input_stream(path, compression=None) as stream:
        for _ in chunks(stream, chunk_bytes, digest.update):
            pass
    return digest.hexdigest()


def loaded_manifest(where: Locations, file_id: str) -> dict[str, Any] | None:
    """The manifest of an earlier load of the same bytes, or None."""
    fs, path = resolve(where.manifest(file_id))
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path, compression=None) as stream:
        return json.loads(stream.read())


def load_file(source_uri: str, file_id: str, *, ingested_at: datetime, where: Locations,
              chunk_bytes: int = CHUNK_BYTES, batch_rows: int = BATCH_ROWS,
              batch_bytes: int = BATCH_BYTES) -> dict[str, Any]:
    """Load the object at `source_uri`, whose content hash is `file_id`; return its manifest."""
    load = _Load(source_uri, file_id, ingested_at, where, batch_rows, batch_bytes)
    digest = hashlib.sha256()
    fs, path = resolve(source_uri)
    raw_fs, raw_path = resolve(where.raw_copy(file_id))
    with fs.open_input_stream(path, compression=None) as stream, \
            raw_fs.open_output_stream(raw_path, compression=None) as raw_copy:
        for line in split_lines(chunks(stream, chunk_bytes, digest.update, raw_copy.write),
                                contract.MAX_ROW_BYTES):
            load.add(line)
        size = raw_copy.tell()  # (an input stream cannot tell)
    if digest.hexdigest() != file_id:
        raise ObjectChanged(f"{source_uri} changed while it was loaded (SHA-256 {file_id} when hashed, "
                            f"{digest.hexdigest()} when read again); its newer bytes get their own load")
    manifest = load.finish(size)
    # Last: from now on these bytes count as loaded.
    write_manifest(where.staging_uri, contract.SOURCE, where.manifest_name(file_id), manifest)
    return manifest


class _Load:
    """The running state of one file's load: counts, the current batch, the output files."""

    def __init__(self, source_uri: str, file_id: str, ingested_at: datetime, where: Locations,
                 batch_rows: int, batch_bytes: int) -> None:
        self.source_uri, self.file_id, self.ingested_at, self.where = source_uri, file_id, ingested_at, where
        self.batch_rows, self.batch_bytes = batch_rows, batch_bytes
        self.batch_size = 0  # bytes of the current batch's lines
        # Until line 1 says otherwise: a file with no line at all has no header either.
        self.header: Header | Rejected = Rejected(Reason.BAD_HEADER, "the file is empty: it has no header line")
        self.received = self.duplicates = self.blank_lines = self.lines = 0
        self.by_reason: Counter[str] = Counter()
        self.products: list[tuple[Product, Line]] = []
        self.rejected: list[tuple[Line, Rejected]] = []
        self.seen = FirstSeen()
        self.clean = ParquetSink(where.clean(file_id), CLEAN_SCHEMA)
        self.quarantine = ParquetSink(where.quarantine(file_id), QUARANTINE_SCHEMA)

    def add(self, line: Line) -> None:
        self.lines = line.number
        if line.number == 1:
            self.header = (Rejected(Reason.BAD_HEADER, f"the header line is longer than {contract.MAX_ROW_BYTES} bytes")
                           if line.truncated else parse_header(line.data))
            if isinstance(self.header, Header):
                return
            # A first line that is no header may be a product row: it is quarantined, not lost.
        if not line.truncated and not line.data.strip():
            self.blank_lines += 1
            return
        self.received += 1
        if isinstance(self.header, Rejected):
            result: Product | Rejected = Rejected(Reason.BAD_HEADER, f"the file's header is invalid: {self.header.message}")
        elif line.truncated:
            result = Rejected(Reason.OVERSIZED_ROW, f"line is {line.length} bytes, limit {contract.MAX_ROW_BYTES} "
                                                    f"(its first {contract.MAX_ROW_BYTES} bytes are kept here)")
        else:
            result = parse_row(line.data, self.header, arrived=self.ingested_at)
        if isinstance(result, Rejected):
            self.rejected.append((line, result))
        else:
            self.products.append((result, line))
        self.batch_size += len(line.data)
        if len(self.products) + len(self.rejected) >= self.batch_rows or self.batch_size >= self.batch_bytes:
            self.flush()

    def flush(self) -> None:
        """Deduplicate the batch against the file so far, and write its clean and quarantined rows."""
        clean: list[tuple[Product, Line]] = []
        if self.products:
            verdicts = self.seen.check([p.key for p, _ in self.products], [p.digest for p, _ in self.products],
                                       [line.number for _, line in self.products])
            for (product, line), first, same in zip(self.products, verdicts.first_line.tolist(),
                                                    verdicts.same_values.tolist()):
                if not first:
                    clean.append((product, line))
                elif same:
                    self.duplicates += 1
                else:
                    self.rejected.append((line, Rejected(
                        Reason.CONFLICTING_DUPLICATE,
                        f"product_id {product.product_id} is on line {first} too, with other values "
                        "(the first one is kept)")))
        self.clean.write({
            **{name: [getattr(p, name) for p, _ in clean] for name in Product.__slots__},
            "file_id": [self.file_id] * len(clean),
            "line_number": [line.number for _, line in clean],
            "ingested_at": [self.ingested_at] * len(clean),
        })
        self.rejected.sort(key=lambda item: item[0].number)
        self.by_reason.update(rejected.reason for _, rejected in self.rejected)
        self.quarantine.write({
            "raw_payload": [line.data for line, _ in self.rejected],
            "source": [contract.SOURCE] * len(self.rejected),
            "reason": [rejected.reason for _, rejected in self.rejected],
            "message": [rejected.message for _, rejected in self.rejected],
            "file_id": [self.file_id] * len(self.rejected),
            "line_number": [line.number for line, _ in self.rejected],
            "source_uri": [self.source_uri] * len(self.rejected),
            "ingested_at": [self.ingested_at] * len(self.rejected),
        })
        self.products, self.rejected, self.batch_size = [], [], 0

    def finish(self, size: int) -> dict[str, Any]:
        """Flush the last batch, close the files, and check the ledger; the manifest to write."""
        self.flush()
        clean_uri, quarantine_uri = self.clean.close(), self.quarantine.close()
        quarantined = sum(self.by_reason.values())
        if self.clean.rows + quarantined + self.duplicates != self.received:
            raise ConservationError(
                f"{self.source_uri}: received {self.received} rows but accounted for "
                f"{self.clean.rows + quarantined + self.duplicates} ({self.clean.rows} clean, {quarantined} "
                f"quarantined, {self.duplicates} duplicates)")
        header = self.header
        return {
            "source": contract.SOURCE,
            "contract_version": contract.VERSION,
            "file_id": self.file_id,
            "status": "loaded" if isinstance(header, Header) else "rejected",
            "error": None if isinstance(header, Header) else {"reason": header.reason, "message": header.message},
            "source_uri": self.source_uri,
            "size_bytes": size,
            "ingested_at": self.ingested_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "ignored_columns": list(header.ignored) if isinstance(header, Header) else [],
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "received": self.received,
            "clean": self.clean.rows,
            "quarantined": quarantined,
            "quarantined_by_reason": dict(sorted(self.by_reason.items())),
            "duplicates": self.duplicates,
            "files": {"raw": self.where.raw_copy(self.file_id), "clean": clean_uri, "quarantine": quarantine_uri},
        }
