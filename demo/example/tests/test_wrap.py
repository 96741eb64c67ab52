from textkit.wrap import wrap


def test_wrap() -> None:
    assert wrap("a bb ccc", 4) == ["a bb", "ccc"]
    assert wrap("supercalifragilistic is long", 5) == ["supercalifragilistic", "is", "long"]
    assert wrap("", 10) == []
