"""The account lifecycle through the API, with its mails caught by a real SMTP server and their links followed.

Ending sessions (password change and reset, signing out everywhere, erasure), e-mail verification, the profile,
admin-made accounts, and REQUIRE_VERIFIED_EMAIL; on each backend.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, update

from auth.roles import Role
from auth.security import hash_account_token
from database.repositories import tokens as tokens_repo
from database.repositories import users as users_repo
from models import AccountToken, Order, RefreshTokenFamily, TokenPurpose, User
from services import maintenance
from services.account_mail import VERIFICATION_MAILS_PER_WINDOW
from tests.helpers import (
    PASSWORD,
    assert_problem,
    bearer,
    create_product,
    login,
    mail_sent,
    place_order,
    register,
    signed_in,
    unique,
    write_first,
)
from tests.smtp_server import Received, SmtpServer

API = "/api/v1"
ME = f"{API}/users/me"
REFRESH = f"{API}/auth/refresh"
RESET = f"{API}/auth/password-reset"
CONFIRM = f"{API}/auth/password-reset/confirm"
VERIFY = f"{API}/auth/verify-email"
NEW_PASSWORD = "a-new-password-99"


@pytest.fixture
async def client(app_client, smtp: SmtpServer) -> Any:
    async with app_client(**smtp.settings) as opened:
        yield opened


async def mails_to(client: AsyncClient, smtp: SmtpServer, address: str) -> list[Received]:
    await mail_sent(client)
    return smtp.inbox.to(address)


async def last_token(client: AsyncClient, smtp: SmtpServer, address: str) -> str:
    return (await mails_to(client, smtp, address))[-1].token


async def me(client: AsyncClient, access_token: str) -> Any:
    return await client.get(ME, headers=bearer(access_token))


async def refresh(client: AsyncClient, refresh_token: str) -> Any:
    return await client.post(REFRESH, json={"refresh_token": refresh_token})


async def assert_pair_refused(client: AsyncClient, pair: dict[str, Any], case: str = "") -> None:
    """Neither half of a token pair works any more."""
    assert_problem(await me(client, pair["access_token"]), 401)
    assert_problem(await refresh(client, pair["refresh_token"]), 401)


async def assert_pair_works(client: AsyncClient, pair: dict[str, Any]) -> dict[str, Any]:
    """Both halves of a pair work; returns the pair its refresh token rotated into."""
    assert (await me(client, pair["access_token"])).status_code == 200
    rotated = await refresh(client, pair["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert (await me(client, rotated.json()["access_token"])).status_code == 200
    return rotated.json()


async def stored(client: AsyncClient, user_id: int) -> User:
    async with client.app.state.database.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def expire_account_tokens(client: AsyncClient) -> None:
    async with client.app.state.database.sessionmaker() as session:
        await session.execute(update(AccountToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()


# E-mail verification


async def test_registration_mails_a_link_that_verifies_the_address_once(client, smtp):
    user = await register(client)
    (mail,) = await mails_to(client, smtp, user["email"])

    assert mail.subject == "Confirm your e-mail address"
    assert mail.sender == "shop@localhost"
    assert mail.link.startswith("http://localhost:8000/verify-email?token=")
    assert len(mail.token) >= 43  # 32 random bytes, URL-safe
    async with client.app.state.database.sessionmaker() as session:
        rows = (await session.scalars(select(AccountToken))).all()
    # Only the token's SHA-256 is kept, bound to the address it went to.
    assert [(row.token_hash, row.email, row.purpose) for row in rows] == [
        (hash_account_token(mail.token), user["email"], TokenPurpose.VERIFY_EMAIL)
    ]
    tokens = await login(client, user["username"])
    assert (await me(client, tokens["access_token"])).json()["email_verified"] is False

    assert (await client.post(VERIFY, json={"token": mail.token})).status_code == 204

    assert (await me(client, tokens["access_token"])).json()["email_verified"] is True
    assert_problem(await client.post(VERIFY, json={"token": mail.token}), 400, "invalid_verification_token")


async def test_anything_but_a_live_verification_token_is_400(client, smtp):
    user = await register(client)
    verification = await last_token(client, smtp, user["email"])
    assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
    reset = await last_token(client, smtp, user["email"])
    for case, token in [
        ("empty", ""),
        ("short", "x"),
        ("long", "x" * 100_000),
        ("well-formed but never issued", "A" * 43),
        ("a reset token", reset),
        ("with a NUL", verification + "\x00"),
        ("one character off", verification[:-1] + ("A" if verification[-1] != "A" else "B")),
    ]:
        response = await client.post(VERIFY, json={"token": token})
        assert_problem(response, 400, "invalid_verification_token")
        assert (await stored(client, user["id"])).email_verified is False, case
    for body in [{}, {"token": None}, {"token": 1}, {"token": verification, "email": user["email"]}]:
        assert_problem(await client.post(VERIFY, json=body), 422)

    await expire_account_tokens(client)
    assert_problem(await client.post(VERIFY, json={"token": verification}), 400, "invalid_verification_token")
    assert (await stored(client, user["id"])).email_verified is False


async def test_a_changed_address_is_unverified_and_voids_the_old_addresses_token(client, smtp):
    user = await register(client)
    first = await last_token(client, smtp, user["email"])
    headers = bearer((await login(client, user["username"]))["access_token"])
    new_address = f"{unique('moved')}@example.com"

    changed = await client.patch(ME, json={"email": new_address}, headers=headers)

    assert changed.status_code == 200, changed.text
    assert (changed.json()["email"], changed.json()["email_verified"]) == (new_address, False)
    # The link mailed to the old address proves nothing about the new one.
    assert_problem(await client.post(VERIFY, json={"token": first}), 400, "invalid_verification_token")
    (mail,) = await mails_to(client, smtp, new_address)
    assert (await client.post(VERIFY, json={"token": mail.token})).status_code == 204
    assert (await client.get(ME, headers=headers)).json()["email_verified"] is True

    # A verified address changed again is unverified again; a change of case only is the same address.
    local, domain = new_address.split("@")
    recased = f"{local.upper()}@{domain}"
    same = await client.patch(ME, json={"email": recased}, headers=headers)
    assert (same.json()["email"], same.json()["email_verified"]) == (recased, True)
    assert await mails_to(client, smtp, recased) == []
    again = await client.patch(ME, json={"email": f"{unique('again')}@example.com"}, headers=headers)
    assert again.json()["email_verified"] is False


async def test_a_fresh_verification_mail_on_request_until_verified(client, smtp):
    headers, user = await signed_in(client, Role.GUEST)
    response = await client.post(f"{ME}/verification-email", headers=headers)

    assert response.status_code == 202
    assert set(response.json()) == {"detail"}
    first, second = await mails_to(client, smtp, user["email"])
    assert first.token != second.token
    assert (await client.post(VERIFY, json={"token": second.token})).status_code == 204
    assert_problem(await client.post(f"{ME}/verification-email", headers=headers), 409, "already_verified")
    assert len(await mails_to(client, smtp, user["email"])) == 2


async def test_verification_mails_are_capped_per_account_and_hour(client, smtp):
    headers, user = await signed_in(client, Role.GUEST)  # its registration sent the first of them
    for _ in range(VERIFICATION_MAILS_PER_WINDOW - 1):
        assert (await client.post(f"{ME}/verification-email", headers=headers)).status_code == 202

    refused = await client.post(f"{ME}/verification-email", headers=headers)

    assert_problem(refused, 429, "too_many_mails")
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    # A new address is taken, but over the cap it is not mailed: no inbox can be flooded by changing addresses.
    readdressed = f"{unique('capped')}@example.com"
    assert (await client.patch(ME, json={"email": readdressed}, headers=headers)).json()["email"] == readdressed
    assert len(await mails_to(client, smtp, user["email"])) == VERIFICATION_MAILS_PER_WINDOW
    assert await mails_to(client, smtp, readdressed) == []


@pytest.mark.parametrize("required", [True, False], ids=["required", "not-required"])
async def test_require_verified_email_holds_orders_until_the_address_is_verified(app_client, smtp, required):
    async with app_client(**smtp.settings, require_verified_email=required) as client:
        admin, _ = await signed_in(client, Role.ADMIN)
        product = await create_product(client, admin, stock=5)
        headers, user = await signed_in(client)

        unverified = await place_order(client, headers, [(product["id"], 1)])
        if not required:
            assert unverified.status_code == 201
            return
        assert_problem(unverified, 403, "email_not_verified")
        assert_problem(await place_order(client, headers, [(product["id"], 0)]), 403, "email_not_verified")
        token = await last_token(client, smtp, user["email"])
        assert (await client.post(VERIFY, json={"token": token})).status_code == 204
        assert (await place_order(client, headers, [(product["id"], 1)])).status_code == 201


# Password reset


def without_request_id(headers: Any) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() != "x-request-id"}


async def test_a_reset_request_answers_alike_whoever_the_address_belongs_to(client, smtp):
    known = await register(client)
    disabled = await register(client)
    async with client.app.state.database.sessionmaker() as session:
        await session.execute(update(User).where(User.id == disabled["id"]).values(is_active=False))
        await session.commit()
    await mail_sent(client)
    before = len(smtp.inbox.received)

    responses = [
        await client.post(RESET, json={"email": address})
        for address in (known["email"], known["email"].upper(), "nobody@example.com", disabled["email"])
    ]

    assert {response.status_code for response in responses} == {202}
    assert len({response.content for response in responses}) == 1
    assert len({tuple(sorted(without_request_id(response.headers).items())) for response in responses}) == 1
    await mail_sent(client)
    # Mail went only to the active account (asked for twice), at the address on file.
    assert [mail.recipients for mail in smtp.inbox.received[before:]] == [[known["email"]], [known["email"]]]
    assert {mail.subject for mail in smtp.inbox.received[before:]} == {"Reset your shop password"}


async def test_a_reset_ends_every_session_and_voids_the_other_reset_tokens(client, smtp):
    user = await register(client)
    sessions = [await login(client, user["username"]) for _ in range(2)]
    for _ in range(2):
        assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
    # The registration's verification mail may arrive after them: two workers send.
    older, newer = [mail for mail in await mails_to(client, smtp, user["email"]) if "reset" in mail.subject.lower()]
    assert older.link.startswith("http://localhost:8000/reset-password?token=")

    # A new password that breaks the rules changes nothing and leaves the token live.
    assert_problem(await client.post(CONFIRM, json={"token": newer.token, "new_password": "short"}), 422)
    confirmed = await client.post(CONFIRM, json={"token": newer.token, "new_password": NEW_PASSWORD})

    assert confirmed.status_code == 204
    assert confirmed.content == b""
    for pair in sessions:
        await assert_pair_refused(client, pair)
    for token in (newer.token, older.token):
        response = await client.post(CONFIRM, json={"token": token, "new_password": "yet-another-pass"})
        assert_problem(response, 400, "invalid_reset_token")
    assert_problem(
        await client.post(f"{API}/auth/login", json={"username": user["username"], "password": PASSWORD}), 401
    )
    await assert_pair_works(client, await login(client, user["username"], NEW_PASSWORD))


async def test_anything_but_a_live_reset_token_is_400_and_changes_nothing(client, smtp):
    user = await register(client)
    verification = await last_token(client, smtp, user["email"])
    assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
    reset = await last_token(client, smtp, user["email"])
    for token in ["", "x", "y" * 100_000, "A" * 43, verification, reset + "="]:
        response = await client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD})
        assert_problem(response, 400, "invalid_reset_token")

    # Mailed to an address the account no longer has: void.
    headers = bearer((await login(client, user["username"]))["access_token"])
    assert (await client.patch(ME, json={"email": f"{unique('gone')}@example.com"}, headers=headers)).status_code == 200
    response = await client.post(CONFIRM, json={"token": reset, "new_password": NEW_PASSWORD})
    assert_problem(response, 400, "invalid_reset_token")
    assert (await client.patch(ME, json={"email": user["email"]}, headers=headers)).status_code == 200

    await expire_account_tokens(client)
    response = await client.post(CONFIRM, json={"token": reset, "new_password": NEW_PASSWORD})
    assert_problem(response, 400, "invalid_reset_token")
    assert (await login(client, user["username"]))["access_token"]


async def test_a_reset_token_is_good_once_even_when_sent_twice_at_once(client, smtp):
    user = await register(client)
    assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
    # The registration's verification mail may arrive after it: two workers send.
    (reset,) = [mail for mail in await mails_to(client, smtp, user["email"]) if "reset" in mail.subject.lower()]
    token = reset.token

    responses = await asyncio.gather(
        client.post(CONFIRM, json={"token": token, "new_password": NEW_PASSWORD}),
        client.post(CONFIRM, json={"token": token, "new_password": "the-other-password"}),
    )

    assert sorted(response.status_code for response in responses) == [204, 400]
    won = NEW_PASSWORD if responses[0].status_code == 204 else "the-other-password"
    assert (await login(client, user["username"], won))["access_token"]


# Password change, signing out everywhere


async def test_a_password_change_ends_every_other_session_and_returns_a_live_pair(client, app_client):
    user = await register(client)
    old_pairs = [await login(client, user["username"]) for _ in range(2)]
    headers = bearer(old_pairs[0]["access_token"])

    wrong = await client.post(
        f"{ME}/password", json={"current_password": "not-the-password", "new_password": NEW_PASSWORD}, headers=headers
    )
    assert_problem(wrong, 403, "invalid_credentials")
    invalid = await client.post(
        f"{ME}/password", json={"current_password": PASSWORD, "new_password": "seven77"}, headers=headers
    )
    assert_problem(invalid, 422)
    assert (await me(client, old_pairs[1]["access_token"])).status_code == 200

    changed = await client.post(
        f"{ME}/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=headers
    )

    assert changed.status_code == 200, changed.text
    pair = changed.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    # Issued within the same second as the change, very likely: it works, and every older token does not.
    await assert_pair_works(client, pair)
    for old in old_pairs:
        await assert_pair_refused(client, old)
    async with app_client() as other_process:
        assert_problem(await me(other_process, old_pairs[1]["access_token"]), 401, "token_revoked")
    await login(client, user["username"], NEW_PASSWORD)
    assert_problem(
        await client.post(f"{API}/auth/login", json={"username": user["username"], "password": PASSWORD}), 401
    )


async def test_signing_out_everywhere_ends_every_token_and_a_new_login_works_at_once(client, app_client):
    headers, user = await signed_in(client, Role.GUEST)
    pairs = [await login(client, user["username"]) for _ in range(2)]
    rotated = await assert_pair_works(client, pairs[1])

    response = await client.delete(f"{ME}/sessions", headers=bearer(pairs[0]["access_token"]))

    assert response.status_code == 204
    # Revoked in the database too, not only outdated: every family of the account, the one still in use included.
    async with client.app.state.database.sessionmaker() as session:
        families = (
            await session.scalars(select(RefreshTokenFamily.revoked_at).where(RefreshTokenFamily.user_id == user["id"]))
        ).all()
    assert len(families) == 3
    assert None not in families
    for pair in (pairs[0], rotated):
        await assert_pair_refused(client, pair)
    assert_problem(await client.get(ME, headers=headers), 401, "token_revoked")
    async with app_client() as other_process:
        assert_problem(await me(other_process, rotated["access_token"]), 401, "token_revoked")
    # In the same second as the sign-out, most likely.
    await assert_pair_works(client, await login(client, user["username"]))


async def test_an_admin_signs_anyone_out_everywhere(client):
    admin, _ = await signed_in(client, Role.ADMIN)
    user = await register(client)
    pair = await login(client, user["username"])
    other_user, _ = await signed_in(client)

    assert_problem(await client.delete(f"{API}/users/{user['id']}/sessions", headers=other_user), 403)
    assert (await me(client, pair["access_token"])).status_code == 200
    response = await client.delete(f"{API}/users/{user['id']}/sessions", headers=admin)

    assert response.status_code == 204
    await assert_pair_refused(client, pair)
    assert (await client.get(ME, headers=admin)).status_code == 200
    assert (await client.get(ME, headers=other_user)).status_code == 200
    assert_problem(await client.delete(f"{API}/users/999999/sessions", headers=admin), 404)
    await assert_pair_works(client, await login(client, user["username"]))


async def test_a_token_from_before_the_generation_claim_lasts_until_the_sessions_next_end(client):
    user = await register(client)
    pair = await login(client, user["username"])
    settings = client.app.state.settings
    claims = jwt.decode(pair["access_token"], settings.jwt_secret, algorithms=[settings.jwt_algorithm])
    legacy = jwt.encode(
        {name: value for name, value in claims.items() if name != "gen"}, settings.jwt_secret, settings.jwt_algorithm
    )

    assert (await me(client, legacy)).status_code == 200
    assert (await client.delete(f"{ME}/sessions", headers=bearer(pair["access_token"]))).status_code == 204
    assert_problem(await me(client, legacy), 401, "token_revoked")


async def test_a_login_that_commits_after_the_sessions_ended_gets_dead_tokens(client, monkeypatch):
    """Login reads the account, checks the password, then starts its family: a sign-out landing in between (the
    bump committed, the family not yet there to revoke) must still end the pair that login hands out."""
    user = await register(client)

    async def sessions_end_meanwhile(session: Any) -> None:
        # Another transaction's write: the login's own copy of the account is left as it read it.
        await session.execute(
            update(User)
            .where(User.id == user["id"])
            .values(session_generation=User.session_generation + 1)
            .execution_options(synchronize_session=False)
        )

    write_first(monkeypatch, tokens_repo, "start_family", sessions_end_meanwhile)
    pair = await login(client, user["username"])
    monkeypatch.undo()

    await assert_pair_refused(client, pair)
    await assert_pair_works(client, await login(client, user["username"]))


@pytest.mark.parametrize(("flow", "lock"), [("change", "lock_users"), ("erase", "lock_user_and_admins")])
async def test_a_password_changed_while_the_old_one_was_checked_refuses_the_request(client, monkeypatch, flow, lock):
    """The password is checked (bcrypt) before the write transaction; one replaced in between proves nothing."""
    headers, user = await signed_in(client)
    concurrent = await client.app.state.auth.hasher.hash("set-meanwhile-1")

    async def changed_meanwhile(session: Any) -> None:
        await session.execute(
            update(User)
            .where(User.id == user["id"])
            .values(hashed_password=concurrent)
            .execution_options(synchronize_session=False)
        )

    write_first(monkeypatch, users_repo, lock, changed_meanwhile)
    if flow == "change":
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        response = await client.post(f"{ME}/password", json=body, headers=headers)
    else:
        response = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=headers)
    monkeypatch.undo()

    assert_problem(response, 403, "invalid_credentials")
    # Nothing of the refused request happened: the account is there and its sessions live. (The stand-in for the
    # other request wrote inside the refused transaction, so it went back with it: the old password holds.)
    assert (await client.get(ME, headers=headers)).status_code == 200
    assert (await login(client, user["username"]))["access_token"]


# Erasure


async def test_erasure_frees_the_name_and_address_and_keeps_the_orders(client, smtp):
    admin, _ = await signed_in(client, Role.ADMIN)
    product = await create_product(client, admin, stock=5)
    headers, user = await signed_in(client)
    pair = await login(client, user["username"])
    order = (await place_order(client, headers, [(product["id"], 2)])).json()

    wrong = await client.request("DELETE", ME, json={"password": "not-the-password"}, headers=headers)
    assert_problem(wrong, 403, "invalid_credentials")
    assert_problem(await client.request("DELETE", ME, headers=headers), 422)
    assert (await client.get(ME, headers=headers)).status_code == 200

    erased = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=headers)

    assert erased.status_code == 204
    await assert_pair_refused(client, pair)
    assert_problem(await client.get(ME, headers=headers), 401)
    for name in (user["username"], user["email"]):
        response = await client.post(f"{API}/auth/login", json={"username": name, "password": PASSWORD})
        assert_problem(response, 401, "invalid_credentials")
    assert_problem(await client.get(f"{API}/users/{user['id']}", headers=admin), 404)
    assert_problem(await client.patch(f"{API}/users/{user['id']}", json={"role": "guest"}, headers=admin), 404)
    assert_problem(await client.delete(f"{API}/users/{user['id']}/sessions", headers=admin), 404)
    listed = (await client.get(f"{API}/users", headers=admin)).json()
    assert user["id"] not in {each["id"] for each in listed["items"]}
    assert listed["total"] == 1
    walked = (await client.get(f"{API}/users", params={"cursor": ""}, headers=admin)).json()
    assert [each["id"] for each in walked["items"]] == [each["id"] for each in listed["items"]]
    kept = await client.get(f"{API}/orders/{order['id']}", headers=admin)
    assert (kept.status_code, kept.json()["user_id"], kept.json()["total"]) == (200, user["id"], order["total"])
    # Nothing personal is left in the row, and nothing can be mailed to the address any more.
    row = await stored(client, user["id"])
    assert user["username"] not in (row.username, row.email)
    assert user["email"] not in (row.username, row.email)
    assert (row.hashed_password, row.is_active, row.deleted_at is not None) == ("", False, True)
    async with client.app.state.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).where(AccountToken.user_id == user["id"])) == 0
        assert await session.scalar(select(func.count()).where(Order.user_id == user["id"])) == 1
    assert (await client.post(RESET, json={"email": user["email"]})).status_code == 202
    assert len(await mails_to(client, smtp, user["email"])) == 1  # the registration's, nothing since

    again = await register(client, username=user["username"])
    assert (again["email"], again["id"] != user["id"]) == (user["email"], True)


async def test_the_only_active_admin_cannot_erase_their_account(client):
    headers, _ = await signed_in(client, Role.ADMIN)
    refused = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=headers)
    assert_problem(refused, 409, "last_admin")
    assert (await client.get(ME, headers=headers)).status_code == 200

    await signed_in(client, Role.ADMIN)
    assert (await client.request("DELETE", ME, json={"password": PASSWORD}, headers=headers)).status_code == 204


# The profile, and accounts made by admins


async def test_a_profile_change_follows_registrations_rules(client, smtp):
    taken = await register(client)
    headers, user = await signed_in(client)
    new_name = unique("renamed")

    renamed = await client.patch(ME, json={"username": new_name}, headers=headers)

    assert renamed.status_code == 200
    assert renamed.json() == {**user, "username": new_name}
    assert (await login(client, new_name))["access_token"]
    assert_problem(
        await client.post(f"{API}/auth/login", json={"username": user["username"], "password": PASSWORD}), 401
    )
    for body, code in [
        ({"username": taken["username"].upper()}, "username_taken"),
        ({"email": taken["email"].upper()}, "email_taken"),
        ({"username": new_name.upper(), "email": taken["email"]}, "email_taken"),
    ]:
        assert_problem(await client.patch(ME, json=body, headers=headers), 409, code)
    for body in [
        {"username": "ab"},
        {"username": "with space"},
        {"username": None},
        {"email": "not-an-address"},
        {"email": None},
        {"role": "admin"},
        {"is_active": False},
        {"email_verified": True},
        {"password": NEW_PASSWORD},
        {"id": 1},
    ]:
        response = await client.patch(ME, json=body, headers=headers)
        assert_problem(response, 422)
        assert response.json()["errors"][0]["loc"][0] == "body", body
    unchanged = await client.patch(ME, json={}, headers=headers)
    assert unchanged.json() == {**user, "username": new_name}
    assert (await stored(client, user["id"])).role == "user"


async def test_an_admin_makes_accounts_that_count_as_verified(client, smtp):
    admin, _ = await signed_in(client, Role.ADMIN)
    await mail_sent(client)
    before = len(smtp.inbox.received)
    body = {"username": unique("made"), "email": f"{unique('made')}@example.com", "password": PASSWORD}

    made = await client.post(f"{API}/users", json=body, headers=admin)

    assert made.status_code == 201, made.text
    user = made.json()
    assert made.headers["Location"] == f"{API}/users/{user['id']}"
    assert (user["role"], user["email_verified"], user["is_active"]) == ("user", True, True)
    assert (await client.get(made.headers["Location"], headers=admin)).json() == user
    tokens = await login(client, body["username"])
    assert (await me(client, tokens["access_token"])).json() == user
    promoted = {"username": unique("boss"), "email": f"{unique('boss')}@example.com", "password": PASSWORD}
    made_admin = await client.post(f"{API}/users", json={**promoted, "role": "admin"}, headers=admin)
    assert made_admin.json()["role"] == "admin"
    for duplicate, code in [
        ({**body, "username": body["username"].upper(), "email": "fresh@example.com"}, "username_taken"),
        ({**body, "username": unique("fresh"), "email": body["email"].upper()}, "email_taken"),
    ]:
        assert_problem(await client.post(f"{API}/users", json=duplicate, headers=admin), 409, code)
    for invalid in [{**body, "role": "root"}, {**body, "is_active": False}, {**body, "password": "short"}]:
        assert_problem(await client.post(f"{API}/users", json=invalid, headers=admin), 422)
    await mail_sent(client)
    assert smtp.inbox.received[before:] == []


async def test_a_demoted_admin_makes_no_account(client, monkeypatch):
    """The admin check of the write itself, not the role read at the start of the request, decides."""
    admin, author = await signed_in(client, Role.ADMIN)
    body = {"username": unique("late"), "email": f"{unique('late')}@example.com", "password": PASSWORD}

    async def demoted_meanwhile(session: Any) -> None:
        await session.execute(update(User).where(User.id == author["id"]).values(role=Role.USER))

    write_first(monkeypatch, users_repo, "lock_active_admin", demoted_meanwhile)
    refused = await client.post(f"{API}/users", json=body, headers=admin)

    assert_problem(refused, 403, "insufficient_role")
    async with client.app.state.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).where(User.username == body["username"])) == 0


# Housekeeping


async def test_purge_forgets_expired_mailed_tokens(client, smtp):
    user = await register(client)
    live = await register(client)
    await mail_sent(client)
    async with client.app.state.database.sessionmaker() as session:
        await session.execute(
            update(AccountToken)
            .where(AccountToken.user_id == user["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
        removed = await maintenance.purge_expired(
            session=session,
            idempotency_ttl=timedelta(days=1),
            event_retention=timedelta(days=30),
            events_delivered=True,
        )
        left = (await session.scalars(select(AccountToken.user_id))).all()
    assert (removed, left) == (1, [live["id"]])
