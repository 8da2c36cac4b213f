"""publib.py -- helpers for the e2e tests of publication (services/publication/README.md): posts made
from media uploaded on the fly, the Post, Comment, Author and Like shapes, list walking, comments and
likes, and waiting for publication's projections (users, blocks) to catch up with auth's events.

Users are authlib.User (each with its own client and address); a user's media are uploaded once
and reused by its posts (a post copies its media: nothing in the contract ties a media to one post).
"""
import functools
import os
import re
import uuid
from datetime import datetime

import httpx

import medialib as m
from authlib import RFC3339_UTC, h2
from conftest import is_problem, stack, wait_until
from test_media import upload

POST_KEYS = {"id", "author", "caption", "media", "tags", "mentions", "like_count", "comment_count", "liked_by_me",
             "created_at", "edited_at"}
COMMENT_KEYS = {"id", "post_id", "author", "text", "reply_to", "like_count", "liked_by_me", "created_at", "edited_at"}
AUTHOR_KEYS = {"id", "username", "name", "avatar"}
MEDIA_KEYS = {"id", "width", "height", "blurhash", "variants"}  # blurhash may be absent
VARIANT_KEYS = {"url", "webp_url", "width", "height"}
LIKE_KEYS = {"liked", "like_count"}
LIST_KEYS = {"items", "next_cursor"}
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")

ADMIN = f"http://127.0.0.1:{int(os.environ.get('STACK_ADMIN_BASE', '9200')) + 3}"

# Ids of the right shape that name nothing, and path ids of the wrong shape.
def unknown_id():
    return uuid.uuid4().hex[:24]


BAD_PATH_IDS = ["xyz", "0" * 23, "G" * 24, "ABCDEF0123456789ABCDEF01", "%24ne"]


@functools.lru_cache(maxsize=None)
def small_jpeg():
    return m.jpeg(64, 48, icc=False, comment=False)


# ------------------------------------------------------------------ media

def upload_media(user, n=1):
    """n fresh media of user's (the upload answers, in order)."""
    got = []
    for _ in range(n):
        r = upload(user.client, user.access, small_jpeg())
        assert r.status_code == 201, r.text
        got.append(r.json())
    return got


def media_ids(user, n=1):
    """n distinct media ids of user's, uploaded once per user and reused by later posts."""
    pool = user.__dict__.setdefault("_media", [])
    if len(pool) < n:
        pool.extend(upload_media(user, n - len(pool)))
    return [x["id"] for x in pool[:n]]


def media_body(user, mid):
    """The upload answer of one of user's pooled media."""
    return next(x for x in user.__dict__.get("_media", []) if x["id"] == mid)


def post_media_of(upload_answer):
    """What a post holds of one media: the upload answer without owner and time."""
    return {k: v for k, v in upload_answer.items() if k in MEDIA_KEYS}


# ------------------------------------------------------------------ shapes

def check_time(t):
    assert isinstance(t, str) and RFC3339_UTC.match(t), t
    return parse_time(t)


def parse_time(t):
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


def check_count(n):
    assert isinstance(n, int) and not isinstance(n, bool) and n >= 0, n


def check_author(a, user=None):
    assert set(a) == AUTHOR_KEYS, a
    assert isinstance(a["id"], str) and a["id"] and isinstance(a["username"], str)
    assert isinstance(a["name"], str)
    assert a["avatar"] is None or isinstance(a["avatar"], str)
    if user is not None:
        assert (a["id"], a["username"]) == (user.id, user.username), (a, user.username)
    return a


def check_media(x):
    assert set(x) in (MEDIA_KEYS, MEDIA_KEYS - {"blurhash"}), x
    assert set(x["variants"]) == set(m.VARIANTS), x
    for v in x["variants"].values():
        assert set(v) == VARIANT_KEYS, v


def check_post(p, author=None):
    """p has exactly the Post shape (by author, if given); returns p."""
    assert set(p) == POST_KEYS, sorted(p)
    assert OBJECT_ID.match(p["id"]), p["id"]
    check_author(p["author"], author)
    assert isinstance(p["caption"], str)
    assert isinstance(p["media"], list) and 1 <= len(p["media"]) <= 10
    for x in p["media"]:
        check_media(x)
    assert isinstance(p["tags"], list) and all(isinstance(t, str) for t in p["tags"])
    assert isinstance(p["mentions"], list)
    for x in p["mentions"]:
        assert set(x) == {"id", "username"}, x
    check_count(p["like_count"])
    check_count(p["comment_count"])
    assert isinstance(p["liked_by_me"], bool)
    created = check_time(p["created_at"])
    if p["edited_at"] is not None:
        assert check_time(p["edited_at"]) >= created
    return p


def check_comment(c, author=None, post_id=None):
    assert set(c) == COMMENT_KEYS, sorted(c)
    assert OBJECT_ID.match(c["id"]), c["id"]
    assert OBJECT_ID.match(c["post_id"]), c["post_id"]
    if post_id is not None:
        assert c["post_id"] == post_id
    check_author(c["author"], author)
    assert isinstance(c["text"], str) and c["text"]
    assert c["reply_to"] is None or OBJECT_ID.match(c["reply_to"]), c["reply_to"]
    check_count(c["like_count"])
    assert isinstance(c["liked_by_me"], bool)
    created = check_time(c["created_at"])
    if c["edited_at"] is not None:
        assert check_time(c["edited_at"]) >= created
    return c


def like_answer(r, liked, like_count):
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert set(body) == LIKE_KEYS, body
    assert body == {"liked": liked, "like_count": like_count}, body
    return body


# ------------------------------------------------------------------ posts

def create_post(user, caption=None, n=1, ids=None, **extra):
    """POST /v1/posts with n of user's media (or the ids given); returns the response."""
    body = {"media_ids": ids if ids is not None else media_ids(user, n), **extra}
    if caption is not None:
        body["caption"] = caption
    return user.post("/v1/posts", json=body)


def make_post(user, caption="", n=1, ids=None):
    """A post of user's (201 checked, with its Location); returns the Post."""
    r = create_post(user, caption, n=n, ids=ids)
    assert r.status_code == 201, (r.status_code, r.text)
    p = check_post(r.json(), user)
    assert r.headers["location"] == f"/v1/posts/{p['id']}", r.headers.get("location")
    return p


def get_post(client_or_user, pid, status=200):
    r = client_or_user.get(f"/v1/posts/{pid}")
    if status == 200:
        assert r.status_code == 200, (r.status_code, r.text)
        return check_post(r.json())
    is_problem(r, status)
    return None


def anon_get(path, **kw):
    with h2() as c:
        return c.get(path, **kw)


# ------------------------------------------------------------------ comments and likes

def comment(user, pid, text="nice", reply_to=None, status=201):
    body = {"text": text}
    if reply_to is not None:
        body["reply_to"] = reply_to
    r = user.post(f"/v1/posts/{pid}/comments", json=body)
    if status != 201:
        is_problem(r, status)
        return r
    assert r.status_code == 201, (r.status_code, r.text)
    c = check_comment(r.json(), user, pid)
    assert r.headers["location"] == f"/v1/comments/{c['id']}", r.headers.get("location")
    return c


def like(user, kind, tid):
    """POST /v1/{posts|comments}/{id}/like."""
    return user.post(f"/v1/{kind}/{tid}/like")


def unlike(user, kind, tid):
    return user.delete(f"/v1/{kind}/{tid}/like")


# ------------------------------------------------------------------ lists

def page(client_or_user, path, **params):
    r = client_or_user.get(path, params={k: v for k, v in params.items() if v is not None})
    assert r.status_code == 200, (path, r.status_code, r.text)
    body = r.json()
    assert set(body) == LIST_KEYS, body
    assert isinstance(body["items"], list)
    assert body["next_cursor"] is None or (isinstance(body["next_cursor"], str) and body["next_cursor"])
    return body


def walk(client_or_user, path, limit=None, max_pages=200, on_page=None):
    """Every page of a list, following next_cursor; returns (items in order, pages)."""
    items, pages, cursor = [], [], None
    for _ in range(max_pages):
        body = page(client_or_user, path, limit=limit, cursor=cursor)
        pages.append(body)
        items.extend(body["items"])
        if on_page is not None:
            on_page(len(pages))
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
    raise AssertionError(f"{path}: pagination did not end")


def ids(items):
    return [x["id"] for x in items]


def user_posts(client_or_user, username, limit=None):
    return ids(walk(client_or_user, f"/v1/users/{username}/posts", limit=limit)[0])


def tag_posts(client_or_user, tag, limit=None):
    return ids(walk(client_or_user, f"/v1/tags/{tag}/posts", limit=limit)[0])


def comment_ids(client_or_user, pid, limit=None):
    return ids(walk(client_or_user, f"/v1/posts/{pid}/comments", limit=limit)[0])


def liker_names(client_or_user, pid, limit=None):
    return [x["username"] for x in walk(client_or_user, f"/v1/posts/{pid}/likes", limit=limit)[0]]


def fresh_tag(prefix="tag"):
    """A hashtag no other test uses (letters and digits)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------ eventual consistency

def known(user, timeout=15):
    """Waits until publication's user projection has user (its post list answers 200)."""
    wait_until(lambda: anon_get(f"/v1/users/{user.username}/posts").status_code == 200, timeout=timeout,
               what=f"publication knowing {user.username}")


def hidden(viewer, pid, timeout=15):
    """Waits until viewer gets 404 for post pid (a block reached publication)."""
    wait_until(lambda: viewer.get(f"/v1/posts/{pid}").status_code == 404, timeout=timeout,
               what=f"post {pid} hidden from {viewer.username}")


def visible(viewer, pid, timeout=15):
    wait_until(lambda: viewer.get(f"/v1/posts/{pid}").status_code == 200, timeout=timeout,
               what=f"post {pid} visible to {viewer.username}")


def queue_messages(name):
    """Messages in a queue now, ready and unacknowledged (rabbitmqctl asks the queue itself; the
    management API's figures are samples up to 5 s old)."""
    r = stack("rabbitmqctl", "list_queues", "-q", "name", "messages")
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return int(parts[1])
    raise AssertionError(f"no queue {name}: {r.stdout}")


def events_drained(timeout=20):
    """Waits until publication has handled (and acked) everything on its event queue."""
    wait_until(lambda: queue_messages("publication.events") == 0, timeout=timeout, interval=0.1,
               what="publication.events drained")


def publication_ready():
    try:
        return httpx.get(f"{ADMIN}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def mine(field, value):
    """An EventQueue.take predicate: the payload's field is value."""
    return lambda msg: msg["body"].get(field) == value
