"""URL slugs."""


def slugify(text: str) -> str:
    """Lower-case `text`, turn every run of characters that are not letters or digits into one '-', and strip
    leading and trailing '-'. Example: slugify("Hello, World!") == "hello-world"."""
    raise NotImplementedError
