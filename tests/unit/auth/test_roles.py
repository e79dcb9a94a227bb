"""The role order guest < user < admin, which every permission check relies on."""

import pytest

from auth.roles import Role

ORDER = [Role.GUEST, Role.USER, Role.ADMIN]


def test_roles_are_the_contract_strings():
    assert [role.value for role in Role] == ["guest", "user", "admin"]
    assert Role("admin") is Role.ADMIN


@pytest.mark.parametrize("value", ["Admin", "root", "superuser", ""])
def test_unknown_role_names_are_not_roles(value):
    with pytest.raises(ValueError, match="is not a valid Role"):
        Role(value)


@pytest.mark.parametrize("held", ORDER)
@pytest.mark.parametrize("needed", ORDER)
def test_a_role_includes_exactly_the_roles_at_or_below_it(held, needed):
    assert held.includes(needed) is (ORDER.index(held) >= ORDER.index(needed))


def test_ranks_rise_with_power():
    assert [role.rank for role in ORDER] == sorted({role.rank for role in ORDER})
