"""Access tokens: what they carry, and every way a token that should not pass is refused."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auth.jwt import AccessClaims, InvalidTokenError, VerifiedTokens, create_access_token, decode_access_token
from models.base import MAX_ID

SECRET = "unit-test-secret-" + "s" * 64  # long enough for HS512 without warnings
ALGORITHM = "HS256"
TTL = 900


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def claims(**changes: Any) -> dict[str, Any]:
    """A complete, valid payload; `changes` replace claims, and a value of ... removes one."""
    now = int(datetime.now(UTC).timestamp())
    payload = {"sub": "42", "role": "user", "type": "access", "jti": "a" * 32, "iat": now, "exp": now + TTL}
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not ...}


def sign(payload: dict[str, Any], *, algorithm: str = ALGORITHM, key: Any = SECRET) -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def hs256_with_header(header: dict[str, Any], payload: dict[str, Any], secret: str = SECRET) -> str:
    """A token signed with HMAC-SHA256 and our secret, whatever its header claims."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def decode(token: str, *, algorithm: str = ALGORITHM, secret: str = SECRET) -> AccessClaims:
    return decode_access_token(token, secret=secret, algorithm=algorithm)


def issue(**kwargs: Any) -> tuple[str, AccessClaims]:
    values = {"user_id": 42, "role": "user", "secret": SECRET, "algorithm": ALGORITHM, "ttl_seconds": TTL}
    values.update(kwargs)
    return create_access_token(**values)


def test_token_carries_exactly_the_contract_claims_and_the_session_generation():
    token, issued = issue(generation=3)
    header = jwt.get_unverified_header(token)
    payload = jwt.decode(token, SECRET, algorithms=[ALGORITHM])
    assert header["alg"] == ALGORITHM
    assert set(payload) == {"sub", "role", "type", "jti", "iat", "exp", "gen"}
    assert payload["gen"] == 3
    assert payload["sub"] == "42"  # RFC 7519: the subject is a string
    assert payload["role"] == "user"
    assert payload["type"] == "access"
    assert payload["exp"] - payload["iat"] == TTL
    assert payload["jti"] == issued.jti


def test_round_trip_gives_back_the_claims():
    token, issued = issue(user_id=MAX_ID, role="admin", generation=MAX_ID)
    decoded = decode(token)
    assert decoded == issued
    assert decoded.user_id == MAX_ID
    assert decoded.role == "admin"
    assert decoded.expires_at - decoded.issued_at == timedelta(seconds=TTL)


def test_a_token_from_before_the_generation_claim_counts_as_generation_0():
    assert decode(sign(claims())).generation == 0
    assert decode(sign(claims(gen=7))).generation == 7


@pytest.mark.parametrize("generation", [-1, MAX_ID + 1, 1.0, "1", True, None, [1]])
def test_a_generation_that_is_no_counter_value_is_refused(generation):
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(gen=generation)))


def test_every_token_has_its_own_jti():
    assert len({issue()[1].jti for _ in range(50)}) == 50


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_configured_algorithm_is_used_and_accepted(algorithm):
    token, _ = issue(algorithm=algorithm)
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert decode(token, algorithm=algorithm).user_id == 42


def test_expired_token_is_refused():
    token, _ = issue(now=datetime.now(UTC) - timedelta(seconds=TTL + 5))
    with pytest.raises(InvalidTokenError, match="expired"):
        decode(token)


def test_token_is_accepted_until_its_expiry():
    token, _ = issue(now=datetime.now(UTC) - timedelta(seconds=TTL - 60))
    assert decode(token).user_id == 42


def test_tampered_payload_is_refused():
    token, _ = issue()
    header, _, signature = token.split(".")
    payload = jwt.decode(token, SECRET, algorithms=[ALGORITHM])
    promoted = f"{header}.{segment({**payload, 'role': 'admin'})}.{signature}"
    with pytest.raises(InvalidTokenError):
        decode(promoted)


def test_tampered_signature_is_refused():
    token, _ = issue()
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[0] ^= 0x01
    with pytest.raises(InvalidTokenError):
        decode(f"{header}.{payload}.{b64url(bytes(raw))}")


def test_token_signed_with_another_key_is_refused():
    token, _ = issue(secret="another-secret-" + "s" * 64)
    with pytest.raises(InvalidTokenError):
        decode(token)


@pytest.mark.parametrize("token_type", ["refresh", "Access", "", None, 1])
def test_wrong_type_is_refused(token_type):
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(type=token_type)))


@pytest.mark.parametrize("missing", ["sub", "role", "type", "jti", "iat", "exp"])
def test_missing_claim_is_refused(missing):
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(**{missing: ...})))


@pytest.mark.parametrize(
    "subject",
    [
        "abc",
        "",
        "0",
        "-1",
        "01",
        " 1",
        "1 ",
        "1.5",
        "1e3",
        "٣",  # an Arabic-Indic digit: int() would accept it
        str(MAX_ID + 1),
        "9" * 40,
        42,
        None,
        ["42"],
    ],
)
def test_subject_must_be_a_user_id_string(subject):
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(sub=subject)))


@pytest.mark.parametrize(
    ("name", "value"),
    [("role", 1), ("role", None), ("jti", 7), ("jti", None), ("iat", "yesterday"), ("exp", "tomorrow")],
)
def test_claims_of_the_wrong_type_are_refused(name, value):
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(**{name: value})))


def test_token_issued_in_the_future_is_refused():
    later = int(datetime.now(UTC).timestamp()) + 3600
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(iat=later, exp=later + TTL)))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_token_is_refused(alg):
    unsigned = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims())}."
    with pytest.raises(InvalidTokenError):
        decode(unsigned)


def test_unsigned_token_from_the_library_is_refused():
    with pytest.raises(InvalidTokenError):
        decode(jwt.encode(claims(), None, algorithm="none"))


@pytest.mark.parametrize(
    ("configured", "signed_with"),
    [("HS256", "HS512"), ("HS256", "HS384"), ("HS512", "HS256"), ("HS384", "HS512")],
)
def test_algorithm_other_than_the_configured_one_is_refused(configured, signed_with):
    # Same secret, valid signature: only the algorithm is wrong.
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(), algorithm=signed_with), algorithm=configured)


@pytest.mark.parametrize("claimed", ["RS256", "ES256", "PS256", "HS512", "none"])
def test_header_algorithm_is_never_trusted(claimed):
    # An HMAC-SHA256 signature made with our own secret, under a header naming another algorithm: a verifier
    # that picked its algorithm from the header (key confusion) would be tricked one way or another.
    with pytest.raises(InvalidTokenError):
        decode(hs256_with_header({"alg": claimed, "typ": "JWT"}, claims()))


@pytest.mark.parametrize("claimed", ["RS256", "ES256", "EdDSA"])
def test_asymmetric_algorithms_are_refused(claimed):
    signature = b64url(hashlib.sha512(b"any signature at all").digest())
    with pytest.raises(InvalidTokenError):
        decode(f"{segment({'alg': claimed, 'typ': 'JWT'})}.{segment(claims())}.{signature}")


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b", "a.b.c", "...", "Bearer x.y.z", "eyJhbGciOiJIUzI1NiJ9.e30.", "ü.ü.ü"],
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(InvalidTokenError):
        decode(token)


def test_valid_hand_made_token_passes():
    # The forgery helpers above would prove nothing if a correct token built the same way were refused.
    token = hs256_with_header({"alg": "HS256", "typ": "JWT"}, claims())
    assert decode(token).user_id == 42


# Time claims a signer could put in that datetime cannot hold, or that are not JSON numbers at all. PyJWT accepts
# some of them (numeric strings, booleans, floats far outside any date); they must be refused, not crash.
ODD_TIME_CLAIMS = [
    ("exp", 1e20),
    ("exp", 1e300),
    ("exp", "9999999999"),
    ("exp", True),
    ("exp", 10**30),
    ("exp", 2**63),
    ("exp", 253402300800),  # 10000-01-01: one second past what datetime holds
    ("exp", float("nan")),
    ("exp", float("inf")),
    ("iat", -1e20),
    ("iat", -(10**30)),
    ("iat", -62135596801),  # a second before 0001-01-01
    ("iat", True),
    ("iat", "0"),
    ("iat", float("nan")),
    ("iat", float("-inf")),
]


@pytest.mark.parametrize(("name", "value"), ODD_TIME_CLAIMS, ids=[f"{n}={v!r}" for n, v in ODD_TIME_CLAIMS])
def test_time_claims_out_of_range_or_not_numbers_are_refused(name, value):
    with pytest.raises(InvalidTokenError):
        decode(sign(claims(**{name: value})))


def test_time_claims_at_the_edges_of_datetime_pass():
    decoded = decode(sign(claims(iat=-62135596800, exp=253402300799)))
    assert (decoded.issued_at.year, decoded.expires_at.year) == (1, 9999)


def test_a_remembered_token_is_refused_once_it_expires():
    token, issued = create_access_token(user_id=7, role="user", secret=SECRET, algorithm=ALGORITHM, ttl_seconds=TTL)
    now = [issued.issued_at.timestamp()]
    tokens = VerifiedTokens(secret=SECRET, algorithm=ALGORITHM, size=4, clock=lambda: now[0])
    assert tokens.verify(token) == issued

    now[0] = issued.expires_at.timestamp()

    with pytest.raises(InvalidTokenError):
        tokens.verify(token)


# Properties

# Where datetime holds a NumericDate (0001-01-01 to 9999-12-31), and times well clear of now on either side.
EARLIEST, LATEST = -62135596800, 253402300799
NOW = int(datetime.now(UTC).timestamp())
PAST = (EARLIEST, NOW - 60)
FUTURE = (NOW + 3600, LATEST)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


def between(bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    return st.integers(min_value=bounds[0], max_value=bounds[1])


def within(value: object, bounds: tuple[int, int], *also: object) -> bool:
    return value in also or (type(value) is int and bounds[0] <= value <= bounds[1])


# Any JSON value (numbers of any size, numeric strings, booleans, lists...) and fractional times datetime holds.
ODD_VALUES = JSON_VALUES | st.floats(min_value=EARLIEST, max_value=LATEST)


@given(
    st.sampled_from([None, "iat", "exp", "nbf"]),
    ODD_VALUES,
    between(PAST),
    between(FUTURE),
    st.just(...) | between(PAST),
)
def test_any_time_claims_decode_as_their_instants_or_are_refused(odd_claim, odd_value, iat, exp, nbf):
    """Well-formed time claims, one of them (or none) replaced by any value: an exact decoding, or a refusal."""
    times = {"iat": iat, "exp": exp, "nbf": nbf}
    if odd_claim is not None:
        times[odd_claim] = odd_value
    well_formed = within(times["iat"], PAST) and within(times["exp"], FUTURE) and within(times["nbf"], PAST, ...)
    try:
        decoded = decode(sign(claims(**times)))
    except InvalidTokenError:
        assert not well_formed
    else:
        assert type(times["iat"]) in (int, float)
        assert type(times["exp"]) in (int, float)
        assert decoded.issued_at == datetime.fromtimestamp(times["iat"], UTC)
        assert decoded.expires_at == datetime.fromtimestamp(times["exp"], UTC)
