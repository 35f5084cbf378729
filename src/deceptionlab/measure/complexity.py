"""Lempel-Ziv complexity of binary strings: the simplicity measure of Dingle et al. (2018) and
Valle-Perez et al. (2019) for truth tables.

`lz76(s)` is the word count c(s) of the Lempel-Ziv (1976) parsing as computed by Kaspar and
Schuster (1987): s is cut into words, each the shortest substring starting where the last one ended
that cannot be copied from the text before its own last symbol (the copy may overlap the word).
A word cut short by the end of the string still counts. E.g. 0001101001000101 -> 0|001|10|100|1000|101.

`lz_complexity(s)` is the measure those papers plot frequency against:
    K(s) = log2(n)                                  if s is all 0s or all 1s
    K(s) = log2(n) * (c(s) + c(reverse(s))) / 2     otherwise
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def as_bitstring(s: str | Sequence[int] | Sequence[bool]) -> str:
    """'0'/'1' text from a string, a list of 0/1 or bools, or a numpy/torch vector of them."""
    if isinstance(s, str):
        if set(s) - {"0", "1"}:
            raise ValueError(f"not a binary string: {s!r}")
        return s
    return "".join("1" if int(v) else "0" for v in s)


def lz76(s: str | Sequence[int]) -> int:
    """Kaspar-Schuster LZ76 word count c(s) of a binary string (0 for the empty string)."""
    s = as_bitstring(s)
    n, i, c = len(s), 0, 0
    while i < n:
        j, p = i + 1, 0
        # extend the word while it can still be copied from the text before its last symbol; a longer
        # word can only occur where a shorter one does, so each search resumes at the last hit
        while j <= n:
            p = s.find(s[i:j], p, j - 1)
            if p < 0:
                break
            j += 1
        c += 1
        i = j
    return c


def lz_complexity(s: str | Sequence[int]) -> float:
    """K(s): log2(n) for a constant string, else log2(n) times the mean LZ76 count of s and its reverse."""
    s = as_bitstring(s)
    n = len(s)
    if n == 0:
        return 0.0
    scale = math.log2(n) if n > 1 else 1.0  # log2(1) = 0 would make every 1-bit string simplest of all
    if s.count(s[0]) == n:
        return scale
    return scale * (lz76(s) + lz76(s[::-1])) / 2
