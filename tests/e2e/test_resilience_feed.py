"""test_resilience_feed.py -- publication killed with SIGKILL in the middle of a fanout (services/publication/
README.md, "Feed", "Queues"): the post.created events and fanout.batch messages waiting in publication.fanout,
and the one a worker had in hand, are delivered again to the restarted daemon; adding is idempotent per
(timeline, post), so every follower's feed ends with every post exactly once, in order.

To make the fanout long enough to interrupt, publication is restarted with FEED_FANOUT_MAX_FOLLOWERS=100000
(no author is merged at read time), FEED_FANOUT_BATCH=1 (one fanout.batch message per follower and post) and
FEED_FANOUT_WORKERS=1; the fixture puts the test stack's configuration back afterwards. While publication is
down, the messages waiting in publication.fanout are read (and requeued) through RabbitMQ's management API
and checked against proto/schemas (asyncapi.yaml, channel publicationFanout)."""
import json
import time
import uuid
import pathlib

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from authlib import make_users, users  # noqa: F401 (fixture)
from conftest import ROOT, stack, start_with_env, wait_until
from publib import make_post, publication_ready, queue_messages
from rabbitlib import client as rabbit_client
from rabbitlib import q
from test_feed import feed_ids, follow, newest_first
from test_resilience_publication import kill9_publication, stack_ok

SLOW = {"FEED_FANOUT_MAX_FOLLOWERS": "100000", "FEED_FANOUT_BATCH": "1", "FEED_FANOUT_WORKERS": "1"}
FOLLOWERS = 40
POSTS = 8
SCHEMAS = pathlib.Path(ROOT, "proto", "schemas")


def _schema(name):
    """A validator of proto/schemas/<name>.json, its $refs resolved among the schema files (by $id)."""
    docs = [json.loads(p.read_text()) for p in SCHEMAS.rglob("*.json")]
    registry = Registry().with_resources((d["$id"], DRAFT202012.create_resource(d)) for d in docs)
    return Draft202012Validator(json.loads((SCHEMAS / f"{name}.json").read_text()), registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def start_publication(**env):
    """Starts publication with env on top of the test stack's environment; waits until it is ready."""
    start_with_env("publication", publication_ready, **env)


@pytest.fixture
def slow_fanout():
    stack_ok("stop", "publication")
    try:
        start_publication(**SLOW)
        yield
    finally:
        stack("stop", "publication", check=False)
        start_publication()  # the test stack's own FEED_* settings (deploy/local/test-env.sh)


def peek_fanout(limit=500):
    """The messages waiting in publication.fanout, taken and requeued (the queue keeps them)."""
    with rabbit_client() as c:
        r = c.post(f"/queues/%2F/{q('publication.fanout')}/get",
                   json={"count": limit, "ackmode": "reject_requeue_true", "encoding": "auto"})
        r.raise_for_status()
        return r.json()


def test_kill9_mid_fanout_loses_and_duplicates_no_timeline_entry(slow_fanout):
    author, *followers = make_users(1 + FOLLOWERS)
    try:
        seed = make_post(author, "seed")
        for f in followers:
            follow(f, author)
        # Every follow has reached publication once the seed is backfilled into each follower's feed.
        pending = list(followers)
        wait_until(lambda: not [pending.remove(f) for f in list(pending) if feed_ids(f) == [seed["id"]]] and
                   not pending, timeout=60, interval=0.3, what="every follow known to publication")
        dlq_before = queue_messages("publication.fanout.dlq")

        posts = [make_post(author, f"fanned out {i}") for i in range(POSTS)]
        # The fanout has begun (a follower has the first post) and is far from done: kill.
        wait_until(lambda: any(posts[0]["id"] in feed_ids(f) for f in followers[:8]), timeout=30, interval=0.05,
                   what="the fanout under way")
        kill9_publication()

        # Work was left in the queue (unacknowledged messages are back to ready): the kill was mid-fanout.
        left = queue_messages("publication.fanout")
        assert left > 0, "the fanout was over before the kill: nothing to recover"
        msgs = peek_fanout()
        assert msgs, "publication.fanout is empty"
        envelope, batch, created = _schema("event-envelope"), _schema("publication.fanout"), _schema("events/post.created")
        kinds = {}
        ours = {p["id"] for p in posts}
        for m in msgs:
            props = m["properties"]
            envelope.validate(props)
            body = json.loads(m["payload"])
            assert props["app_id"] == "publication", props
            if props["type"] == "fanout.batch":
                assert m["exchange"] == "" and m["routing_key"] == "publication.fanout", m
                batch.validate(body)
                assert len(body["users"]) == 1, body  # FEED_FANOUT_BATCH=1
                if body["post_id"] in ours:
                    assert body["op"] == "add" and body["author_id"] == author.id, body
                    assert body["users"][0] in {f.id for f in followers}, body
            else:
                assert (m["exchange"], m["routing_key"], props["type"]) == ("events", "post.created", "post.created"), m
                created.validate(body)
            kinds[props["type"]] = kinds.get(props["type"], 0) + 1
        print(f"killed with {left} messages in publication.fanout: {kinds}")

        start_publication(**SLOW)
        want = newest_first(seed, *posts)
        pending = list(followers)

        def all_there():
            for f in list(pending):
                got = feed_ids(f)
                assert len(got) == len(set(got)), f"{f.username}: a post twice in the feed: {got}"
                assert set(got) <= set(want), f"{f.username}: posts that are not the author's: {got}"
                if got == want:
                    pending.remove(f)
            return not pending

        wait_until(all_there, timeout=90, interval=0.5, what=f"every follower's feed holding all {POSTS + 1} posts")
        wait_until(lambda: queue_messages("publication.fanout") == 0, timeout=30, interval=0.5,
                   what="publication.fanout drained")
        for f in followers:  # exactly once, in order, page by page too
            assert feed_ids(f, limit=3) == want, f.username
        assert feed_ids(author) == want
        assert queue_messages("publication.fanout.dlq") == dlq_before, "a fanout message was dead-lettered"
    finally:
        for u in (author, *followers):
            u.close()



def test_fanout_batches_wait_out_a_database_outage(users):
    """fanout.batch messages that arrive while FerretDB is down are retried until it is back
    (publication.fanout's consumers allow 1,000 redeliveries, not the default 5, which would have
    dead-lettered them after about 12 s: 5 attempts that each wait 2 s for a server, with pauses):
    one batch removing a post from four feeds, published by hand during a 20 s outage, is applied
    afterwards, and nothing is dead-lettered."""
    author, *followers = users(5)  # 4 followers: under the test stack's threshold of 5, fanned out
    post = make_post(author, "removed through the outage")
    for f in followers:
        follow(f, author)
    wait_until(lambda: all(feed_ids(f) == [post["id"]] for f in followers), timeout=60, interval=0.3,
               what="the post in every follower's feed")
    dlq_before = queue_messages("publication.fanout.dlq")
    props = {"type": "fanout.batch", "app_id": "publication", "message_id": str(uuid.uuid4()),
             "content_type": "application/json", "delivery_mode": 2, "timestamp": int(time.time())}
    stack_ok("stop", "ferretdb")
    try:
        with rabbit_client() as c:
            body = {"op": "remove", "post_id": post["id"], "author_id": author.id, "users": [f.id for f in followers]}
            r = c.post("/exchanges/%2F/amq.default/publish",
                       json={"properties": props, "routing_key": q("publication.fanout"), "payload": json.dumps(body),
                             "payload_encoding": "string"})
            r.raise_for_status()
            assert r.json()["routed"], r.json()
        time.sleep(20)  # longer than 5 retries of a message last
    finally:
        stack_ok("start", "ferretdb")
    wait_until(lambda: all(feed_ids(f) == [] for f in followers), timeout=60, interval=0.5,
               what="the removal applied once the database is back")
    wait_until(lambda: queue_messages("publication.fanout") == 0, timeout=30, interval=0.5,
               what="publication.fanout drained")
    assert queue_messages("publication.fanout.dlq") == dlq_before, "a fanout message was dead-lettered"
    assert feed_ids(author) == [post["id"]], "only the listed feeds lost the post"
