"""Word counts."""


def word_count(text: str) -> dict[str, int]:
    """Count words (runs of letters, digits or apostrophes), case-insensitively.
    Example: word_count("a B a") == {"a": 2, "b": 1}."""
    raise NotImplementedError
