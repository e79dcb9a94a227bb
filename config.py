"""Typed service settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from auth.security import PASSWORD_RULE, USERNAME_PATTERN, password_size_ok

DATA_DIR = Path("data")
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///./{DATA_DIR}/shop.db"
DEVELOPMENT_SECRET_FILE = DATA_DIR / "secret_key"
MIN_SECRET_BYTES = 32
# Where a mail's link template takes its token (a placeholder, not a secret).
TOKEN_PLACEHOLDER = "{token}"  # noqa: S105  # nosec B105
DEFAULT_EVENT_SOURCE = "/shop"

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service. Unsafe combinations are refused at construction."""

    # Errors never echo the offending value: it may be a secret.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # A pooled PostgreSQL connection idle this long is pinged before it is used again (0: at every checkout).
    database_ping_after_idle_seconds: float = Field(default=1.0, ge=0)
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    redis_url: str | None = None
    # How long a revocation check waits for Redis before its request gets 503: short, so that a Redis that stops
    # answering costs a request this much instead of hanging it.
    redis_timeout_seconds: float = Field(default=1.0, gt=0)

    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_ttl_seconds: int = Field(default=900, ge=1)
    refresh_token_ttl_seconds: int = Field(default=1_209_600, ge=1)
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    password_hash_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1),
        ge=1,
        description="bcrypt runs in at most this many threads, so a login storm leaves a core for the event loop",
    )

    rate_limit_enabled: bool = True
    rate_limit_default: str = "120/minute"
    rate_limit_auth: str = "10/minute"
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1)

    idempotency_ttl_seconds: int = Field(default=86_400, ge=1)
    cleanup_interval_seconds: int = Field(default=3_600, ge=1)
    # Bounded so that created_at + TTL stays a representable date.
    order_payment_ttl_seconds: int = Field(
        default=1_800, ge=0, le=31_536_000, description="pending orders are cancelled after this; 0: never"
    )
    order_expiry_check_seconds: float = Field(
        default=10.0, gt=0, le=86_400, description="how late at most an expired order is cancelled"
    )

    admin_username: str | None = None
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    smtp_starttls: bool = True
    mail_from: str = Field(default="shop@localhost", min_length=3, max_length=320)
    password_reset_url: str = f"http://localhost:8000/reset-password?token={TOKEN_PLACEHOLDER}"
    password_reset_ttl_seconds: int = Field(default=3_600, ge=1)
    email_verification_url: str = f"http://localhost:8000/verify-email?token={TOKEN_PLACEHOLDER}"
    email_verification_ttl_seconds: int = Field(default=86_400, ge=1)
    require_verified_email: bool = False

    event_source: str = Field(
        default=DEFAULT_EVENT_SOURCE, min_length=1, max_length=255, description="CloudEvents `source`"
    )
    event_retention_days: int = Field(default=30, ge=1)
    nats_url: str | None = None
    nats_stream: str = Field(default="shop-events", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject_prefix: str = Field(default="shop", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length=64)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator(
        "redis_url",
        "secret_key",
        "secret_key_file",
        "admin_username",
        "admin_email",
        "smtp_host",
        "smtp_username",
        "smtp_password",
        "smtp_password_file",
        "nats_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `REDIS_URL=` in a .env file or compose file means "not configured", not "an empty URL".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_username")
    @classmethod
    def _check_admin_username(cls, value: str | None) -> str | None:
        # The same rule as registration, so the first admin can sign in like everyone else.
        if value is not None and re.fullmatch(USERNAME_PATTERN, value) is None:
            raise ValueError("ADMIN_USERNAME must be 3-32 characters of A-Z a-z 0-9 _ . -")
        return value

    @field_validator("admin_password")
    @classmethod
    def _check_admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not password_size_ok(value.get_secret_value()):
            raise ValueError(PASSWORD_RULE)
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_trusted_proxies(cls, value: object) -> object:
        parts = _split_csv(value)
        if isinstance(parts, list):
            return [ipaddress.ip_network(part, strict=False) if isinstance(part, str) else part for part in parts]
        return parts

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_cors_origins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("rate_limit_default", "rate_limit_auth")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        limits = parse_many(value)
        # Only the first of several limits would be enforced, and a zero limit refuses every request.
        if len(limits) != 1 or limits[0].amount < 1:
            raise ValueError(f"{value!r} is not one rate limit of at least 1 request, such as '10/minute'")
        return value

    @field_validator("password_reset_url", "email_verification_url")
    @classmethod
    def _check_link_template(cls, value: str) -> str:
        # A link without the token would send mails that nobody can act on.
        if TOKEN_PLACEHOLDER not in value:
            raise ValueError(f"the URL must contain {TOKEN_PLACEHOLDER}, which each mail replaces with its token")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _resolve_secret_key(self) -> Settings:
        if self.secret_key is None and self.secret_key_file is not None:
            self.secret_key = SecretStr(self.secret_key_file.read_text(encoding="utf-8").strip())
        if self.secret_key is not None:
            if self.environment == "production" and len(self.secret_key.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes in production")
            return self
        if self.environment == "production":
            raise ValueError("SECRET_KEY or SECRET_KEY_FILE is required in production")
        if self.environment == "test":
            # Tests must not share or leave behind a key file; each process gets its own.
            self.secret_key = SecretStr(secrets.token_urlsafe(48))
        else:
            self.secret_key = SecretStr(_development_secret(DEVELOPMENT_SECRET_FILE))
        return self

    @model_validator(mode="after")
    def _resolve_smtp_password(self) -> Settings:
        if self.smtp_password is None and self.smtp_password_file is not None:
            self.smtp_password = SecretStr(self.smtp_password_file.read_text(encoding="utf-8").strip())
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def jwt_secret(self) -> str:
        if self.secret_key is None:
            raise RuntimeError("settings were built without a secret key")
        return self.secret_key.get_secret_value()


def _development_secret(path: Path) -> str:
    """Generate the development key once and keep it, readable by its owner only, so tokens survive restarts."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key)
    try:
        # A hard link appears whole or not at all, so a process starting beside us never reads half a key.
        os.link(draft, path)
    except FileExistsError:
        key = path.read_text(encoding="utf-8").strip()
    else:
        logger.info("generated a development secret key in %s", path)
    finally:
        draft.unlink()
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
