"""The raw zone read back: a raw file's envelopes as the delivery they were written from.

The inverse of writer.raw_lines, for re-cleaning a batch after the stream has dropped it
(lambdas/replay, `lakehouse replay --dlq`). The delivery comes back with the same channel and
positions, so the same batch id and file names, and the same arrival times, which the cleaner's
timestamp rules are judged against on a replay.
"""
from __future__ import annotations

import base64
from typing import Any

import msgspec
import numpy as np
from isal import igzip

from lambdas.cleaner.events import Delivery


class RawFileError(ValueError):
    """A raw file is not what the cleaner writes: the message names the file and the line."""


def read_delivery(uri: str, data: bytes) -> Delivery:
    """The delivery of one raw file's bytes (gzip NDJSON envelopes, as writer.write_batch keeps them)."""
    try:
        lines = igzip.decompress(data).split(b"\n")
    except (OSError, EOFError, ValueError) as err:
        raise RawFileError(f"{uri}: not gzip ({err})") from err
    envelopes: list[dict[str, Any]] = []
    for number, line in enumerate(lines[:-1] if lines and not lines[-1] else lines, start=1):
        try:
            envelope = msgspec.json.decode(line)
        except msgspec.DecodeError as err:
            raise RawFileError(f"{uri} line {number}: not a JSON envelope ({err})") from err
        if not isinstance(envelope, dict):
            raise RawFileError(f"{uri} line {number}: not a JSON envelope")
        envelopes.append(envelope)
    if not envelopes:
        raise RawFileError(f"{uri}: no records")
    try:
        return _delivery(envelopes)
    except (KeyError, TypeError, ValueError) as err:
        raise RawFileError(f"{uri}: an envelope lacks or garbles {err}") from err


def _delivery(envelopes: list[dict[str, Any]]) -> Delivery:
    payloads = [e["data"].encode("utf-8") if "data" in e else base64.b64decode(e["data_base64"], validate=True)
                for e in envelopes]
    data_base64 = [e["data_base64"] if "data_base64" in e else base64.b64encode(p).decode("ascii")
                   for e, p in zip(envelopes, payloads)]
    first = envelopes[0]
    if "shard_id" in first:
        channels = {e["shard_id"] for e in envelopes}
        positions = [str(e["sequence_number"]) for e in envelopes]
        keys = [e["partition_key"] for e in envelopes]
        times = [e["approximate_arrival"] for e in envelopes]
        stream = "kinesis"
    else:
        channels = {f"{e['topic']}-{int(e['partition'])}" for e in envelopes}
        positions = [str(int(e["offset"])) for e in envelopes]
        keys = [e.get("key_base64") for e in envelopes]
        times = [e["timestamp"] for e in envelopes]
        stream = "msk"
    if len(channels) != 1:
        raise ValueError(f"records of several channels {sorted(channels)}")
    return Delivery(stream, channels.pop(), positions, keys, _epoch_ms(times), data_base64, payloads)


def _epoch_ms(times: list[str]) -> list[int]:
    """Epoch milliseconds of ISO-8601 UTC times ending in Z, as writer._iso_times formats them."""
    if not all(t.endswith("Z") for t in times):
        raise ValueError("arrival times must be UTC ISO-8601 ending in Z")
    return np.array([t[:-1] for t in times], dtype="datetime64[ms]").astype(np.int64).tolist()
