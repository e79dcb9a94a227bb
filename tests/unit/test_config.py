"""Settings: the secret key rules per environment, list parsing, and refusal of unusable values."""

import ipaddress
import stat

import pytest
from pydantic import ValidationError

from config import DEVELOPMENT_SECRET_FILE, MIN_SECRET_BYTES, Settings

STRONG_KEY = "k" * MIN_SECRET_BYTES


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """No setting from the environment or a .env file of the developer; relative paths land in tmp_path."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("secret_key", [None, ""])
def test_production_refuses_to_start_without_a_key(secret_key):
    with pytest.raises(ValidationError, match="SECRET_KEY or SECRET_KEY_FILE is required in production"):
        Settings(environment="production", secret_key=secret_key)


@pytest.mark.parametrize(
    "secret_key",
    [
        "k" * (MIN_SECRET_BYTES - 1),
        "é" * 15,  # 30 bytes
        "short",
    ],
)
def test_production_refuses_a_short_key(secret_key):
    with pytest.raises(ValidationError, match=f"SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes"):
        Settings(environment="production", secret_key=secret_key)


@pytest.mark.parametrize("secret_key", [STRONG_KEY, "é" * 16])  # 32 bytes though only 16 characters
def test_production_accepts_a_key_of_32_bytes(secret_key):
    assert Settings(environment="production", secret_key=secret_key).jwt_secret == secret_key


def test_production_reads_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    assert Settings().jwt_secret == STRONG_KEY


def test_secret_key_file_is_honoured(tmp_path, monkeypatch):
    key_file = tmp_path / "jwt.key"
    key_file.write_text(f"{STRONG_KEY}\n", encoding="utf-8")  # editors and `echo` add a newline
    monkeypatch.setenv("SECRET_KEY_FILE", str(key_file))
    assert Settings(environment="production").jwt_secret == STRONG_KEY


def test_secret_key_file_with_a_short_key_is_refused_in_production(tmp_path):
    key_file = tmp_path / "jwt.key"
    key_file.write_text("too-short", encoding="utf-8")
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(environment="production", secret_key_file=key_file)


def test_missing_secret_key_file_is_refused(tmp_path):
    with pytest.raises((OSError, ValidationError), match=r"missing\.key"):
        Settings(environment="production", secret_key_file=tmp_path / "missing.key")


def test_development_key_is_generated_once_owner_only_and_reused(tmp_path):
    first = Settings(environment="development")
    key_file = tmp_path / DEVELOPMENT_SECRET_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text(encoding="utf-8") == first.jwt_secret
    assert len(first.jwt_secret.encode()) >= MIN_SECRET_BYTES
    # A restart keeps the key, so tokens issued before it stay valid.
    assert Settings(environment="development").jwt_secret == first.jwt_secret
    assert [path.name for path in key_file.parent.iterdir()] == [key_file.name]  # no draft left behind


def test_development_uses_an_existing_key_file(tmp_path):
    key_file = tmp_path / DEVELOPMENT_SECRET_FILE
    key_file.parent.mkdir()
    key_file.write_text(f"{STRONG_KEY}\n", encoding="utf-8")
    assert Settings(environment="development").jwt_secret == STRONG_KEY


def test_an_explicit_key_writes_no_file_in_development(tmp_path):
    assert Settings(environment="development", secret_key=STRONG_KEY).jwt_secret == STRONG_KEY
    assert not (tmp_path / DEVELOPMENT_SECRET_FILE).exists()


def test_test_environment_gets_a_fresh_key_and_writes_no_file(tmp_path):
    first, second = Settings(environment="test"), Settings(environment="test")
    assert len(first.jwt_secret.encode()) >= MIN_SECRET_BYTES
    assert first.jwt_secret != second.jwt_secret
    assert list(tmp_path.iterdir()) == []


def test_trusted_proxies_are_a_comma_separated_list_of_ips_and_networks(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.1, 192.168.0.0/16 ,, ::1 ")
    assert Settings().trusted_proxies == [
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
    ]


def test_cors_origins_are_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://shop.example, http://localhost:3000")
    assert Settings().cors_origins == ["https://shop.example", "http://localhost:3000"]


@pytest.mark.parametrize("variable", ["TRUSTED_PROXIES", "CORS_ORIGINS"])
def test_empty_lists_by_default_and_when_blank(monkeypatch, variable):
    assert getattr(Settings(), variable.lower()) == []
    monkeypatch.setenv(variable, "")
    assert getattr(Settings(), variable.lower()) == []


@pytest.mark.parametrize("proxies", ["not-an-ip", "10.0.0.1,300.0.0.1", "10.0.0.0/33"])
def test_invalid_trusted_proxies_are_refused(monkeypatch, proxies):
    monkeypatch.setenv("TRUSTED_PROXIES", proxies)
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings()


@pytest.mark.parametrize("field", ["rate_limit_default", "rate_limit_auth"])
@pytest.mark.parametrize(
    "limit", ["", "lots", "ten/minute", "10/fortnight", "-1/minute", "0/minute", "10/minute;100/hour"]
)
def test_invalid_rate_limits_are_refused(field, limit):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: limit})


@pytest.mark.parametrize("limit", ["5/minute", "100/hour", "10 per second", "1000/day"])
def test_valid_rate_limits_are_accepted(monkeypatch, limit):
    monkeypatch.setenv("RATE_LIMIT_AUTH", limit)
    assert Settings(rate_limit_default=limit).rate_limit_auth == limit


@pytest.mark.parametrize("algorithm", ["none", "RS256", "hs256"])
def test_only_hmac_algorithms_can_be_configured(algorithm):
    with pytest.raises(ValidationError, match="jwt_algorithm"):
        Settings(jwt_algorithm=algorithm)


@pytest.mark.parametrize("username", ["ab", "has space", "x" * 33, "ünï"])
def test_admin_username_follows_the_registration_rule(username):
    with pytest.raises(ValidationError, match="ADMIN_USERNAME"):
        Settings(environment="test", admin_username=username)


def test_order_expiry_defaults_follow_the_contract(monkeypatch):
    settings = Settings(environment="test")
    assert (settings.order_payment_ttl_seconds, settings.order_expiry_check_seconds) == (1800, 10)
    monkeypatch.setenv("ORDER_PAYMENT_TTL_SECONDS", "0")
    monkeypatch.setenv("ORDER_EXPIRY_CHECK_SECONDS", "0.5")
    settings = Settings(environment="test")
    assert (settings.order_payment_ttl_seconds, settings.order_expiry_check_seconds) == (0, 0.5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_payment_ttl_seconds", -1),
        # created_at + TTL must stay a date Python can hold.
        ("order_payment_ttl_seconds", 10**12),
        ("order_expiry_check_seconds", 0),
        ("order_expiry_check_seconds", -1),
    ],
)
def test_unusable_order_expiry_settings_are_refused(field, value):
    with pytest.raises(ValidationError):
        Settings(environment="test", **{field: value})


def test_mail_defaults_are_the_contracts():
    settings = Settings(environment="test")
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (None, 587, True)
    assert settings.mail_from == "shop@localhost"
    assert settings.password_reset_url == "http://localhost:8000/reset-password?token={token}"
    assert settings.email_verification_url == "http://localhost:8000/verify-email?token={token}"
    assert (settings.password_reset_ttl_seconds, settings.email_verification_ttl_seconds) == (3600, 86400)
    assert settings.require_verified_email is False


@pytest.mark.parametrize("name", ["PASSWORD_RESET_URL", "EMAIL_VERIFICATION_URL"])
def test_a_link_template_without_the_token_is_refused(monkeypatch, name):
    monkeypatch.setenv(name, "https://shop.example/reset")
    with pytest.raises(ValidationError, match=r"\{token\}"):
        Settings(environment="test")


def test_smtp_password_file_is_honoured_and_blank_smtp_values_are_unset(tmp_path, monkeypatch):
    password_file = tmp_path / "smtp.secret"
    password_file.write_text("mail-secret\n", encoding="utf-8")
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(password_file))
    monkeypatch.setenv("SMTP_HOST", " ")
    monkeypatch.setenv("SMTP_USERNAME", "")
    settings = Settings(environment="test")
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "mail-secret"
    assert (settings.smtp_host, settings.smtp_username) == (None, None)
    assert "mail-secret" not in repr(settings)
