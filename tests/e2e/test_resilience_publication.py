"""test_resilience_publication.py -- publication killed with SIGKILL in the middle of a burst of creates:
every acknowledged post is there and each post that exists was announced once (one message_id; the
outbox's recovery, PUBLICATION_OUTBOX_RECOVER_AFTER=5s in the test stack, finishes or drops what the
killed process left half-way). auth's events delivered twice, or out of order, change nothing twice;
malformed ones are dead-lettered (services/publication/README.md, "Store"; DESIGN.md, "Messaging"). A
database outage is 503 with Retry-After, and publication serves again by itself when it is over."""
import collections
import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx

from authlib import h2
from authlib import users  # noqa: F401 (fixture)
from conftest import VAR, bearer, stack, wait_until
from publib import (ADMIN, events_drained, get_post, hidden, make_post, media_ids, publication_ready, queue_messages,
                    user_posts, visible)
from rabbitlib import EventQueue, publish_event
from test_resilience import alive, pid_of
from test_resilience_auth import RejectingQueue

RECOVER_AFTER = 5  # s: PUBLICATION_OUTBOX_RECOVER_AFTER of the test stack (deploy/local/test-env.sh)


def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now(plus=0.0):
    return rfc3339(datetime.now(timezone.utc) + timedelta(seconds=plus))


def stack_ok(*args):
    r = stack(*args, check=False)
    assert r.returncode == 0, f"stack.sh {' '.join(args)}: {r.stdout}"


def admin_port_free():
    """Nothing accepts on publication's admin port: after a SIGKILL the process can be a zombie
    (not alive) while its other threads still exit and hold their sockets."""
    port = int(ADMIN.rsplit(":", 1)[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def kill9_publication():
    pid = pid_of("publication")
    stack_ok("kill9", "publication")
    wait_until(lambda: not alive(pid) and admin_port_free(), timeout=20, what="publication gone")


def start_publication():
    stack_ok("start", "publication")
    wait_until(publication_ready, timeout=30, what="publication ready again")


def restart_publication():
    kill9_publication()
    start_publication()


# ------------------------------------------------------------------ kill -9

def test_kill9_mid_burst_of_creates_loses_no_acknowledged_post_and_announces_each_once(users):
    authors = users(8)
    mids = {u.id: media_ids(u, 1) for u in authors}
    author_ids = set(mids)
    results, lock, stop = [], threading.Lock(), threading.Event()

    def creator(u):
        with h2() as c:
            i = 0
            while not stop.is_set():
                try:
                    r = c.post("/v1/posts", json={"caption": f"burst {i} #k9burst", "media_ids": mids[u.id]},
                               headers=bearer(u.access), timeout=20)
                    got = (r.status_code, r.json()["id"] if r.status_code == 201 else None)
                except (httpx.HTTPError, ValueError) as e:
                    got = (type(e).__name__, None)
                with lock:
                    results.append((u.id, got))
                i += 1

    def ok():
        with lock:
            return sum(1 for _, (s, _) in results if s == 201)

    with EventQueue(["post.created"]) as events:
        threads = [threading.Thread(target=creator, args=(u,)) for u in authors]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: ok() >= 8, timeout=30, what="creates going")
            killed_at = time.monotonic()
            restart_publication()
            n = ok()
            wait_until(lambda: ok() >= n + 8, timeout=60, what="creates going again")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)

        acked = {(uid, pid) for uid, (s, pid) in results if s == 201}
        assert len(acked) >= 16, results
        # Every acknowledged create is there, as its author made it.
        with h2() as c:
            for uid, pid in acked:
                p = get_post(c, pid)
                assert p["author"]["id"] == uid and p["tags"] == ["k9burst"]

        # Each post that exists (acknowledged or not) is announced, under one message_id; no event
        # names a post that does not exist. Recovery runs RECOVER_AFTER after the kill at the latest.
        seen = collections.defaultdict(list)
        existing = set()

        def settled():
            for m in events.take(want=10_000, timeout=0.5, predicate=lambda m: m["body"].get("author_id") in author_ids):
                seen[m["body"]["post_id"]].append(m["properties"]["message_id"])
            existing.clear()
            with h2() as c:
                for u in authors:
                    existing.update(user_posts(c, u.username, limit=100))
            # The relay recovers the killed copy's pending events RECOVER_AFTER after they began,
            # at its next pass (PUBLICATION_OUTBOX_POLL, 1 s).
            return time.monotonic() - killed_at > RECOVER_AFTER + 2 and existing <= set(seen)

        wait_until(settled, timeout=45, interval=0.5, what="every existing post announced")
        for m in events.take(want=10_000, timeout=1.5, predicate=lambda m: m["body"].get("author_id") in author_ids):
            seen[m["body"]["post_id"]].append(m["properties"]["message_id"])
        assert {pid for _, pid in acked} <= existing
        assert set(seen) == existing, {"announced, not there": set(seen) - existing,
                                       "there, not announced": existing - set(seen)}
        twice = {pid: ids for pid, ids in seen.items() if len(set(ids)) != 1}
        assert not twice, f"announced under several message ids: {twice}"
        unacked = existing - {pid for _, pid in acked}
        print(f"{len(acked)} acknowledged, {len(unacked)} there though not acknowledged, "
              f"{sum(len(v) - 1 for v in seen.values())} redelivered with the same message_id")


def test_event_refused_by_the_broker_survives_kill9(users):
    """The write is acknowledged but the broker nacks its event (a queue bound to post.created with
    x-max-length 0 and reject-publish); publication is killed; after a restart the event goes out, once."""
    a = users()
    log = os.path.join(VAR, "log", "publication.log")
    start = os.path.getsize(log)

    def refused():
        with open(log, errors="replace") as f:
            f.seek(start)
            return "outbox: cannot publish post.created" in f.read()

    blocker = RejectingQueue("post.created")
    try:
        p = make_post(a, "held back")
        wait_until(refused, timeout=10, what="publication trying to publish and being refused")
        kill9_publication()
    finally:
        blocker.remove()
    with EventQueue(["post.created"]) as q:
        start_publication()
        got = q.take(want=1, timeout=20, predicate=lambda m: m["body"]["post_id"] == p["id"])
        assert len(got) == 1 and got[0]["body"]["author_id"] == a.id
        assert q.take(want=1, timeout=2, predicate=lambda m: m["body"]["post_id"] == p["id"]) == [], "published twice"
    with h2() as c:
        assert get_post(c, p["id"]) == p


# ------------------------------------------------------------------ auth's events twice, late or broken

def test_block_events_twice_and_out_of_order_end_in_the_right_state(users):
    a, b = users(2)
    p = make_post(a, "guarded")
    dlq = queue_messages("publication.events.dlq")
    created = {"blocker_id": a.id, "blocked_id": b.id, "created_at": now()}
    mid = str(uuid.uuid4())
    publish_event("block.created", created, message_id=mid)
    publish_event("block.created", created, message_id=mid)  # a redelivery
    publish_event("block.created", created)  # the same fact under another id
    hidden(b, p["id"])
    publish_event("block.deleted", {"blocker_id": a.id, "blocked_id": b.id, "deleted_at": now(1)})
    visible(b, p["id"])
    # The old block.created again (a late redelivery): older than the unblock, it changes nothing.
    publish_event("block.created", created, message_id=mid)
    publish_event("block.created", created)
    events_drained()
    assert b.get(f"/v1/posts/{p['id']}").status_code == 200
    # Follows: twice each, in and out of order; nothing breaks and nothing is dead-lettered.
    follow = {"follower_id": b.id, "follower_username": b.username, "followee_id": a.id,
              "followee_username": a.username, "created_at": now()}
    unfollow = {"follower_id": b.id, "followee_id": a.id, "deleted_at": now(1)}
    for key, body in (("follow.created", follow), ("follow.created", follow), ("follow.deleted", unfollow),
                      ("follow.deleted", unfollow), ("follow.created", follow)):
        publish_event(key, body)
    events_drained()
    assert queue_messages("publication.events.dlq") == dlq
    assert b.get(f"/v1/posts/{p['id']}").status_code == 200


def test_user_updated_twice_or_late_never_goes_back(users):
    a = users()
    p = make_post(a, "profile")

    def updated(name, at):
        return {"user_id": a.id, "username": a.username, "email": a.email, "name": name, "bio": "",
                "avatar_media_id": None, "updated_at": at}

    newer = updated("Newer Name", now(120))
    publish_event("user.updated", newer)
    publish_event("user.updated", newer)
    wait_until(lambda: get_post(a, p["id"])["author"]["name"] == "Newer Name", timeout=15, what="the newer name")
    publish_event("user.updated", updated("Older Name", now(60)))
    events_drained()
    assert get_post(a, p["id"])["author"]["name"] == "Newer Name"


def test_user_deleted_twice_deletes_once_and_late_events_do_not_revive(users):
    a, b = users(2)
    posts = [make_post(a, f"doomed {i}")["id"] for i in range(2)]
    with EventQueue(["user.deleted"]) as uq, EventQueue(["post.deleted"]) as pq:
        assert a.delete("/v1/me").status_code == 204
        [msg] = uq.take(1, timeout=10, predicate=lambda m: m["body"]["user_id"] == a.id)
        for pid in posts:
            hidden(b, pid)
        # The same user.deleted again: as a redelivery, and under another message id.
        publish_event("user.deleted", msg["body"], message_id=msg["properties"]["message_id"])
        publish_event("user.deleted", msg["body"])
        # A late user.updated or user.registered brings nobody back.
        publish_event("user.updated", {"user_id": a.id, "username": a.username, "email": a.email, "name": "Back",
                                       "bio": "", "avatar_media_id": None, "updated_at": now(60)})
        publish_event("user.registered", {"user_id": a.id, "username": a.username, "email": a.email, "name": "Back",
                                          "created_at": now(60)})
        events_drained()
        got = pq.take(3, timeout=3, predicate=lambda m: m["body"]["author_id"] == a.id)
        assert sorted(m["body"]["post_id"] for m in got) == sorted(posts), [m["body"] for m in got]
    with h2() as c:
        for pid in posts:
            assert c.get(f"/v1/posts/{pid}").status_code == 404
        assert c.get(f"/v1/users/{a.username}/posts").status_code == 404


def test_malformed_events_are_dead_lettered_and_the_queue_moves_on(users):
    a, b = users(2)
    p = make_post(a, "still served")
    before = queue_messages("publication.events.dlq")
    pid = pid_of("publication")
    bad = [("user.updated", "{not json"), ("block.created", json.dumps({"blocker_id": 42, "blocked_id": b.id,
                                                                         "created_at": now()})),
           ("user.deleted", json.dumps({})), ("follow.created", "[]"), ("user.registered", json.dumps("a string")),
           ("block.deleted", json.dumps({"blocker_id": a.id, "blocked_id": b.id, "deleted_at": "yesterday"}))]
    for key, raw in bad:
        publish_event(key, None, raw=raw)
    wait_until(lambda: queue_messages("publication.events.dlq") >= before + len(bad), timeout=20,
               what="the malformed events dead-lettered")
    events_drained()
    # Still alive and still consuming: a good event after them takes effect.
    assert pid_of("publication") == pid and alive(pid)
    publish_event("block.created", {"blocker_id": a.id, "blocked_id": b.id, "created_at": now()})
    hidden(b, p["id"])
    assert queue_messages("publication.events.dlq") == before + len(bad)


def test_database_outage_is_503_and_publication_recovers_by_itself(users):
    """FerretDB stopped: creates, reads and likes answer 503 database-unavailable with Retry-After (never a
    500, a 404 or a 401), nothing is stored, and publication's /readyz says so; once the database is back,
    the same process serves and publishes again."""
    a = users()
    p = make_post(a, "before the outage")
    mids = media_ids(a, 1)
    pid = pid_of("publication")
    stack_ok("stop", "ferretdb")
    try:
        wait_until(lambda: a.get(f"/v1/posts/{p['id']}").status_code == 503, timeout=20,
                   what="503 while the database is down")
        for r in (a.get(f"/v1/posts/{p['id']}"), a.post(f"/v1/posts/{p['id']}/like"),
                  a.post("/v1/posts", json={"caption": "during", "media_ids": mids})):
            assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json"), r.text
            assert r.json()["type"].endswith("database-unavailable") and r.headers.get("retry-after"), r.text
        assert httpx.get(f"{ADMIN}/readyz", timeout=5).json()["checks"]["database"] == "down"
    finally:
        stack_ok("start", "ferretdb")
    with EventQueue(["post.created"]) as events:
        r = wait_until(lambda: (lambda r: r if r.status_code == 201 else None)(
            a.post("/v1/posts", json={"caption": "after", "media_ids": mids})), timeout=30,
            what="creates accepted again")
        assert events.take(1, timeout=10, predicate=lambda e: e["body"]["post_id"] == r.json()["id"])
    assert get_post(a, p["id"])["like_count"] == 0, "the like refused during the outage was not stored"
    assert user_posts(a, a.username) == [r.json()["id"], p["id"]], "nothing else was stored"
    assert pid_of("publication") == pid and alive(pid), "publication must not need a restart"
