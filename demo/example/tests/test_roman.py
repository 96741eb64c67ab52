from textkit.roman import from_roman, to_roman


def test_roman() -> None:
    assert to_roman(1994) == "MCMXCIV"
    assert to_roman(4) == "IV"
    assert from_roman("MCMXCIV") == 1994
    assert all(from_roman(to_roman(n)) == n for n in range(1, 400))
