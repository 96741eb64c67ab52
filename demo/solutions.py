"""The code the demo policy "writes": the finished modules of the example project, one planted bug included."""

from __future__ import annotations

SOLUTIONS: dict[str, str] = {
    "textkit/slugify.py": '''"""URL slugs."""

import re


def slugify(text: str) -> str:
    """Lower-case text, one '-' for every run of non-alphanumerics, no '-' at the ends."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
''',
    "textkit/wordcount.py": '''"""Word counts."""

import re
from collections import Counter


def word_count(text: str) -> dict[str, int]:
    """Count words (letters, digits, apostrophes), case-insensitively."""
    return dict(Counter(re.findall(r"[a-z0-9']+", text.lower())))
''',
    "textkit/stats.py": '''"""Simple statistics."""


def mean(values: list[float]) -> float:
    """The arithmetic mean of a non-empty list."""
    return sum(values) / len(values)


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
''',
    "textkit/wrap.py": '''"""Word wrapping."""


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap to lines of at most `width` characters."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines
''',
    "textkit/caesar.py": '''"""The Caesar cipher."""

import string


def _shift(text: str, shift: int) -> str:
    lower, upper = string.ascii_lowercase, string.ascii_uppercase
    table = str.maketrans(lower + upper, lower[shift % 26 :] + lower[: shift % 26] + upper[shift % 26 :] + upper[: shift % 26])
    return text.translate(table)


def encode(text: str, shift: int) -> str:
    """Shift ASCII letters by `shift` places, keeping case."""
    return _shift(text, shift)


def decode(text: str, shift: int) -> str:
    """Undo `encode(text, shift)`."""
    return _shift(text, -shift)
''',
    "textkit/palindrome.py": '''"""Palindromes."""


def is_palindrome(text: str) -> bool:
    """True if text reads the same backwards, ignoring case and non-alphanumerics."""
    letters = [c for c in text.lower() if c.isalnum()]
    return letters == letters[::-1]
''',
    "textkit/roman.py": '''"""Roman numerals."""

_VALUES = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]


def to_roman(number: int) -> str:
    """The Roman numeral of 1 <= number <= 3999."""
    out = ""
    for value, letters in _VALUES:
        count, number = divmod(number, value)
        out += letters * count
    return out


def from_roman(numeral: str) -> int:
    """The value of a Roman numeral."""
    singles = {letters: value for value, letters in _VALUES if len(letters) == 1}
    total = 0
    for i, letter in enumerate(numeral):
        value = singles[letter]
        total += -value if i + 1 < len(numeral) and singles[numeral[i + 1]] > value else value
    return total
''',
}

BUGGY_MODULE = "textkit/stats.py"
"""The module the first round gets wrong: its own tests pass, the integration test does not."""

BUG = ("    return sum(values) / len(values)", "    return sum(values) // len(values)")
"""(correct line, planted line): floor division, right only when the mean is a whole number."""


def first_round(path: str) -> str:
    """What a worker writes for `path` in the first round (the planted bug included)."""
    source = SOLUTIONS[path]
    return source.replace(*BUG) if path == BUGGY_MODULE else source
