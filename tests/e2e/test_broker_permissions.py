"""test_broker_permissions.py -- each daemon's broker user (deploy/rabbitmq/definitions.json) against
the running broker: what its permissions refuse with ACCESS_REFUSED (403), and what they allow.

The daemons of the stack connect as these users (deploy/local/stack.sh), so the allowed side is also
proven by the suite working at all; here it is checked directly too. The tests speak AMQP through
rabbitmq-c's command-line tools (Debian's amqp-tools: amqp-consume, amqp-publish,
amqp-declare-queue), which print the broker's channel error and exit non-zero.
"""
import json
import os
import shutil
import subprocess
import urllib.parse
import uuid

import pytest

import rabbitlib
from conftest import VAR

AMQP = urllib.parse.urlsplit(os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5673"))

pytestmark = pytest.mark.skipif(shutil.which("amqp-consume") is None, reason="amqp-tools not installed (make deps)")


def url(user):
    """The user's URL on the test broker, with the local password the stack gave it (the local copy
    of the definitions: $STACK_VAR/rabbitmq/definitions.json)."""
    with open(os.path.join(VAR, "rabbitmq", "definitions.json"), encoding="utf-8") as f:
        (u,) = [u for u in json.load(f)["users"] if u["name"] == user]
    return f"amqp://{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(u['password'], safe='')}@{AMQP.hostname}:{AMQP.port}"


def run(args, stdin=b"", timeout=5):
    """Runs an amqp-tools command; returns (exit status or "running" if it was still at it after
    timeout seconds, its stderr)."""
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(stdin, timeout=timeout)
        return p.returncode, err.decode()
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return "running", err.decode()


def consume(user, queue, timeout=3, extra=()):
    # -c 1 and a command that never succeeds: were a message delivered, it is not acked and goes back
    return run(["amqp-consume", "-u", url(user), "-q", queue, "-p", "1", "-c", "1", *extra, "false"], timeout=timeout)


def publish(user, exchange, key, body=b"{}"):
    return run(["amqp-publish", "-u", url(user), "-e", exchange, "-r", key, "-p"], stdin=body)


def refused(result, what):
    status, err = result
    return status == 1 and "403" in err and "ACCESS_REFUSED" in err and what in err


def test_auth_cannot_consume_publications_rpc_queue():
    r = consume("auth", "publication.rpc")
    assert refused(r, "queue 'publication.rpc'"), r


def test_auth_cannot_consume_other_services_event_queues():
    for q in ("notification.events", "search.events", "publication.fanout", "notification.events.dlq"):
        r = consume("auth", q)
        assert refused(r, f"queue '{q}'"), (q, r)


def test_gateway_consumes_no_queue():
    r = consume("gateway", "auth.rpc")
    assert refused(r, "queue 'auth.rpc'"), r


def test_auth_declares_its_own_queue():
    # queue.declare of auth.rpc as the daemon declares it (durable, no arguments): configure on it
    status, err = run(["amqp-declare-queue", "-u", url("auth"), "-q", "auth.rpc", "-d"])
    assert status == 0, err


def test_auth_cannot_declare_another_services_queue():
    r = run(["amqp-declare-queue", "-u", url("auth"), "-q", "publication.rpc", "-d"])
    assert refused(r, "queue 'publication.rpc'"), r


def test_auth_consumes_a_queue_of_its_own():
    # an exclusive queue of auth's name space, bound to one of the keys auth's code binds: declare,
    # bind (write on the queue, read on events and the topic permission), consume: all allowed, so
    # the consumer is still waiting when the timeout ends it
    q = f"auth.permission-test.{uuid.uuid4().hex[:8]}"
    status, err = consume("auth", q, extra=["-x", "-e", "events", "-r", "post.deleted"])
    assert status == "running" and "error" not in err, err


def test_the_daemons_consume_their_queues_as_their_own_users():
    with rabbitlib.client() as c:
        for s in ("auth", "resize-image", "publication", "notification", "search"):
            r = c.get(f"/queues/%2F/{s}.rpc")
            r.raise_for_status()
            users = {d["channel_details"]["user"] for d in r.json()["consumer_details"]}
            assert users == {s}, (s, users)


def test_auth_cannot_bind_keys_it_does_not_consume():
    q = f"auth.permission-test.{uuid.uuid4().hex[:8]}"
    r = consume("auth", q, extra=["-x", "-e", "events", "-r", "user.deleted"])
    assert refused(r, "topic 'user.deleted'"), r


def test_auth_cannot_send_rpc_requests():
    # auth calls no other service: no write on rpc, so nothing it publishes reaches publication.rpc
    r = publish("auth", "rpc", "publication")
    assert refused(r, "exchange 'rpc'"), r


def test_services_publish_only_their_own_events():
    assert refused(publish("auth", "events", "post.created"), "topic 'post.created'")
    assert refused(publish("publication", "events", "user.deleted"), "topic 'user.deleted'")
    assert refused(publish("resize-image", "events", "follow.created"), "topic 'follow.created'")
    assert refused(publish("search", "events", "post.deleted"), "exchange 'events'")
    assert refused(publish("notification", "events", "user.registered"), "exchange 'events'")
    assert refused(publish("gateway", "events", "user.registered"), "exchange 'events'")


def test_only_search_writes_search_sync():
    assert refused(publish("publication", "search.sync", "post", b"x"), "exchange 'search.sync'")
    assert refused(publish("search", "search.sync", "like", b"x"), "topic 'like'")
