"""Password hashing (bcrypt off the event loop, 72-byte limit, dummy hash for unknown users), refresh digests."""

import hashlib
import threading

import bcrypt
import pytest

from auth import security
from auth.security import MAX_PASSWORD_BYTES, PasswordHasher, hash_refresh_token, new_refresh_token

ROUNDS = 4
PASSWORD = "correct-horse-battery"
# 24 three-byte characters: exactly the 72-byte limit, though only 24 characters long.
LONGEST_PASSWORD = "€" * 24


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=ROUNDS, concurrency=2)


@pytest.fixture
def checkpw_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes, str]]:
    """Every bcrypt.checkpw call as (password, hash, thread name), still really checked."""
    calls: list[tuple[bytes, bytes, str]] = []
    real_checkpw = bcrypt.checkpw

    def recording_checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append((password, hashed, threading.current_thread().name))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(security.bcrypt, "checkpw", recording_checkpw)
    return calls


async def test_hash_is_salted_bcrypt_with_the_configured_cost(hasher):
    first = await hasher.hash(PASSWORD)
    second = await hasher.hash(PASSWORD)
    assert first.startswith(f"$2b${ROUNDS:02d}$")
    assert len(first) == 60
    assert PASSWORD not in first
    assert first != second  # a fresh salt each time


@pytest.mark.parametrize("password", [PASSWORD, "é" * 4, LONGEST_PASSWORD])
async def test_verify_accepts_the_password_and_nothing_else(hasher, password):
    hashed = await hasher.hash(password)
    assert await hasher.verify(password, hashed) is True
    assert await hasher.verify(password[:-1], hashed) is False
    assert await hasher.verify(password.upper() + "x", hashed) is False


async def test_passwords_over_72_bytes_are_refused_not_truncated(hasher):
    assert len(LONGEST_PASSWORD.encode()) == MAX_PASSWORD_BYTES
    await hasher.hash(LONGEST_PASSWORD)
    with pytest.raises(ValueError, match="72 bytes"):
        await hasher.hash(LONGEST_PASSWORD + "a")
    # bcrypt itself would ignore everything past byte 72 and say yes here.
    hashed = await hasher.hash(LONGEST_PASSWORD)
    assert await hasher.verify(LONGEST_PASSWORD + "a", hashed) is False


async def test_unknown_user_still_costs_one_bcrypt_check_and_fails(hasher, checkpw_calls):
    assert await hasher.verify(PASSWORD, None) is False
    assert await hasher.verify(PASSWORD, None) is False
    assert len(checkpw_calls) == 2
    (password, dummy, _), (_, second_dummy, _) = checkpw_calls
    assert password == PASSWORD.encode()
    # A real hash at the configured cost, so an unknown name takes as long as a wrong password.
    assert dummy.startswith(f"$2b${ROUNDS:02d}$".encode())
    assert dummy == second_dummy  # made once, not per attempt


async def test_bcrypt_runs_in_a_worker_thread(hasher, checkpw_calls, monkeypatch):
    hash_threads: list[str] = []
    real_hashpw = bcrypt.hashpw

    def recording_hashpw(password: bytes, salt: bytes) -> bytes:
        hash_threads.append(threading.current_thread().name)
        return real_hashpw(password, salt)

    monkeypatch.setattr(security.bcrypt, "hashpw", recording_hashpw)
    hashed = await hasher.hash(PASSWORD)
    await hasher.verify(PASSWORD, hashed)
    await hasher.verify(PASSWORD, None)
    threads = hash_threads + [thread for _, _, thread in checkpw_calls]
    assert len(threads) == 4  # our hash, the dummy hash, two checks
    assert threading.main_thread().name not in threads


def test_refresh_tokens_are_random_and_long():
    tokens = {new_refresh_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 43 for token in tokens)  # 32 random bytes in URL-safe base64


def test_refresh_token_digest_is_sha256_hex_and_stable():
    token = new_refresh_token()
    digest = hash_refresh_token(token)
    assert digest == hash_refresh_token(token)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert hash_refresh_token(token + "x") != digest
