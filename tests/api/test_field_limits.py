"""The door limits on fields, checked against their plain definition on
arbitrary request shapes: the checker is tuned for bulk requests (thousands
of fields), and must still find the same first problem in the same words."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.api.limits import MAX_FIELD_CHARS, MAX_JSON_DEPTH, field_problem, forbidden_character

LONG_FIELDS = frozenset({"message", "to"})


def defined_problem(value: Any, name: str, long_fields: frozenset[str], depth: int) -> str | None:
    """The limits as the README states them, walked the obvious way."""
    if isinstance(value, str):
        bad = forbidden_character(value)
        if bad is not None:
            return f"{bad} in {name}" if name else bad
        if len(value) > MAX_FIELD_CHARS and name not in long_fields:
            return f"{name or 'a field'} is longer than {MAX_FIELD_CHARS} characters"
        return None
    if not isinstance(value, dict | list):
        return None
    if depth > MAX_JSON_DEPTH:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    items = [(name, item) for item in value] if isinstance(value, list) else list(value.items())
    for key, item in items:
        if isinstance(value, dict) and (
            problem := defined_problem(key, "a field name", frozenset(), 0)
        ):
            return problem
        if problem := defined_problem(item, key, long_fields, depth + 1):
            return problem
    return None


# Ordinary text, control characters and over-long values alike, under the
# dialects' long field names as well as others.
LONG_TEXT = "x" * (MAX_FIELD_CHARS + 1)
texts = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["\x00", "a\x07b", "tab\tok", "\x0c", LONG_TEXT, "\x0b" + LONG_TEXT]),
)
names = st.one_of(st.sampled_from(["message", "to", "mobile", "id", LONG_TEXT]), texts)
scalars = st.one_of(texts, st.integers(), st.booleans(), st.none())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(names, children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=500)
@given(st.dictionaries(names, documents, max_size=5))
def test_the_first_problem_is_found_as_defined(fields: dict[str, Any]) -> None:
    assert field_problem(fields, LONG_FIELDS) == defined_problem(fields, "", LONG_FIELDS, 1)


def test_a_deep_document_is_refused_at_the_defined_depth() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH - 1):  # the fields themselves are the first level
        deep = [deep]
    assert field_problem({"a": deep}, LONG_FIELDS) is None
    assert field_problem({"a": [deep]}, LONG_FIELDS) == (
        f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    )
