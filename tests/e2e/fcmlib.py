"""fcmlib.py -- the stack's FCM fake (tests/fakes/fcm_fake.c) as the push tests see it: what it
received, and rules that make it answer as FCM does when things go wrong."""
import os
import uuid

import httpx

from conftest import wait_until

FCM_URL = os.environ.get("TEST_FCM_URL", "")


def _http():
    assert FCM_URL, "TEST_FCM_URL is not set (the test stack runs the FCM fake)"
    return httpx.Client(base_url=FCM_URL, timeout=10)


def new_token():
    """A device token of FCM's shape that no other test uses."""
    return f"fcm:{uuid.uuid4().hex}-{uuid.uuid4().hex[:8]}_x.y"


def sends(token):
    """The sends the fake accepted for token, oldest first."""
    with _http() as h:
        r = h.get("/fake/sends", params={"token": token})
        r.raise_for_status()
        return r.json()["sends"]


def stats():
    with _http() as h:
        return h.get("/fake/stats").json()


def rule(token, status, error=None, times=None, retry_after=None):
    body = {"token": token, "status": status}
    if error:
        body["error"] = error
    if times is not None:
        body["times"] = times
    if retry_after is not None:
        body["retry_after"] = retry_after
    with _http() as h:
        r = h.post("/fake/rules", json=body)
        assert r.status_code in (200, 204), r.text


def config(**kw):
    with _http() as h:
        r = h.post("/fake/config", json=kw)
        assert r.status_code in (200, 204), r.text


def reset(**kw):
    """Clears the fake's records, rules and stats (and, with tokens=True, the tokens it issued)."""
    with _http() as h:
        r = h.post("/fake/reset", json=kw)
        assert r.status_code in (200, 204), r.text


def wait_sends(token, n=1, timeout=20):
    got = []

    def check():
        got[:] = sends(token)
        return len(got) >= n
    wait_until(check, timeout=timeout, what=f"{n} push(es) to {token}")
    return got


def register_device(user, token, platform="android"):
    r = user.post("/v1/me/devices", json={"token": token, "platform": platform})
    assert r.status_code == 201, r.text
