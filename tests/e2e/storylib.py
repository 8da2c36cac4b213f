"""storylib.py -- helpers for the e2e tests of stories and highlights (services/publication/README.md,
"Stories and highlights"): making them, their shapes, a user's stories, the stories feed, highlights
lists, follows and blocks waited for until publication has them, and publication restarted with other
settings.
"""
from datetime import timedelta

from conftest import stack, start_with_env, wait_until
from publib import (AUTHOR_KEYS, OBJECT_ID, check_author, check_media, check_time, ids,
                    media_ids, page, walk, publication_ready)

STORY_KEYS = {"id", "author", "media", "created_at", "expires_at", "seen"}
FEED_ITEM_KEYS = {"user", "has_unseen", "stories"}
HIGHLIGHT_KEYS = {"id", "owner", "title", "stories", "created_at"}
COPY_KEYS = {"id", "media", "created_at"}
DAY = timedelta(hours=24)


# ------------------------------------------------------------------ shapes

def check_story(s, author=None, seen=None, ttl=DAY):
    assert set(s) == STORY_KEYS, sorted(s)
    assert OBJECT_ID.match(s["id"]), s["id"]
    check_author(s["author"], author)
    check_media(s["media"])
    created, expires = check_time(s["created_at"]), check_time(s["expires_at"])
    if ttl is not None:
        assert expires - created == ttl, (s["created_at"], s["expires_at"])
    assert isinstance(s["seen"], bool)
    if seen is not None:
        assert s["seen"] is seen, s
    return s


def check_highlight(h, owner=None):
    assert set(h) == HIGHLIGHT_KEYS, sorted(h)
    assert OBJECT_ID.match(h["id"]), h["id"]
    check_author(h["owner"], owner)
    assert isinstance(h["title"], str) and h["title"].strip()
    assert isinstance(h["stories"], list) and 1 <= len(h["stories"]) <= 100
    for c in h["stories"]:
        assert set(c) == COPY_KEYS, sorted(c)
        assert OBJECT_ID.match(c["id"])
        check_media(c["media"])
        check_time(c["created_at"])
    check_time(h["created_at"])
    return h


def check_feed_item(x):
    assert set(x) == FEED_ITEM_KEYS, sorted(x)
    assert set(x["user"]) == AUTHOR_KEYS
    assert isinstance(x["has_unseen"], bool)
    assert x["stories"], x
    for s in x["stories"]:
        check_story(s, seen=None, ttl=None)
        assert s["author"] == x["user"]
    assert ids(x["stories"]) == sorted(ids(x["stories"])), "stories oldest first"
    assert x["has_unseen"] == any(not s["seen"] for s in x["stories"]), x
    return x


# ------------------------------------------------------------------ stories

def create_story(user, media_id=None, **extra):
    body = {"media_id": media_id if media_id is not None else media_ids(user, 1)[0], **extra}
    return user.post("/v1/stories", json=body)


def make_story(user, media_id=None, ttl=DAY):
    r = create_story(user, media_id)
    assert r.status_code == 201, (r.status_code, r.text)
    return check_story(r.json(), user, seen=False, ttl=ttl)


def user_stories(client_or_user, username):
    """The items of GET /v1/users/{username}/stories (one page: next_cursor null)."""
    body = page(client_or_user, f"/v1/users/{username}/stories")
    assert body["next_cursor"] is None, body
    return body["items"]


def seen(user, sid):
    return user.post(f"/v1/stories/{sid}/seen")


def feed(user, limit=None):
    """Every page of the user's stories feed; returns (items, pages)."""
    items, pages = walk(user, "/v1/stories/feed", limit=limit)
    for x in items:
        check_feed_item(x)
    return items, pages


def feed_users(user, limit=None):
    return [x["user"]["username"] for x in feed(user, limit)[0]]


# ------------------------------------------------------------------ highlights

def create_highlight(user, story_ids, title="Summer"):
    return user.post("/v1/highlights", json={"title": title, "story_ids": story_ids})


def make_highlight(user, story_ids, title="Summer"):
    r = create_highlight(user, story_ids, title)
    assert r.status_code == 201, (r.status_code, r.text)
    h = check_highlight(r.json(), user)
    assert h["title"] == title
    assert ids(h["stories"]) == list(story_ids)
    return h


def highlights(client_or_user, username, limit=None):
    items, pages = walk(client_or_user, f"/v1/users/{username}/highlights", limit=limit)
    for h in items:
        check_highlight(h)
    return items, pages


# ------------------------------------------------------------------ the graph, as publication sees it

def follow_seen(follower, followee, sid):
    """follower follows followee and publication knows it: followee's story sid shows to follower,
    and followee is in follower's stories feed (the edge and the following list are written one
    after the other)."""
    assert follower.follow(followee).status_code == 200
    wait_until(lambda: sid in ids(user_stories(follower, followee.username)) and
               followee.username in feed_users(follower), timeout=20,
               what=f"{follower.username} following {followee.username} in publication")


def block_seen(blocker, blocked):
    """blocker blocks blocked, and publication answers 404 for each one's stories to the other."""
    assert blocker.block(blocked).status_code == 200
    wait_until(lambda: blocked.get(f"/v1/users/{blocker.username}/stories").status_code == 404, timeout=20,
               what=f"{blocker.username} blocking {blocked.username} in publication")


# ------------------------------------------------------------------ publication with other settings

def restart_publication(**env):
    """Restarts publication with env added to the stack's environment (none: as the stack runs it)."""
    stack("stop", "publication")
    start_with_env("publication", publication_ready, **env)

