"""The reset and verification mails, and the single-use token behind each (stored as a hash, bound to the address).

A verification token is stored in the transaction that calls for it (a registration, a new address) and its mail
queued once that commits. A password-reset request does no work of its own at all: the lookup of the address and
the token write happen after the response, so it answers the same, in the same time, whether or not the address
belongs to anyone.
"""

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.security import hash_account_token, new_account_token
from config import TOKEN_PLACEHOLDER, Settings
from database.connection import write_transaction
from database.repositories import tokens as tokens_repo
from database.repositories import users as users_repo
from infrastructure.mail import Compose, Mail, Mailer
from models import TokenPurpose, User
from services import mail_templates
from services.errors import ServiceUnavailableError, TooManyRequestsError

# The kinds of mail, as the metrics label them (labels, not passwords).
PASSWORD_RESET_MAIL = "password_reset"  # noqa: S105  # nosec B105
VERIFICATION_MAIL = "email_verification"
# Verification mails one account may have sent in any hour, whatever asks for them (a registration, a resend, a new
# address): without a cap, changing one's address over and over would mail someone else's inbox at the rate limit.
VERIFICATION_MAILS_PER_WINDOW = 5
VERIFICATION_MAIL_WINDOW = timedelta(hours=1)


def mail_unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("No mail server is configured, so no mail can be sent", code="mail_unavailable")


class AccountMail:
    def __init__(
        self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], mailer: Mailer | None
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._mailer = mailer

    def require_mail(self) -> Mailer:
        """The mailer; 503 `mail_unavailable` when the shop sends no mail (production without SMTP_HOST)."""
        if self._mailer is None:
            raise mail_unavailable()
        return self._mailer

    def request_password_reset(self, *, email: str) -> None:
        """A reset mail to `email` if it is an active account's address, after the response; nothing otherwise."""
        self.require_mail().submit(PASSWORD_RESET_MAIL, lambda: self._password_reset(email))

    async def verification(self, session: AsyncSession, user: User, *, refuse_over_cap: bool = False) -> Mail | None:
        """Store a verification token for the user's current address, in the caller's write transaction, and write
        its mail, for `send_verification` once that commits; None when the shop sends no mail.

        Over VERIFICATION_MAILS_PER_WINDOW (the caller holds the user's row, so concurrent requests count in turn):
        no mail, or with `refuse_over_cap` 429 `too_many_mails` with the seconds until one may be sent again.
        """
        if self._mailer is None:
            return None
        now = datetime.now(UTC)
        issued = await tokens_repo.account_tokens_issued_since(
            session, user_id=user.id, purpose=TokenPurpose.VERIFY_EMAIL, since=now - VERIFICATION_MAIL_WINDOW
        )
        if len(issued) >= VERIFICATION_MAILS_PER_WINDOW:
            if refuse_over_cap:
                frees_at = issued[-VERIFICATION_MAILS_PER_WINDOW] + VERIFICATION_MAIL_WINDOW
                raise TooManyRequestsError(
                    f"At most {VERIFICATION_MAILS_PER_WINDOW} verification mails an hour; ask again later",
                    code="too_many_mails",
                    retry_after=max(1, math.ceil((frees_at - now).total_seconds())),
                )
            return None
        ttl = self._settings.email_verification_ttl_seconds
        link = await self._issue(session, user, TokenPurpose.VERIFY_EMAIL, self._settings.email_verification_url, ttl)
        return mail_templates.email_verification(to=user.email, link=link, valid_seconds=ttl)

    def send_verification(self, mail: Mail | None) -> None:
        if mail is not None and self._mailer is not None:
            self._mailer.submit(VERIFICATION_MAIL, _ready(mail))

    async def _password_reset(self, email: str) -> Mail | None:
        ttl = self._settings.password_reset_ttl_seconds
        async with self._sessionmaker() as session:
            user = await users_repo.find_active_user_by_email(session, email)
            if user is None:
                return None
            async with write_transaction(session):
                link = await self._issue(
                    session, user, TokenPurpose.RESET_PASSWORD, self._settings.password_reset_url, ttl
                )
        return mail_templates.password_reset(to=user.email, link=link, valid_seconds=ttl)

    async def _issue(self, session: AsyncSession, user: User, purpose: TokenPurpose, url: str, ttl: int) -> str:
        """Store a new token's hash, bound to the user's current address; the link that carries the token itself."""
        token = new_account_token()
        await tokens_repo.add_account_token(
            session,
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_account_token(token),
            email=user.email,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        )
        return url.replace(TOKEN_PLACEHOLDER, token)


def _ready(mail: Mail) -> Compose:
    async def compose() -> Mail:
        return mail

    return compose
