from textkit.palindrome import is_palindrome


def test_palindrome() -> None:
    assert is_palindrome("A man, a plan, a canal: Panama")
    assert not is_palindrome("sevenfold")
    assert is_palindrome("")
