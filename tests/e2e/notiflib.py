"""notiflib.py -- helpers for the e2e tests of the notification daemon: inbox reads, waits, and
hand-made events on the broker."""
import json
import os
import time
import uuid

import httpx

from authlib import RABBIT_API, _q
from conftest import wait_until
from publib import queue_messages

NOTIFICATION_KEYS = {"id", "type", "created_at", "read", "actor", "target"}
ACTOR_KEYS = {"id", "username", "name", "avatar"}


def inbox(user, **params):
    """Every notification of user (all pages), newest first."""
    items, cursor = [], None
    for _ in range(100):
        q = {k: v for k, v in params.items() if v is not None}
        if cursor:
            q["cursor"] = cursor
        r = user.get("/v1/notifications", params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}, body
        for n in body["items"]:
            check_notification(n)
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def check_notification(n):
    assert set(n) == NOTIFICATION_KEYS, n
    assert len(n["id"]) == 24 and all(c in "0123456789abcdef" for c in n["id"]), n
    assert n["type"] in ("like", "comment", "follow", "post"), n
    assert isinstance(n["read"], bool)
    assert set(n["actor"]) == ACTOR_KEYS, n
    t = n["target"]
    if n["type"] == "follow":
        assert t is None, n
    else:
        assert t["type"] in ("post", "comment") and t["id"] and t["post_id"], n
        assert t["thumbnail_url"] is None or t["thumbnail_url"].startswith(("http", "/")), n
    return n


def unread(user):
    r = user.get("/v1/notifications/unread_count")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"count"}
    return r.json()["count"]


def kinds(user):
    """(type, actor username, target id or None) of every notification, newest first."""
    return [(n["type"], n["actor"]["username"], n["target"]["id"] if n["target"] else None) for n in inbox(user)]


def wait_inbox(user, predicate, timeout=15, what="inbox"):
    """Waits until predicate(items) holds for user's inbox; returns the items."""
    got = []

    def check():
        items = inbox(user)
        if predicate(items):
            got.append(items)
            return True
        return False
    wait_until(check, timeout=timeout, interval=0.2, what=what)
    return got[-1]


def settle(seconds=1.5):
    """Time for events that should NOT change anything to have been handled."""
    time.sleep(seconds)


def publish_event(key, body, message_id=None):
    """Publishes an event to the exchange `events` by hand (as a redelivery or a foreign publisher would)."""
    with httpx.Client(base_url=RABBIT_API, auth=("guest", "guest"), timeout=10) as http:
        payload = body if isinstance(body, str) else json.dumps(body)
        r = http.post("/exchanges/%2F/events/publish", json={
            "properties": {"delivery_mode": 2, "message_id": message_id or str(uuid.uuid4()), "type": key,
                           "app_id": "tests", "content_type": "application/json"},
            "routing_key": key, "payload": payload, "payload_encoding": "string"})
        assert r.status_code == 200 and r.json()["routed"], r.text


def queue_depth(name):
    """Messages in a queue now (asked of the queue itself, not the management API's samples)."""
    return queue_messages(name)


ADMIN = f"http://127.0.0.1:{int(os.environ.get('STACK_ADMIN_BASE', '9200')) + 4}"


def notification_ready():
    try:
        return httpx.get(f"{ADMIN}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
