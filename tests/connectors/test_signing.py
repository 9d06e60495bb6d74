import hashlib
import hmac

import pytest

from connectors.signing import sign, verify_signature

BODY = b'{"conversation_id": "conv-1", "text": "Where is my parcel?"}'
NOW = 1_764_240_000


def test_header_format_is_the_documented_one():
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", BODY, timestamp=NOW) == f"t={NOW},v1={expected}"


def test_fresh_signature_verifies():
    assert verify_signature("s3cret", BODY, sign("s3cret", BODY, timestamp=NOW), now=NOW + 10)
    assert verify_signature("s3cret", BODY, sign("s3cret", BODY))


@pytest.mark.parametrize(("body", "secret"), [(BODY + b" ", "s3cret"), (BODY, "other"), (b"", "s3cret")])
def test_changed_body_or_wrong_secret_fails(body, secret):
    assert not verify_signature(secret, body, sign("s3cret", BODY, timestamp=NOW), now=NOW)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_stale_or_future_timestamps_fail(age):
    assert not verify_signature("s3cret", BODY, sign("s3cret", BODY, timestamp=NOW - age), now=NOW)


def test_timestamp_cannot_be_refreshed_without_the_secret():
    old = sign("s3cret", BODY, timestamp=NOW - 3600)
    replayed = old.replace(f"t={NOW - 3600}", f"t={NOW}")
    assert not verify_signature("s3cret", BODY, replayed, now=NOW)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", f"t={NOW}", "v1=00", f"t={NOW},v1"])
def test_garbled_headers_fail_without_raising(header):
    assert not verify_signature("s3cret", BODY, header, now=NOW)


def test_any_of_several_signatures_may_match_during_secret_rotation():
    new = sign("new-secret", BODY, timestamp=NOW)
    old_digest = sign("old-secret", BODY, timestamp=NOW).partition(",")[2]
    assert verify_signature("old-secret", BODY, f"{new},{old_digest}", now=NOW)


def test_empty_secret_is_a_configuration_error():
    with pytest.raises(ValueError):
        sign("", BODY)
    with pytest.raises(ValueError):
        verify_signature(b"", BODY, f"t={NOW},v1=00", now=NOW)
