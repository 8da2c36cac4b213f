"""test_posts_events.py -- what publication publishes (services/publication/README.md, "Event payloads"):
every action's event once, with exactly the README's members and the values the API shows; idempotent
actions and cascades publish nothing more."""
import uuid
from datetime import timedelta

import pytest

from authlib import users  # noqa: F401 (fixture)
from conftest import wait_until
from publib import (check_time, comment, known, like, like_answer, make_post, parse_time, post_media_of, unlike,
                    upload_media)
from rabbitlib import EventQueue

PAYLOAD_KEYS = {
    "post.created": {"post_id", "author_id", "author_username", "caption", "tags", "mentions", "media", "created_at"},
    "post.updated": {"post_id", "author_id", "caption", "tags", "mentions", "edited_at"},
    "post.deleted": {"post_id", "author_id", "deleted_at"},
    "comment.created": {"comment_id", "post_id", "post_author_id", "author_id", "author_username", "text", "reply_to",
                        "reply_to_author_id", "created_at"},
    "comment.deleted": {"comment_id", "post_id", "post_author_id", "author_id", "reply_ids", "deleted_at"},
    "like.created": {"target_type", "target_id", "post_id", "recipient_id", "user_id", "username", "created_at"},
    "like.deleted": {"target_type", "target_id", "post_id", "recipient_id", "user_id", "deleted_at"},
}
KEYS = sorted(PAYLOAD_KEYS)


@pytest.fixture
def events():
    with EventQueue(KEYS) as q:
        yield q


def about(*post_ids):
    return lambda m: m["body"].get("post_id") in post_ids


def take(q, want, *post_ids, timeout=10, last=False):
    """Exactly want events about the posts, each checked for its envelope and its members; returns
    [(key, body)]. The last take of a test (and a take of none) waits a little longer for any
    extra event; an extra one before is caught by the next take."""
    got = q.take(want, timeout=timeout, predicate=about(*post_ids))
    if last or want == 0:
        got += q.take(1, timeout=1.0, predicate=about(*post_ids))
    out = [(m["routing_key"], m["body"]) for m in got]
    assert len(got) == want, out
    for m in got:
        key, p = m["routing_key"], m["properties"]
        assert m["exchange"] == "events"
        assert set(m["body"]) == PAYLOAD_KEYS[key], (key, sorted(m["body"]))
        assert p["delivery_mode"] == 2 and p["app_id"] == "publication" and p["type"] == key, p
        assert p["content_type"] == "application/json" and p["message_id"], p
        for k, v in m["body"].items():
            if k.endswith("_at"):
                check_time(v)
    assert len({m["properties"]["message_id"] for m in got}) == len(got), "message ids repeat"
    return out


def near(t1, t2, seconds=2):
    return abs(parse_time(t1) - parse_time(t2)) <= timedelta(seconds=seconds)


# ------------------------------------------------------------------ posts

def test_post_created_updated_deleted(users, events):
    a, b = users(2)
    known(b)
    tag = f"ev{uuid.uuid4().hex[:10]}"
    ups = upload_media(a, 2)
    p = make_post(a, f"#{tag.upper()} hello @{b.username}", ids=[ups[1]["id"], ups[0]["id"]])
    [(key, body)] = take(events, 1, p["id"])
    assert key == "post.created"
    assert body == {"post_id": p["id"], "author_id": a.id, "author_username": a.username, "caption": p["caption"],
                    "tags": [tag], "mentions": [{"id": b.id, "username": b.username}],
                    "media": [post_media_of(ups[1]), post_media_of(ups[0])], "created_at": body["created_at"]}
    assert body["media"] == p["media"]
    assert near(body["created_at"], p["created_at"])

    r = a.patch(f"/v1/posts/{p['id']}", json={"caption": "#Second thoughts"})
    assert r.status_code == 200, r.text
    e = r.json()
    [(key, body)] = take(events, 1, p["id"])
    assert key == "post.updated"
    assert body == {"post_id": p["id"], "author_id": a.id, "caption": "#Second thoughts", "tags": ["second"],
                    "mentions": [], "edited_at": body["edited_at"]}
    assert near(body["edited_at"], e["edited_at"])

    assert a.delete(f"/v1/posts/{p['id']}").status_code == 204
    [(key, body)] = take(events, 1, p["id"])
    assert key == "post.deleted"
    assert body == {"post_id": p["id"], "author_id": a.id, "deleted_at": body["deleted_at"]}
    assert parse_time(body["deleted_at"]) >= parse_time(e["edited_at"])
    # Deleting again (404) publishes nothing.
    assert a.delete(f"/v1/posts/{p['id']}").status_code == 404
    take(events, 0, p["id"])


def test_post_deleted_alone_for_a_post_with_comments_and_likes(users, events):
    a, b = users(2)
    p = make_post(a, "busy post")
    top = comment(b, p["id"], "top")
    comment(a, p["id"], "reply", reply_to=top["id"])
    like_answer(like(b, "posts", p["id"]), True, 1)
    like_answer(like(a, "comments", top["id"]), True, 1)
    assert [k for k, _ in take(events, 5, p["id"])] == ["post.created", "comment.created", "comment.created",
                                                        "like.created", "like.created"]
    assert a.delete(f"/v1/posts/{p['id']}").status_code == 204
    assert [k for k, _ in take(events, 1, p["id"], last=True)] == ["post.deleted"]


# ------------------------------------------------------------------ comments

def test_comment_created_and_deleted(users, events):
    a, b, c = users(3)
    p = make_post(a, "discuss")
    top = comment(b, p["id"], "top level")
    reply = comment(c, p["id"], "a reply", reply_to=top["id"])
    own = comment(b, p["id"], "b answers in its thread", reply_to=top["id"])
    again = comment(c, p["id"], "reply to b's reply", reply_to=own["id"])
    got = take(events, 5, p["id"])
    assert [k for k, _ in got] == ["post.created"] + ["comment.created"] * 4
    base = {"post_id": p["id"], "post_author_id": a.id}
    assert got[1][1] == {**base, "comment_id": top["id"], "author_id": b.id, "author_username": b.username,
                         "text": "top level", "reply_to": None, "reply_to_author_id": None,
                         "created_at": got[1][1]["created_at"]}
    assert got[2][1] == {**base, "comment_id": reply["id"], "author_id": c.id, "author_username": c.username,
                         "text": "a reply", "reply_to": top["id"], "reply_to_author_id": b.id,
                         "created_at": got[2][1]["created_at"]}
    # A reply to a reply joins the top-level comment's thread. (The contract does not say whether
    # reply_to_author_id is then the top-level comment's author or the answered reply's: here both are b.)
    assert got[4][1]["reply_to"] == top["id"] and got[4][1]["reply_to_author_id"] == b.id
    for (_, body), cm in zip(got[1:], (top, reply, own, again)):
        assert near(body["created_at"], cm["created_at"])

    # An edit publishes nothing (no comment.updated in the contract).
    assert b.patch(f"/v1/comments/{top['id']}", json={"text": "edited"}).status_code == 200
    # The post's author removes the thread: one event naming the replies; its author is b.
    assert a.delete(f"/v1/comments/{top['id']}").status_code == 204
    [(key, body)] = take(events, 1, p["id"])
    assert key == "comment.deleted"
    assert sorted(body.pop("reply_ids")) == sorted([reply["id"], own["id"], again["id"]])
    assert body == {**base, "comment_id": top["id"], "author_id": b.id, "deleted_at": body["deleted_at"]}
    assert a.delete(f"/v1/comments/{top['id']}").status_code == 404
    take(events, 0, p["id"])


def test_reply_deleted_has_no_reply_ids(users, events):
    a, b = users(2)
    p = make_post(a, "x")
    top = comment(a, p["id"], "top")
    reply = comment(b, p["id"], "reply", reply_to=top["id"])
    take(events, 3, p["id"])
    assert b.delete(f"/v1/comments/{reply['id']}").status_code == 204
    [(key, body)] = take(events, 1, p["id"], last=True)
    assert key == "comment.deleted"
    assert body == {"comment_id": reply["id"], "post_id": p["id"], "post_author_id": a.id, "author_id": b.id,
                    "reply_ids": [], "deleted_at": body["deleted_at"]}


# ------------------------------------------------------------------ likes

def test_like_events_for_posts_and_comments_once(users, events):
    a, b, c = users(3)
    p = make_post(a, "likeable")
    cm = comment(c, p["id"], "likeable comment")
    take(events, 2, p["id"])
    like_answer(like(b, "posts", p["id"]), True, 1)
    like_answer(like(b, "posts", p["id"]), True, 1)  # no change, no event
    like_answer(like(b, "comments", cm["id"]), True, 1)
    like_answer(like(b, "comments", cm["id"]), True, 1)
    got = take(events, 2, p["id"])
    assert got[0] == ("like.created", {"target_type": "post", "target_id": p["id"], "post_id": p["id"],
                                       "recipient_id": a.id, "user_id": b.id, "username": b.username,
                                       "created_at": got[0][1]["created_at"]})
    assert got[1] == ("like.created", {"target_type": "comment", "target_id": cm["id"], "post_id": p["id"],
                                       "recipient_id": c.id, "user_id": b.id, "username": b.username,
                                       "created_at": got[1][1]["created_at"]})
    like_answer(unlike(b, "posts", p["id"]), False, 0)
    like_answer(unlike(b, "posts", p["id"]), False, 0)
    like_answer(unlike(b, "comments", cm["id"]), False, 0)
    like_answer(unlike(b, "comments", cm["id"]), False, 0)
    like_answer(unlike(a, "posts", p["id"]), False, 0)  # never liked
    got = take(events, 2, p["id"], last=True)
    assert got[0] == ("like.deleted", {"target_type": "post", "target_id": p["id"], "post_id": p["id"],
                                       "recipient_id": a.id, "user_id": b.id, "deleted_at": got[0][1]["deleted_at"]})
    assert got[1] == ("like.deleted", {"target_type": "comment", "target_id": cm["id"], "post_id": p["id"],
                                       "recipient_id": c.id, "user_id": b.id, "deleted_at": got[1][1]["deleted_at"]})


def test_own_like_event_names_oneself_as_recipient(users, events):
    a = users()
    p = make_post(a, "self")
    take(events, 1, p["id"])
    like_answer(like(a, "posts", p["id"]), True, 1)
    [(key, body)] = take(events, 1, p["id"], last=True)
    assert key == "like.created" and body["recipient_id"] == a.id == body["user_id"]


# ------------------------------------------------------------------ account deletion

def test_account_deletion_publishes_post_deleted_for_each_post_and_nothing_else(users, events):
    a, b = users(2)
    mine = [make_post(a, f"a's {i}") for i in range(3)]
    theirs = make_post(b, "b's")
    cm = comment(a, theirs["id"], "a's comment")
    like_answer(like(a, "posts", theirs["id"]), True, 1)
    all_ids = [p["id"] for p in mine] + [theirs["id"]]
    take(events, 6, *all_ids)
    assert a.delete("/v1/me").status_code == 204

    def gone():
        p = b.get(f"/v1/posts/{theirs['id']}").json()
        return ((p["like_count"], p["comment_count"]) == (0, 0) and
                b.get(f"/v1/comments/{cm['id']}").status_code == 404 and
                all(b.get(f"/v1/posts/{x['id']}").status_code == 404 for x in mine))
    wait_until(gone, timeout=20, what="a's posts, comment and like gone")
    # One post.deleted per post; a's comment and like on b's post go without events of their own.
    got = events.take(3, timeout=10, predicate=about(*all_ids))
    got += events.take(1, timeout=1.5, predicate=about(*all_ids))
    assert sorted((m["routing_key"], m["body"]["post_id"]) for m in got) == sorted(
        ("post.deleted", p["id"]) for p in mine), [(m["routing_key"], m["body"]) for m in got]
    for m in got:
        assert set(m["body"]) == PAYLOAD_KEYS["post.deleted"] and m["body"]["author_id"] == a.id
        check_time(m["body"]["deleted_at"])
