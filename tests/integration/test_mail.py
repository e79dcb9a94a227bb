"""infrastructure/mail.py against real SMTP servers: after the response, over STARTTLS with credentials, and what
happens without a server: printed in development, 503 in production, logged and counted when a send fails."""

import asyncio
import logging
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from infrastructure import mail as mail_module
from tests.helpers import PASSWORD, assert_problem, bearer, login, mail_sent, register, signed_in
from tests.prometheus_text import sample_value
from tests.smtp_server import LINK, SmtpServer, smtp_server

RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
SMTP_USER = "shop-mailer"
SMTP_SECRET = "smtp-secret-for-the-test"
# Nothing listens on port 1: connections to it are refused at once.
NO_SERVER = {"smtp_host": "127.0.0.1", "smtp_port": 1, "smtp_starttls": False}


@pytest.fixture
def backend(sqlite_backend):
    """Mail does not depend on the database; one backend is enough (the account tests run on both)."""
    return sqlite_backend


async def failures(client: Any, kind: str) -> float:
    return sample_value((await client.get("/metrics")).text, "shop_mail_failures_total", kind=kind)


async def asyncio_wait(event: threading.Event) -> bool:
    """Wait for the event without blocking the event loop (the deadline is for a stuck test, not a speed check)."""
    return await asyncio.to_thread(event.wait, 30)


def capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    # create_app replaced the root logger's handlers, pytest's capture among them.
    logging.getLogger().addHandler(caplog.handler)


async def test_a_stalled_mail_server_holds_up_no_request(app_client, smtp: SmtpServer):
    async with app_client(**smtp.settings) as client:
        smtp.inbox.held.clear()
        user = await register(client)
        # The registration's mail is now inside the server, which does not answer.
        assert await asyncio_wait(smtp.inbox.holding)

        answers = [(await client.post(RESET, json={"email": user["email"]})).status_code for _ in range(3)]
        pair = await login(client, user["username"])

        assert answers == [202, 202, 202]
        assert smtp.inbox.received == []
        smtp.inbox.held.set()
        await mail_sent(client)
        # Two workers were each held with a mail: which of them the server answers first is not promised.
        subjects = sorted(mail.subject for mail in smtp.inbox.to(user["email"]))
        assert subjects == ["Confirm your e-mail address"] + ["Reset your shop password"] * 3
        assert (await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))).status_code == 200


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603 - a fixed command, no shell
        [  # noqa: S607 - openssl from PATH
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


async def test_starttls_comes_before_the_credentials_and_the_mail(app_client, tmp_path, monkeypatch):
    certificate, key = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate, key)
    # The client trusts the test's certificate the way it trusts any: through OpenSSL's default store.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    logins: list[tuple[bytes, bytes, bool]] = []

    def authenticator(_server: Any, session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password, session.ssl is not None))
        return AuthResult(success=(data.login, data.password) == (SMTP_USER.encode(), SMTP_SECRET.encode()))

    password_file = tmp_path / "smtp_password"
    password_file.write_text(f"{SMTP_SECRET}\n", encoding="utf-8")
    tls = {"tls_context": server_tls, "require_starttls": True, "auth_required": True, "authenticator": authenticator}
    with smtp_server(**tls) as server:
        settings = {
            **server.settings,
            "smtp_starttls": True,
            "smtp_username": SMTP_USER,
            "smtp_password_file": password_file,
            "mail_from": "orders@shop.example",
        }
        async with app_client(**settings) as client:
            user = await register(client)
            await mail_sent(client)

    (mail,) = server.inbox.to(user["email"])
    assert mail.sender == "orders@shop.example"
    assert str(mail.message["From"]) == "orders@shop.example"
    # Credentials went over TLS only, and were the ones the file holds.
    assert logins == [(SMTP_USER.encode(), SMTP_SECRET.encode(), True)]


async def test_without_starttls_from_the_server_nothing_is_sent_in_the_clear(app_client, smtp, caplog):
    async with app_client(**{**smtp.settings, "smtp_starttls": True}) as client:
        capture_logs(caplog)
        before = await failures(client, "email_verification")
        await register(client)
        await mail_sent(client)

        assert await failures(client, "email_verification") == before + 1
    assert smtp.inbox.received == []
    assert any("STARTTLS" in record.getMessage() for record in caplog.records if record.name == mail_module.__name__)


@pytest.mark.parametrize("server", ["refusing", "absent"])
async def test_a_failed_send_is_logged_without_the_link_and_counted(app_client, smtp, caplog, server):
    async with app_client(**(smtp.settings if server == "refusing" else NO_SERVER)) as client:
        smtp.inbox.refuse = True
        user = await register(client)
        await mail_sent(client)
        capture_logs(caplog)
        before = await failures(client, "password_reset")

        response = await client.post(RESET, json={"email": user["email"]})
        await mail_sent(client)

        assert response.status_code == 202
        assert await failures(client, "password_reset") == before + 1
    warnings = [record for record in caplog.records if record.name == mail_module.__name__]
    assert [record.levelname for record in warnings] == ["WARNING"]
    assert "password_reset" in warnings[0].getMessage()
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert "reset-password?token=" not in text
        assert not LINK.search(text.replace("http://shop.test", "")), record.getMessage()
    assert smtp.inbox.received == []


async def test_a_full_queue_drops_the_mail_and_counts_it(app_client, smtp, monkeypatch):
    monkeypatch.setattr(mail_module, "WORKERS", 1)
    monkeypatch.setattr(mail_module, "QUEUE_CAPACITY", 1)
    async with app_client(**smtp.settings) as client:
        smtp.inbox.held.clear()
        user = await register(client)
        assert await asyncio_wait(smtp.inbox.holding)  # the one worker is busy with the registration's mail
        before = await failures(client, "password_reset")

        answers = [(await client.post(RESET, json={"email": user["email"]})).status_code for _ in range(2)]

        assert answers == [202, 202]
        assert await failures(client, "password_reset") == before + 1
        smtp.inbox.held.set()
        await mail_sent(client)
    assert [mail.subject for mail in smtp.inbox.to(user["email"])] == [
        "Confirm your e-mail address",
        "Reset your shop password",
    ]


async def test_development_without_a_mail_server_prints_each_mail(app_client, capsys):
    async with app_client(environment="development") as client:
        user = await register(client)
        assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
        await mail_sent(client)
        printed = capsys.readouterr().out
        links = LINK.findall(printed)

        assert len(links) == 2
        assert links[0].startswith("http://localhost:8000/verify-email?token=")
        assert links[1].startswith("http://localhost:8000/reset-password?token=")
        assert f"To: {user['email']}" in printed
        token = links[1].partition("token=")[2]
        assert (await client.post(CONFIRM, json={"token": token, "new_password": "printed-pass-1"})).status_code == 204
        assert (await login(client, user["username"], "printed-pass-1"))["access_token"]


async def test_production_without_a_mail_server_answers_mail_requests_503(app_client, capsys):
    async with app_client(environment="production") as client:
        headers, user = await signed_in(client)

        assert_problem(await client.post(RESET, json={"email": user["email"]}), 503, "mail_unavailable")
        assert_problem(
            await client.post("/api/v1/users/me/verification-email", headers=headers), 503, "mail_unavailable"
        )
        # Everything else works as usual, unverified.
        assert (await client.get("/api/v1/users/me", headers=headers)).json()["email_verified"] is False
        assert client.app.state.mailer is None
    assert "token=" not in capsys.readouterr().out


async def test_the_links_follow_the_configured_templates(app_client, smtp):
    templates = {
        "password_reset_url": "https://shop.example/#/reset/{token}",
        "email_verification_url": "https://shop.example/verify?t={token}&from=mail",
    }
    async with app_client(**smtp.settings, **templates) as client:
        user = await register(client)
        assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
        await mail_sent(client)
        # Two workers send, so the two mails may arrive in either order.
        mails = {mail.subject: mail for mail in smtp.inbox.to(user["email"])}
        verification, reset = mails["Confirm your e-mail address"], mails["Reset your shop password"]

        assert verification.link.startswith("https://shop.example/verify?t=")
        assert verification.link.endswith("&from=mail")
        assert reset.link.startswith("https://shop.example/#/reset/")
        token = reset.link.rpartition("/")[2]
        assert (await client.post(CONFIRM, json={"token": token, "new_password": PASSWORD + "x"})).status_code == 204
        # Both parts carry the link: the plain text for every client, the HTML for those that show it.
        html = verification.message.get_body(preferencelist=("html",)).get_content()
        assert verification.link.replace("&", "&amp;") in html
