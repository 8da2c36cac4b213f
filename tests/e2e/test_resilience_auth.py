"""test_resilience_auth.py -- auth killed with SIGKILL: no accepted write and no event is lost.

Runs after test_resilience.py (file order). The window between a write and its event is held
open by the broker itself: a queue bound to follow.created with x-max-length 0 and
x-overflow reject-publish makes RabbitMQ nack every follow.created, so auth stores the follow
and its outbox event but cannot get the event confirmed. auth is then killed with SIGKILL and the
blocking queue removed; after a restart the event must arrive, exactly once.
"""
import os
import re
import time
import uuid

import httpx

from conftest import bearer, h2_client, is_problem, stack, wait_until
from rabbitlib import EventQueue, client as rabbit_client, q as quote
from test_resilience import alive, pid_of

AUTH_ADMIN = f"http://127.0.0.1:{int(os.environ.get('STACK_ADMIN_BASE', '9200')) + 1}"


def register(c, prefix):
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    r = c.post("/v1/auth/register", json={"username": name, "email": f"{name}@example.com",
                                            "password": "correct horse"})
    assert r.status_code == 201, r.text
    return r.json()


def metric(name):
    text = httpx.get(f"{AUTH_ADMIN}/metrics", timeout=2).text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)", text, re.M))


def auth_ready():
    try:
        return httpx.get(f"{AUTH_ADMIN}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class RejectingQueue:
    """While it exists, the broker nacks every event published with key."""

    def __init__(self, key):
        self.rabbit = rabbit_client()
        self.name = f"test.reject.{uuid.uuid4().hex[:12]}"
        r = self.rabbit.put(f"/queues/%2F/{quote(self.name)}", json={
            "durable": False, "auto_delete": False,
            "arguments": {"x-max-length": 0, "x-overflow": "reject-publish", "x-expires": 120000}})
        assert r.status_code in (201, 204), r.text
        r = self.rabbit.post(f"/bindings/%2F/e/events/q/{quote(self.name)}", json={"routing_key": key})
        assert r.status_code in (201, 204), r.text

    def remove(self):
        if self.rabbit is not None:
            self.rabbit.delete(f"/queues/%2F/{quote(self.name)}")
            self.rabbit.close()
            self.rabbit = None


def test_follow_event_survives_kill9_between_write_and_publish():
    with h2_client() as c:
        a, b = register(c, "k9a"), register(c, "k9b")
        a_id, b_id, bname = a["user"]["id"], b["user"]["id"], b["user"]["username"]
        blocker = RejectingQueue("follow.created")
        try:
            # The write is accepted (200: edge, counts and the outbox event are stored)...
            r = c.post(f"/v1/users/{bname}/follow", headers=bearer(a["access_token"]))
            assert r.status_code == 200 and r.json()["following"] is True
            # ...but the broker refuses the event, so it is still in the outbox when auth dies.
            wait_until(lambda: "outbox: cannot publish follow.created" in open(
                os.path.join(os.environ.get("STACK_VAR", "var/test"), "log", "auth.log")).read(),
                timeout=10, what="auth trying to publish and being refused")
            pid = pid_of("auth")
            stack("kill9", "auth")
            wait_until(lambda: not alive(pid), timeout=10, what="auth gone")
        finally:
            blocker.remove()

        with EventQueue(["follow.created"]) as q:
            stack("start", "auth")
            wait_until(auth_ready, timeout=30, what="auth ready again")
            got = q.take(want=1, timeout=20, predicate=lambda m: m["body"]["follower_id"] == a_id)
            assert len(got) == 1 and got[0]["body"]["followee_id"] == b_id
            time.sleep(2)
            assert q.take(want=1, timeout=1, predicate=lambda m: m["body"]["follower_id"] == a_id) == [], \
                "published twice"
        r = c.get(f"/v1/users/{bname}", headers=bearer(a["access_token"]))
        assert r.status_code == 200
        assert r.json()["followers_count"] == 1 and r.json()["relationship"]["following"] is True


def test_accounts_and_sessions_survive_kill9():
    with h2_client() as c:
        u = register(c, "k9s")
        stack("kill9", "auth")
        stack("start", "auth")
        wait_until(auth_ready, timeout=30, what="auth ready again")
        r = c.post("/v1/auth/refresh", json={"refresh_token": u["refresh_token"]})
        assert r.status_code == 200, r.text
        r = c.post("/v1/auth/login", json={"login": u["user"]["username"], "password": "correct horse"})
        assert r.status_code == 200, r.text


def test_database_outage_is_503_not_a_wrong_answer_and_auth_recovers_by_itself():
    with h2_client() as c:
        u = register(c, "dbo")
        h, name = bearer(u["access_token"]), u["user"]["username"]
        pid = pid_of("auth")
        stack("stop", "ferretdb")
        try:
            wait_until(lambda: c.get("/v1/me", headers=h).status_code == 503, timeout=15,
                       what="503 while the database is down")
            body = is_problem(c.get("/v1/me", headers=h), 503)
            assert "database" in body["detail"]
            # A login must not look like bad credentials, nor a register like a taken name.
            r = c.post("/v1/auth/login", json={"login": name, "password": "correct horse"})
            is_problem(r, 503)
            assert r.headers.get("retry-after")
            is_problem(c.post("/v1/auth/register", json={"username": name, "email": "x" + u["user"]["email"],
                                                         "password": "correct horse"}), 503)
            r = httpx.get(f"{AUTH_ADMIN}/readyz", timeout=5)
            assert r.status_code == 503 and r.json()["checks"]["database"] == "down"
        finally:
            stack("start", "ferretdb")
        wait_until(lambda: c.get("/v1/me", headers=h).status_code == 200, timeout=30,
                   what="auth answering again after the database came back")
        assert pid_of("auth") == pid and alive(pid), "auth must not need a restart"
        with EventQueue(["follow.created"]) as q:
            other = register(c, "dbo")
            r = c.post(f"/v1/users/{other['user']['username']}/follow", headers=h)
            assert r.status_code == 200
            assert len(q.take(want=1, timeout=10, predicate=lambda m: m["body"]["follower_id"] == u["user"]["id"])) == 1
