"""A file as a stream of lines, read in fixed-size chunks: memory never depends on the file's size.

A line longer than the caller's limit is cut short (its full length is still reported), so even a
file with no line break at all is read in bounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol


class Readable(Protocol):
    def read(self, nbytes: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based
    data: bytes  # without its line break (LF or CRLF); only the first `max_bytes` when longer
    length: int  # of the whole line in bytes, without its line break

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.length


def chunks(stream: Readable, chunk_bytes: int, *sinks: Callable[[bytes], Any]) -> Iterator[bytes]:
    """The stream's bytes in chunks of at most `chunk_bytes`; each chunk is also given to every sink
    (a hash's update, an output stream's write) before it is yielded."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
    while chunk := stream.read(chunk_bytes):
        for sink in sinks:
            sink(chunk)
        yield chunk


def split_lines(pieces: Iterable[bytes], max_bytes: int) -> Iterator[Line]:
    """Lines of the byte stream made of `pieces`; a final line without a line break counts too."""
    number = 0
    head = b""  # the current line's start, kept up to max_bytes + 1 bytes (enough to see a CR)
    length = 0  # the current line's length so far
    last = b""  # its last byte so far, to recognise the CR of a CRLF that was cut off from `head`
    keep = max_bytes + 1
    for chunk in pieces:
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            number += 1
            if length:  # the line started in an earlier chunk
                yield _line(number, head + part[:keep - len(head)], length + len(part), part[-1:] or last, max_bytes)
                head, length, last = b"", 0, b""
            else:
                yield _line(number, part, len(part), part[-1:], max_bytes)
        rest = parts[-1]
        if rest:
            head += rest[:max(0, keep - len(head))]
            length += len(rest)
            last = rest[-1:]
    if length:
        yield _line(number + 1, head, length, last, max_bytes)


def _line(number: int, data: bytes, length: int, last: bytes, max_bytes: int) -> Line:
    if last == b"\r":  # CRLF: the CR belongs to the line break
        length -= 1
    return Line(number, data[:min(length, max_bytes)], length)
