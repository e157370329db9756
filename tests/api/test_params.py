"""The form reader against the standard library's, on arbitrary bytes."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.api.params import form_fields

form_bytes = st.lists(
    st.one_of(
        st.sampled_from([b"%", b"+", b"&", b"=", b"\\", b"\\x", b"%2", b"%C3%A9", b"%zz", b"%5C"]),
        st.binary(max_size=4),
        st.text("0123456789abcdefABCDEF%", max_size=4).map(str.encode),
    ),
    max_size=30,
).map(b"".join)


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-8"])
@settings(max_examples=400)
@given(raw=form_bytes)
def test_form_fields_read_what_parse_qsl_reads(charset: str, raw: bytes) -> None:
    try:
        expected = dict(
            parse_qsl(
                raw.decode(charset), keep_blank_values=True, encoding=charset, errors="strict"
            )
        )
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            form_fields(raw, charset)
        return
    assert form_fields(raw, charset) == expected
