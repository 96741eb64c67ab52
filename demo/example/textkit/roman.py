"""Roman numerals."""


def to_roman(number: int) -> str:
    """The Roman numeral of 1 <= number <= 3999. Example: to_roman(1994) == "MCMXCIV"."""
    raise NotImplementedError


def from_roman(numeral: str) -> int:
    """The value of a Roman numeral. Example: from_roman("MCMXCIV") == 1994."""
    raise NotImplementedError
