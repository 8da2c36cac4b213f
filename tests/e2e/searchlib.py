"""searchlib.py -- helpers for the e2e tests of the search daemon (services/search/README.md):
GET /v1/search and /v1/search/autocomplete through the gateway, the shapes of their items, polling
until the index has caught up, and unique words for each test.

Anonymous requests go out from a fresh client address each (X-Forwarded-For), so the per-address
rate limit never trips however often a test polls; a User's requests count against its own
per-user bucket (150 on the test stack), so polls by a user are short and slow enough.
"""
import os
import time
import urllib.parse
import uuid

import httpx

from authlib import RFC3339_UTC, User, h2, new_address
from conftest import is_problem

ADMIN = f"http://127.0.0.1:{int(os.environ.get('STACK_ADMIN_BASE', '9200')) + 5}"

# The index must show a change this soon (the freshness the app relies on).
FRESH_S = float(os.environ.get("TEST_SEARCH_FRESH_S", "1.0"))
# Waits that are about correctness, not freshness.
SETTLE_S = 10.0

POST_ITEM_KEYS = {"id", "author", "caption", "tags", "thumbnail_url", "like_count", "comment_count", "created_at",
                  "edited_at"}
POST_AUTHOR_KEYS = {"id", "username", "name"}
USER_ITEM_KEYS = {"id", "username", "name", "followers_count"}
TAG_ITEM_KEYS = {"name", "post_count"}

# What an SQL or FTS engine says when a query reaches it unescaped.
ENGINE_TEXT = ("fts5", "sqlite", "syntax error", "no such column", "unterminated string", "unknown special query",
               "near \"", "malformed match")


def word(n=12):
    """A fresh word of lower-case letters only (from a uuid), which no other test uses."""
    return "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:n])


def named_user(**kw):
    """A User whose username is letters only (one FTS word) and whose name is two fresh words."""
    first, last = word(8), word(8)
    kw.setdefault("username", "s" + word(13))
    kw.setdefault("name", f"{first.capitalize()} {last.capitalize()}")
    return User(**kw)


# ------------------------------------------------------------------ requests

_anon = None


def _anon_client():
    global _anon
    if _anon is None:
        _anon = h2()
    return _anon


def get(who, path, params=None, raw=None):
    """GET path as who (a User, or None: anonymous from a fresh address). raw is a query string sent
    byte for byte (already percent-encoded), else params are encoded by httpx."""
    url = f"{path}?{raw}" if raw is not None else path
    kw = {} if raw is not None else {"params": {k: v for k, v in (params or {}).items() if v is not None}}
    if who is None:
        return _anon_client().get(url, headers={"x-forwarded-for": new_address()}, **kw)
    return who.get(url, **kw)


def raw_q(q):
    """q percent-encoded for a query string (every byte outside unreserved escaped)."""
    return urllib.parse.quote(q, safe="") if isinstance(q, str) else urllib.parse.quote_from_bytes(q, safe="")


def search_r(who, q, type=None, limit=None, offset=None):
    return get(who, "/v1/search", {"q": q, "type": type, "limit": limit, "offset": offset})


def search(who, q, type=None, limit=None, offset=None):
    """A 200 search answer, shape checked: {items, total}."""
    r = search_r(who, q, type, limit, offset)
    assert r.status_code == 200, (q, type, r.status_code, r.text)
    return check_search_body(r.json(), type or "posts")


def autocomplete_r(who, q):
    return get(who, "/v1/search/autocomplete", {"q": q})


def autocomplete(who, q):
    r = autocomplete_r(who, q)
    assert r.status_code == 200, (q, r.status_code, r.text)
    body = r.json()
    assert set(body) == {"users", "tags"}, body
    assert isinstance(body["users"], list) and isinstance(body["tags"], list), body
    assert len(body["users"]) <= 10 and len(body["tags"]) <= 10, body
    for u in body["users"]:
        check_user_item(u)
    for t in body["tags"]:
        check_tag_item(t)
    return body


# ------------------------------------------------------------------ shapes

def _count(n):
    assert isinstance(n, int) and not isinstance(n, bool) and n >= 0, n


def check_time(t):
    assert isinstance(t, str) and RFC3339_UTC.match(t), t


def check_post_item(p):
    assert set(p) == POST_ITEM_KEYS, sorted(p)
    assert isinstance(p["id"], str) and p["id"]
    assert set(p["author"]) == POST_AUTHOR_KEYS, p["author"]
    assert all(isinstance(p["author"][k], str) for k in POST_AUTHOR_KEYS), p["author"]
    assert isinstance(p["caption"], str)
    assert isinstance(p["tags"], list) and all(isinstance(t, str) and not t.startswith("#") for t in p["tags"]), p
    assert p["thumbnail_url"] is None or (isinstance(p["thumbnail_url"], str) and p["thumbnail_url"]), p
    _count(p["like_count"])
    _count(p["comment_count"])
    check_time(p["created_at"])
    if p["edited_at"] is not None:
        check_time(p["edited_at"])
    return p


def check_user_item(u):
    assert set(u) == USER_ITEM_KEYS, sorted(u)
    assert isinstance(u["id"], str) and u["id"] and isinstance(u["username"], str) and isinstance(u["name"], str), u
    _count(u["followers_count"])
    return u


def check_tag_item(t):
    assert set(t) == TAG_ITEM_KEYS, t
    assert isinstance(t["name"], str) and t["name"] and not t["name"].startswith("#"), t
    _count(t["post_count"])
    return t


def check_search_body(body, type="posts"):
    assert set(body) == {"items", "total"}, body
    assert isinstance(body["items"], list), body
    _count(body["total"])
    assert len(body["items"]) <= body["total"] or body["items"] == [], body
    check = {"posts": check_post_item, "users": check_user_item, "tags": check_tag_item}[type]
    for it in body["items"]:
        check(it)
    return body


def ids(body):
    return [x["id"] for x in body["items"]]


def names(body):
    return [x["name"] for x in body["items"]]


def usernames(items):
    return [x["username"] for x in items]


def no_engine_text(r):
    low = r.text.lower()
    for t in ENGINE_TEXT:
        assert t not in low, (t, r.status_code, r.text)


def bad_param(r, name):
    """A 400 problem naming the parameter in errors."""
    body = is_problem(r, 400)
    errs = body.get("errors")
    assert isinstance(errs, dict) and isinstance(errs.get(name), str) and errs[name], (name, body)
    no_engine_text(r)
    return body


# ------------------------------------------------------------------ waiting for the index

def poll(fn, timeout=SETTLE_S, interval=0.05, what="search"):
    """Calls fn() until it returns something true; returns (that, seconds it took). what (or what(),
    called when time is up) says what was awaited."""
    start = time.monotonic()
    deadline = start + timeout
    last = None
    while True:
        try:
            last = fn()
        except httpx.HTTPError as e:
            last = e
        if last and not isinstance(last, Exception):
            return last, time.monotonic() - start
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what() if callable(what) else what} (last: {last!r})")
        time.sleep(interval)


def wait_search(who, q, pred, type=None, timeout=SETTLE_S, interval=0.05, what=None, **kw):
    """Polls the search until pred(body) holds; returns (body, seconds)."""
    def once():
        r = search_r(who, q, type, kw.get("limit"), kw.get("offset"))
        assert r.status_code != 429, f"the test polled too fast: {r.text}"
        assert r.status_code == 200, (q, r.status_code, r.text)
        body = check_search_body(r.json(), type or "posts")
        return body if pred(body) else None
    return poll(once, timeout=timeout, interval=interval, what=what or f"search {type or 'posts'} {q!r}")


def wait_ids(who, q, want, type=None, timeout=SETTLE_S, ordered=False, **kw):
    """Polls until the search's ids are want (as a set, or in order); returns (body, seconds)."""
    want = list(want)
    if ordered:
        pred = lambda b: ids(b) == want and b["total"] == len(want)
    else:
        pred = lambda b: sorted(ids(b)) == sorted(want) and b["total"] == len(want)
    return wait_search(who, q, pred, type, timeout, what=f"search {q!r} giving {want}", **kw)


def search_ready():
    try:
        return httpx.get(f"{ADMIN}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
