"""test_resilience_media.py -- resize-image killed with SIGKILL in the middle of a burst of uploads:
every upload that was answered 201 is there (document and files) with its media.created event
delivered once, and what the killed uploads left half-way is cleaned up by the outbox's
recovery (RESIZE_IMAGE_OUTBOX_RECOVER_AFTER is 8 s in the test stack)."""
import collections
import os
import threading
import time

import httpx

import medialib as m
from conftest import bearer, h2_client, make_token, stack, wait_until
from rabbitlib import EventQueue
from test_media import upload
from test_resilience import alive, pid_of

ADMIN = f"http://127.0.0.1:{int(os.environ.get('STACK_ADMIN_BASE', '9200')) + 2}"


def resize_ready():
    try:
        return httpx.get(f"{ADMIN}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_kill9_mid_burst_loses_no_upload_and_leaves_no_orphan():
    token = make_token()
    image = m.jpeg(1600, 1200)
    before = {f.split("/")[1] for f in m.stored_files()}
    results, lock, stop = [], threading.Lock(), threading.Event()

    def uploader():
        with h2_client() as c:
            while not stop.is_set():
                try:
                    r = upload(c, token, image)
                    got = (r.status_code, r.json().get("id") if r.status_code == 201 else None)
                except httpx.HTTPError as e:
                    got = (type(e).__name__, None)
                with lock:
                    results.append(got)

    def ok():
        with lock:
            return sum(1 for s, _ in results if s == 201)

    with EventQueue(["media.created"]) as events:
        threads = [threading.Thread(target=uploader) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: ok() >= 3, timeout=60, what="uploads going")
            pid = pid_of("resize-image")
            stack("kill9", "resize-image")
            wait_until(lambda: not alive(pid), timeout=10, what="resize-image gone")
            time.sleep(0.5)
            stack("start", "resize-image")
            wait_until(resize_ready, timeout=30, what="resize-image ready again")
            n = ok()
            wait_until(lambda: ok() >= n + 3, timeout=60, what="uploads going again")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=90)

        acked = {i for s, i in results if s == 201}
        assert len(acked) >= 6, results
        # Every acknowledged upload is there, files included.
        with h2_client() as c:
            for i in acked:
                r = c.get(f"/v1/media/{i}", headers=bearer(token))
                assert r.status_code == 200, (i, r.status_code)
                assert m.open_image(c.get(r.json()["variants"]["large"]["url"]).content).size == (1080, 810)

        # Each media that exists was announced, once (one message_id; a redelivery after the kill
        # reuses it); the half-done uploads of the killed process are removed by the recovery.
        seen = collections.defaultdict(set)

        def settled():
            for e in events.take(want=1000, timeout=0.5):
                seen[e["body"]["id"]].add(e["properties"]["message_id"])
            now = {f.split("/")[1] for f in m.stored_files()} - before
            return acked <= now <= set(seen)

        wait_until(settled, timeout=40, interval=0.5, what="every stored media announced and orphans removed")
        assert all(len(ids) == 1 for ids in seen.values()), {k: v for k, v in seen.items() if len(v) > 1}
        leftover = {f.split("/")[1] for f in m.stored_files()} - before
        assert leftover <= set(seen), leftover - set(seen)
        assert all(len([f for f in m.stored_files() if f.split("/")[1] == i]) == 8 for i in leftover)


def test_database_outage_is_503_and_resize_image_recovers_by_itself():
    token = make_token()
    image = m.jpeg(640, 480)
    pid = pid_of("resize-image")
    before = m.stored_files()
    with h2_client() as c:
        stack("stop", "ferretdb")
        try:
            wait_until(lambda: upload(c, token, image).status_code == 503, timeout=20,
                       what="503 while the database is down")
            r = upload(c, token, image)
            assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["type"].endswith("database-unavailable") and r.headers.get("retry-after")
            assert httpx.get(f"{ADMIN}/readyz", timeout=5).json()["checks"]["database"] == "down"
        finally:
            stack("start", "ferretdb")
        assert m.stored_files() == before, "nothing is stored while the database is down"
        with EventQueue(["media.created"]) as events:
            r = wait_until(lambda: (lambda r: r if r.status_code == 201 else None)(upload(c, token, image)),
                           timeout=30, what="uploads accepted again")
            assert events.take(1, timeout=10, predicate=lambda e: e["body"]["id"] == r.json()["id"])
        assert pid_of("resize-image") == pid and alive(pid), "resize-image must not need a restart"
