"""The Caesar cipher."""


def encode(text: str, shift: int) -> str:
    """Shift ASCII letters by `shift` places (wrapping around, keeping case); leave other characters alone."""
    raise NotImplementedError


def decode(text: str, shift: int) -> str:
    """Undo `encode(text, shift)`."""
    raise NotImplementedError
