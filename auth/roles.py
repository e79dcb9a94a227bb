"""The roles of the shop and their order: guest < user < admin."""

from enum import StrEnum


class Role(StrEnum):
    GUEST = "guest"
    USER = "user"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def includes(self, other: "Role") -> bool:
        """True when this role may do everything `other` may."""
        return self.rank >= other.rank


_RANKS = {Role.GUEST: 0, Role.USER: 1, Role.ADMIN: 2}
