"""Apply table specs to an Iceberg catalog: create what is missing, evolve compatibly, refuse the rest.

Compatible (applied): a new optional column, int -> long, float -> double, a wider decimal, a
required column made optional, a new doc, sort order, identifier fields or property value, a
format-version upgrade. Incompatible (refused, nothing applied): a column dropped or renamed (the
table has a column the spec lacks), a new required column, a narrowing or other type change, an
optional column made required, a partition change. Readers of existing data files keep working
after every compatible change; see docs/decisions/0103-table-migrations.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import NullOrder
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DecimalType, DoubleType, FloatType, IcebergType, IntegerType, LongType

from iceberg_tables.specs import FORMAT_VERSION, MIGRATED_TABLES, TableSpec, partition_field_name


@dataclass(frozen=True)
class Change:
    table: str
    column: str | None  # None for a table-level change (partitioning)
    change: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.change}"


class IncompatibleTableChange(ValueError):
    """The spec asks for changes that would break existing data or readers; nothing was applied."""

    def __init__(self, changes: Sequence[Change]):
        self.changes = tuple(changes)
        super().__init__("incompatible table change(s) refused: " + "; ".join(map(str, self.changes)))


def is_widening(old: IcebergType, new: IcebergType) -> bool:
    """Iceberg's allowed type promotions (format v2)."""
    if isinstance(old, DecimalType) and isinstance(new, DecimalType):
        return new.scale == old.scale and new.precision > old.precision
    return (type(old), type(new)) in ((IntegerType, LongType), (FloatType, DoubleType))


def _schema_problems(spec: TableSpec, current: Schema) -> list[Change]:
    problems = []
    wanted = {c.name for c in spec.columns}
    for existing in current.fields:
        if existing.name not in wanted:
            problems.append(Change(spec.full_name, existing.name,
                                   "in the table but not in the spec (dropping or renaming a column is refused)"))
    fields = {f.name: f for f in current.fields}
    for col in spec.columns:
        field = fields.get(col.name)
        if field is None:
            if col.required:
                problems.append(Change(spec.full_name, col.name,
                                       "new column must be optional (existing rows have no value)"))
            continue
        if field.field_type != col.type and not is_widening(field.field_type, col.type):
            kind = "narrowing" if is_widening(col.type, field.field_type) else "type change"
            problems.append(Change(spec.full_name, col.name, f"{kind} {field.field_type} -> {col.type} refused"))
        if col.required and not field.required:
            problems.append(Change(spec.full_name, col.name,
                                   "optional -> required refused (existing rows may hold nulls)"))
    return problems


def _partition_problems(spec: TableSpec, table: Table) -> list[Change]:
    schema = table.schema()
    current = [(schema.find_column_name(f.source_id), str(f.transform)) for f in table.spec().fields]
    wanted = [(col, str(transform)) for col, transform in spec.partition_by]
    if current == wanted:
        return []
    return [Change(spec.full_name, None, f"partition change {current} -> {wanted} refused "
                                         "(existing files would not match the new layout)")]


def _sort_columns(table: Table) -> list[str]:
    schema = table.schema()
    return [schema.find_column_name(f.source_id) for f in table.sort_order().fields]


def _evolve(spec: TableSpec, table: Table) -> list[str]:
    """Apply the compatible differences in one commit; returns what changed."""
    done: list[str] = []
    current = table.schema()
    fields = {f.name: f for f in current.fields}
    wanted_props = {k: v for k, v in spec.properties.items() if table.properties.get(k) != v}
    sort_changed = _sort_columns(table) != list(spec.sort_by)
    with table.transaction() as tx:
        if table.format_version < FORMAT_VERSION:
            tx.upgrade_table_version(FORMAT_VERSION)
            done.append(f"format-version {table.format_version} -> {FORMAT_VERSION}")
        with tx.update_schema() as update:
            for col in spec.columns:
                field = fields.get(col.name)
                if field is None:
                    update.add_column(col.name, col.type, doc=col.doc or None)
                    done.append(f"added column {col.name} {col.type}")
                    continue
                if field.field_type != col.type:
                    update.update_column(col.name, field_type=col.type)
                    done.append(f"widened {col.name} {field.field_type} -> {col.type}")
                if field.required and not col.required:
                    update.make_column_optional(col.name)
                    done.append(f"made {col.name} optional")
                if (field.doc or "") != col.doc:
                    update.update_column(col.name, doc=col.doc)
                    done.append(f"updated doc of {col.name}")
            current_ids = {current.find_column_name(i) for i in current.identifier_field_ids}
            if current_ids != set(spec.identifier):
                update.set_identifier_fields(*spec.identifier)
                done.append(f"identifier fields {sorted(current_ids)} -> {list(spec.identifier)}")
        if sort_changed:
            with tx.update_sort_order() as sort:
                for col in spec.sort_by:
                    sort.asc(col, IdentityTransform(), NullOrder.NULLS_FIRST)
            done.append(f"sort order {_sort_columns(table)} -> {list(spec.sort_by)}")
        if wanted_props:
            tx.set_properties(wanted_props)
            done.append(f"set properties {sorted(wanted_props)}")
    return [f"{spec.full_name}: {what}" for what in done]


def _create(catalog: Catalog, spec: TableSpec) -> str:
    schema = spec.schema()
    catalog.create_table(spec.full_name, schema, partition_spec=spec.partition_spec(schema),
                         sort_order=spec.sort_order(schema),
                         properties={**spec.properties, "format-version": str(FORMAT_VERSION)})
    parts = ", ".join(partition_field_name(c, t) for c, t in spec.partition_by)
    return f"{spec.full_name}: created ({len(spec.columns)} columns, {f'partitioned by {parts}' if parts else 'unpartitioned'})"


def migrate(catalog: Catalog, specs: Sequence[TableSpec] = MIGRATED_TABLES) -> list[str]:
    """Bring every spec'd table in line with its spec; returns what was done, one line per change.

    Raises IncompatibleTableChange listing every refused change, before applying any of them.
    Running it again on an up-to-date catalog changes nothing.
    """
    existing: dict[str, Table] = {}
    problems: list[Change] = []
    for spec in specs:
        try:
            table = catalog.load_table(spec.full_name)
        except NoSuchTableError:
            continue
        existing[spec.full_name] = table
        problems += _schema_problems(spec, table.schema()) + _partition_problems(spec, table)
    if problems:
        raise IncompatibleTableChange(problems)

    done: list[str] = []
    for namespace in dict.fromkeys(spec.namespace for spec in specs):
        try:  # one namespace lookup (Glue: GetDatabase), not a listing of all of them
            catalog.load_namespace_properties(namespace)
        except NoSuchNamespaceError:
            catalog.create_namespace(namespace)
            done.append(f"{namespace}: created namespace")
    for spec in specs:
        if spec.full_name in existing:
            done += _evolve(spec, existing[spec.full_name]) or [f"{spec.full_name}: up to date"]
        else:
            done.append(_create(catalog, spec))
    return done
