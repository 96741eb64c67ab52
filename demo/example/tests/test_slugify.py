from textkit.slugify import slugify


def test_slugify() -> None:
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  many   spaces ") == "many-spaces"
    assert slugify("Already-a-slug") == "already-a-slug"
