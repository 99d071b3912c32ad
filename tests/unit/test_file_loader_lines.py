"""The loader's streaming parts: lines cut from chunks of any size, and first-seen product ids."""
from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.file_loader.dedupe import FirstSeen
from lambdas.file_loader.lines import Line, chunks, split_lines


def expected_lines(data: bytes, max_bytes: int) -> list[Line]:
    """The same lines computed the obvious way, on the whole file at once."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()  # a final line break ends the last line; it does not start another
    found = []
    for number, part in enumerate(parts, 1):
        part = part[:-1] if part.endswith(b"\r") else part
        found.append(Line(number, part[:max_bytes], len(part)))
    return found


def lines_of(data: bytes, chunk_bytes: int, max_bytes: int) -> list[Line]:
    return list(split_lines(chunks(io.BytesIO(data), chunk_bytes), max_bytes))


@settings(max_examples=400, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"xyz" * 7, b"\xff"]), max_size=60)
       .map(b"".join), chunk_bytes=st.integers(1, 40), max_bytes=st.integers(0, 30))
def test_lines_do_not_depend_on_where_chunks_end(data: bytes, chunk_bytes: int, max_bytes: int) -> None:
    assert lines_of(data, chunk_bytes, max_bytes) == expected_lines(data, max_bytes)


def test_a_long_line_is_cut_short_but_its_length_and_crlf_are_known() -> None:
    data = b"head\r\n" + b"x" * 10_000 + b"\r\nlast"
    got = lines_of(data, chunk_bytes=7, max_bytes=100)
    assert got == [Line(1, b"head", 4), Line(2, b"x" * 100, 10_000), Line(3, b"last", 4)]
    assert [line.truncated for line in got] == [False, True, False]
    # Exactly at the limit, a CRLF line is not cut: the CR belongs to the line break.
    assert lines_of(b"y" * 100 + b"\r\n", chunk_bytes=100, max_bytes=100) == [Line(1, b"y" * 100, 100)]


def test_chunks_feed_every_sink_and_refuse_a_zero_size() -> None:
    seen: list[bytes] = []
    total = bytearray()
    assert list(chunks(io.BytesIO(b"abcdefg"), 3, seen.append, total.extend)) == [b"abc", b"def", b"g"]
    assert seen == [b"abc", b"def", b"g"] and bytes(total) == b"abcdefg"
    try:
        next(chunks(io.BytesIO(b"x"), 0))
    except ValueError as err:
        assert "chunk_bytes must be at least 1" in str(err)
    else:
        raise AssertionError("chunk_bytes=0 was accepted")


def test_first_seen_agrees_with_a_dict_over_many_batches() -> None:
    rng = random.Random(5)
    seen = FirstSeen()
    model: dict[int, tuple[int, int]] = {}  # key -> (first line, digest)
    line = 1
    for _ in range(40):
        batch = [(rng.randrange(300), rng.choice((1, 2, -(2 ** 63), 2 ** 63 - 1))) for _ in range(rng.randrange(0, 50))]
        lines = list(range(line, line + len(batch)))
        line += len(batch)
        verdicts = seen.check([k for k, _ in batch], [d for _, d in batch], lines)
        for (key, digest), number, first, same in zip(batch, lines, verdicts.first_line.tolist(),
                                                      verdicts.same_values.tolist()):
            if key not in model:
                model[key] = (number, digest)
                assert (first, same) == (0, True)
            else:
                assert (first, same) == (model[key][0], digest == model[key][1])
    assert len(seen) == len(model)
