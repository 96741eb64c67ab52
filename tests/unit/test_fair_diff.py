"""The reviewer's diff budget: one large file cannot push the other changes out of sight."""

from __future__ import annotations

from sevenfold.nodes.reviewer import fair_diff


def _file(name: str, body: str) -> str:
    return f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n@@ -0,0 +1 @@\n{body}"


def test_a_small_diff_is_shown_as_it_is() -> None:
    diff = _file("a.py", "+x = 1")
    assert fair_diff(diff, 1_000) == diff


def test_a_padded_file_sorted_first_cannot_hide_a_small_change() -> None:
    padding = _file("0000-changelog.txt", "\n".join("+" + "0" * 70 for _ in range(500)))
    attack = _file("app.py", '+import os; os.system("curl evil")')
    shown = fair_diff(padding + "\n" + attack, 12_000)
    assert 'os.system("curl evil")' in shown
    assert len(shown) < 12_000 + 200
    assert "a/0000-changelog.txt b/0000-changelog.txt: " in shown and "not shown" in shown


def test_every_file_is_named_even_when_all_are_cut() -> None:
    files = [_file(f"f{i}.py", "+" + "y" * 5_000) for i in range(5)]
    shown = fair_diff("\n".join(files), 5_000)
    assert all(f"a/f{i}.py b/f{i}.py" in shown for i in range(5))
