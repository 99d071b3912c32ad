"""Synthetic product catalog CSV files, with a controlled share of defects and their ground truth.

A catalog team exports the shop's products the way such exports really look: any column order,
sometimes an extra column, CRLF line breaks, a byte-order mark, names with commas, quotes and
accents, categories and currencies in any case, prices written as 20, 20.0 or 19.99, booleans as
TRUE/yes/0, timestamps with local offsets. A `defect_rate` share of the data lines is broken on
purpose, one rule each (see `_DEFECTS`), or repeats an earlier product: with the same values
(differently written) or with other ones.

The ground truth (a label per line, the products the lake should hold, the counts) comes from the
generator's own values, never from the loader, so comparing the two is a real check. Same
arguments, same bytes. `write_catalog` streams a file of any size; `generate_catalog` keeps it all.
"""
from __future__ import annotations

import csv
import io
import random
from collections import Counter, deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator

from lakehouse.sources.generator import Counts
from lambdas.contracts import currencies
from lambdas.contracts import products as contract
from lambdas.contracts.products import Reason

LABEL_HEADER = "header"
LABEL_CLEAN = "clean"
LABEL_DUPLICATE = "duplicate"
LABEL_BLANK = "blank"

EXTRA_COLUMN = "supplier"  # a column the contract does not know: ignored by the loader
_DUPLICATE_SHARE = 0.3  # of the defective lines: exact repeats (same values, written differently)
_REPEAT_WINDOW = 200  # a repeated product repeats one of the last this many clean rows
_BLANK_SHARE = 0.002

_NOUNS = {
    "shoes": ("Trail Runner", "Leather Loafer", "Canvas Sneaker", "Hiking Boot"),
    "jackets": ("Rain Shell", "Down Parka", "Denim Jacket", "Fleece Zip"),
    "bags": ("Backpack 30L", "Tote", "Duffel", "Messenger Bag"),
    "watches": ("Chronograph", "Diver 200m", "Field Watch", "Smartwatch"),
    "outdoor": ("Tent 2P", "Sleeping Bag", "Camping Stove", "Trekking Poles"),
    "kitchen": ("Espresso Maker", "Chef's Knife", "Cast-Iron Pan", "Kettle"),
    "toys": ("Building Blocks", "Puzzle 1000", "Plush Bear", "Kite"),
    "books": ("Novel", "Cookbook", "Atlas", "Field Guide"),
}
_BRANDS = ("Nordic", "Urban", "Café Olé", "Müller & Söhne", "Señor", "東京 Works", "Classic", "Pro", "Alpine")
_COLOURS = ("black", "navy", "olive", "sand", "red")
_SUPPLIERS = ("acme", "globex", "initech", "umbrella")
# Most products are priced in the big currencies; every code the shop takes appears now and then.
_CURRENCY_WEIGHTS = {"USD": 30, "EUR": 25, "GBP": 10, "JPY": 8, "INR": 5}
_OFFSETS = (0, 0, 60, 120, -300, -420, 330, 345, 540, 600)  # minutes


@dataclass(frozen=True)
class ExpectedProduct:
    """A clean row as the lake should hold it."""

    product_id: str
    name: str
    category: str
    price: Decimal  # with contract.PRICE_SCALE decimals
    currency: str
    active: bool
    updated_at: datetime  # UTC
    updated_at_offset: str
    line_number: int


@dataclass(frozen=True)
class CatalogCounts(Counts):
    """The file's ledger (received = clean + quarantined + duplicates, over its data lines), and its lines."""

    lines: int
    blank_lines: int


@dataclass
class CatalogFile:
    data: bytes  # the whole file
    labels: list[str]  # per line (index 0 = line 1): header, clean, duplicate, blank or a reason code
    products: list[ExpectedProduct]  # the clean rows, in file order
    counts: CatalogCounts
    ignored_columns: list[str]


@dataclass(frozen=True)
class _Row:
    """A product's values; `expected` once written the way the lake should hold them."""

    product_id: str
    name: str
    category: str
    price: Decimal
    currency: str
    active: bool
    updated_at: datetime  # UTC
    offset_minutes: int


def generate_catalog(rows: int, seed: int, defect_rate: float = 0.05, *, arrived: datetime,
                     first_product: int = 1, crlf: bool = False, bom: bool = False, shuffle_columns: bool = False,
                     extra_column: bool = False) -> CatalogFile:
    """A catalog file of `rows` data lines (blank lines come on top), kept in memory with its truth."""
    lines: list[bytes] = []
    labels: list[str] = []
    products: list[ExpectedProduct] = []
    header: list[str] = []
    for line, label, product in _lines(rows, seed, defect_rate, arrived, first_product, shuffle_columns,
                                       extra_column, header):
        lines.append(line)
        labels.append(label)
        if product is not None:
            products.append(product)
    return CatalogFile(data=_join(lines, crlf, bom), labels=labels, products=products, counts=_counts(labels),
                       ignored_columns=[EXTRA_COLUMN] if extra_column else [])


def write_catalog(path: Path | str, rows: int, seed: int, defect_rate: float = 0.05, *, arrived: datetime,
                  first_product: int = 1, crlf: bool = False) -> CatalogCounts:
    """Stream a catalog file of `rows` data lines to `path` (any size, in little memory); its counts."""
    tally: Counter[str] = Counter()
    lines = 0
    with open(path, "wb") as out:
        for line, label, _ in _lines(rows, seed, defect_rate, arrived, first_product, False, False, []):
            out.write(line + (b"\r\n" if crlf else b"\n"))
            tally[label] += 1
            lines += 1
    return _tally_counts(tally, lines)


def _join(lines: list[bytes], crlf: bool, bom: bool) -> bytes:
    end = b"\r\n" if crlf else b"\n"
    return (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + end for line in lines)


def _counts(labels: list[str]) -> CatalogCounts:
    return _tally_counts(Counter(labels), len(labels))


def _tally_counts(tally: Counter[str], lines: int) -> CatalogCounts:
    return CatalogCounts(
        lines=lines, blank_lines=tally[LABEL_BLANK], received=lines - tally[LABEL_HEADER] - tally[LABEL_BLANK],
        clean=tally[LABEL_CLEAN], duplicates=tally[LABEL_DUPLICATE],
        quarantined_by_reason={r: tally[r] for r in Reason.ALL if tally[r]},
    )


def _lines(rows: int, seed: int, defect_rate: float, arrived: datetime, first_product: int, shuffle_columns: bool,
           extra_column: bool, header: list[str]) -> Iterator[tuple[bytes, str, ExpectedProduct | None]]:
    """(line without its break, label, expected product of a clean line), header first."""
    if rows < 0 or not 0.0 <= defect_rate <= 1.0:
        raise ValueError(f"rows must be >= 0 and defect_rate in [0, 1], got {rows} and {defect_rate}")
    if arrived.tzinfo is None:
        raise ValueError("arrived must be timezone-aware")
    rng = random.Random(seed)
    header[:] = list(contract.COLUMNS) + ([EXTRA_COLUMN] if extra_column else [])
    if shuffle_columns:
        rng.shuffle(header)
    out = _CsvLine(header)
    yield out.names(), LABEL_HEADER, None
    # Defect kinds are dealt in turn, so each appears once there are enough defective lines.
    repeats = round((len(_DEFECTS) + 1) * _DUPLICATE_SHARE / (1 - _DUPLICATE_SHARE))
    kinds = [*_DEFECTS, Reason.CONFLICTING_DUPLICATE] + [LABEL_DUPLICATE] * repeats
    dealt = 0
    recent: deque[_Row] = deque(maxlen=_REPEAT_WINDOW)  # clean rows a repeat can copy
    next_id = first_product
    line_number = 1
    for _ in range(rows):
        while rng.random() < _BLANK_SHARE:
            line_number += 1
            yield rng.choice((b"", b"  ", b"\t")), LABEL_BLANK, None
        line_number += 1
        kind = kinds[dealt % len(kinds)] if rng.random() < defect_rate else LABEL_CLEAN
        if kind in (LABEL_DUPLICATE, Reason.CONFLICTING_DUPLICATE) and not recent:
            kind = LABEL_CLEAN  # nothing to repeat yet
        elif kind != LABEL_CLEAN:
            dealt += 1
        if kind == LABEL_DUPLICATE:
            yield out.line(_sloppy(rng, rng.choice(recent), out, rewrite=True)), LABEL_DUPLICATE, None
            continue
        if kind == Reason.CONFLICTING_DUPLICATE:
            original = rng.choice(recent)
            changed = replace(original, price=_other_price(rng, original))
            yield out.line(_sloppy(rng, changed, out)), kind, None
            continue
        row = _product(rng, next_id, arrived)
        next_id += 1
        if kind == LABEL_CLEAN:
            recent.append(row)
            yield out.line(_sloppy(rng, row, out)), LABEL_CLEAN, _expected(row, line_number)
        else:
            yield _DEFECTS[kind](rng, row, out, arrived), kind, None


def _product(rng: random.Random, number: int, arrived: datetime) -> _Row:
    category = rng.choice(contract.CATEGORIES)
    name = f"{rng.choice(_BRANDS)} {rng.choice(_NOUNS[category])}"
    if rng.random() < 0.2:
        name = f"{name}, {rng.choice(_COLOURS)}"  # a comma: the value must be quoted
    if rng.random() < 0.05:
        name = f'The "{name}"'  # quotes: doubled inside a quoted value
    codes = list(_CURRENCY_WEIGHTS) + [c for c in currencies.CODES if c not in _CURRENCY_WEIGHTS]
    weights = list(_CURRENCY_WEIGHTS.values()) + [1] * (len(codes) - len(_CURRENCY_WEIGHTS))
    currency = rng.choices(codes, weights=weights)[0]
    decimals = currencies.MINOR_UNITS[currency]
    cents = rng.randrange(500, 50_000) * (100 if decimals == 0 else 1)  # JPY/KRW in whole units
    price = (Decimal(cents) / 100).quantize(Decimal(1).scaleb(-decimals)) if decimals else Decimal(cents // 100)
    updated = arrived - timedelta(seconds=rng.randrange(60, 400 * 86400))
    updated = updated.replace(microsecond=rng.choice((0, 0, rng.randrange(1000) * 1000)))
    return _Row(product_id=f"P-{number:05d}", name=name, category=category, price=price, currency=currency,
                active=rng.random() < 0.9, updated_at=updated.astimezone(timezone.utc),
                offset_minutes=rng.choice(_OFFSETS))


def _expected(row: _Row, line_number: int) -> ExpectedProduct:
    return ExpectedProduct(
        product_id=row.product_id, name=row.name, category=row.category,
        price=row.price.quantize(Decimal(1).scaleb(-contract.PRICE_SCALE)), currency=row.currency,
        active=row.active, updated_at=row.updated_at, updated_at_offset=_offset_text(row.offset_minutes),
        line_number=line_number)


def _offset_text(minutes: int) -> str:
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _stamp(row: _Row, rng: random.Random, rewrite: bool = False) -> str:
    """updated_at as the exporter writes it: local time with its offset (or Z), maybe milliseconds."""
    minutes = 0 if rewrite else row.offset_minutes  # a rewrite states the same instant in UTC
    local = row.updated_at + timedelta(minutes=minutes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if row.updated_at.microsecond:
        text += f".{row.updated_at.microsecond // 1000:03d}"
    return text + ("Z" if minutes == 0 and rng.random() < 0.7 else _offset_text(minutes))


def _sloppy(rng: random.Random, row: _Row, out: "_CsvLine", rewrite: bool = False) -> dict[str, str]:
    """A row's fields as an exporter writes them (any case, stray spaces); `rewrite` varies them
    further, so a repeat is written differently from its original but means the same."""
    price = row.price
    if rng.random() < 0.3 and price == price.to_integral_value():
        price_text = str(int(price))  # "20" for 20.00
    elif rng.random() < 0.1 or rewrite:
        price_text = f"{price}0" if "." in str(price) else f"{price}.0"  # a trailing zero
    else:
        price_text = str(price)
    truthy = rng.choice(contract.TRUE_VALUES + ("TRUE", "Yes")) if row.active else \
        rng.choice(contract.FALSE_VALUES + ("FALSE", "No"))
    category = rng.choice((row.category, row.category, row.category.capitalize(), row.category.upper(),
                           f" {row.category} "))
    return {
        "product_id": row.product_id.lower() if rng.random() < 0.02 else row.product_id,
        "name": f" {row.name}" if rng.random() < 0.02 else row.name,
        "category": category,
        "price": price_text,
        "currency": row.currency.lower() if rng.random() < 0.05 else row.currency,
        "active": truthy,
        "updated_at": _stamp(row, rng, rewrite),
        EXTRA_COLUMN: rng.choice(_SUPPLIERS),
    }


def _other_price(rng: random.Random, row: _Row) -> Decimal:
    step = Decimal(1).scaleb(-currencies.MINOR_UNITS[row.currency]) * rng.randrange(1, 100)
    return row.price + step


class _CsvLine:
    """Rows of values as CSV lines in the file's column order (quoted where CSV needs it)."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="")

    def names(self) -> bytes:
        return self._join(self.header)

    def line(self, fields: dict[str, str]) -> bytes:
        return self._join([fields[name] for name in self.header])

    def _join(self, values: list[str]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(values)
        return self._buffer.getvalue().encode()


# --- defects: each takes a valid product and breaks exactly one rule of the contract -------------
# (CONFLICTING_DUPLICATE is made from an earlier clean row, in _lines.)

Defect = Callable[[random.Random, _Row, _CsvLine, datetime], bytes]


def _with(rng: random.Random, row: _Row, out: _CsvLine, **fields: str) -> bytes:
    return out.line({**_sloppy(rng, row, out), **fields})


def _bad_encoding(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    good = _with(rng, row, out, name="Café Crème Mug")
    return good.replace("Café Crème".encode(), "Café Crème".encode("latin-1"))  # a Windows-1252 export


def _oversized(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    return _with(rng, row, out, name="Mega bundle: " + "all the things " * (contract.MAX_ROW_BYTES // 15 + 1))


def _malformed(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    fields = _sloppy(rng, row, out)
    values = [fields[name] for name in out.header]
    at = out.header.index("name")
    if rng.random() < 0.5:
        values[at] = '"' + values[at].replace('"', "")  # a quote opened and never closed
    else:
        values[at] = values[at].replace('"', "") + ' 12" screen'  # a stray quote inside a bare value
        values[at] = '"' + values[at][:5] + '"x' + values[at][5:]
    return ",".join(values).encode()


def _wrong_field_count(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    good = _with(rng, row, out)
    return good + b",surplus" if rng.random() < 0.5 else good.rsplit(b",", 1)[0]


def _missing_field(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    return _with(rng, row, out, **{rng.choice(contract.COLUMNS): rng.choice(("", "   "))})


def _bad_product_id(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    return _with(rng, row, out, product_id=rng.choice(("SKU-1234", "P-12", "P-1234567890", "P 00042", "00042")))


def _bad_name(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    name = rng.choice((f"{row.name}\x07", f"{row.name}\tXL", "Long " * (contract.MAX_NAME_CHARS // 5 + 1)))
    return _with(rng, row, out, name=name)


def _unknown_category(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    return _with(rng, row, out, category=rng.choice(("gadgets", "Shoe", "garden", "n/a")))


def _bad_price(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    fraction = "1.5" if currencies.MINOR_UNITS[row.currency] == 0 else "19.999"  # too many decimals
    return _with(rng, row, out, price=rng.choice(("-12.50", "0", "12,99", "1e3", "$15", "250000", fraction)))


def _unknown_currency(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    return _with(rng, row, out, currency=rng.choice(("XXX", "EURO", "US$", "RMB")))


def _bad_boolean(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    return _with(rng, row, out, active=rng.choice(("maybe", "N/A", "2", "y")))


def _bad_timestamp(rng: random.Random, row: _Row, out: _CsvLine, arrived: datetime) -> bytes:
    future = (arrived + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _with(rng, row, out, updated_at=rng.choice((
        "2026-13-01T00:00:00Z", "2026-05-01T12:00:00", "01/05/2026 12:00", "1970-01-01T00:00:00Z", future)))


_DEFECTS: dict[str, Defect] = {
    Reason.BAD_ENCODING: _bad_encoding,
    Reason.OVERSIZED_ROW: _oversized,
    Reason.MALFORMED_ROW: _malformed,
    Reason.WRONG_FIELD_COUNT: _wrong_field_count,
    Reason.MISSING_FIELD: _missing_field,
    Reason.BAD_PRODUCT_ID: _bad_product_id,
    Reason.BAD_NAME: _bad_name,
    Reason.UNKNOWN_CATEGORY: _unknown_category,
    Reason.BAD_PRICE: _bad_price,
    Reason.UNKNOWN_CURRENCY: _unknown_currency,
    Reason.BAD_BOOLEAN: _bad_boolean,
    Reason.BAD_TIMESTAMP: _bad_timestamp,
}
