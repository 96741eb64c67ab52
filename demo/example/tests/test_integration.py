"""One report that needs every module to be right."""

from textkit.caesar import decode, encode
from textkit.palindrome import is_palindrome
from textkit.roman import to_roman
from textkit.slugify import slugify
from textkit.stats import mean, median
from textkit.wordcount import word_count
from textkit.wrap import wrap


def test_report_end_to_end() -> None:
    title = "A Toyota's a Toyota"
    text = "a bb ccc dddd"
    lengths = [len(word) for word in text.split()]
    report = {
        "slug": slugify(title),
        "words": word_count(title),
        "mean_length": mean(lengths),
        "median_length": median(lengths),
        "lines": wrap(text, 6),
        "secret": encode(title, 5),
        "palindrome": is_palindrome(title),
        "count": to_roman(sum(word_count(title).values())),
    }
    assert report == {
        "slug": "a-toyota-s-a-toyota",
        "words": {"a": 2, "toyota's": 1, "toyota": 1},
        "mean_length": 2.5,
        "median_length": 2.5,
        "lines": ["a bb", "ccc", "dddd"],
        "secret": "F Ytdtyf'x f Ytdtyf",
        "palindrome": True,
        "count": "IV",
    }
    assert decode(report["secret"], 5) == title
