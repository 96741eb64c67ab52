"""Palindromes."""


def is_palindrome(text: str) -> bool:
    """True if `text` reads the same backwards, ignoring case and everything but letters and digits."""
    raise NotImplementedError
