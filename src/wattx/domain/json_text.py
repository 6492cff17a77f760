"""JSON texts from outside: decoded as ``json.loads`` decodes them, nesting bounded.

Python's decoder recurses in C once per nested array or object and stops only at
the interpreter's recursion limit, which a library of the embedded chain raises to
100,000 for the whole process (``py_ecc``): 240 KB of ``[`` in one request body
overflowed the C stack and killed the service before any check ran. Every JSON
text that comes from outside (request bodies, reading batches, node frames) goes
through :func:`check_nesting` before it is decoded, and is refused with the
``json.JSONDecodeError`` each entry point already answers as malformed input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import accumulate
from typing import Any

MAX_NESTING = 1_000
"""Arrays and objects inside one another, at most: as deep as Python's decoder goes at
its default recursion limit (every format here nests 5 or fewer)."""

# Every opening bracket becomes "[", every closing one "]"; quotes stay; the rest goes.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET_OR_QUOTE = bytes(c for c in range(256) if c not in b'[]{}"')
_PEELED_AT_MOST = 8
_STEP = {ord("["): 1, ord("]"): -1}


def text_of(document: bytes | str) -> str:
    """The text of a JSON document as ``json.loads`` reads it: bytes in UTF-8, -16 or
    -32, told by the first bytes (a ``UnicodeDecodeError`` if they are not)."""
    if isinstance(document, str):
        return document
    return document.decode(json.detect_encoding(document), "surrogatepass")


def checked_text(document: bytes | str) -> str:
    """:func:`text_of` the document, held to :data:`MAX_NESTING` (:func:`check_nesting`):
    what every decoder of outside JSON is given."""
    text = text_of(document)
    check_nesting(text)
    return text


def check_nesting(text: str, limit: int = MAX_NESTING) -> None:
    """Raise ``json.JSONDecodeError`` if ``text`` nests more than ``limit`` arrays and
    objects. Brackets in strings do not count; the text need not be valid JSON (the
    decoder reports that, and recurses no deeper than its first error)."""
    # Most texts open fewer brackets than the limit in all: nothing to measure.
    if text.count("[") + text.count("{") <= limit:
        return
    if _depth(_brackets_outside_strings(text)) > limit:
        start = len(text) - len(text.lstrip())
        raise json.JSONDecodeError(f"arrays and objects nested deeper than {limit}", text, start)


def _brackets_outside_strings(text: str) -> bytes:
    """The brackets outside the strings, openers as ``[`` and closers as ``]``.

    With the escaped backslashes and then the escaped quotes gone, every quote left opens
    or closes a string, as the decoder reads a valid prefix (the only part it recurses
    into). Two quotes side by side, once all but brackets and quotes are gone, are a
    string without brackets or the end of one and the start of the next: either way,
    taking both out leaves every bracket as much inside or outside a string as it was.
    """
    raw = text.encode("utf-8", "surrogatepass")
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(_BRACKETS, _NOT_BRACKET_OR_QUOTE).replace(b'""', b"")
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    return kept


def _depth(brackets: bytes) -> int:
    """How deep ``brackets`` (only ``[`` and ``]``) nest."""
    # Each pass takes out the innermost pairs, one level of a balanced text: the few
    # levels of a real document go in a few passes, at the speed of bytes.replace.
    peeled = brackets
    for level in range(_PEELED_AT_MOST):
        if not peeled:
            return level
        shallower = peeled.replace(b"[]", b"")
        if len(shallower) == len(peeled):
            break
        peeled = shallower
    # Deep or unbalanced: count bracket by bracket.
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def members_once(
    pairs: list[tuple[str, Any]], refusal: Callable[[str], Exception]
) -> dict[str, Any]:
    """An object's members from its ``pairs`` (an ``object_pairs_hook``), raising
    ``refusal(name)`` for the first name that appears twice: JSON leaves such an object's
    meaning to the reader (Python's decoder keeps the last value)."""
    members = dict(pairs)
    if len(members) == len(pairs):
        return members
    # Built in one call above (this runs for every object decoded); the first name seen
    # twice is looked for only when there is one.
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            break  # fewer members than pairs: some name comes again, and this is the first
        seen.add(name)
    raise refusal(name)
