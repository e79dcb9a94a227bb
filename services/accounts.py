"""The account lifecycle: ending every session, password change and reset, e-mail verification, and erasure.

Ending an account's sessions bumps its session generation (on the users row, which every request reads anyway) and
revokes its refresh families, in one transaction: every access token and refresh family issued until then carries
an older generation and is refused, on every process at once and at no extra cost per request. A pair issued in
that transaction, or any time after, carries the new one, however close in time: nothing depends on `iat`.
"""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth.principal import Principal
from auth.security import PasswordHasher, hash_account_token
from database.connection import release_connection, write_transaction
from database.repositories import tokens as tokens_repo
from database.repositories import users as users_repo
from models import TokenPurpose, User
from representations import representation
from services import users as users_service
from services.access import is_admin, require_active_admin
from services.account_mail import AccountMail
from services.auth import AuthService, TokenPair
from services.errors import ConflictError, PermissionDeniedError, UnknownReferenceError
from services.events import EventType, forget_earlier_data, record_deletion, record_update, user_actor
from services.preconditions import ExpectedVersions, require_version

# Where an erased account's username and e-mail were: unique, and never a valid username or address, so nobody can
# register, rename to, or sign in as it.
ERASED_MARK = "erased~"


def _wrong_password() -> PermissionDeniedError:
    return PermissionDeniedError("Incorrect password", code="invalid_credentials")


def _invalid_reset_token() -> UnknownReferenceError:
    return UnknownReferenceError("This password-reset token is unknown, used or expired", code="invalid_reset_token")


def _invalid_verification_token() -> UnknownReferenceError:
    return UnknownReferenceError(
        "This verification token is unknown, used, expired, or for another address", code="invalid_verification_token"
    )


async def end_sessions(session: AsyncSession, account: User, *, now: datetime) -> None:
    """Refuse every token of `account` issued until now; in the caller's write transaction, its row locked."""
    account.session_generation += 1
    await session.flush()
    await tokens_repo.revoke_user_families(session, user_id=account.id, now=now)


async def sign_out_everywhere(*, session: AsyncSession, user: User) -> None:
    """End every session of the caller, the one of this request included."""
    async with write_transaction(session):
        account = await users_service.lock_own_account(session, user)
        await end_sessions(session, account, now=datetime.now(UTC))


async def sign_out_user(*, session: AsyncSession, actor: Principal, user_id: int) -> None:
    """An admin ends every session of any account."""
    async with write_transaction(session):
        await require_active_admin(session, actor=actor, changing_user=user_id)
        # Loaded and locked by the check above.
        account = await users_service.get_user(session=session, actor=actor, user_id=user_id)
        await end_sessions(session, account, now=datetime.now(UTC))


async def _verified_hash(hasher: PasswordHasher, session: AsyncSession, user: User, password: str) -> str:
    """The caller's password hash, once `password` is checked against it (bcrypt, with the connection given back)."""
    hashed = user.hashed_password
    await release_connection(session)
    if not await hasher.verify(password, hashed):
        raise _wrong_password()
    return hashed


def _still_the_password(account: User, verified_hash: str) -> None:
    # Another request changed the password while this one checked the old one: that check proves nothing now.
    if account.hashed_password != verified_hash:
        raise _wrong_password()


async def change_password(
    *, session: AsyncSession, auth: AuthService, user: User, current_password: str, new_password: str
) -> TokenPair:
    """Replace the caller's password and end every session; the pair returned belongs to the new generation."""
    verified = await _verified_hash(auth.hasher, session, user, current_password)
    hashed = await auth.hasher.hash(new_password)
    async with write_transaction(session):
        account = await users_service.lock_own_account(session, user)
        _still_the_password(account, verified)
        account.hashed_password = hashed
        await end_sessions(session, account, now=datetime.now(UTC))
        # A reset link mailed earlier would replace the password just chosen.
        await tokens_repo.delete_account_tokens(session, user_id=account.id, purpose=TokenPurpose.RESET_PASSWORD)
        return await auth.start_session(session, account)


async def erase_account(
    *,
    session: AsyncSession,
    hasher: PasswordHasher,
    user: User,
    password: str,
    expected_versions: ExpectedVersions = None,
) -> None:
    """Erase the caller's account: nothing personal stays, its name and address are free at once, every session
    ends. The row stays, so that its orders keep their `user_id` for the shop's books.
    """
    verified = await _verified_hash(hasher, session, user, password)
    now = datetime.now(UTC)
    async with write_transaction(session):
        locked = await users_repo.lock_user_and_admins(session, user.id)
        account = next((row for row in locked if row.id == user.id), None)
        if account is None or account.deleted_at is not None:
            raise _wrong_password()
        _still_the_password(account, verified)
        require_version(account.version, expected_versions, what=f"User {account.id}")
        active_admins = [row.id for row in locked if is_admin(row) and row.is_active and row.deleted_at is None]
        if active_admins == [account.id]:
            # The shop would be left without anyone to run it, as update_user refuses for a demotion.
            raise ConflictError(
                "The shop's only active admin cannot erase their account; make another admin first", code="last_admin"
            )
        account.username = account.email = f"{ERASED_MARK}{account.id}"
        account.hashed_password = ""
        account.is_active = False
        account.email_verified = False
        account.deleted_at = now
        await end_sessions(session, account, now=now)
        await tokens_repo.delete_account_tokens(session, user_id=account.id)
        # Nothing personal stays in the feed either; what JetStream already holds is the stream owner's to age out.
        await forget_earlier_data(session, resource=account)
        record_deletion(session, type=EventType.USER_DELETED, resource=account, actor=user_actor(account.id))


async def resend_verification(*, session: AsyncSession, user: User, mail: AccountMail) -> None:
    """A fresh verification mail to the caller's address; earlier ones stay good until they expire."""
    if user.email_verified:
        raise ConflictError("This e-mail address is already verified", code="already_verified")
    mail.require_mail()
    async with write_transaction(session):
        account = await users_service.lock_own_account(session, user)
        verification = await mail.verification(session, account, refuse_over_cap=True)
    mail.send_verification(verification)


async def _redeem(
    session: AsyncSession, *, token: str, purpose: TokenPurpose, invalid: UnknownReferenceError, now: datetime
) -> User:
    """Use up a live token of `purpose` and return its account, locked; in the caller's write transaction.

    A token is good only while the account still has the address it was mailed to.
    """
    consumed = await tokens_repo.consume_account_token(
        session, token_hash=hash_account_token(token), purpose=purpose, now=now
    )
    if consumed is None:
        raise invalid
    account = (await users_repo.lock_users(session, {consumed.user_id})).get(consumed.user_id)
    if account is None or account.deleted_at is not None or account.email.lower() != consumed.email.lower():
        raise invalid
    return account


async def confirm_password_reset(
    *, session: AsyncSession, hasher: PasswordHasher, token: str, new_password: str
) -> None:
    """Set the password a reset mail allows; every session and every other reset token of the account ends."""
    now = datetime.now(UTC)
    # Checked ahead only to spare a bcrypt hash on a token that is not live; taking it out below is the guard.
    token_hash = hash_account_token(token)
    if not await tokens_repo.is_live_account_token(
        session, token_hash=token_hash, purpose=TokenPurpose.RESET_PASSWORD, now=now
    ):
        raise _invalid_reset_token()
    await release_connection(session)
    hashed = await hasher.hash(new_password)
    async with write_transaction(session):
        account = await _redeem(
            session, token=token, purpose=TokenPurpose.RESET_PASSWORD, invalid=_invalid_reset_token(), now=now
        )
        account.hashed_password = hashed
        await end_sessions(session, account, now=now)
        await tokens_repo.delete_account_tokens(session, user_id=account.id, purpose=TokenPurpose.RESET_PASSWORD)


async def verify_email(*, session: AsyncSession, token: str) -> None:
    """Mark the account's address verified, as the token mailed to it proves."""
    async with write_transaction(session):
        account = await _redeem(
            session,
            token=token,
            purpose=TokenPurpose.VERIFY_EMAIL,
            invalid=_invalid_verification_token(),
            now=datetime.now(UTC),
        )
        before = representation(account)
        account.email_verified = True
        await session.flush()
        record_update(
            session, type=EventType.USER_UPDATED, resource=account, before=before, actor=user_actor(account.id)
        )
        await tokens_repo.delete_account_tokens(session, user_id=account.id, purpose=TokenPurpose.VERIFY_EMAIL)
