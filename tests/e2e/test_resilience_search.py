"""test_resilience_search.py -- search killed with SIGKILL in the middle of a burst of events: no
event is lost (search.events is durable, the index is rebuilt from MongoDB at start) and no count
counts an event twice. (A broker restart: test_resilience.py.)"""
import json
import os
import signal
import uuid

import httpx

from authlib import RABBIT_API, User
from conftest import stack, wait_until
from notiflib import queue_depth
from searchlib import search, search_ready, word
from test_resilience import alive, pid_of

POSTS = 160
LIKES = 400  # the burst must outlast the polls that look for its first taken message, on a busy machine

def publish_all(events):
    """Publishes (key, body) pairs to the exchange events through one management API connection."""
    with httpx.Client(base_url=RABBIT_API, auth=("guest", "guest"), timeout=10) as http:
        for key, body in events:
            r = http.post("/exchanges/%2F/events/publish", json={
                "properties": {"delivery_mode": 2, "message_id": str(uuid.uuid4()), "type": key, "app_id": "tests",
                               "content_type": "application/json"},
                "routing_key": key, "payload": json.dumps(body), "payload_encoding": "string"})
            assert r.status_code == 200 and r.json()["routed"], r.text


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
    try:
        wait_until(lambda: queue_depth("search.events") < total, timeout=60, interval=0.01,
                   what="search consuming the burst")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), timeout=20, what="search gone")
        assert queue_depth("search.events") > 0, "the kill came after the burst: make it longer"
    finally:
        if not alive(pid_of("search")):  # the tests after this one need search, whatever happened here
            stack("start", "search")
    wait_until(search_ready, timeout=30, what="search ready again")
    wait_until(lambda: queue_depth("search.events") == 0, timeout=120, what="the burst handled")
    found = wait_until(lambda: (lambda r: r if r["total"] == POSTS else None)(search(None, w, limit=1)), timeout=10,
                       what="every post of the burst")
    assert found["total"] == POSTS
    top = search(None, f"{w} number0")["items"][0]
    assert top["id"] == liked
    assert top["like_count"] == LIKES  # each like once, though some were redelivered after the kill
