"""The texts of the shop's only two mails: the password reset and the e-mail verification."""

from html import escape

from infrastructure.mail import Mail

_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


def _duration(seconds: int) -> str:
    """`3600` as "1 hour", `86400` as "1 day", `90` as "90 seconds": the largest unit that divides it."""
    unit, size = next((unit, size) for unit, size in _UNITS if seconds % size == 0)
    count = seconds // size
    return f"{count} {unit}{'' if count == 1 else 's'}"


def _mail(*, to: str, subject: str, intro: str, link: str, action: str, outro: str) -> Mail:
    """A plain-text part with the bare link (what every client shows), and the same as HTML with a button-like link."""
    html = (
        f"<!DOCTYPE html><html><body><p>{escape(intro)}</p>"
        f'<p><a href="{escape(link)}">{escape(action)}</a></p><p>{escape(outro)}</p></body></html>'
    )
    return Mail(to=to, subject=subject, text=f"{intro}\n\n{link}\n\n{outro}\n", html=html)


def password_reset(*, to: str, link: str, valid_seconds: int) -> Mail:
    intro = "Someone asked to reset the password of your shop account. To choose a new one, open this link:"
    outro = (
        f"It works once, for {_duration(valid_seconds)}. If you did not ask for this, ignore this mail: "
        "your password stays as it is."
    )
    return _mail(
        to=to, subject="Reset your shop password", intro=intro, link=link, action="Choose a new password", outro=outro
    )


def email_verification(*, to: str, link: str, valid_seconds: int) -> Mail:
    intro = "Please confirm that this is the e-mail address of your shop account by opening this link:"
    outro = f"It works once, for {_duration(valid_seconds)}. If you have no shop account, ignore this mail."
    return _mail(
        to=to, subject="Confirm your e-mail address", intro=intro, link=link, action="Confirm this address", outro=outro
    )
