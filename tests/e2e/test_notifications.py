"""test_notifications.py -- the in-app inbox (GET /v1/notifications, unread_count, read_all,
PATCH /v1/notifications/{id}) as events make it: every type and its retraction, blocks, deletions,
read marks, paging, idempotency and bad input, through the gateway over HTTP/2."""
import json
import uuid

import pytest

import publib
from authlib import User, h2, make_users, problem_errors
from conftest import bearer, is_problem, wait_until
from notiflib import (check_notification, inbox, kinds, publish_event, queue_depth, settle, unread,
                      wait_inbox)


def has(items, type_, actor, target=None):
    return any(n["type"] == type_ and n["actor"]["id"] == actor.id and
               (target is None or (n["target"] or {}).get("id") == target) for n in items)


# ------------------------------------------------------------------ each type, and what takes it back

def test_follow_notifies_the_followed_and_unfollow_takes_it_back():
    a, b = User(name="Ann"), User()
    assert b.follow(a).status_code == 200
    items = wait_inbox(a, lambda i: has(i, "follow", b), what="follow notification")
    n = items[0]
    assert n["actor"] == {"id": b.id, "username": b.username, "name": "", "avatar": None}
    assert n["target"] is None and n["read"] is False
    assert unread(a) == 1
    assert inbox(b) == [], "the follower is told nothing"
    assert b.unfollow(a).status_code == 200
    wait_inbox(a, lambda i: i == [], what="follow retracted")
    assert unread(a) == 0
    # following again is news again
    assert b.follow(a).status_code == 200
    wait_inbox(a, lambda i: has(i, "follow", b), what="second follow")
    assert unread(a) == 1


def test_likes_of_a_post_and_of_a_comment_and_unlike_takes_them_back():
    a, b = User(), User()
    post = publib.make_post(a, "sunset")
    c = publib.comment(a, post["id"], "my own comment")
    assert publib.like(b, "posts", post["id"]).status_code == 200
    assert publib.like(b, "comments", c["id"]).status_code == 200
    items = wait_inbox(a, lambda i: len(i) == 2, what="two likes")
    by_target = {n["target"]["type"]: n for n in items}
    p, cm = by_target["post"], by_target["comment"]
    assert p["type"] == cm["type"] == "like"
    assert p["target"]["id"] == p["target"]["post_id"] == post["id"]
    assert p["target"]["thumbnail_url"] == post["media"][0]["variants"]["thumb"]["url"]
    assert cm["target"]["id"] == c["id"] and cm["target"]["post_id"] == post["id"]
    assert unread(a) == 2
    assert publib.unlike(b, "posts", post["id"]).status_code == 200
    wait_inbox(a, lambda i: [n["target"]["type"] for n in i] == ["comment"], what="post like retracted")
    assert publib.unlike(b, "comments", c["id"]).status_code == 200
    wait_inbox(a, lambda i: i == [], what="comment like retracted")
    # liking one's own post tells no one
    assert publib.like(a, "posts", post["id"]).status_code == 200
    settle()
    assert inbox(a) == []


def test_comments_and_replies_notify_the_post_author_and_the_parent_author():
    a, b, c = User(), User(), User()
    post = publib.make_post(a, "lake")
    top = publib.comment(b, post["id"], "first!")
    items = wait_inbox(a, lambda i: has(i, "comment", b), what="comment notification")
    t = items[0]["target"]
    assert t == {"type": "comment", "id": top["id"], "post_id": post["id"],
                 "thumbnail_url": post["media"][0]["variants"]["thumb"]["url"], "text": "first!", "reply_to": None}
    reply = publib.comment(c, post["id"], "x" * 300, reply_to=top["id"])
    wait_inbox(b, lambda i: has(i, "comment", c, reply["id"]), what="reply notification to the parent author")
    items = wait_inbox(a, lambda i: has(i, "comment", c, reply["id"]), what="reply notification to the post author")
    r = [n for n in items if n["target"]["id"] == reply["id"]][0]
    assert r["target"]["reply_to"] == top["id"]
    assert r["target"]["text"] == "x" * 200, "cut to 200 characters"
    # the post author's own comment and one's own reply tell no one about themselves
    publib.comment(a, post["id"], "thanks")
    publib.comment(b, post["id"], "me again", reply_to=top["id"])
    settle()
    assert not has(inbox(a), "comment", a) and not has(inbox(b), "comment", b)
    # deleting the top comment takes back it, its replies, and whatever they caused
    assert publib.like(a, "comments", reply["id"]).status_code == 200
    wait_inbox(c, lambda i: has(i, "like", a, reply["id"]), what="like of the reply")
    assert b.delete(f"/v1/comments/{top['id']}").status_code == 204
    wait_inbox(a, lambda i: not any(n["type"] == "comment" and n["target"]["id"] in (top["id"], reply["id"])
                                    for n in i), what="comments retracted at the post author")
    wait_inbox(b, lambda i: not has(i, "comment", c), what="reply retracted at the parent author")
    wait_inbox(c, lambda i: i == [], what="like of a deleted reply retracted")
    assert unread(c) == 0


def test_a_new_post_notifies_followers_and_its_deletion_takes_everything_about_it_back():
    a = User()
    followers = make_users(3)
    for f in followers:
        assert f.follow(a).status_code == 200
    post = publib.make_post(a, "new!")
    for f in followers:
        items = wait_inbox(f, lambda i: has(i, "post", a, post["id"]), what="X posted")
        n = [x for x in items if x["type"] == "post"][0]
        assert n["target"]["type"] == "post" and n["target"]["post_id"] == post["id"]
    # a non-follower is not told
    other = User()
    settle(0.5)
    assert inbox(other) == []
    assert publib.like(followers[0], "posts", post["id"]).status_code == 200
    publib.comment(followers[1], post["id"], "wow")
    wait_inbox(a, lambda i: sum(1 for n in i if n["type"] in ("like", "comment")) == 2, what="like and comment")
    assert a.delete(f"/v1/posts/{post['id']}").status_code == 204
    for f in followers:
        wait_inbox(f, lambda i: not has(i, "post", a), what="post notification gone with the post")
    wait_inbox(a, lambda i: all(n["type"] == "follow" for n in i), what="likes and comments gone with the post")
    assert unread(a) == 3


# ------------------------------------------------------------------ blocks and deleted accounts

def test_a_block_removes_what_each_was_told_of_the_other_and_stops_new_ones():
    a, b = User(), User()
    post = publib.make_post(a, "mine")
    assert b.follow(a).status_code == 200
    assert a.follow(b).status_code == 200
    assert publib.like(b, "posts", post["id"]).status_code == 200
    wait_inbox(a, lambda i: has(i, "follow", b) and has(i, "like", b), what="follow and like")
    wait_inbox(b, lambda i: has(i, "follow", a), what="follow back")
    assert a.block(b).status_code == 200
    wait_inbox(a, lambda i: i == [], what="the blocked one's notifications gone")
    wait_inbox(b, lambda i: i == [], what="the blocker's notifications gone")
    assert unread(a) == unread(b) == 0
    # after the block ends, new things are told again; the old ones stay gone
    assert a.unblock(b).status_code == 200
    assert b.follow(a).status_code == 200
    items = wait_inbox(a, lambda i: has(i, "follow", b), what="follow after unblock")
    assert [n["type"] for n in items] == ["follow"]


def test_a_deleted_account_leaves_no_notification_behind():
    a, b, c = User(), User(), User()
    post = publib.make_post(a, "hi")
    assert b.follow(a).status_code == 200
    assert c.follow(a).status_code == 200
    assert publib.like(b, "posts", post["id"]).status_code == 200
    wait_inbox(a, lambda i: len(i) == 3, what="three notifications")
    assert b.delete("/v1/me").status_code == 204
    items = wait_inbox(a, lambda i: len(i) == 1, what="the deleted account's notifications gone")
    assert items[0]["actor"]["id"] == c.id
    assert unread(a) == 1


# ------------------------------------------------------------------ read marks, counts, paging

def test_read_marks_unread_count_and_read_all():
    a = User()
    fans = make_users(3)
    for f in fans:
        assert f.follow(a).status_code == 200
    items = wait_inbox(a, lambda i: len(i) == 3, what="three follows")
    assert unread(a) == 3
    first = items[0]["id"]
    r = a.patch(f"/v1/notifications/{first}", json={"read": True})
    assert r.status_code == 200, r.text
    assert check_notification(r.json())["read"] is True and r.json()["id"] == first
    assert unread(a) == 2
    assert a.patch(f"/v1/notifications/{first}", json={"read": True}).json()["read"] is True
    assert unread(a) == 2, "idempotent"
    r = a.patch(f"/v1/notifications/{first}", json={"read": False})
    assert r.status_code == 200 and r.json()["read"] is False
    assert unread(a) == 3
    assert a.post("/v1/notifications/read_all").status_code == 204
    assert unread(a) == 0
    assert all(n["read"] for n in inbox(a))
    # one arriving later is unread; read_all on nothing is fine
    late = User()
    assert late.follow(a).status_code == 200
    wait_until(lambda: unread(a) == 1, timeout=15, what="a late follow unread")
    assert [n["read"] for n in inbox(a)] == [False, True, True, True]
    assert User().post("/v1/notifications/read_all").status_code == 204


def test_pages_are_newest_first_without_gaps_or_duplicates():
    a = User()
    fans = make_users(12)
    for f in fans:
        assert f.follow(a).status_code == 200
    wait_inbox(a, lambda i: len(i) == 12, what="twelve follows")
    everything = inbox(a)
    times = [n["created_at"] for n in everything]
    assert times == sorted(times, reverse=True)
    seen, cursor, pages = [], None, 0
    while True:
        r = a.get("/v1/notifications", params={"limit": 5, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        body = r.json()
        assert len(body["items"]) <= 5
        seen += [n["id"] for n in body["items"]]
        pages += 1
        # one arriving while paging goes to the top, not into the pages still to read
        if pages == 1:
            assert User().follow(a).status_code == 200
            wait_until(lambda: len(inbox(a)) == 13, timeout=15, what="a follow while paging")
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [n["id"] for n in everything]
    assert pages == 3


# ------------------------------------------------------------------ idempotency and hostile events

def test_a_redelivered_event_notifies_once_and_a_malformed_one_is_dead_lettered():
    a, b = User(), User()
    post = publib.make_post(a, "dup")
    like = {"target_type": "post", "target_id": post["id"], "post_id": post["id"], "recipient_id": a.id,
            "user_id": b.id, "username": b.username, "created_at": "2026-11-21T18:40:03.000Z"}
    for _ in range(3):
        publish_event("like.created", like)
    wait_inbox(a, lambda i: has(i, "like", b), what="a hand-made like")
    settle()
    assert len(inbox(a)) == 1 and unread(a) == 1
    # read it, then the same event again: still one, still read
    nid = inbox(a)[0]["id"]
    assert a.patch(f"/v1/notifications/{nid}", json={"read": True}).status_code == 200
    publish_event("like.created", like)
    settle()
    assert [(n["id"], n["read"]) for n in inbox(a)] == [(nid, True)]
    # an unlike older than the like leaves it; an unlike after it takes it back, and an older like
    # arriving late does not bring it back
    unl = {k: like[k] for k in ("target_type", "target_id", "post_id", "recipient_id", "user_id")}
    publish_event("like.deleted", {**unl, "deleted_at": "2026-11-21T18:40:02.000Z"})
    settle()
    assert len(inbox(a)) == 1
    publish_event("like.deleted", {**unl, "deleted_at": "2026-11-21T18:40:04.000Z"})
    wait_inbox(a, lambda i: i == [], what="unlike")
    publish_event("like.created", like)
    settle()
    assert inbox(a) == []
    before = queue_depth("notification.events.dlq")
    for bad in ("not json", json.dumps({"target_id": "x"}), json.dumps([1, 2])):
        publish_event("like.created", bad)
    publish_event("follow.created", {"follower_id": b.id})
    wait_until(lambda: queue_depth("notification.events.dlq") >= before + 4, timeout=20, what="dead letters")
    # and the queue still flows
    assert b.follow(a).status_code == 200
    wait_inbox(a, lambda i: has(i, "follow", b), what="a follow after the bad events")


def test_never_to_oneself_even_from_a_hand_made_event():
    a = User()
    publish_event("follow.created", {"follower_id": a.id, "follower_username": a.username, "followee_id": a.id,
                                     "followee_username": a.username, "created_at": "2026-11-21T18:40:03.000Z"})
    settle()
    assert inbox(a) == []


# ------------------------------------------------------------------ bad requests

def test_bad_requests_are_clear_problems():
    a = User()
    assert is_problem(h2().get("/v1/notifications"), 401)
    assert is_problem(h2().get("/v1/notifications/unread_count"), 401)
    assert is_problem(h2().post("/v1/notifications/read_all"), 401)
    assert is_problem(h2().patch(f"/v1/notifications/{'0' * 24}", json={"read": True}), 401)
    for limit in ("0", "101", "x", "-1", ""):
        problem_errors(a.get("/v1/notifications", params={"limit": limit}), 422, "limit")
    for cursor in ("garbage", "eyJsIjoibm90aWZpY2F0aW9ucyJ9"):
        is_problem(a.get("/v1/notifications", params={"cursor": cursor}), 400)
    # a cursor of another list
    b = User()
    publib.make_post(b, "one")
    publib.make_post(b, "two")
    other = publib.page(b, f"/v1/users/{b.username}/posts", limit=1)["next_cursor"]
    is_problem(a.get("/v1/notifications", params={"cursor": other}), 400)
    for nid in ("0" * 24, "nothex" * 4, "x", "0" * 25):
        is_problem(a.patch(f"/v1/notifications/{nid}", json={"read": True}), 404)
    c = User()
    assert a.follow(c).status_code == 200
    nid = wait_inbox(c, lambda i: len(i) == 1, what="a follow")[0]["id"]
    # someone else's notification is not found
    is_problem(a.patch(f"/v1/notifications/{nid}", json={"read": True}), 404)
    for body, fields in (({}, ["read"]), ({"read": "yes"}, ["read"]), ({"read": 1}, ["read"]),
                         ({"read": None}, ["read"]), ({"read": True, "extra": 1}, ["extra"])):
        problem_errors(c.patch(f"/v1/notifications/{nid}", json=body), 422, *fields)
    r = c.patch(f"/v1/notifications/{nid}", content=b"{not json", headers={"content-type": "application/json"})
    is_problem(r, 400)
    r = c.patch(f"/v1/notifications/{nid}", content=b"read=1", headers={"content-type": "text/plain"})
    is_problem(r, 415)
    assert inbox(c)[0]["read"] is False, "nothing changed"
