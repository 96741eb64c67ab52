from textkit.caesar import decode, encode


def test_caesar() -> None:
    assert encode("Hello, World!", 3) == "Khoor, Zruog!"
    assert encode("xyz", 3) == "abc"
    assert decode(encode("Round Trip", 11), 11) == "Round Trip"
