"""authlib.py -- helpers for the e2e tests of the auth daemon (accounts, tokens, graph, devices).

Every User speaks through its own HTTP/2 client, from its own client address (X-Forwarded-For),
so the per-address limits of the gateway and of auth (10 registrations, 12 failed logins per
address on the test stack) never leak between users or tests. auth keeps its counts in its
database for up to an hour, so addresses are random per run (10.0.0.0/8), not conftest's sequence
that starts over at each run. Usernames are unique per call, so tests never see each other's
accounts, whatever an earlier run left in the database.
"""
import itertools
import json
import os
import random
import re
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import bearer, h2_client, is_problem

PASSWORD = "correct-horse-42"
RABBIT_API = os.environ.get("TEST_RABBITMQ_API", "http://127.0.0.1:15673/api").rstrip("/")

ACCOUNT_KEYS = {"id", "username", "email", "name", "bio", "avatar_media_id", "created_at", "posts_count",
                "followers_count", "following_count"}
PROFILE_KEYS = (ACCOUNT_KEYS - {"email"}) | {"relationship"}
RELATIONSHIP_KEYS = {"id", "username", "following", "followed_by", "blocking"}
LIST_ITEM_KEYS = {"id", "username", "name", "avatar_media_id"}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# Values a MongoDB query would read as operators, if a handler put a body member into a filter as is.
OPERATORS = [{"$ne": None}, {"$gt": ""}, {"$regex": ".*"}]


_addr_base = random.SystemRandom().getrandbits(24)
_addr_seq = itertools.count()
_addr_lock = threading.Lock()


def new_address():
    """A client address of this run only."""
    with _addr_lock:
        n = (_addr_base + next(_addr_seq) * 7919) % (1 << 24)
    return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def h2(address=None):
    """An HTTP/2 client speaking from a fresh address of this run (or the one given)."""
    return h2_client(address=address or new_address())


@pytest.fixture
def anon():
    with h2() as c:
        yield c


def uniq(prefix="u"):
    """A fresh valid username (lower case, 3..30 characters)."""
    return f"{prefix}{uuid.uuid4().hex[:14]}"


def email_of(username):
    return f"{username}@example.com"


def register_body(username=None, email=None, password=PASSWORD, name=None):
    username = uniq() if username is None else username
    email = email_of(username.lower() or uniq()) if email is None else email
    body = {"username": username, "email": email, "password": password}
    if name is not None:
        body["name"] = name
    return body


def register(client, status=201, **kw):
    """POSTs a registration (unique username unless given); asserts the status; returns the response."""
    r = client.post("/v1/auth/register", json=register_body(**kw))
    assert r.status_code == status, (r.status_code, r.text)
    return r


def login(client, login_name, password=PASSWORD):
    return client.post("/v1/auth/login", json={"login": login_name, "password": password})


def refresh(client, token):
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def logout(client, token):
    return client.post("/v1/auth/logout", json={"refresh_token": token})


def check_account(a, username=None):
    assert set(a) == ACCOUNT_KEYS, sorted(a)
    assert isinstance(a["id"], str) and a["id"]
    if username is not None:
        assert a["username"] == username
    assert isinstance(a["name"], str) and isinstance(a["bio"], str)
    assert a["avatar_media_id"] is None or isinstance(a["avatar_media_id"], str)
    assert RFC3339_UTC.match(a["created_at"]), a["created_at"]
    for k in ("posts_count", "followers_count", "following_count"):
        assert isinstance(a[k], int) and not isinstance(a[k], bool) and a[k] >= 0, (k, a[k])


def check_tokens(body, username=None):
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}, sorted(body)
    check_account(body["user"], username)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    # 32 random bytes, base64url: 43 characters unpadded.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=?", body["refresh_token"]), body["refresh_token"]
    return body


def problem_errors(r, status, *fields):
    """The response is a problem with this status whose `errors` names each of fields; returns errors."""
    body = is_problem(r, status)
    errs = body.get("errors")
    assert isinstance(errs, dict) and errs, body
    for f in fields:
        assert f in errs, (f, body)
        assert isinstance(errs[f], str) and errs[f], body
    return errs


def problem_type(r, status, name):
    body = is_problem(r, status)
    assert body["type"].rstrip("/").endswith(name), body
    return body


class User:
    """A registered account with its own client (own address) and its current tokens."""

    def __init__(self, username=None, email=None, password=PASSWORD, name=None, client=None):
        self.client = client or h2()
        self.password = password
        r = register(self.client, username=username, email=email, password=password, name=name)
        self.set_tokens(r.json())
        self.email = self.account["email"]

    def set_tokens(self, body):
        self.account = body["user"]
        self.id = body["user"]["id"]
        self.username = body["user"]["username"]
        self.access = body["access_token"]
        self.refresh = body["refresh_token"]

    # requests with the access token
    def _kw(self, kw):
        kw["headers"] = {**bearer(self.access), **kw.get("headers", {})}
        return kw

    def get(self, path, **kw):
        return self.client.get(path, **self._kw(kw))

    def post(self, path, **kw):
        return self.client.post(path, **self._kw(kw))

    def patch(self, path, **kw):
        return self.client.patch(path, **self._kw(kw))

    def delete(self, path, **kw):
        return self.client.delete(path, **self._kw(kw))

    def me(self):
        r = self.get("/v1/me")
        assert r.status_code == 200, r.text
        return r.json()

    def profile(self, username):
        return self.get(f"/v1/users/{username}")

    def follow(self, other):
        return self.post(f"/v1/users/{_name(other)}/follow")

    def unfollow(self, other):
        return self.delete(f"/v1/users/{_name(other)}/follow")

    def block(self, other):
        return self.post(f"/v1/users/{_name(other)}/block")

    def unblock(self, other):
        return self.delete(f"/v1/users/{_name(other)}/block")

    def login(self, login_name=None, password=None):
        return login(self.client, login_name or self.username, password or self.password)

    def close(self):
        self.client.close()


def _name(u):
    return u.username if isinstance(u, User) else u


def counts(user):
    """(followers_count, following_count) of user, from its own GET /v1/me."""
    me = user.me()
    return me["followers_count"], me["following_count"]


def anon_profile(username):
    with h2() as c:
        return c.get(f"/v1/users/{username}")


def list_all(client_or_user, username, which, limit=None, headers=None):
    """Every page of /v1/users/{username}/{which}; returns (usernames in order, pages)."""
    get = client_or_user.get
    names, pages, cursor = [], [], None
    for _ in range(200):
        params = {}
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        r = get(f"/v1/users/{username}/{which}", params=params, **({"headers": headers} if headers else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}, body
        for it in body["items"]:
            assert set(it) == LIST_ITEM_KEYS, it
        pages.append(body)
        names.extend(it["username"] for it in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return names, pages
        assert isinstance(cursor, str) and cursor
    raise AssertionError("pagination did not end")


def call_as(user, method, path, **kw):
    """One request with user's access token over a connection of its own (for calls from threads)."""
    with h2() as c:
        return c.request(method, path, headers=bearer(user.access), **kw)


def make_users(n, workers=8, **kw):
    """n fresh users, registered concurrently (each from its own address)."""
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(lambda _: User(**kw), range(n)))


def run_together(fns, workers=None):
    """Runs the callables in threads started behind one barrier, so they reach the server together;
    returns their results in order (re-raising the first exception)."""
    barrier = threading.Barrier(len(fns))

    def go(fn):
        barrier.wait(timeout=30)
        return fn()

    with ThreadPoolExecutor(max_workers=workers or len(fns)) as ex:
        futures = [ex.submit(go, fn) for fn in fns]
        return [f.result(timeout=120) for f in futures]


@pytest.fixture
def users():
    """A factory of users closed after the test: users() -> User, users(n) -> [User]."""
    made = []

    def make(n=None, **kw):
        got = make_users(n, **kw) if n is not None else [User(**kw)]
        made.extend(got)
        return got if n is not None else got[0]

    yield make
    for u in made:
        u.close()


# ------------------------------------------------------------------ events, through RabbitMQ's management API

def _q(name):
    return urllib.parse.quote(name, safe="")


class EventTap:
    """A temporary queue bound to the topic exchange `events` with the given keys; collects what
    auth publishes there (read through the management HTTP API)."""

    def __init__(self, *keys):
        self.http = httpx.Client(base_url=RABBIT_API, auth=("guest", "guest"), timeout=10)
        self.queue = f"authtest.tap.{uuid.uuid4().hex[:12]}"
        r = self.http.put(f"/queues/%2F/{_q(self.queue)}",
                          json={"durable": False, "auto_delete": False, "arguments": {"x-expires": 120000}})
        assert r.status_code in (201, 204), r.text
        for k in keys:
            r = self.http.post(f"/bindings/%2F/e/events/q/{_q(self.queue)}", json={"routing_key": k, "arguments": {}})
            assert r.status_code == 201, f"binding to exchange events ({k}): {r.status_code} {r.text}"
        self.seen = []

    def _pull(self):
        r = self.http.post(f"/queues/%2F/{_q(self.queue)}/get",
                           json={"count": 100, "ackmode": "ack_requeue_false", "encoding": "auto"})
        r.raise_for_status()
        got = []
        for m in r.json():
            assert m["payload_encoding"] == "string", m
            got.append({"key": m["routing_key"], "body": json.loads(m["payload"]), "properties": m["properties"]})
        self.seen.extend(got)
        return got

    def wait(self, predicate, want=1, timeout=8.0):
        """Waits until want events (of all seen so far) satisfy predicate(key, body); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            self._pull()
            hits = [e for e in self.seen if predicate(e["key"], e["body"])]
            if len(hits) >= want or time.monotonic() > deadline:
                assert len(hits) >= want, f"{len(hits)} of {want} events arrived in {timeout}s; seen: {self.seen}"
                return hits
            time.sleep(0.1)

    def settle(self, seconds=1.0):
        """Collects for a while longer (to check that something did NOT happen)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pull()
            time.sleep(0.1)
        return self.seen

    def close(self):
        self.http.delete(f"/queues/%2F/{_q(self.queue)}")
        self.http.close()


@pytest.fixture
def device_events():
    tap = EventTap("device.*")
    try:
        yield tap
    finally:
        tap.close()
