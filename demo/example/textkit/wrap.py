"""Word wrapping."""


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap: split `text` on whitespace and fill lines of at most `width` characters (a longer word
    gets a line of its own). Example: wrap("a bb ccc", 4) == ["a bb", "ccc"]."""
    raise NotImplementedError
