"""Which rows of a file repeat a product_id seen earlier in it (the first occurrence wins).

A file's lines are streamed, but ids must be remembered across the whole file: kept as three
sorted numpy arrays (id key, values digest, line), 24 bytes per distinct product, not ~150 as in
a Python dict, so memory follows the number of products and never the size of the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Verdicts:
    """Per row of a batch: the line of the earlier row with its id (0: this row is the first)
    and whether that row had the same values."""

    first_line: np.ndarray  # int64
    same_values: np.ndarray  # bool


class FirstSeen:
    def __init__(self) -> None:
        self._keys = np.empty(0, np.int64)  # sorted
        self._digests = np.empty(0, np.int64)
        self._lines = np.empty(0, np.int64)

    def __len__(self) -> int:
        return int(self._keys.size)

    def check(self, keys: Sequence[int], digests: Sequence[int], lines: Sequence[int]) -> Verdicts:
        """Judge a batch of rows (in file order, after every earlier batch) and remember its new ids."""
        key = np.asarray(keys, np.int64)
        digest = np.asarray(digests, np.int64)
        line = np.asarray(lines, np.int64)
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        # The row each unique id is compared with: the remembered one, else its first in this batch.
        ref_digest, ref_line = digest[first], line[first]
        position = np.searchsorted(self._keys, unique)
        found = np.zeros(unique.size, bool)
        if self._keys.size:
            at = np.minimum(position, self._keys.size - 1)
            found = self._keys[at] == unique
            ref_digest[found], ref_line[found] = self._digests[at[found]], self._lines[at[found]]
        is_first = ~found[inverse] & (np.arange(key.size) == first[inverse])
        verdicts = Verdicts(first_line=np.where(is_first, 0, ref_line[inverse]),
                            same_values=digest == ref_digest[inverse])
        new = ~found
        # Inserting at the positions searched in the old array keeps it sorted.
        self._keys = np.insert(self._keys, position[new], unique[new])
        self._digests = np.insert(self._digests, position[new], ref_digest[new])
        self._lines = np.insert(self._lines, position[new], ref_line[new])
        return verdicts
