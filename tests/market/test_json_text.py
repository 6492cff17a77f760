"""JSON texts from outside: nesting bounded before the decoder recurses into it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain.json_text import MAX_NESTING, check_nesting, text_of


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


# Strings full of what could fool a scanner: brackets, quotes, backslashes.
_tricky_text = st.text(alphabet='[]{}"\\ab\n', max_size=8)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=400)
@given(value=_values, limit=st.integers(0, 8), indent=st.sampled_from([None, 1]))
def test_a_text_is_refused_exactly_when_it_nests_deeper_than_the_limit(
    value: Any, limit: int, indent: int | None
) -> None:
    text = json.dumps(value, indent=indent)
    if _depth(value) > limit:
        with pytest.raises(json.JSONDecodeError, match=f"nested deeper than {limit}"):
            check_nesting(text, limit)
    else:
        check_nesting(text, limit)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("[" * MAX_NESTING + "]" * MAX_NESTING, False),
        ("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1), True),
        # Not JSON, yet the decoder would recurse into every bracket before it failed.
        ("[" * 200_000, True),
        ('{"a": ' * (MAX_NESTING + 1), True),
        # Brackets in a string are text, however many.
        ('["' + "[" * 5_000 + '"]', False),
        # Closers in a string do not hide the nesting after it.
        ('["' + "]" * 5_000 + '", ' + "[" * 1_001 + "]" * 1_001 + "]", True),
        # An escaped quote does not end a string; an escaped backslash before one does.
        ('["\\"' + "[" * 1_001 + '"]', False),
        ('["\\\\", ' + "[" * 1_000 + "]" * 1_000 + "]", True),
    ],
)
def test_edges(text: str, refused: bool) -> None:
    if refused:
        with pytest.raises(json.JSONDecodeError) as error:
            check_nesting(text)
        assert error.value.pos == 0
    else:
        check_nesting(text)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16-le", "utf-32-be"])
def test_bytes_are_read_as_json_loads_reads_them(encoding: str) -> None:
    text = '{"zone": "münchen", "q": [1, 2]}'
    raw = text.encode(encoding)
    assert text_of(raw) == text
    assert json.loads(text_of(raw)) == json.loads(raw)


def test_a_deep_text_is_refused_where_the_recursion_limit_would_not_stop_it() -> None:
    """The service's libraries raise the recursion limit to 100,000; the decoder alone
    then crashes the process on deep enough input, the checked decode does not."""
    program = (
        "import json, sys; sys.setrecursionlimit(100_000)\n"
        "from wattx.domain.json_text import check_nesting\n"
        "text = '[' * 150_000\n"
        "try:\n"
        "    check_nesting(text)\n"
        "except json.JSONDecodeError as refused:\n"
        "    print('refused:', refused.msg)\n"
        "json.loads(text)\n"
    )
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.stdout == f"refused: arrays and objects nested deeper than {MAX_NESTING}\n"
    # Unchecked, the same text overflows the C stack and takes the process down (here:
    # a segmentation fault; a RecursionError only where the stack is large enough).
    assert run.returncode != 0
