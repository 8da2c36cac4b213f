"""test_auth_events.py -- what auth publishes (each write once, with the properties DESIGN.md names)
and what it consumes (posts_count from post.created / post.deleted, idempotently; malformed events
dead-lettered)."""
import json
import uuid

from conftest import bearer, h2_client, wait_until
from rabbitlib import EventQueue, publish_event, queue_info


def register(c, prefix="ev"):
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    r = c.post("/v1/auth/register", json={"username": name, "email": f"{name}@example.com",
                                            "password": "correct horse", "name": name.title()})
    assert r.status_code == 201, r.text
    return r.json()


def test_each_write_publishes_its_event_once_with_design_properties():
    keys = ["user.registered", "follow.created", "follow.deleted", "block.created", "block.deleted"]
    with h2_client() as c, EventQueue(keys) as q:
        a, b = register(c), register(c)
        ha, a_id, b_id = bearer(a["access_token"]), a["user"]["id"], b["user"]["id"]
        bname = b["user"]["username"]
        assert c.post(f"/v1/users/{bname}/follow", headers=ha).status_code == 200
        assert c.post(f"/v1/users/{bname}/follow", headers=ha).status_code == 200  # no change, no event
        assert c.delete(f"/v1/users/{bname}/follow", headers=ha).status_code == 200
        assert c.post(f"/v1/users/{bname}/block", headers=ha).status_code == 200
        assert c.delete(f"/v1/users/{bname}/block", headers=ha).status_code == 200

        mine = lambda m: a_id in m["payload"] or b_id in m["payload"]
        msgs = q.take(want=6, predicate=mine)
        msgs += q.take(want=1, timeout=1.5, predicate=mine)  # nothing more may come
        got = [m["routing_key"] for m in msgs]
        assert got == ["user.registered", "user.registered", "follow.created", "follow.deleted",
                       "block.created", "block.deleted"], got
        for m in msgs:
            p = m["properties"]
            assert m["exchange"] == "events"
            assert p["delivery_mode"] == 2 and p["app_id"] == "auth" and p["type"] == m["routing_key"]
            assert p["content_type"] == "application/json" and p["timestamp"] > 0
            uuid.UUID(p["message_id"])
        assert len({m["properties"]["message_id"] for m in msgs}) == len(msgs)
        follow = msgs[2]["body"]
        assert follow["follower_id"] == a_id and follow["followee_id"] == b_id
        assert follow["followee_username"] == bname


def posts_count(c, username):
    r = c.get(f"/v1/users/{username}")
    assert r.status_code == 200, r.text
    return r.json()["posts_count"]


def test_posts_count_follows_post_events_and_ignores_redeliveries():
    with h2_client() as c:
        u = register(c)
        uid, name = u["user"]["id"], u["user"]["username"]
        posts = [f"p{uuid.uuid4().hex[:12]}" for _ in range(3)]
        for p in posts:
            publish_event("post.created", {"post_id": p, "author_id": uid, "caption": "x"})
        wait_until(lambda: posts_count(c, name) == 3, timeout=10, what="posts_count 3")
        # The same post again (a redelivery, even under another message id) changes nothing.
        publish_event("post.created", {"post_id": posts[0], "author_id": uid})
        publish_event("post.deleted", {"post_id": posts[1], "author_id": uid})
        wait_until(lambda: posts_count(c, name) == 2, timeout=10, what="posts_count 2")
        publish_event("post.deleted", {"post_id": posts[1], "author_id": uid})  # twice
        publish_event("post.created", {"post_id": f"p{uuid.uuid4().hex[:12]}", "author_id": uid})
        wait_until(lambda: posts_count(c, name) == 3, timeout=10, what="posts_count 3 again")
        me = c.get("/v1/me", headers=bearer(u["access_token"])).json()
        assert me["posts_count"] == 3


def test_malformed_post_events_are_dead_lettered_not_retried_forever():
    before = queue_info("auth.events.dlq")["messages"]
    publish_event("post.created", None, raw="{not json")
    publish_event("post.created", {"post_id": 42})
    wait_until(lambda: queue_info("auth.events.dlq")["messages"] >= before + 2, timeout=15,
               what="two messages dead-lettered")
    wait_until(lambda: queue_info("auth.events")["messages"] == 0, timeout=15, what="auth.events drained")
