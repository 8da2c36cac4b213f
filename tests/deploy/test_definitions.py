"""test_definitions.py -- deploy/rabbitmq/definitions.json checked offline against the daemons' sources.

The broker loads the file before any daemon connects, and a daemon's own queue.declare of a queue that
exists with other arguments fails with 406 PRECONDITION_FAILED: so every queue, argument and binding is
compared with what the code declares (parsed from services/*/*.c and libs/mq/mq.c), and with the queues
proto/asyncapi.yaml and the services' READMEs name. Then the users: one per daemon, and each one's
permission regexes match what its code does (declares, binds, consumes, publishes) and none of
another daemon's queues. deploy/rabbitmq/README.md explains the model.
"""
import glob
import json
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFS_PATH = os.path.join(ROOT, "deploy", "rabbitmq", "definitions.json")
SERVICES = ["auth", "resize-image", "publication", "notification", "search"]
# Broker user of each daemon: its queue prefix ("<prefix>.rpc", ...). gateway owns no queue; echod
# (tests/echod, test stacks only) serves the RPC service "echo".
PREFIX = {s: s for s in SERVICES} | {"echod": "echo", "gateway": None}
# Exchanges libs/mq/mq.c declares on every connection (mq__declare): configure on both for every user.
ALWAYS_DECLARED = {"rpc", "events"}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


DEFS = json.loads(read("deploy/rabbitmq/definitions.json"))


def full(regex, name):
    """How RabbitMQ applies a permission regex: re:run, unanchored; an empty one means '^$'."""
    return re.search(regex or "^$", name) is not None


# ---------------------------------------------------------------- what the code declares


def c_strings(block):
    return re.findall(r'"([^"]*)"', block)


def code_topology():
    """{queue: {"dlq": bool, "exchange": str or None, "keys": [...], "service": s}} of every durable
    queue the daemons declare, from their mq_declare_* and svc_serve_rpc calls."""
    out = {}
    for s in SERVICES:
        src_files = sorted(glob.glob(os.path.join(ROOT, "services", s, "*.c")))
        headers = "".join(read(os.path.relpath(h, ROOT)) for h in glob.glob(os.path.join(ROOT, "services", s, "*.h")))
        for path in src_files:
            src = read(os.path.relpath(path, ROOT))
            macros = dict(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', src + headers))
            for m in re.finditer(r"mq_declare_(event|work)_queue\(\s*[\w>-]+,\s*(\w+|\"[^\"]*\")([^;]*);", src):
                kind, name = m.group(1), m.group(2)
                name = name.strip('"') if name.startswith('"') else macros[name]
                keys = []
                if kind == "event":
                    keyvar = m.group(3).split(",")[1].strip()
                    arrays = re.findall(r"\b" + keyvar + r"\[\]\s*=\s*\{([^}]*)\}", src[: m.start()])
                    keys = c_strings(arrays[-1])
                    assert m.group(3).rstrip(")").split(",")[-1].strip() == "0", f"{name}: exclusive?"
                out.setdefault(name, {"dlq": True, "exchange": "events" if keys else None, "keys": [], "service": s})
                out[name]["keys"] = sorted(set(out[name]["keys"]) | set(keys))
        main = read(f"services/{s}/main.c")
        name = re.search(r'\.name\s*=\s*"([^"]+)"', main).group(1)
        assert name == s
        out[f"{s}.rpc"] = {"dlq": False, "exchange": "rpc", "keys": [s], "service": s}
    return out


CODE = code_topology()


def test_code_parse_found_the_queues_the_readmes_name():
    # guards the parser above: each README names every queue parsed (RPC queues aside: search's
    # README has no queue table), and nothing more
    for s in SERVICES:
        readme = read(f"services/{s}/README.md")
        named = set(re.findall(r"`(" + re.escape(s) + r"\.(?:rpc|events|fanout|mail|push))`", readme))
        parsed = {q for q, d in CODE.items() if d["service"] == s}
        assert named <= parsed and parsed - {f"{s}.rpc"} <= named, s


def test_mq_declares_queues_as_this_test_assumes():
    # libs/mq/mq.c mq__declare_queue: durable (not exclusive) queues; with_dlq adds exactly these two
    # arguments and declares <queue>.dlq durable with none. If this changes, change definitions.json.
    src = read("libs/mq/mq.c")
    body = src[src.index("static int mq__declare_queue"):src.index("static int mq__declare(")]
    assert "amqp_table_entry_t args[2];" in body
    assert 'xasprintf("%s.dlq", name)' in body
    assert 'amqp_queue_declare(mq->conn, MQ__CHANNEL, amqp_cstring_bytes(dlq), 0, 1, 0, 0, amqp_empty_table)' in body
    assert re.search(r'"x-dead-letter-exchange"\);\s*args\[0\]\.value\.kind = AMQP_FIELD_KIND_UTF8;'
                     r'\s*args\[0\]\.value\.value\.bytes = amqp_cstring_bytes\(""\);', body)
    assert re.search(r'"x-dead-letter-routing-key"\);\s*args\[1\]\.value\.kind = AMQP_FIELD_KIND_UTF8;'
                     r'\s*args\[1\]\.value\.value\.bytes = amqp_cstring_bytes\(dlq\);', body)
    assert "amqp_cstring_bytes(name), 0, !exclusive, exclusive, exclusive" in body
    decl = src[src.index("static int mq__declare("):src.index("int mq__open")]
    assert 'amqp_cstring_bytes(MQ_EXCHANGE_RPC),\n                          amqp_cstring_bytes("direct"), 0, 1, 0, 0' in decl
    assert 'amqp_cstring_bytes(MQ_EXCHANGE_EVENTS),\n                          amqp_cstring_bytes("topic"), 0, 1, 0, 0' in decl
    assert 'amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table' in decl  # the daemons' own (search.sync)
    assert '#define MQ_EXCHANGE_RPC "rpc"' in read("libs/mq/mq.h")
    assert '#define MQ_EXCHANGE_EVENTS "events"' in read("libs/mq/mq.h")
    assert '#define SEARCH_SYNC_EXCHANGE "search.sync"' in read("services/search/search.h")


# ---------------------------------------------------------------- topology


def test_file_shape():
    assert [v["name"] for v in DEFS["vhosts"]] == ["/"]
    for kind in ("queues", "exchanges", "bindings", "permissions", "topic_permissions", "policies"):
        for item in DEFS[kind]:
            assert item["vhost"] == "/", (kind, item)
    names = [q["name"] for q in DEFS["queues"]]
    assert len(names) == len(set(names))


def test_exchanges():
    ex = {e["name"]: e for e in DEFS["exchanges"]}
    assert set(ex) == {"rpc", "events", "search.sync"}
    assert ex["rpc"]["type"] == "direct" and ex["events"]["type"] == "topic" and ex["search.sync"]["type"] == "topic"
    for e in ex.values():
        assert e["durable"] is True and e["auto_delete"] is False and e["internal"] is False and e["arguments"] == {}


def test_queues_match_the_code_exactly():
    queues = {q["name"]: q for q in DEFS["queues"]}
    want = {}
    for name, d in CODE.items():
        if d["dlq"]:
            want[name] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{name}.dlq"}
            want[f"{name}.dlq"] = {}
        else:
            want[name] = {}
    assert set(queues) == set(want)
    for name, args in want.items():
        q = queues[name]
        assert q["durable"] is True and q["auto_delete"] is False, name
        assert q["arguments"] == args, name  # anything else: the daemon's declare fails with 406


def test_no_per_copy_queue_in_the_file():
    # search.sync.<uuid> is exclusive and auto-deleted: each copy declares its own
    assert not [q for q in DEFS["queues"] if q["name"].startswith("search.sync")]


def test_bindings_match_the_code_exactly():
    got = {(b["source"], b["destination"], b["routing_key"]) for b in DEFS["bindings"]}
    assert all(b["destination_type"] == "queue" and b["arguments"] == {} for b in DEFS["bindings"])
    want = {(d["exchange"], q, k) for q, d in CODE.items() for k in d["keys"]}
    assert got == want


def test_every_queue_of_asyncapi_is_defined_with_its_dlq():
    spec = yaml.safe_load(read("proto/asyncapi.yaml"))
    queues = {q["name"] for q in DEFS["queues"]}
    addresses = {c.get("address") for c in spec["channels"].values()}
    named = {a for a in addresses if a and re.fullmatch(r"[a-z-]+\.(rpc|events|fanout|mail|push)", a)}
    assert len(named) == len(CODE)
    for a in named:
        assert a in queues
        assert (f"{a}.dlq" in queues) == (not a.endswith(".rpc")), a


def test_policies_fit_classic_queues():
    # Every queue is a classic queue (no x-queue-type): delivery-limit is a quorum-queue feature that a
    # classic queue ignores, so the retry limit stays libs/mq's (x-retry, then dead-lettering).
    for p in DEFS["policies"]:
        assert "delivery-limit" not in p["definition"]
    assert not [q for q in DEFS["queues"] if "x-queue-type" in q["arguments"]]
    (dl,) = [p for p in DEFS["policies"] if p["name"] == "dead-letters"]
    assert dl["apply-to"] == "queues" and dl["definition"] == {"queue-mode": "lazy"}
    for q in DEFS["queues"]:
        assert full(dl["pattern"], q["name"]) == q["name"].endswith(".dlq"), q["name"]


# ---------------------------------------------------------------- users and permissions


USERS = {u["name"]: u for u in DEFS["users"]}
PERMS = {p["user"]: p for p in DEFS["permissions"]}
TOPIC = {(t["user"], t["exchange"]): t for t in DEFS["topic_permissions"]}
# Queues of every owner, and samples of queues that do not exist yet but could (a per-copy queue).
OWNED = {u: [q for q, d in CODE.items() if d["service"] == u] + [f"{q}.dlq" for q, d in CODE.items()
                                                                 if d["service"] == u and d["dlq"]]
         for u in SERVICES}
OWNED["search"] += ["search.sync.0b4f3c9e-5e1d-4f55-9b7e-8f1f6c1b2a3d"]
OWNED["echod"] = ["echo.rpc"]
OWNED["gateway"] = []
EVENT_KEYS = sorted(os.path.basename(p)[: -len(".json")] for p in glob.glob(os.path.join(ROOT, "proto/schemas/events/*.json")))
# Who publishes which events (services/<s>/README.md "Published on the topic exchange events").
EVENT_OWNER = {"user": "auth", "follow": "auth", "block": "auth", "device": "auth", "media": "resize-image",
               "post": "publication", "comment": "publication", "like": "publication"}


def uses(s, what):
    return any(what in read(os.path.relpath(p, ROOT)) for p in glob.glob(os.path.join(ROOT, "services", s, "*.c")))


def test_one_user_per_daemon_and_an_operator():
    assert set(USERS) == set(SERVICES) | {"gateway", "echod", "operator"}
    assert set(PERMS) == set(USERS)
    for name, u in USERS.items():
        # No passwords in the file: each is set where the broker runs (deploy/rabbitmq/README.md).
        assert "password" not in u and "password_hash" not in u, name
        assert u["tags"] == ("administrator" if name == "operator" else ""), name


@pytest.mark.parametrize("user", list(PREFIX))
def test_a_daemon_may_do_what_its_code_does(user):
    p = PERMS[user]
    own = OWNED[user]
    for q in own:  # declare (configure), bind (write), consume and get (read) its own queues
        assert full(p["configure"], q) and full(p["write"], q) and full(p["read"], q), q
    for e in ALWAYS_DECLARED:  # mq__declare declares both on every connection
        assert full(p["configure"], e), e
    bound = {CODE[q]["exchange"] for q in own if q in CODE and CODE[q]["exchange"]} | ({"rpc"} if user == "echod" else set())
    if user == "search":
        bound.add("search.sync")  # search.sync.<uuid>
        assert full(p["configure"], "search.sync") and full(p["write"], "search.sync")
    for e in bound:  # queue.bind needs read on the exchange
        assert full(p["read"], e), e
    service = PREFIX[user] if user in SERVICES else None
    if service:
        assert full(p["write"], "events") == uses(service, "outbox_start("), "events publishers: the outboxes"
        assert full(p["write"], "rpc") == uses(service, "mq_rpc_client_start("), "rpc: the RPC clients"
    if user == "gateway":
        assert full(p["write"], "rpc") and not full(p["write"], "amq.default")
    else:
        # replies to amq.rabbitmq.reply-to and libs/mq's retries (mq__retry) go through the default exchange
        assert full(p["write"], "amq.default")


@pytest.mark.parametrize("user", list(PREFIX))
def test_no_daemon_reaches_another_daemons_queues(user):
    p = PERMS[user]
    for other, queues in OWNED.items():
        if other == user:
            continue
        for q in queues:
            for kind in ("configure", "write", "read"):
                assert not full(p[kind], q), f"{user} may {kind} {q} of {other}"
    for e in ("amq.rabbitmq.trace", "amq.topic", "amq.direct", "amq.fanout"):
        assert not full(p["configure"], e) and not full(p["write"], e), e


def test_event_keys_each_publisher_may_send():
    for key in EVENT_KEYS:
        owner = EVENT_OWNER[key.split(".")[0]]
        for user in SERVICES:
            t = TOPIC.get((user, "events"))
            may_publish = full(PERMS[user]["write"], "events") and (t is None or full(t["write"], key))
            assert may_publish == (user == owner), f"{user} publishing {key}"
    # a publisher without a topic permission could publish any key
    for user in SERVICES:
        if full(PERMS[user]["write"], "events"):
            assert (user, "events") in TOPIC, user


def test_binding_keys_each_consumer_may_bind():
    for user in SERVICES:
        t = TOPIC[(user, "events")]
        mine = {k for q, d in CODE.items() if d["service"] == user and d["exchange"] == "events" for k in d["keys"]}
        for key in EVENT_KEYS:
            assert full(t["read"], key) == (key in mine), f"{user} binding {key}"
    s = TOPIC[("search", "search.sync")]
    for kind in ("user", "post", "block"):
        assert full(s["write"], kind) and full(s["read"], kind)
    assert not full(s["write"], "user.deleted")


def test_operator_is_the_only_administrator():
    assert PERMS["operator"]["configure"] == PERMS["operator"]["write"] == PERMS["operator"]["read"] == ".*"
