from textkit.stats import mean, median


def test_mean() -> None:
    assert mean([1, 2, 3]) == 2
    assert mean([2, 4]) == 3


def test_median() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
