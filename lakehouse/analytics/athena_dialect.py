"""Where DuckDB answers Athena (Trino) SQL differently: the rewrites of sqlglot's tree that repair it.

Each function here takes the tree sqlglot parsed with `read="athena"` and either rewrites a
construct so DuckDB gives Trino's answer, or raises `AthenaError` naming the construct when it
cannot. docs/analytics.md ("Athena SQL on DuckDB") lists them; decision 0303 says why here.
Integer division is the exception: `offline_duckdb` sets DuckDB's `integer_division`, which decides
by the operands' runtime types, so it also holds where sqlglot cannot type an operand.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.time import format_time


class AthenaError(ValueError):
    """A query the stand-in cannot run; the message names the problem."""


# Athena's Java date patterns (format_datetime) are Hive's: reuse sqlglot's Hive mapping.
_JAVA = Dialect.get_or_raise("hive")
_ATHENA = Dialect.get_or_raise("athena")
_STRFTIME_TOKEN = re.compile(r"%-?[A-Za-z](strict)?")  # sqlglot's internal format, e.g. %mstrict, %-d
_MARK = "athena_stand_in_mark"
# Trino keeps a DATE a DATE through these; DuckDB turns it into a TIMESTAMP.
_DATE_ARITHMETIC = (exp.DateAdd, exp.DateTrunc, exp.TimestampTrunc, exp.Add, exp.Sub)
_TYPED = (*_DATE_ARITHMETIC, exp.Div, exp.Mod, exp.Bracket)  # the nodes whose repair depends on types

# Trino's date_format/date_parse specifiers (MySQL's) as DuckDB strftime. Trino prints %f with
# millisecond precision (000000 .. 999000), DuckDB's %g is the milliseconds.
_MYSQL_FORMAT = {
    "a": "%a", "b": "%b", "c": "%-m", "d": "%d", "e": "%-d", "f": "%g000", "H": "%H", "h": "%I", "I": "%I",
    "i": "%M", "j": "%j", "k": "%-H", "l": "%-I", "M": "%B", "m": "%m", "p": "%p", "r": "%I:%M:%S %p",
    "S": "%S", "s": "%S", "T": "%H:%M:%S", "v": "%V", "W": "%A", "x": "%G", "Y": "%Y", "y": "%y", "%": "%%",
}
# Trino's EXTRACT fields whose DuckDB namesake differs: DuckDB's DOW is 0 (Sunday) .. 6, Trino's is ISO
_EXTRACT_FIELDS = {"DOW": "ISODOW", "DAY_OF_WEEK": "ISODOW", "DAYOFWEEK": "ISODOW", "DAY_OF_MONTH": "DAY",
                   "DAY_OF_YEAR": "DOY", "YEAR_OF_WEEK": "ISOYEAR", "YOW": "ISOYEAR"}
_MYSQL_PARSE = {**_MYSQL_FORMAT, "f": "%f"}
_TRINO_REJECTS = "DUuVwX"  # "not currently supported" (Trino's docs): Trino fails the query
_MYSQL_SPECIFIER = re.compile(r"%(.?)", re.S)
# sqlglot's internal token -> the MySQL specifier it was parsed from (sqlglot's own inverse mapping,
# applied by format_time's trie, mangles a pattern that ends in a prefix of '%H:%M:%S')
_FROM_INTERNAL = {internal: mysql for mysql, internal in _ATHENA.TIME_MAPPING.items()
                  if _STRFTIME_TOKEN.fullmatch(internal)}


class LakeTables(Protocol):
    """What the time-travel rewrite needs from the lake (lakehouse.analytics.athena gives it)."""

    def as_of(self, table: str, version: exp.Version) -> exp.Expression:
        """A DuckDB table expression reading `table` ('namespace.name') at the snapshot `version` names."""


def format_datetime(node: exp.Anonymous) -> exp.Expression:
    """Trino's format_datetime(ts, java_pattern), which sqlglot leaves untranslated, as STRFTIME."""
    if len(node.expressions) != 2 or not node.expressions[1].is_string:
        raise AthenaError(f"format_datetime needs a timestamp and a literal pattern: {node.sql('athena')}")
    pattern = node.expressions[1].name
    strftime = format_time(pattern, _JAVA.TIME_MAPPING, _JAVA.TIME_TRIE) or ""
    leftover = set(re.findall(r"[A-Za-z]", _STRFTIME_TOKEN.sub("", strftime)))
    if leftover:
        raise AthenaError(f"format_datetime pattern '{pattern}': the stand-in cannot translate "
                          f"{''.join(sorted(leftover))}; use y M d H h m s a E and separators")
    return exp.TimeToStr(this=node.expressions[0], format=exp.Literal.string(strftime))


def mysql_format(node: exp.TimeToStr | exp.StrToTime) -> exp.Expression:
    """date_format/date_parse with the pattern mapped from Trino's MySQL specifiers by our own table.

    sqlglot parsed the pattern into its internal strftime form and passes specifiers it does not
    know through unchanged (%u, %D ...), which DuckDB would read differently or reject: so the
    Athena pattern is recovered and mapped specifier by specifier.
    """
    name = "date_format" if isinstance(node, exp.TimeToStr) else "date_parse"
    fmt = node.args.get("format")
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        raise AthenaError(f"{name} needs a literal pattern here: {node.sql('athena')}")
    pattern = _STRFTIME_TOKEN.sub(lambda m: _FROM_INTERNAL.get(m.group(0), m.group(0)), fmt.name)
    rejected = sorted({f"%{s}" for s in _MYSQL_SPECIFIER.findall(pattern) if s and s in _TRINO_REJECTS})
    if rejected:
        raise AthenaError(f"{name} pattern '{pattern}': {', '.join(rejected)} not supported "
                          f"(Athena rejects %D %U %u %V %w %X too)")
    if name == "date_parse" and not set(_MYSQL_SPECIFIER.findall(pattern)) & set("Yyx"):
        raise AthenaError(f"date_parse pattern '{pattern}' has no year: the date it defaults to differs "
                          f"(DuckDB: 1900-01-01); parse a full date, or add the time to a DATE")
    table = _MYSQL_FORMAT if name == "date_format" else _MYSQL_PARSE
    # any other %x is the character x, as in MySQL and Trino
    strftime = _MYSQL_SPECIFIER.sub(lambda m: table.get(m.group(1), m.group(1).replace("%", "%%")), pattern)
    # an Anonymous call: DuckDB's generator would map a TimeToStr's format once more
    return exp.Anonymous(this="STRFTIME" if name == "date_format" else "STRPTIME",
                         expressions=[node.this.copy(), exp.Literal.string(strftime)])


def extract_field(node: exp.Extract) -> None:
    """EXTRACT(DOW FROM x) is ISO on Trino (Monday 1 .. Sunday 7), 0 (Sunday) .. 6 on DuckDB."""
    field = node.this.name.upper()
    if field in _EXTRACT_FIELDS:
        node.set("this", exp.var(_EXTRACT_FIELDS[field]))


def decimal(node: exp.Cast) -> None:
    """A DECIMAL without precision: Trino types the literal DECIMAL '1.10' by its digits (decimal(3,2))
    and a cast to DECIMAL as decimal(38,0); DuckDB makes both DECIMAL(18,3) (1.100, and 2.5 stays 2.500).

    sqlglot parses DECIMAL '1.10' and CAST('1.10' AS DECIMAL) alike: a string literal is taken as
    the literal (the explicit cast of a string to a bare DECIMAL is the one case it gets wrong).
    """
    if not node.to.is_type(exp.DataType.Type.DECIMAL) or node.to.expressions:
        return
    precision, scale = 38, 0
    if node.this.is_string and re.fullmatch(r"\s*[+-]?\d*\.?\d*\s*", node.this.name):
        whole, _, fraction = node.this.name.strip().lstrip("+-").partition(".")
        scale = len(fraction)
        precision = max(len(whole) + scale, 1)  # leading zeros count (decimal.html)
    node.set("to", exp.DataType.build(f"DECIMAL({precision}, {scale})"))


def timestamp_precision(node: exp.Cast) -> None:
    """Trino types TIMESTAMP '2026-01-01 10:00:00' as timestamp(0) and compares it with any timestamp,
    with time zone too; DuckDB makes TIMESTAMP(0) its TIMESTAMP_S, which it refuses to compare with a
    TIMESTAMPTZ column. A literal's precision is that of its own digits, so dropping it changes no value
    (a cast of a column keeps its precision: it may truncate)."""
    if node.to.is_type(exp.DataType.Type.TIMESTAMP) and node.to.expressions and node.this.is_string:
        node.set("to", exp.DataType.build("TIMESTAMP"))


def regexp_extract(node: exp.RegexpExtract) -> exp.Expression:
    """Trino's regexp_extract is NULL without a match, DuckDB's is '': return NULL as Athena does."""
    matches = exp.RegexpLike(this=node.this.copy(), expression=node.expression.copy())
    return exp.Case().when(matches, node.copy())


def json_extract_scalar(node: exp.JSONExtractScalar) -> exp.Expression:
    """NULL where Trino gives NULL: the value at the path is an object or array (DuckDB's ->> gives
    its JSON text) or the input is not JSON (DuckDB raises "Malformed JSON")."""
    document, path = node.this, node.expression
    kind = exp.Anonymous(this="json_type", expressions=[document.copy(), path.copy()])
    scalar = exp.and_(exp.Anonymous(this="json_valid", expressions=[document.copy()]),
                      exp.not_(kind.isin(exp.Literal.string("OBJECT"), exp.Literal.string("ARRAY"))))
    return exp.Case().when(scalar, node.copy())


def approx_distinct(node: exp.ApproxDistinct) -> exp.Expression:
    """The exact count(DISTINCT x): DuckDB's HyperLogLog is not Trino's, so its estimate differs; the
    exact count is the value Athena estimates (standard error 2.3%), and the same on every run."""
    return exp.Count(this=exp.Distinct(expressions=[node.this.copy()]))


def date_diff(node: exp.DateDiff) -> exp.Expression:
    """Trino counts whole units elapsed (2 hours across midnight: 0 days); DuckDB's date_diff counts
    unit boundaries crossed (1). DuckDB's date_sub counts whole units, as Trino does."""
    unit = node.text("unit").lower() or "day"
    return exp.Anonymous(this="date_sub", expressions=[exp.Literal.string(unit), node.expression.copy(),
                                                       node.this.copy()])


def division(node: exp.Div | exp.Mod, kind: str) -> exp.Expression:
    """Division as on Trino.

    Integers: truncated, written as DuckDB's `//` so the SQL holds on any DuckDB connection (the
    stand-in's own also sets `integer_division`, for operands sqlglot cannot type). By zero: an
    integer or decimal division fails (DuckDB: NULL); a DOUBLE one is Infinity, -Infinity or NaN
    (DuckDB with integer_division: NULL), which is x * Infinity.
    """
    right = node.expression
    if isinstance(right, exp.Literal) and right.is_number and float(right.name) != 0:
        pass
    elif kind == "float":
        if isinstance(node, exp.Div):
            infinite = exp.Mul(this=exp.paren(node.this.copy()),
                               expression=exp.cast(exp.Literal.string("Infinity"), exp.DataType.Type.DOUBLE))
            return exp.Case().when(exp.EQ(this=right.copy(), expression=exp.Literal.number(0)), infinite).else_(
                node.copy())
    else:
        fail = exp.Anonymous(this="error", expressions=[exp.Literal.string("Division by zero")])
        zero = exp.EQ(this=right.copy(), expression=exp.Literal.number(0))
        node.set("expression", exp.Case().when(zero, fail).else_(right.copy()))
    if kind == "integer" and isinstance(node, exp.Div):
        return exp.IntDiv(this=node.this.copy(), expression=node.expression.copy())
    return node


def element_at(node: exp.Bracket) -> None:
    """element_at(array, 0) fails on Trino ("SQL array indices start at 1"); DuckDB gives NULL."""
    index = node.expressions[0] if len(node.expressions) == 1 else None
    if index is not None and index.is_int and int(index.to_py()) == 0:
        raise AthenaError("element_at(array, 0): SQL array indices start at 1 (Athena fails the query)")


def subscript(node: exp.Bracket, kind: str) -> exp.Expression:
    """`array[n]` out of range and `map[key]` without the key fail on Trino; DuckDB gives NULL.

    Only for a typed array or map (sqlglot cannot tell them apart otherwise). sqlglot keeps an
    integer literal index 0-based inside the tree (it prints it back 1-based), other indexes as written.
    """
    if kind == "array":
        index = node.expressions[0]
        written = exp.Literal.number(int(index.to_py()) + 1) if index.is_int else index.copy()
        outside = exp.or_(exp.LT(this=written, expression=exp.Literal.number(1)),
                          exp.GT(this=written.copy(), expression=exp.ArraySize(this=node.this.copy())))
        message = "Array subscript out of bounds (element_at returns NULL instead)"
    elif kind == "map":
        outside = exp.not_(exp.Anonymous(this="map_contains", expressions=[node.this.copy(),
                                                                           node.expressions[0].copy()]))
        message = "Key not present in map (element_at returns NULL instead)"
    else:
        return node
    fail = exp.Anonymous(this="error", expressions=[exp.Literal.string(message)])
    return exp.Case().when(outside, fail).else_(node.copy())


def _date_interval(node: exp.Add | exp.Sub) -> exp.Interval | None:
    return next((side for side in (node.this, node.expression) if isinstance(side, exp.Interval)), None)


def _on_date(node: exp.Expression) -> bool:
    """In a typed tree: is this date arithmetic done on a DATE (a DATE result on Athena)?"""
    if isinstance(node, (exp.Add, exp.Sub)):
        interval = _date_interval(node)
        other = node.expression if interval is node.this else node.this
        return interval is not None and other.is_type(exp.DataType.Type.DATE)
    return node.this.is_type(exp.DataType.Type.DATE)


def _kind(node: exp.Expression) -> str:
    """In a typed tree, what a repair needs to know of a node: "date" for date arithmetic on a DATE
    (a DATE on Athena), "float" or "integer" for a division, "array" or "map" for a subscript."""
    if isinstance(node, (exp.Div, exp.Mod)):
        sides = (node.this, node.expression)
        if any(side.is_type(*exp.DataType.FLOAT_TYPES) for side in sides):
            return "float"
        return "integer" if all(side.is_type(*exp.DataType.INTEGER_TYPES) for side in sides) else ""
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        return "map" if node.this.is_type(exp.DataType.Type.MAP) else \
            "array" if node.this.is_type(exp.DataType.Type.ARRAY) else ""
    return "date" if _on_date(node) else ""


def _types(statement: exp.Expression, schema: Mapping[str, Any] | None) -> dict[int, str]:
    """The `_kind` of each node a repair depends on, by its mark, from sqlglot's type annotator.

    It works on a qualified copy (qualifying renames result columns, so only the copy is
    qualified); a query it cannot qualify keeps DuckDB's types, except for literals.
    """
    for mark, node in enumerate(statement.find_all(*_TYPED)):
        node.meta[_MARK] = mark
    typed = statement.copy()
    try:
        typed = qualify(typed, schema=schema, dialect="athena", validate_qualify_columns=False)
    except SqlglotError:
        pass
    annotate_types(typed, schema=schema, dialect="athena")
    return {n.meta[_MARK]: _kind(n) for n in typed.find_all(*_TYPED) if _MARK in n.meta}


def _date_result(node: exp.Expression) -> exp.Expression:
    """Date arithmetic on a DATE as a DATE, as Trino keeps it; sub-day units are refused as Trino does."""
    if isinstance(node, (exp.Add, exp.Sub)):
        interval = _date_interval(node)
        assert interval is not None
        unit = interval.args["unit"].sql("athena").upper() if interval.args.get("unit") else ""
        construct = node.sql("athena")
    elif isinstance(node, exp.DateAdd):
        unit, construct = node.text("unit").upper(), f"date_add('{node.text('unit').lower()}', ...) on a DATE"
    else:
        return exp.cast(node.copy(), exp.DataType.Type.DATE)
    if not unit or any(sub_day in unit for sub_day in ("HOUR", "MINUTE", "SECOND")):
        raise AthenaError(f"{construct}: Athena cannot add hours, minutes or seconds to a DATE; "
                          f"CAST the date AS timestamp first")
    return exp.cast(node.copy(), exp.DataType.Type.DATE)


def _time_travel(statement: exp.Expression, lake: LakeTables | None) -> None:
    """`FROM t FOR VERSION AS OF id` / `FOR TIMESTAMP AS OF ts`: read that snapshot of the table."""
    for table in list(statement.find_all(exp.Table)):
        version = table.args.get("version")
        if version is None:
            continue
        if lake is None:
            raise AthenaError(f"time travel ({version.sql('athena')}) needs the lake: run it through "
                              f"lakehouse.analytics.athena.query")
        name = ".".join(part.name for part in table.parts)
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
        table.replace(exp.Table(this=lake.as_of(name, version), alias=alias.copy()))


def repair(statement: exp.Expression, schema: Mapping[str, Any] | None,
           lake: LakeTables | None = None) -> exp.Expression:
    """Rewrite `statement` in place so that DuckDB gives Athena's answer, or raise AthenaError."""
    kinds = _types(statement, schema)
    # innermost first, so an outer rewrite copies arguments that are already rewritten
    for node in reversed(list(statement.find_all(
            exp.Anonymous, exp.RegexpExtract, exp.TimeToStr, exp.StrToTime, exp.JSONExtractScalar,
            exp.ApproxDistinct, exp.DateDiff, exp.Div, exp.Mod, exp.Bracket, exp.Extract, exp.Cast,
            *_DATE_ARITHMETIC))):
        if isinstance(node, exp.RegexpExtract):
            node.replace(regexp_extract(node))
        elif isinstance(node, (exp.TimeToStr, exp.StrToTime)):
            node.replace(mysql_format(node))
        elif isinstance(node, exp.JSONExtractScalar):
            node.replace(json_extract_scalar(node))
        elif isinstance(node, exp.ApproxDistinct):
            node.replace(approx_distinct(node))
        elif isinstance(node, exp.DateDiff):
            node.replace(date_diff(node))
        elif isinstance(node, exp.Cast):
            decimal(node)
            timestamp_precision(node)
        elif isinstance(node, exp.Extract):
            extract_field(node)
        elif isinstance(node, exp.Bracket):
            kind = kinds.get(node.meta.get(_MARK), "")
            if node.args.get("safe") and kind != "map":
                element_at(node)
            elif not node.args.get("safe"):
                node.replace(subscript(node, kind))
        elif isinstance(node, (exp.Div, exp.Mod)):
            node.replace(division(node, kinds.get(node.meta.get(_MARK), "")))
        elif isinstance(node, _DATE_ARITHMETIC):
            if kinds.get(node.meta.get(_MARK)) == "date":
                node.replace(_date_result(node))
        elif isinstance(node, exp.Anonymous) and node.name.lower() == "format_datetime":
            node.replace(format_datetime(node))
    _time_travel(statement, lake)
    return statement
