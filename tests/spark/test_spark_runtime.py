"""The offline jar set and the shared session: relocation, clear errors when not built, one session
per process re-pointed between lakes."""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.lake import spark_jars
from lakehouse.lake.catalog import migrated_catalog
from lakehouse.lake.spark import DEFAULT_JARS_DIR, get_spark
from tests.fixtures.spark import SparkLake


def utf8_constants(class_file: bytes) -> list[bytes]:
    """The Utf8 entries of a class file's constant pool (an independent little parser)."""
    sizes = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2, 17: 4, 18: 4, 19: 2, 20: 2}
    (count,) = struct.unpack_from(">H", class_file, 8)
    pos, index, found = 10, 1, []
    while index < count:
        tag = class_file[pos]
        if tag == 1:
            (length,) = struct.unpack_from(">H", class_file, pos + 1)
            found.append(class_file[pos + 3:pos + 3 + length])
            pos += 3 + length
        else:
            pos += 1 + sizes[tag]
            index += tag in (5, 6)
        index += 1
    return found


def test_relocated_jar_holds_jackson_and_httpclient_under_icebergs_shaded_prefix() -> None:
    jar = DEFAULT_JARS_DIR / spark_jars.SHADED_JAR
    with zipfile.ZipFile(jar) as z:
        names = z.namelist()
        mapper = z.read("org/apache/iceberg/shaded/com/fasterxml/jackson/databind/ObjectMapper.class")
    assert "org/apache/iceberg/shaded/org/apache/hc/client5/http/classic/HttpClient.class" in names
    assert not any(n.startswith(("com/fasterxml/", "org/apache/hc/")) for n in names)
    constants = utf8_constants(mapper)
    assert b"org/apache/iceberg/shaded/com/fasterxml/jackson/databind/ObjectMapper" in constants
    assert not any(c.startswith(b"com/fasterxml/jackson") or b"Lcom/fasterxml/jackson" in c for c in constants)


def test_relocation_never_prefixes_twice() -> None:
    once = spark_jars.relocate_text(b"Lcom/fasterxml/jackson/core/JsonParser; org.apache.hc.core5.http.Header")
    assert once == (b"Lorg/apache/iceberg/shaded/com/fasterxml/jackson/core/JsonParser; "
                    b"org.apache.iceberg.shaded.org.apache.hc.core5.http.Header")
    assert spark_jars.relocate_text(once) == once


def test_build_is_idempotent(tmp_path: Path) -> None:
    done = spark_jars.build(tmp_path / "jars")
    assert any(line.startswith("wrote iceberg-shaded-deps.jar") for line in done)
    assert spark_jars.build(tmp_path / "jars") == [f"{tmp_path / 'jars'}: up to date"]
    *built, sqlite = spark_jars.jar_paths(tmp_path / "jars")
    assert [p.name for p in built] == [spark_jars.RUNTIME_JAR, spark_jars.EXTENSIONS_JAR, spark_jars.SHADED_JAR]
    assert sqlite == spark_jars.SQLITE_JDBC_JAR.resolve()


def test_missing_jars_say_how_to_build_them(tmp_path: Path) -> None:
    with pytest.raises(spark_jars.JarsNotBuilt, match=r"iceberg-spark-runtime.*is missing .* run `make setup`"):
        spark_jars.jar_paths(tmp_path)


@pytest.mark.slow
def test_one_session_is_re_pointed_between_lakes(spark: SparkSession, empty_spark_lake: SparkLake,
                                                 tmp_path: Path) -> None:
    spark_lake = empty_spark_lake
    other_root = tmp_path / "other"
    migrated_catalog(other_root / "warehouse", other_root / "catalog.db")

    other = get_spark(other_root / "warehouse", other_root / "catalog.db")
    other.sql("INSERT INTO lake.ops.pipeline_runs VALUES ('elsewhere', 'run', 'SUCCEEDED', current_timestamp(), "
              "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")

    assert other is spark
    assert spark_lake.catalog.load_table("ops.pipeline_runs").scan().to_arrow().num_rows == 0
    back = get_spark(spark_lake.warehouse, spark_lake.catalog_db)
    assert back is spark and back.table("lake.ops.pipeline_runs").count() == 0
