from textkit.wordcount import word_count


def test_word_count() -> None:
    assert word_count("a B a") == {"a": 2, "b": 1}
    assert word_count("It's it's, IT'S!") == {"it's": 3}
    assert word_count("") == {}
