"""test_resilience_search.py -- search killed with SIGKILL in the middle of a burst of events, and a
broker restart: no event is lost (search.events is durable, the index is rebuilt from MongoDB at
start and after its per-copy queue died), and no counter counts an event twice."""
import json
import os
import signal
import time
import uuid

import httpx

from authlib import RABBIT_API, User, h2
from conftest import stack, wait_until
from notiflib import queue_depth
from publib import make_post
from test_resilience import alive, pid_of

POSTS = 300
LIKES = 100

ADMIN = f"http://127.0.0.1:{int(os.environ.get('STACK_ADMIN_BASE', '9200')) + 5}"


def search_ready():
    try:
        return httpx.get(f"{ADMIN}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def search(q, **params):
    with h2() as c:
        r = c.get("/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()


def publish_all(events):
    """Publishes (key, body) pairs to the exchange events through one management API connection."""
    with httpx.Client(base_url=RABBIT_API, auth=("guest", "guest"), timeout=10) as http:
        for key, body in events:
            r = http.post("/exchanges/%2F/events/publish", json={
                "properties": {"delivery_mode": 2, "message_id": str(uuid.uuid4()), "type": key, "app_id": "tests",
                               "content_type": "application/json"},
                "routing_key": key, "payload": json.dumps(body), "payload_encoding": "string"})
            assert r.status_code == 200 and r.json()["routed"], r.text


def word():
    return "w" + uuid.uuid4().hex[:12]


def test_kill9_mid_burst_loses_no_post_and_counts_no_like_twice():
    a = User()
    w = word()
    liked = uuid.uuid4().hex[:24]
    stack("stop", "search")
    try:
        # the burst waits in search.events while the daemon is down: posts, then likes of one of them
        events = []
        for i in range(POSTS):
            pid = liked if i == 0 else uuid.uuid4().hex[:24]
            events.append(("post.created", {
                "post_id": pid, "author_id": a.id, "author_username": a.username,
                "caption": f"{w} number{i}", "tags": [], "mentions": [],
                "media": [{"id": uuid.uuid4().hex, "width": 1, "height": 1, "variants": {}}],
                "created_at": f"2026-11-21T18:{i // 60:02d}:{i % 60:02d}.000Z"}))
        for i in range(LIKES):
            events.append(("like.created", {
                "target_type": "post", "target_id": liked, "post_id": liked, "recipient_id": a.id,
                "user_id": f"fan{i}", "username": f"fan{i:04d}", "created_at": "2026-11-21T19:00:00.000Z"}))
        publish_all(events)
        total = queue_depth("search.events")
        assert total >= POSTS + LIKES, total
    finally:
        stack("start", "search")
    # SIGKILL (by its recorded pid) as soon as it has taken the first of the burst
    pid = pid_of("search")
    wait_until(lambda: queue_depth("search.events") < total, timeout=60, interval=0.01,
               what="search consuming the burst")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), timeout=20, what="search gone")
    assert queue_depth("search.events") > 0, "the kill came after the burst: make it longer"
    stack("start", "search")
    wait_until(search_ready, timeout=30, what="search ready again")
    wait_until(lambda: queue_depth("search.events") == 0, timeout=120, what="the burst handled")
    found = wait_until(lambda: (lambda r: r if r["total"] == POSTS else None)(search(w, limit=1)), timeout=10,
                       what="every post of the burst")
    assert found["total"] == POSTS
    top = search(f"{w} number0")["items"][0]
    assert top["id"] == liked
    assert top["like_count"] == LIKES  # each like once, though some were redelivered after the kill


def test_index_follows_again_after_a_broker_restart():
    a = User()
    w = word()
    before = make_post(a, f"{w} before")
    wait_until(lambda: search(w)["total"] == 1, timeout=5, interval=0.05, what="the first post indexed")
    pid = pid_of("search")
    stack("stop", "rabbitmq")
    try:
        time.sleep(1)
    finally:
        stack("start", "rabbitmq")
    wait_until(search_ready, timeout=60, what="search ready after the broker came back")

    def posted():
        try:
            return make_post(a, f"{w} after")
        except AssertionError:
            return None  # publication still reconnecting
    after = wait_until(posted, timeout=30, interval=0.5, what="a post after the restart")
    # the copy's queue died with the connection: a new one, and the index rebuilt from MongoDB
    got = wait_until(lambda: (lambda r: r if r["total"] == 2 else None)(search(w)), timeout=10, interval=0.1,
                     what="both posts found")
    assert {i["id"] for i in got["items"]} == {before["id"], after["id"]}
    assert pid_of("search") == pid and alive(pid)
