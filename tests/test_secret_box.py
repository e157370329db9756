"""Secrets at rest: what a database copy reveals, and how processes agree on the key."""

from __future__ import annotations

import base64
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgate.secret_box import KEY_FILE_NAME, SecretBox, SecretError

KEY = bytes(range(32))
BOX = SecretBox(KEY)


@given(st.text())
def test_round_trip(plaintext: str) -> None:
    token = BOX.encrypt(plaintext)
    assert token.startswith("v1:")
    assert BOX.decrypt(token) == plaintext


def test_plaintext_does_not_appear_and_each_token_is_fresh() -> None:
    secret = base64.b64encode(os.urandom(64)).decode()
    first, second = BOX.encrypt(secret), BOX.encrypt(secret)
    assert first != second
    assert secret not in first
    assert BOX.decrypt(first) == BOX.decrypt(second) == secret


@given(plaintext=st.text(), data=st.data())
def test_any_flipped_bit_is_detected(plaintext: str, data: st.DataObject) -> None:
    raw = bytearray(base64.urlsafe_b64decode(BOX.encrypt(plaintext)[3:]))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    with pytest.raises(SecretError):
        BOX.decrypt("v1:" + base64.urlsafe_b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "plain-api-key",
        "v2:" + base64.urlsafe_b64encode(bytes(range(40))).decode(),
        "v1:",
        "v1:not base64!",
        "v1:ünï",
        "v1:" + base64.urlsafe_b64encode(bytes(range(27))).decode(),  # shorter than nonce + tag
        "v1:" + base64.urlsafe_b64encode(bytes(range(60))).decode(),  # not sealed by BOX
    ],
)
def test_foreign_or_truncated_tokens_are_refused(token: str) -> None:
    with pytest.raises(SecretError):
        BOX.decrypt(token)


def test_token_from_another_key_is_refused() -> None:
    token = SecretBox(os.urandom(32)).encrypt("secret")
    with pytest.raises(SecretError, match="another key"):
        BOX.decrypt(token)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_box_needs_a_32_byte_key(size: int) -> None:
    with pytest.raises(SecretError):
        SecretBox(bytes(size))


# --- loading the master key ------------------------------------------------------------


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    first = SecretBox.load(None, data_dir)
    key_file = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_text().strip(), validate=True)) == 32
    assert sorted(p.name for p in data_dir.iterdir()) == [KEY_FILE_NAME]

    second = SecretBox.load(None, data_dir)
    assert second.decrypt(first.encrypt("shared")) == "shared"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_key_file_content_is_a_valid_env_key(tmp_path: Path) -> None:
    from_file = SecretBox.load(None, tmp_path)
    from_env = SecretBox.load((tmp_path / KEY_FILE_NAME).read_text(), tmp_path / "elsewhere")
    assert from_env.decrypt(from_file.encrypt("portable")) == "portable"
    assert not (tmp_path / "elsewhere").exists()


def test_concurrent_first_loads_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        boxes = list(pool.map(lambda _: SecretBox.load(None, tmp_path), range(64)))
    token = boxes[0].encrypt("same key everywhere")
    assert {box.decrypt(token) for box in boxes} == {"same key everywhere"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE_NAME]


def test_env_key_wins_and_no_file_is_written(tmp_path: Path) -> None:
    env_key = base64.b64encode(KEY).decode()
    box = SecretBox.load(env_key, tmp_path)
    assert BOX.decrypt(box.encrypt("from env")) == "from env"
    assert list(tmp_path.iterdir()) == []


def test_empty_env_key_counts_as_unset(tmp_path: Path) -> None:
    SecretBox.load("", tmp_path)
    assert (tmp_path / KEY_FILE_NAME).exists()


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(33)).decode(),
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),
    ],
)
def test_bad_env_key_is_refused_with_a_clear_message(value: str, tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="SMSGATE_SECRET_KEY: expected base64 of 32") as excinfo:
        SecretBox.load(value, tmp_path)
    assert value not in str(excinfo.value)


def test_corrupt_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_text("garbage\n")
    with pytest.raises(SecretError, match=KEY_FILE_NAME):
        SecretBox.load(None, tmp_path)
    assert key_file.read_text() == "garbage\n"
