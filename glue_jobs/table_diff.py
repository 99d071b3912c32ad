"""Which computed rows a table does not hold yet: so a job rewrites only what changed, and a retry that
computes the same rows commits nothing."""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def changed(new: DataFrame, old: DataFrame, columns: Sequence[str]) -> DataFrame:
    """The rows of `new` with no row of `old` equal on every one of `columns` (nulls equal nulls)."""
    # Renamed, so the comparison never resolves both sides to one column when `new` derives from `old`.
    theirs = old.select(*(F.col(c).alias(f"_old_{c}") for c in columns))
    return new.join(theirs, [new[c].eqNullSafe(theirs[f"_old_{c}"]) for c in columns], "left_anti")
