"""The offline jar set that local Spark needs for Iceberg: `python -m lakehouse.lake.spark_jars OUTDIR`.

Maven is unreachable offline, so the Iceberg Spark runtime comes from the PyPI wheel
`snowpark-connect-deps-iceberg`. That jar has its shaded Jackson and httpclient5 classes stripped
while its code still calls them under `org/apache/iceberg/shaded/`. We rebuild them: plain Jackson
(PyPI wheel `snowpark-connect-deps-2`) and Debian's httpclient5/httpcore5 are relocated into that
prefix by rewriting the class files' constant pools, the way maven-shade does
(docs/decisions/0100-offline-iceberg-jars.md).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import struct
import sys
import zipfile
from pathlib import Path

ICEBERG_VERSION = "1.10.2"
JACKSON_VERSION = "2.18.8"
RUNTIME_JAR = f"iceberg-spark-runtime-3.5_2.12-{ICEBERG_VERSION}.jar"
EXTENSIONS_JAR = f"iceberg-spark-extensions-3.5_2.12-{ICEBERG_VERSION}.jar"
SHADED_JAR = "iceberg-shaded-deps.jar"
JACKSON_JARS = tuple(f"jackson-{a}-{JACKSON_VERSION}.jar" for a in ("core", "databind", "annotations"))
HTTP_JARS = (Path("/usr/share/java/httpclient5.jar"), Path("/usr/share/java/httpcore5.jar"))
SQLITE_JDBC_JAR = Path("/usr/share/java/sqlite-jdbc.jar")
BUILD_RECORD = "jars.json"
LOG4J_CONFIG = "log4j2.properties"
# Spark's console logging: warnings and errors only, minus the harmless startup chatter.
_LOG4J_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
logger.hadoop_native.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop_native.level = error
"""

SHADED_PREFIX = "org/apache/iceberg/shaded/"
RELOCATED_PACKAGES = ("com/fasterxml/jackson/", "org/apache/hc/")


class JarsNotBuilt(FileNotFoundError):
    """A piece of the offline jar set is missing: the message names it and the fix."""


def _relocation_pattern(sep: str) -> tuple[re.Pattern[bytes], bytes]:
    # A negative look-behind keeps an already-relocated name from being prefixed twice.
    prefix = SHADED_PREFIX.replace("/", sep).encode()
    packages = b"|".join(re.escape(p.replace("/", sep).encode()) for p in RELOCATED_PACKAGES)
    return re.compile(rb"(?<!" + re.escape(prefix) + rb")(" + packages + rb")"), prefix


# Internal names (com/fasterxml/...) in class files, dotted names (com.fasterxml...) in strings,
# reflection and META-INF/services.
_PATTERNS = (_relocation_pattern("/"), _relocation_pattern("."))


def relocate_text(data: bytes) -> bytes:
    """Prefix every reference to a relocated package, in either spelling."""
    for pattern, prefix in _PATTERNS:
        data = pattern.sub(prefix + rb"\1", data)
    return data


# Byte size of each constant-pool entry after its tag byte, except Utf8 (tag 1, length-prefixed).
_CONSTANT_SIZES = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2,
                   17: 4, 18: 4, 19: 2, 20: 2}


def relocate_class(data: bytes) -> bytes:
    """Rewrite the Utf8 constants of a class file; all other bytes refer to them by index."""
    if data[:4] != b"\xca\xfe\xba\xbe":
        raise ValueError("not a class file (bad magic)")
    (count,) = struct.unpack_from(">H", data, 8)
    out = bytearray(data[:10])
    pos, index = 10, 1
    while index < count:
        tag = data[pos]
        if tag == 1:
            (length,) = struct.unpack_from(">H", data, pos + 1)
            text = relocate_text(data[pos + 3:pos + 3 + length])
            out += b"\x01" + struct.pack(">H", len(text)) + text
            pos += 3 + length
        else:
            size = _CONSTANT_SIZES.get(tag)
            if size is None:
                raise ValueError(f"unknown constant-pool tag {tag} at byte {pos}")
            out += data[pos:pos + 1 + size]
            pos += 1 + size
            index += tag in (5, 6)  # longs and doubles take two slots
        index += 1
    return bytes(out + data[pos:])


def _skipped(name: str) -> bool:
    # Signatures would no longer match; module descriptors would export the old package names.
    upper = name.upper()
    return (name.endswith("/") or name.endswith("module-info.class") or name == "META-INF/MANIFEST.MF"
            or (upper.startswith("META-INF/") and upper.endswith((".SF", ".RSA", ".DSA", ".EC"))))


def build_shaded_jar(out: Path, inputs: list[Path]) -> int:
    """Write one jar with every class of `inputs` relocated; returns the number of entries."""
    written: set[str] = set()
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as jar_out:
        jar_out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMulti-Release: true\n")
        for jar in inputs:
            with zipfile.ZipFile(jar) as jar_in:
                for name in jar_in.namelist():
                    new_name = relocate_text(name.encode()).decode()
                    if _skipped(name) or new_name in written:
                        continue  # first jar wins, as on a classpath
                    data = jar_in.read(name)
                    if name.endswith(".class"):
                        data = relocate_class(data)
                    elif name.startswith("META-INF/services/"):
                        data = relocate_text(data)
                    jar_out.writestr(new_name, data)
                    written.add(new_name)
    tmp.replace(out)
    return len(written) + 1


def _wheel_jar(package: str, jar: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise JarsNotBuilt(f"PyPI package '{package.replace('_', '-')}' is not installed: run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "jars" / jar
    if not path.is_file():
        raise JarsNotBuilt(f"{jar} is missing from '{package}' ({path}): check its pin in requirements.in")
    return path


def _debian_jar(path: Path) -> Path:
    if not path.is_file():
        raise JarsNotBuilt(f"{path} is missing: install the Debian packages with `make setup`")
    return path.resolve()


def _sources() -> dict[str, list[Path]]:
    return {
        "copy": [_wheel_jar("snowpark_connect_deps_iceberg", j) for j in (RUNTIME_JAR, EXTENSIONS_JAR)],
        "shade": [_wheel_jar("snowpark_connect_deps_2", j) for j in JACKSON_JARS]
        + [_debian_jar(p) for p in HTTP_JARS],
    }


def _fingerprint(sources: dict[str, list[Path]]) -> str:
    """Changes when an input jar or this builder changes (then the set is rebuilt)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(p for paths in sources.values() for p in paths):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def build(outdir: Path) -> list[str]:
    """Build the jar set in `outdir` unless it is already up to date; returns what was done."""
    sources = _sources()
    _debian_jar(SQLITE_JDBC_JAR)
    fingerprint = _fingerprint(sources)
    record = outdir / BUILD_RECORD
    if record.is_file() and json.loads(record.read_text()).get("fingerprint") == fingerprint \
            and all(p.is_file() for p in _built_files(outdir)):
        return [f"{outdir}: up to date"]
    outdir.mkdir(parents=True, exist_ok=True)
    done = []
    for jar in sources["copy"]:
        shutil.copyfile(jar, outdir / jar.name)
        done.append(f"copied {jar.name}")
    entries = build_shaded_jar(outdir / SHADED_JAR, sources["shade"])
    done.append(f"wrote {SHADED_JAR}: {entries} entries relocated under {SHADED_PREFIX}")
    (outdir / LOG4J_CONFIG).write_text(_LOG4J_PROPERTIES)
    done.append(f"wrote {LOG4J_CONFIG}")
    record.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
    return done


def _built_jars(outdir: Path) -> list[Path]:
    return [outdir / RUNTIME_JAR, outdir / EXTENSIONS_JAR, outdir / SHADED_JAR]


def _built_files(outdir: Path) -> list[Path]:
    return [*_built_jars(outdir), outdir / LOG4J_CONFIG]


def jar_paths(outdir: Path) -> list[Path]:
    """Jars for `spark.jars`: the Iceberg runtime, its extensions, the relocated deps, sqlite JDBC."""
    for path in _built_files(outdir):
        if not path.is_file():
            raise JarsNotBuilt(f"{path.name} is missing from {outdir}: run `make setup` "
                               f"(or `python -m lakehouse.lake.spark_jars {outdir}`)")
    return [*_built_jars(outdir), _debian_jar(SQLITE_JDBC_JAR)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lakehouse.lake.spark_jars OUTDIR", file=sys.stderr)
        return 2
    try:
        for line in build(Path(argv[0])):
            print(f"spark jars: {line}")
    except JarsNotBuilt as err:
        print(f"spark jars: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
