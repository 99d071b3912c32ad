"""lambdas/common/storage.py: a local file is written whole or not at all, so that a reader of a file that is
rewritten under its own name (a restaged batch the live tables registered) never sees half of it."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas.common.storage import read_bytes, write_bytes, writing


def test_a_write_appears_whole_under_its_name_and_leaves_nothing_else(tmp_path: Path) -> None:
    uri = (tmp_path / "zone" / "batch.json").as_uri()
    write_bytes(uri, b"first")
    with writing(uri) as (fs, path):
        with fs.open_output_stream(path) as out:
            out.write(b"second, longer")
        assert read_bytes(uri) == b"first"  # until the block ends, readers see the old file whole
        assert Path(path).name.startswith(".")  # hidden from Spark, pyarrow datasets and DuckDB globs
    assert read_bytes(uri) == b"second, longer"
    assert [p.name for p in (tmp_path / "zone").iterdir()] == ["batch.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    uri = (tmp_path / "batch.parquet").as_uri()
    pq.write_table(pa.table({"n": [1, 2]}), tmp_path / "batch.parquet")
    with pytest.raises(RuntimeError, match="the writer died"):
        with writing(uri) as (fs, path):
            pq.write_table(pa.table({"n": [3]}), path, filesystem=fs)
            raise RuntimeError("the writer died")
    assert pq.read_table(tmp_path / "batch.parquet")["n"].to_pylist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["batch.parquet"]
