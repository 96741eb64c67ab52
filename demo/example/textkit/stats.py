"""Simple statistics."""


def mean(values: list[float]) -> float:
    """The arithmetic mean of a non-empty list. Example: mean([1, 2]) == 1.5."""
    raise NotImplementedError


def median(values: list[float]) -> float:
    """The median of a non-empty list (the mean of the two middle values for an even count)."""
    raise NotImplementedError
