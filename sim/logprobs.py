"""Token ids and log-probabilities for the simulator's pseudo-tokens.

The simulator has no model and no real tokenizer (sim/tokens.py), so the numbers
here mean nothing: they are well-formed and deterministic, for clients that
parse the fields. A token's id is a stable 31-bit hash of its text (the same
token always has the same id, across runs); `Vocabulary` remembers every id it
has handed out so `/detokenize` can turn ids back into text. A token's
log-probability is a fixed function of its text and position, and it is always
the most likely of its `top_logprobs`, whose other entries come from a short
fixed list of common tokens.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

_ALTERNATIVES: tuple[str, ...] = (
    " the",
    ",",
    ".",
    "\n",
    " a",
    " to",
    " of",
    " and",
    " in",
    " is",
    "_",
    "(",
    ")",
    " =",
    ":",
    " for",
)
_ALTERNATIVES += (" if", " return", " def", " self", '"', " }", " {", "\n\n", " not", " with")


def token_id(token: str) -> int:
    """The simulator's id for a pseudo-token: a stable hash of its text."""
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


class Vocabulary:
    """Ids for tokens, and the tokens behind the ids it has handed out (one per simulator)."""

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The ids of `tokens`, remembered for `text`."""
        out = []
        for token in tokens:
            ident = token_id(token)
            self._texts.setdefault(ident, token)
            out.append(ident)
        return out

    def text(self, ids: Sequence[int]) -> str:
        """The text of token ids handed out before; `KeyError` naming the first unknown one."""
        try:
            return "".join(self._texts[i] for i in ids)
        except KeyError as exc:
            raise KeyError(f"token id {exc.args[0]} was never produced by this simulator's tokenizer") from None


def _logprob(token: str, position: int) -> float:
    return -round((zlib.crc32(f"{position}:{token}".encode()) % 500) / 1000, 4)


def _alternatives(token: str, position: int, count: int, best: float) -> list[tuple[str, float]]:
    start = zlib.crc32(f"{position}".encode()) % len(_ALTERNATIVES)
    picked = [t for t in _ALTERNATIVES[start:] + _ALTERNATIVES[:start] if t != token][:count]
    return [(t, round(best - 0.75 * (rank + 1), 4)) for rank, t in enumerate(picked)]


def chat_logprobs(tokens: Sequence[str], start: int, top: int) -> list[dict[str, Any]]:
    """`choices[].logprobs.content` entries for `tokens` at positions `start`, `start + 1`, ..."""
    entries = []
    for offset, token in enumerate(tokens):
        position = start + offset
        value = _logprob(token, position)
        top_list = [(token, value), *_alternatives(token, position, top - 1, value)][:top]
        entries.append(
            {
                "token": token,
                "logprob": value,
                "bytes": list(token.encode("utf-8")),
                "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))} for t, v in top_list],
            }
        )
    return entries


def completion_logprobs(tokens: Sequence[str], start: int, top: int, text_offset: int) -> dict[str, Any]:
    """A `/v1/completions` `logprobs` object for `tokens` (positions from `start`, text from `text_offset`)."""
    out: dict[str, Any] = {"text_offset": [], "token_logprobs": [], "tokens": [], "top_logprobs": []}
    for offset, token in enumerate(tokens):
        position = start + offset
        value = _logprob(token, position)
        out["text_offset"].append(text_offset)
        out["token_logprobs"].append(value)
        out["tokens"].append(token)
        pairs = [(token, value), *_alternatives(token, position, max(top, 1) - 1, value)][: max(top, 1)]
        out["top_logprobs"].append(dict(pairs))
        text_offset += len(token)
    return out
