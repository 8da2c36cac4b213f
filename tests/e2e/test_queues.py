"""test_queues.py -- the operators' queues CLI (cli/queues) against the running broker: the list of the
suite's queues with their dead letters, a real poison event peeked at (left in place) and replayed to its
original exchange and routing key, the way back of a retried and of a work-queue message, --to-queue,
refusals that leave the message where it was, bad usage and unreachable endpoints.

The CLI is pointed at this stack through TEST_RABBITMQ_API and TEST_AMQP_URL only (its defaults are
the developer stack's ports). Queues of its own are named test.queues.<hex> and expire by themselves if
a test dies; the one real dlq it fills (notification.events.dlq) it empties before and after."""
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ROOT, wait_until
from rabbitlib import RABBIT_API, client, publish_event, q

BIN = os.path.join(os.environ.get("STACK_BIN", os.path.join(ROOT, "build", "asan", "bin")), "queues")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5673")
POISON_DLQ = "notification.events.dlq"  # device.* is consumed by notification.events alone


def run(*args, **env):
    """Runs the CLI with this stack's endpoints (plus env); fails on any sanitizer report."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("QUEUES_") and k != "AMQP_URL"}
    e.update(QUEUES_API_URL=RABBIT_API, AMQP_URL=AMQP_URL)
    e.update(env)
    r = subprocess.run([BIN, *args], env=e, capture_output=True, text=True, timeout=60)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def ok_json(*args):
    r = run(*args, "--json")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stderr == "", r.stderr
    return json.loads(r.stdout)


def one_line_error(r, status, *words):
    """Exit status as given, nothing on stdout, one line on stderr holding every word."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, repr(r.stderr)
    assert r.stderr.startswith("queues: "), r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def peek(dlq, n=100):
    return ok_json("peek", dlq, "-n", str(n))


def purge(name):
    with client() as c:
        r = c.delete(f"/queues/%2F/{q(name)}/contents")
        assert r.status_code in (204, 404), r.text


def take_all(name):
    with client() as c:
        r = c.post(f"/queues/%2F/{q(name)}/get",
                   json={"count": 100, "ackmode": "ack_requeue_false", "encoding": "auto"})
        r.raise_for_status()
        return r.json()


def take(name, message_id, timeout=10.0):
    """Takes messages off queue name until the one with message_id comes; returns it (not parsed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in take_all(name):
            if m["properties"].get("message_id") == message_id:
                return m
        time.sleep(0.1)
    raise AssertionError(f"{message_id} did not reach {name} within {timeout} s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pair:
    """A queue of the test's own declared as libs/mq declares one with dead letters (x-dead-letter-exchange
    "", x-dead-letter-routing-key <name>.dlq), bound to events for <name>.*, without a consumer, so a test
    can make real dead letters (basic.reject through the management API) and watch replays arrive."""

    def __init__(self):
        self.rabbit = client()
        self.name = f"test.queues.{uuid.uuid4().hex[:12]}"
        self.dlq = self.name + ".dlq"
        self.key = self.name + ".*"
        for name, args in ((self.dlq, {}), (self.name, {"x-dead-letter-exchange": "",
                                                         "x-dead-letter-routing-key": self.dlq})):
            r = self.rabbit.put(f"/queues/%2F/{q(name)}",
                                json={"durable": True, "arguments": {**args, "x-expires": 300000}})
            assert r.status_code in (201, 204), r.text
        self.bind()

    def bind(self, key=None):
        r = self.rabbit.post(f"/bindings/%2F/e/events/q/{q(self.name)}", json={"routing_key": key or self.key})
        assert r.status_code in (201, 204), r.text

    def unbind(self, key=None):
        r = self.rabbit.delete(f"/bindings/%2F/e/events/q/{q(self.name)}/{q(key or self.key)}")
        assert r.status_code == 204, r.text

    def listed_dead_letters(self, n):
        """Waits until `queues list` shows n dead letters on this queue's row (queue stats come every 5 s)."""
        def listed():
            rows = {r["name"]: r for r in ok_json("list")["queues"]}
            return rows.get(self.name, {}).get("dead_letters") == n
        wait_until(listed, timeout=20, interval=1, what=f"list showing {n} dead letter(s) on {self.name}")

    def publish(self, exchange, routing_key, mid, body="{}", headers=None, delivery_mode=1):
        props = {"message_id": mid, "type": "test.queues", "app_id": "test", "content_type": "application/json",
                 "delivery_mode": delivery_mode, "timestamp": int(time.time()), "headers": headers or {}}
        r = self.rabbit.post(f"/exchanges/%2F/{q(exchange or 'amq.default')}/publish",
                             json={"properties": props, "routing_key": routing_key, "payload": body,
                                   "payload_encoding": "string"})
        r.raise_for_status()
        assert r.json()["routed"], (exchange, routing_key)

    def dead_letter(self, n=1):
        """Rejects the first n messages of the queue without requeue: RabbitMQ dead-letters them."""
        wait_until(lambda: self.peek_depth(self.name) >= n, timeout=10, what=f"{n} message(s) in {self.name}")
        r = self.rabbit.post(f"/queues/%2F/{q(self.name)}/get",
                             json={"count": n, "ackmode": "reject_requeue_false", "encoding": "auto"})
        r.raise_for_status()
        assert len(r.json()) == n, r.json()
        wait_until(lambda: peek(self.dlq)["depth"] >= n, timeout=10, what=f"{n} dead letter(s) in {self.dlq}")

    def peek_depth(self, name):
        r = self.rabbit.post(f"/queues/%2F/{q(name)}/get",
                             json={"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
        r.raise_for_status()
        got = r.json()
        return got[0]["message_count"] + 1 if got else 0

    def close(self):
        for name in (self.name, self.dlq):
            self.rabbit.delete(f"/queues/%2F/{q(name)}")
        self.rabbit.close()


@pytest.fixture
def pair():
    p = Pair()
    try:
        yield p
    finally:
        p.close()


# ------------------------------------------------------------------------------------------ list

SUITE_EVENT_QUEUES = ["auth.events", "resize-image.events", "publication.events", "publication.fanout",
                      "notification.events", "notification.push", "notification.mail", "search.events"]
SUITE_RPC_QUEUES = ["auth.rpc", "resize-image.rpc", "publication.rpc", "notification.rpc", "search.rpc"]


def test_the_cli_talks_to_this_stack_not_to_its_defaults():
    port = os.environ.get("STACK_MGMT_PORT")
    if port:
        assert f":{port}/" in RABBIT_API + "/", (RABBIT_API, port)
    amqp_port = os.environ.get("STACK_AMQP_PORT")
    if amqp_port:
        assert AMQP_URL.rstrip("/").endswith(f":{amqp_port}"), (AMQP_URL, amqp_port)
    # With nothing set, the CLI goes to 127.0.0.1:15672: a test stack elsewhere must not be reached.
    r = run("list", QUEUES_API_URL=f"http://127.0.0.1:{free_port()}/api")
    one_line_error(r, 1, "QUEUES_API_URL: cannot reach http://127.0.0.1:")


def test_list_shows_every_queue_of_the_suite_with_consumers_dead_letters_and_purpose():
    def listed():
        doc = ok_json("list")
        rows = {r["name"]: r for r in doc["queues"]}
        return rows if all(rows.get(n, {}).get("consumers", 0) > 0
                           for n in SUITE_EVENT_QUEUES + SUITE_RPC_QUEUES) else None

    rows = wait_until(listed, timeout=20, interval=1, what="the suite's queues with consumers (stats every 5 s)")
    for name in SUITE_EVENT_QUEUES:
        r = rows[name]
        assert r["dlq"] == name + ".dlq", r
        assert isinstance(r["dead_letters"], (int, float)) and r["dead_letters"] >= 0, r
        assert r["purpose"], r
        for k in ("messages_ready", "messages_unacked", "publish_rate", "deliver_rate", "ack_rate"):
            assert isinstance(r[k], (int, float)) and r[k] >= 0, (k, r)
    for name in SUITE_RPC_QUEUES:
        assert rows[name]["dlq"] is None and rows[name]["dead_letters"] is None, rows[name]  # no dead letters
        assert rows[name]["purpose"].startswith("RPC"), rows[name]
    assert any(n.startswith("search.sync.") for n in rows), sorted(rows)
    # a dlq is shown on its queue's row, not as a row of its own
    assert not any(n.endswith(".dlq") and n[:-4] in rows for n in rows)

    r = run("list")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    head = lines[0].split()
    assert head == ["QUEUE", "READY", "UNACKED", "CONSUMERS", "PUBLISH/S", "DELIVER/S", "ACK/S", "DEAD", "FOR"]
    for name in SUITE_EVENT_QUEUES:
        line = next(l for l in lines if l.split()[0] == name)
        assert rows[name]["purpose"] in line, line
        # aligned: the DEAD column ends where its heading does
        assert line[:lines[0].index("DEAD") + 4].split()[-1].isdigit(), (lines[0], line)


def test_an_unknown_queue_is_listed_without_a_purpose(pair):
    rows = {r["name"]: r for r in ok_json("list")["queues"]}
    assert rows[pair.name]["purpose"] is None
    assert rows[pair.name]["dlq"] == pair.dlq and pair.dlq not in rows


# ------------------------------------------------------------------------------------------ a real poison event

def test_a_poison_event_is_listed_peeked_at_in_place_and_replayed_to_its_exchange(pair):
    """A malformed device.registered (consumed by notification.events alone, which dead-letters a malformed
    event at once); our own queue, bound to the same key, watches what the events exchange carries."""
    mid, body = str(uuid.uuid4()), "not json {" + uuid.uuid4().hex
    watch = pair.name
    pair.bind("device.registered")
    purge(POISON_DLQ)
    try:
        publish_event("device.registered", None, message_id=mid, raw=body)
        assert take(watch, mid)["payload"] == body  # the original publish reaches our queue too
        wait_until(lambda: peek(POISON_DLQ)["depth"] == 1, timeout=15, what="the poison event dead-lettered")

        # list: the dead letter on notification.events's row (queue stats come every 5 s)
        def dead_listed():
            rows = {r["name"]: r for r in ok_json("list")["queues"]}
            return rows["notification.events"]["dead_letters"] == 1
        wait_until(dead_listed, timeout=20, interval=1, what="list showing the dead letter")

        # peek: what it is and where it goes back to; it stays
        for _ in range(2):
            doc = peek(POISON_DLQ)
            assert doc["depth"] == 1, doc
            (m,) = doc["messages"]
            assert m["message_id"] == mid and m["type"] == "device.registered", m
            assert m["payload"] == body and m["payload_bytes"] == len(body) and not m["payload_truncated"]
            assert m["routing_key"] == POISON_DLQ and m["exchange"] == "", m
            (death,) = m["x_death"]
            assert death["queue"] == "notification.events" and death["reason"] == "rejected", death
            assert death["count"] == 1 and death["exchange"] == "events", death
            assert death["routing-keys"] == ["device.registered"], death
            assert m["replay_to"] == {"exchange": "events", "routing_key": "device.registered"}, m
        text = run("peek", POISON_DLQ)
        assert text.returncode == 0, text.stderr
        assert mid in text.stdout and body in text.stdout, text.stdout
        assert 'replays to: exchange "events", routing key device.registered' in text.stdout, text.stdout
        assert "x-death: count 1, reason rejected, queue notification.events" in text.stdout, text.stdout
        assert peek(POISON_DLQ)["depth"] == 1

        # replay: out of the dlq (0 left), onto events with its routing key, as it was
        doc = ok_json("replay", POISON_DLQ)
        assert doc == {"queue": POISON_DLQ, "left": 0,
                       "replayed": [{"message_id": mid, "exchange": "events", "routing_key": "device.registered"}]}, doc
        got = take(watch, mid)
        assert got["exchange"] == "events" and got["routing_key"] == "device.registered", got
        assert got["payload"] == body
        p = got["properties"]
        assert p["type"] == "device.registered" and p["app_id"] == "test" and p["delivery_mode"] == 2, p
        assert "x-retry" not in p.get("headers", {}), p

        # notification took it again, and dead-lettered it again (it is still malformed): x-death counts 2
        def died_twice():
            ms = peek(POISON_DLQ)["messages"]
            return len(ms) == 1 and ms[0]["message_id"] == mid and ms[0]["x_death"][0]["count"] == 2
        wait_until(died_twice, timeout=15, what="the replayed event back at notification and dead again")
    finally:
        purge(POISON_DLQ)


# ------------------------------------------------------------------------------------------ ways back

def test_a_retried_message_goes_back_to_the_exchange_that_binds_its_key(pair):
    """libs/mq retries by republishing to the queue through the default exchange, with the first routing
    key in x-routing-key: x-death then says "" / <queue>, and the exchange comes from the bindings."""
    mid, key = str(uuid.uuid4()), pair.name + ".retried"
    pair.publish("", pair.name, mid, body='{"n":1}',
                 headers={"x-routing-key": key, "x-retry": 5, "x-custom": "kept"})
    pair.dead_letter()
    (m,) = peek(pair.dlq)["messages"]
    assert m["x_routing_key"] == key and m["x_death"][0]["exchange"] == "", m
    assert m["replay_to"] == {"exchange": "events", "routing_key": key}, m

    pair.listed_dead_letters(1)

    r = run("replay", pair.dlq)
    assert r.returncode == 0, r.stderr
    assert f'replayed {mid} to exchange "events", routing key {key}' in r.stdout, r.stdout
    assert f"replayed 1 message from {pair.dlq}; 0 left" in r.stdout, r.stdout
    wait_until(lambda: pair.peek_depth(pair.name) == 1, timeout=10, what="the replayed message")
    (got,) = take_all(pair.name)
    assert got["exchange"] == "events" and got["routing_key"] == key, got
    assert got["payload"] == '{"n":1}'
    h = got["properties"]["headers"]
    assert "x-retry" not in h, h  # else it would be dead-lettered after its first failure
    assert h["x-custom"] == "kept" and h["x-routing-key"] == key, h
    assert got["properties"]["delivery_mode"] == 2 and got["properties"]["message_id"] == mid
    assert peek(pair.dlq)["depth"] == 0
    pair.listed_dead_letters(0)


def test_work_queue_messages_go_back_through_the_default_exchange_all_of_them_in_order(pair):
    mids = [str(uuid.uuid4()) for _ in range(3)]
    for mid in mids:
        pair.publish("", pair.name, mid)
    pair.dead_letter(3)
    assert [m["replay_to"] for m in peek(pair.dlq)["messages"]] == [{"exchange": "", "routing_key": pair.name}] * 3

    doc = ok_json("replay", pair.dlq, "--all")
    assert [m["message_id"] for m in doc["replayed"]] == mids and doc["left"] == 0, doc
    wait_until(lambda: pair.peek_depth(pair.name) == 3, timeout=10, what="3 replayed messages")
    assert [m["properties"]["message_id"] for m in take_all(pair.name)] == mids
    assert peek(pair.dlq)["depth"] == 0


def test_replay_n_takes_only_n_and_to_queue_keeps_the_key_in_x_routing_key(pair):
    mids = [str(uuid.uuid4()) for _ in range(2)]
    key = pair.name + ".created"
    for mid in mids:
        pair.publish("events", key, mid)
    pair.dead_letter(2)
    assert peek(pair.dlq)["messages"][0]["replay_to"] == {"exchange": "events", "routing_key": key}

    doc = ok_json("replay", pair.dlq, "-n", "1", "--to-queue")
    assert doc["replayed"] == [{"message_id": mids[0], "exchange": "", "routing_key": pair.name}], doc
    assert doc["left"] == 1, doc
    wait_until(lambda: pair.peek_depth(pair.name) == 1, timeout=10, what="the replayed message")
    (got,) = take_all(pair.name)
    assert got["exchange"] == "" and got["routing_key"] == pair.name, got
    assert got["properties"]["headers"]["x-routing-key"] == key, got
    assert [m["message_id"] for m in peek(pair.dlq)["messages"]] == [mids[1]]


# ------------------------------------------------------------------------------------------ refusals

def test_a_message_whose_way_back_is_unknown_or_unrouted_stays_in_the_dlq(pair):
    # not a dead letter at all: published straight into the dlq, no x-death
    stray = str(uuid.uuid4())
    pair.publish("", pair.dlq, stray)
    wait_until(lambda: peek(pair.dlq)["depth"] == 1, timeout=10, what="the stray message")
    one_line_error(run("replay", pair.dlq), 2, stray, "x-death")
    (m,) = peek(pair.dlq)["messages"]
    assert m["message_id"] == stray and m["replay_to"] is None and "x-death" in m["replay_error"], m
    purge(pair.dlq)

    # retried, and its queue no longer bound for its key: no exchange to go back to
    mid = str(uuid.uuid4())
    pair.publish("", pair.name, mid, headers={"x-routing-key": pair.name + ".x", "x-retry": 5})
    pair.dead_letter()
    pair.unbind()
    one_line_error(run("replay", pair.dlq), 2, mid, "no exchange binds")
    assert [m["message_id"] for m in peek(pair.dlq)["messages"]] == [mid]
    purge(pair.dlq)
    pair.bind()

    # dead on its first delivery from events, then unbound: published mandatory, returned, kept
    mid = str(uuid.uuid4())
    pair.publish("events", pair.name + ".y", mid)
    pair.dead_letter()
    pair.unbind()
    one_line_error(run("replay", pair.dlq), 2, mid, "nothing is bound")
    (m,) = peek(pair.dlq)["messages"]
    assert m["message_id"] == mid and m["x_death"][0]["count"] == 1, m  # the same message, not a copy


@pytest.mark.parametrize("args", [
    [], ["frob"], ["peek"], ["replay"], ["peek", "auth.rpc"], ["replay", "notification.events"],
    ["replay", POISON_DLQ, "-n", "0"], ["replay", POISON_DLQ, "--all", "-n", "2"], ["peek", POISON_DLQ, "--all"],
    ["peek", POISON_DLQ, "-n", "abc"], ["list", "--bogus"], ["list", "auth.rpc"], ["peek", "a.dlq", "b.dlq"],
])
def test_bad_usage_is_refused_with_one_line(args):
    one_line_error(run(*args), 2)


def test_no_such_queue_and_bad_configuration_are_refused_with_one_line():
    one_line_error(run("peek", "no.such.queue.dlq"), 2, "no queue no.such.queue.dlq in vhost /")
    one_line_error(run("replay", "no.such.queue.dlq"), 2, "no queue no.such.queue.dlq in vhost /")
    one_line_error(run("list", QUEUES_VHOST="no-such-vhost"), 2, "QUEUES_VHOST", "no-such-vhost")
    one_line_error(run("list", QUEUES_API_URL="ftp://127.0.0.1/api"), 2, "QUEUES_API_URL")
    one_line_error(run("list", QUEUES_TIMEOUT="soon"), 2, "QUEUES_TIMEOUT")
    one_line_error(run("replay", POISON_DLQ, AMQP_URL=AMQP_URL.rstrip("/") + "/other"), 2, "AMQP_URL", "QUEUES_VHOST")


def test_unreachable_or_refusing_endpoints_fail_with_one_line():
    port = free_port()
    for args in (["list"], ["peek", POISON_DLQ]):
        one_line_error(run(*args, QUEUES_API_URL=f"http://127.0.0.1:{port}/api"), 1,
                       f"QUEUES_API_URL: cannot reach http://127.0.0.1:{port}/api")
    one_line_error(run("list", QUEUES_API_PASSWORD="wrong"), 1, "QUEUES_API_USER", "401")
    one_line_error(run("replay", POISON_DLQ, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{port}"), 1,
                   f"AMQP_URL: cannot connect to 127.0.0.1:{port}")
    one_line_error(run("replay", POISON_DLQ, AMQP_URL=AMQP_URL.replace("guest:guest", "guest:wrong")), 1,
                   "AMQP_URL: login", "ACCESS_REFUSED")


BAD_ANSWERS = [
    (200, "not json"), (200, ""), (200, "[1, 2, 3]"), (200, '{"a": 1}'), (200, "null"),
    (200, '[{"name": 5, "messages": "x"}, {"name": "a.dlq"}, {"name": "a", "message_stats": []}]'),
    (200, '[{"properties": "x", "payload": "%%%"}, {"properties": {"headers": {"x-death": "str"}}}]'),
    (200, '[{"properties": {"headers": {"x-death": [1, {"queue": 2, "routing-keys": "k"}, {"exchange": ""}],'
          ' "x-routing-key": 7}}, "payload": "!!not base64", "payload_bytes": -1, "message_count": "x"}]'),
    (200, "[" * 5000 + "]" * 5000), (500, "<html>oops</html>"), (503, '{"error": "x", "reason": 5}'),
]


@pytest.mark.parametrize("status,body", BAD_ANSWERS)
def test_a_bad_answer_of_the_api_never_crashes_it(status, body):
    """A management API that answers nonsense: the CLI says so in one line or shows what makes sense, and
    ASan/UBSan (the test stack's build) see nothing wrong."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        do_GET = do_POST = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = f"http://127.0.0.1:{server.server_address[1]}/api"
        for args in (["list"], ["list", "--json"], ["peek", "a.dlq"], ["peek", "a.dlq", "--json"]):
            r = run(*args, QUEUES_API_URL=api)
            assert r.returncode in (0, 1), (args, r.returncode, r.stderr)
            if r.returncode == 1:
                one_line_error(r, 1)
            else:
                assert r.stderr == "", r.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_help_names_every_variable():
    r = run("--help")
    assert r.returncode == 0 and r.stderr == ""
    for v in ("QUEUES_API_URL", "QUEUES_API_USER", "QUEUES_API_PASSWORD", "QUEUES_VHOST", "AMQP_URL",
              "QUEUES_TIMEOUT"):
        assert v in r.stdout
