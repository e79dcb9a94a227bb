"""Password hashing with bcrypt, off the event loop, and the opaque secrets of refresh, reset and mailed tokens."""

import hashlib
import secrets

import anyio
import bcrypt

# bcrypt reads at most 72 bytes; longer passwords are refused up front, never silently truncated.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_BYTES = 8
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
PASSWORD_RULE = f"password must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes in UTF-8"


def password_size_ok(password: str) -> bool:
    return MIN_PASSWORD_BYTES <= len(password.encode()) <= MAX_PASSWORD_BYTES


class PasswordHasher:
    """bcrypt in worker threads, at most `concurrency` at a time.

    bcrypt releases the GIL, so a bounded pool keeps a storm of logins from taking every core from the
    event loop that serves everyone else; the excess waits its turn instead.
    """

    def __init__(self, *, rounds: int, concurrency: int) -> None:
        self._rounds = rounds
        self._concurrency = concurrency
        self._limiter: anyio.CapacityLimiter | None = None
        self._dummy_hash: bytes | None = None

    def _capacity(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the event loop that will run it.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._concurrency)
        return self._limiter

    async def hash(self, password: str) -> str:
        encoded = password.encode()
        if len(encoded) > MAX_PASSWORD_BYTES:
            raise ValueError(f"passwords are limited to {MAX_PASSWORD_BYTES} bytes")
        salt = bcrypt.gensalt(self._rounds)
        hashed = await anyio.to_thread.run_sync(bcrypt.hashpw, encoded, salt, limiter=self._capacity())
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password. With no hash (unknown or erased user) a dummy one is checked, so timing does not tell."""
        encoded = password.encode()
        if not hashed or len(encoded) > MAX_PASSWORD_BYTES:
            await anyio.to_thread.run_sync(
                bcrypt.checkpw, encoded[:MAX_PASSWORD_BYTES], await self._dummy(), limiter=self._capacity()
            )
            return False
        return await anyio.to_thread.run_sync(bcrypt.checkpw, encoded, hashed.encode(), limiter=self._capacity())

    async def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            self._dummy_hash = (await self.hash(secrets.token_urlsafe(16))).encode()
        return self._dummy_hash


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are stored only as this digest: a leaked table yields no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_account_token() -> str:
    """A password-reset or e-mail verification secret: 256 random bits, URL-safe, so it fits in a link."""
    return secrets.token_urlsafe(32)


def hash_account_token(token: str) -> str:
    """Mailed tokens are stored only as this digest, like refresh tokens."""
    return hash_refresh_token(token)
