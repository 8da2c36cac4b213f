"""test_auth_devices.py -- auth over the gateway: FCM device tokens (POST /v1/me/devices, DELETE
/v1/me/devices/{token}): shape, validation, re-registration, the per-account cap evicting the oldest,
and a token moving to another account. There is no route that lists devices, so what the store did
is read from the events auth publishes (device.registered, device.removed with its reason)."""
import uuid

import pytest

from authlib import RFC3339_UTC, h2, problem_errors
from authlib import device_events, users  # noqa: F401 (fixtures)
from conftest import is_problem


def fcm_token(tag="t"):
    return f"{tag}-{uuid.uuid4().hex}:APA91b_{uuid.uuid4().hex[:12]}.x"


def add(user, token, platform="android"):
    return user.post("/v1/me/devices", json={"token": token, "platform": platform})


def added(user, token, platform="android"):
    r = add(user, token, platform)
    assert r.status_code == 201, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"token", "platform", "created_at"}, body
    assert body["token"] == token and body["platform"] == platform
    assert RFC3339_UTC.match(body["created_at"]), body
    return body


def on(key, **match):
    return lambda k, b: k == key and all(b.get(f) == v for f, v in match.items())


def test_register_device(users, device_events):
    u = users()
    tok = fcm_token()
    body = added(u, tok, "ios")
    ev = device_events.wait(on("device.registered", token=tok))[0]["body"]
    assert set(ev) == {"user_id", "token", "platform", "created_at"}, ev
    assert ev["user_id"] == u.id and ev["platform"] == "ios"
    assert RFC3339_UTC.match(ev["created_at"])
    assert body["created_at"][:16] == ev["created_at"][:16]


@pytest.mark.parametrize("platform", ["android", "ios", "web"])
def test_each_platform_is_accepted(users, platform):
    u = users()
    added(u, fcm_token(), platform)


def test_register_again_refreshes(users, device_events):
    u = users()
    tok = fcm_token()
    added(u, tok, "android")
    again = added(u, tok, "web")
    assert again["platform"] == "web"
    evs = device_events.wait(on("device.registered", token=tok), want=2)
    assert [e["body"]["platform"] for e in evs] == ["android", "web"]
    assert all(e["body"]["user_id"] == u.id for e in evs)
    # Refreshing one's own token is not a removal of any kind.
    device_events.settle(0.5)
    assert not [e for e in device_events.seen if e["key"] == "device.removed" and e["body"]["token"] == tok]


def test_remove_device(users, device_events):
    u = users()
    tok = fcm_token()
    added(u, tok)
    r = u.delete(f"/v1/me/devices/{tok}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    ev = device_events.wait(on("device.removed", token=tok))[0]["body"]
    assert set(ev) == {"user_id", "token", "reason", "removed_at"}, ev
    assert ev["user_id"] == u.id and ev["reason"] == "removed"
    assert RFC3339_UTC.match(ev["removed_at"])
    # Gone: removing it again removes nothing (no second event).
    r = u.delete(f"/v1/me/devices/{tok}")
    assert r.status_code in (204, 404), r.text
    device_events.settle(1.0)
    assert len([e for e in device_events.seen if e["key"] == "device.removed" and e["body"]["token"] == tok]) == 1


def test_removing_an_unknown_device_changes_nothing(users, device_events):
    u = users()
    tok = fcm_token()
    r = u.delete(f"/v1/me/devices/{tok}")
    assert r.status_code in (204, 404), r.text
    if r.status_code == 404:
        is_problem(r, 404)
    device_events.settle(1.0)
    assert not [e for e in device_events.seen if e["body"].get("token") == tok]


@pytest.mark.parametrize("platform", ["windows", "", "android ", "blackberry", "ANDROID"])
def test_bad_platform_is_422(users, platform):
    u = users()
    tok = fcm_token()
    problem_errors(add(u, tok, platform), 422, "platform")


@pytest.mark.parametrize("token", ["", "has space", "slash/inside", "quote\"", "ümlaut", "a" * 4097, "tab\tx"])
def test_bad_token_is_422(users, token):
    u = users()
    problem_errors(add(u, token), 422, "token")


def test_longest_token_is_accepted(users):
    u = users()
    tok = "A" * 4096
    added(u, tok)
    assert u.delete(f"/v1/me/devices/{tok}").status_code == 204


def test_devices_need_a_token(users):
    u = users()
    tok = fcm_token()
    added(u, tok)
    with h2() as c:
        is_problem(c.post("/v1/me/devices", json={"token": fcm_token(), "platform": "ios"}), 401)
        is_problem(c.delete(f"/v1/me/devices/{tok}"), 401)


def test_eleventh_device_evicts_the_oldest(users, device_events):
    u = users()
    toks = [fcm_token(f"d{i}") for i in range(12)]
    for t in toks[:10]:
        added(u, t)
    device_events.wait(lambda k, b: k == "device.registered" and b["user_id"] == u.id, want=10)
    # Re-registering the first makes it the newest: the second is now the oldest.
    added(u, toks[0])
    added(u, toks[10])
    ev = device_events.wait(on("device.removed", user_id=u.id))[0]["body"]
    assert ev["reason"] == "evicted" and ev["token"] == toks[1], ev
    added(u, toks[11])
    evs = device_events.wait(on("device.removed", user_id=u.id), want=2)
    assert [(e["body"]["token"], e["body"]["reason"]) for e in evs] == [(toks[1], "evicted"), (toks[2], "evicted")]
    device_events.settle(0.5)
    removed = [e["body"]["token"] for e in device_events.seen
               if e["key"] == "device.removed" and e["body"]["user_id"] == u.id]
    assert removed == [toks[1], toks[2]]
    # The ten left are exactly the ten newest: each can be removed, once.
    for t in [toks[0]] + toks[3:12]:
        assert u.delete(f"/v1/me/devices/{t}").status_code == 204, t
    evs = device_events.wait(lambda k, b: k == "device.removed" and b["user_id"] == u.id
                             and b["reason"] == "removed", want=10)
    assert sorted(e["body"]["token"] for e in evs) == sorted([toks[0]] + toks[3:12])


def test_other_accounts_devices_are_not_counted(users, device_events):
    a, b = users(2)
    for i in range(6):
        added(a, fcm_token(f"a{i}"))
        added(b, fcm_token(f"b{i}"))
    device_events.settle(1.0)
    assert not [e for e in device_events.seen if e["key"] == "device.removed" and e["body"]["user_id"] in (a.id, b.id)]


def test_token_moves_to_another_account(users, device_events):
    a, b = users(2)
    tok = fcm_token("shared")
    added(a, tok, "android")
    added(b, tok, "ios")
    moved = device_events.wait(on("device.removed", token=tok))[0]["body"]
    assert moved["user_id"] == a.id and moved["reason"] == "moved", moved
    reg = device_events.wait(on("device.registered", token=tok, user_id=b.id))[0]["body"]
    assert reg["platform"] == "ios"
    # It is b's now: a cannot remove it; b can.
    r = a.delete(f"/v1/me/devices/{tok}")
    assert r.status_code in (204, 404), r.text
    r = b.delete(f"/v1/me/devices/{tok}")
    assert r.status_code == 204, r.text
    device_events.wait(on("device.removed", token=tok, user_id=b.id, reason="removed"))
    device_events.settle(1.0)
    removals = [(e["body"]["user_id"], e["body"]["reason"]) for e in device_events.seen
                if e["key"] == "device.removed" and e["body"]["token"] == tok]
    assert removals == [(a.id, "moved"), (b.id, "removed")], removals
