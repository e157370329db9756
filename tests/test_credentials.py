"""Secrets: API keys by SHA-256, passwords by scrypt, both compared in constant time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.credentials import (
    hash_password,
    hash_secret,
    new_api_key,
    new_partner_id,
    secret_verifies,
)


def test_api_keys_verify_by_hash() -> None:
    key = new_api_key()
    stored = hash_secret(key)
    assert key not in stored
    assert secret_verifies(key, stored)
    assert not secret_verifies(key + "x", stored)


def test_passwords_use_salted_scrypt() -> None:
    first, second = hash_password("hunter2"), hash_password("hunter2")
    assert first != second  # salted
    assert first.startswith("scrypt$") and "hunter2" not in first
    assert secret_verifies("hunter2", first)
    assert secret_verifies("hunter2", first)  # second time from the in-memory proof
    assert not secret_verifies("hunter3", first)
    assert not secret_verifies("hunter2", hash_password("other"))


@settings(max_examples=20, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_only_the_right_password_verifies(password: str, guess: str) -> None:
    stored = hash_password(password)
    assert secret_verifies(guess, stored) is (guess == password)


def test_partner_ids_are_six_digits() -> None:
    assert all(len(new_partner_id()) == 6 and new_partner_id().isdigit() for _ in range(50))
