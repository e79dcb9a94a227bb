"""Token lifecycle: login, refresh-token rotation with reuse detection, logout, and authenticating requests."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth.jwt import AccessClaims, InvalidTokenError, VerifiedTokens, create_access_token
from auth.principal import Principal
from auth.security import PasswordHasher, hash_refresh_token, new_refresh_token
from config import Settings
from database.connection import release_connection, write_transaction
from database.repositories import tokens as tokens_repo
from database.repositories import users as users_repo
from infrastructure.revocations import RevocationStore
from models import User
from services.errors import AuthenticationError, PermissionDeniedError

INVALID_CREDENTIALS = "Incorrect username or password"
# Verified access tokens remembered (a few hundred bytes each): more than the callers of one process in a
# token's lifetime, as a cache too small for them would verify every token again on each request.
VERIFIED_TOKENS_CACHED = 16_384


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def _disabled() -> PermissionDeniedError:
    return PermissionDeniedError("This account is disabled", code="account_disabled")


class _Account(Protocol):
    is_active: bool
    session_generation: int


AccountT = TypeVar("AccountT", bound=_Account)


def _admitted(claims: AccessClaims, account: AccountT | None, *, revoked: bool) -> AccountT:
    """The token's account, unless the token is revoked, its account gone, its sessions ended, or it is disabled."""
    if revoked:
        raise AuthenticationError("The access token has been revoked", code="token_revoked")
    if account is None:
        raise AuthenticationError("The access token is invalid or expired", code="invalid_token")
    # Session generation, read with the account: every token from before the account's sessions were last ended
    # (password change or reset, signing out everywhere, erasure) is refused, on every process at once.
    if claims.generation != account.session_generation:
        raise AuthenticationError("The access token has been revoked", code="token_revoked")
    if not account.is_active:
        raise _disabled()
    return account


class AuthService:
    def __init__(self, *, settings: Settings, hasher: PasswordHasher, revocations: RevocationStore) -> None:
        self.settings = settings
        self.hasher = hasher
        self.revocations = revocations
        self.tokens = VerifiedTokens(
            secret=settings.jwt_secret, algorithm=settings.jwt_algorithm, size=VERIFIED_TOKENS_CACHED
        )

    def decode(self, token: str) -> AccessClaims:
        try:
            return self.tokens.verify(token)
        except InvalidTokenError as error:
            raise AuthenticationError("The access token is invalid or expired", code="invalid_token") from error

    async def authenticate(
        self, *, connection: AsyncConnection, claims: AccessClaims, revoked: bool | None = None
    ) -> Principal:
        """The principal an access token speaks for, as the database has it now (role and active flag included).

        `revoked` is the token's revocation status when the caller already has it (the rate limiter reads it from
        Redis in the same call as the hit); None asks the revocation store, which fails closed.
        """
        if revoked is None:
            principal, revoked = await self.revocations.load_principal(
                connection=connection, user_id=claims.user_id, jti=claims.jti
            )
        else:
            principal = None if revoked else await users_repo.get_principal(connection, claims.user_id)
        return _admitted(claims, principal, revoked=revoked)

    async def authenticate_account(
        self, *, session: AsyncSession, claims: AccessClaims, revoked: bool | None = None
    ) -> User:
        """As `authenticate`, for the routes that work on the caller's whole account: its entity, in `session`."""
        if revoked is None:
            user, revoked = await self.revocations.load_user(session=session, user_id=claims.user_id, jti=claims.jti)
        else:
            user = None if revoked else await users_repo.get_user(session, claims.user_id)
        return _admitted(claims, user, revoked=revoked)

    async def login(self, *, session: AsyncSession, login: str, password: str) -> TokenPair:
        user = await users_repo.find_user_by_login(session, login)
        # bcrypt takes a while: hand the pooled connection back rather than hold it meanwhile.
        await release_connection(session)
        matches = await self.hasher.verify(password, user.hashed_password if user else None)
        if user is None or not matches:
            raise AuthenticationError(INVALID_CREDENTIALS, code="invalid_credentials")
        if not user.is_active:
            raise _disabled()
        async with write_transaction(session):
            return await self.start_session(session, user)

    async def start_session(self, session: AsyncSession, user: User) -> TokenPair:
        """A new refresh family and its first pair, in the caller's write transaction.

        Both carry the generation `user` was read with: if the account's sessions were ended since, they are dead.
        """
        family_id = await tokens_repo.start_family(session, user_id=user.id, generation=user.session_generation)
        return await self._issue(session, user, family_id=family_id, generation=user.session_generation)

    async def refresh(self, *, session: AsyncSession, refresh_token: str) -> TokenPair:
        token_hash = hash_refresh_token(refresh_token)
        now = datetime.now(UTC)
        # Outcomes are decided inside the transaction but raised after it, so that revocations commit.
        refused: AuthenticationError | PermissionDeniedError | None = None
        async with write_transaction(session):
            consumed = await tokens_repo.consume_refresh_token(session, token_hash=token_hash, now=now)
            if consumed is None:
                # Unknown, expired, used, or of a revoked family.
                refused = AuthenticationError("The refresh token is invalid, expired or revoked", code="invalid_token")
                known = await tokens_repo.find_refresh_token(session, token_hash)
                if known is not None and known.used_at is not None:
                    # A used token came back: whoever holds it may have stolen it. End the whole family.
                    await tokens_repo.revoke_family(session, family_id=known.family_id, now=now)
            else:
                user = await users_repo.get_user(session, consumed.user_id)
                if user is not None and user.session_generation != consumed.generation:
                    # A login from before the account's sessions were ended, committed after they were.
                    refused = AuthenticationError("The refresh token has been revoked", code="invalid_token")
                elif user is None or not user.is_active:
                    refused = _disabled()
                else:
                    pair = await self._issue(
                        session, user, family_id=consumed.family_id, generation=consumed.generation
                    )
                if refused is not None:
                    await tokens_repo.revoke_family(session, family_id=consumed.family_id, now=now)
        if refused is not None:
            raise refused
        return pair

    async def logout(self, *, session: AsyncSession, claims: AccessClaims, refresh_token: str | None) -> None:
        await self.revocations.revoke(session=session, jti=claims.jti, expires_at=claims.expires_at)
        if not refresh_token:
            return
        async with write_transaction(session):
            known = await tokens_repo.find_refresh_token(session, hash_refresh_token(refresh_token))
            # Only the caller's own family: naming someone else's token must not log them out.
            if known is not None and known.user_id == claims.user_id:
                await tokens_repo.revoke_family(session, family_id=known.family_id, now=datetime.now(UTC))

    async def _issue(self, session: AsyncSession, user: User, *, family_id: str, generation: int) -> TokenPair:
        settings = self.settings
        access_token, claims = create_access_token(
            user_id=user.id,
            role=user.role,
            secret=settings.jwt_secret,
            algorithm=settings.jwt_algorithm,
            ttl_seconds=settings.access_token_ttl_seconds,
            generation=generation,
        )
        refresh_token = new_refresh_token()
        await tokens_repo.add_refresh_token(
            session,
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_refresh_token(refresh_token),
            expires_at=claims.issued_at + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
        return TokenPair(access_token, refresh_token, settings.access_token_ttl_seconds)
