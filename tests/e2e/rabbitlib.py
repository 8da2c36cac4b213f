"""rabbitlib.py -- the test broker through RabbitMQ's management HTTP API: queues of a test's own,
publishing, and reading messages (used by tests that watch events)."""
import json
import os
import time
import urllib.parse
import uuid

import httpx

RABBIT_API = os.environ.get("TEST_RABBITMQ_API", "http://127.0.0.1:15673/api").rstrip("/")


def q(name):
    return urllib.parse.quote(name, safe="")


def client():
    return httpx.Client(base_url=RABBIT_API, auth=("guest", "guest"), timeout=10)


class EventQueue:
    """A queue of the test's own bound to the events exchange for keys; it expires by itself
    if the test dies before deleting it."""

    def __init__(self, keys):
        self.rabbit = client()
        self.name = f"test.events.{uuid.uuid4().hex[:12]}"
        r = self.rabbit.put(f"/queues/%2F/{q(self.name)}",
                            json={"durable": False, "auto_delete": False, "arguments": {"x-expires": 300000}})
        assert r.status_code in (201, 204), r.text
        for key in keys:
            r = self.rabbit.post(f"/bindings/%2F/e/events/q/{q(self.name)}", json={"routing_key": key})
            assert r.status_code in (201, 204), r.text

    def take(self, want=1, timeout=10.0, predicate=lambda m: True):
        """Takes messages off the queue until want of them satisfy predicate, or timeout. Returns
        the matching ones (each with "body": the parsed payload)."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            r = self.rabbit.post(f"/queues/%2F/{q(self.name)}/get",
                                 json={"count": 100, "ackmode": "ack_requeue_false", "encoding": "auto"})
            r.raise_for_status()
            msgs = r.json()
            for m in msgs:
                m["body"] = json.loads(m["payload"])
            msgs = [m for m in msgs if predicate(m)]
            got.extend(msgs)
            if not msgs:
                time.sleep(0.1)
        return got

    def close(self):
        self.rabbit.delete(f"/queues/%2F/{q(self.name)}")
        self.rabbit.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def publish_event(key, body, message_id=None, raw=None):
    """Publishes an event as a service would (persistent JSON with a message_id)."""
    with client() as c:
        props = {"message_id": message_id or str(uuid.uuid4()), "type": key, "app_id": "test",
                 "content_type": "application/json", "delivery_mode": 2, "timestamp": int(time.time())}
        r = c.post("/exchanges/%2F/events/publish",
                   json={"properties": props, "routing_key": key,
                         "payload": raw if raw is not None else json.dumps(body), "payload_encoding": "string"})
        r.raise_for_status()
        assert r.json()["routed"], f"nothing bound to events/{key}"


def queue_info(name):
    with client() as c:
        r = c.get(f"/queues/%2F/{q(name)}")
        r.raise_for_status()
        return r.json()


def rpc_call(service, method, body, user_id=None, timeout=10.0):
    """Calls a service's RPC method as another service would (reply to a queue of the test's own).
    Returns (status, parsed body)."""
    with client() as c:
        reply = f"test.reply.{uuid.uuid4().hex[:12]}"
        r = c.put(f"/queues/%2F/{q(reply)}",
                  json={"durable": False, "auto_delete": False, "arguments": {"x-expires": 60000}})
        assert r.status_code in (201, 204), r.text
        try:
            corr = uuid.uuid4().hex
            headers = {"x-request-id": str(uuid.uuid4())}
            if user_id is not None:
                headers["x-user-id"] = user_id
            props = {"type": method, "reply_to": reply, "correlation_id": corr, "app_id": "test",
                     "content_type": "application/json", "headers": headers,
                     "expiration": str(int(timeout * 1000))}
            r = c.post("/exchanges/%2F/rpc/publish",
                       json={"properties": props, "routing_key": service, "payload": json.dumps(body),
                             "payload_encoding": "string"})
            r.raise_for_status()
            assert r.json()["routed"], f"nothing bound to rpc/{service}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                r = c.post(f"/queues/%2F/{q(reply)}/get",
                           json={"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
                r.raise_for_status()
                for m in r.json():
                    if m["properties"].get("correlation_id") == corr:
                        status = int(m["properties"].get("headers", {}).get("x-status", 0))
                        return status, json.loads(m["payload"]) if m["payload"] else None
                time.sleep(0.05)
            raise AssertionError(f"no reply to {method} within {timeout} s")
        finally:
            c.delete(f"/queues/%2F/{q(reply)}")
