"""test_media_input.py -- bad uploads: each a clear 4xx problem+json, nothing stored, no event,
the daemon alive and its memory flat; and media leaving with their owner's account."""
import os
import time

import jwt
import pytest

import conftest
import medialib as m
from authlib import User
from conftest import VAR, bearer, h2_client, make_token, wait_until
from rabbitlib import EventQueue, publish_event, queue_info
from test_media import UPLOAD_TIMEOUT, fetch, upload

MiB = 1024 * 1024


def is_problem(r, status, type_suffix=None):
    """A problem+json of this status whose type names what was wrong, with a detail to read."""
    body = conftest.is_problem(r, status)
    assert body["detail"]
    if type_suffix:
        assert body["type"].endswith(type_suffix), body
    return body


def jpeg_body():
    return m.jpeg(600, 400)


def two_files():
    return m.multipart([("file", "a.jpg", "image/jpeg", jpeg_body()), ("file", "b.jpg", "image/jpeg", jpeg_body())])


def file_and_other_file():
    return m.multipart([("file", "a.jpg", "image/jpeg", jpeg_body()), ("extra", "b.jpg", "image/jpeg", jpeg_body())])


def no_file():
    return m.multipart([("caption", None, None, b"hello"), ("photo", None, None, jpeg_body())])


def broken_boundary():
    ctype, body = m.multipart([("file", "a.jpg", "image/jpeg", jpeg_body())], boundary="right")
    return ctype.replace("right", "wrong"), body


def no_closing_boundary():
    ctype, body = m.multipart([("file", "a.jpg", "image/jpeg", jpeg_body())])
    return ctype, body[: body.rindex(b"\r\n--")]


def truncated(data, keep=0.6):
    return data[: int(len(data) * keep)]


# (name, content type, body, status, problem type)
CASES = [
    ("text posing as a JPEG", "image/jpeg", b"Hello, I am certainly a photo.\n" * 100, 415, "unsupported-image"),
    ("HTML posing as a PNG", "image/png", b"<html><script>alert(1)</script></html>", 415, "unsupported-image"),
    ("truncated JPEG", "image/jpeg", truncated(m.jpeg(1200, 900, comment=False)), 422, "corrupt-image"),
    ("truncated PNG", "image/png", truncated(m.png(600, 400)), 422, "corrupt-image"),
    ("JPEG signature then garbage", "image/jpeg", b"\xff\xd8\xff\xe0" + os.urandom(4000), 422, "corrupt-image"),
    ("zero bytes", "image/jpeg", b"", 400, "empty-body"),
    ("JSON body", "application/json", b'{"file": "x"}', 415, "unsupported-media-type"),
    ("no content type", None, jpeg_body(), 415, "unsupported-media-type"),
    ("multipart without file", *no_file(), 400, "missing-file"),
    ("two files", *two_files(), 400, "too-many-files"),
    ("a file under another name too", *file_and_other_file(), 400, "too-many-files"),
    ("broken boundary", *broken_boundary(), 400, "malformed-multipart"),
    ("no closing boundary", *no_closing_boundary(), 400, "malformed-multipart"),
    ("multipart without boundary", "multipart/form-data", b"--x\r\n\r\n--x--", 400, "malformed-multipart"),
    ("empty file part", *m.multipart([("file", "a.jpg", "image/jpeg", b"")]), 400, "empty-file"),
]


def resize_pid():
    with open(os.path.join(VAR, "run", "resize-image.pid")) as f:
        return int(f.read())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def post(client, token, ctype, body):
    headers = bearer(token)
    if ctype is not None:
        headers["content-type"] = ctype
    return client.post("/v1/media", headers=headers, content=body, timeout=UPLOAD_TIMEOUT)


@pytest.mark.parametrize("name,ctype,body,status,ptype", CASES, ids=[c[0] for c in CASES])
def test_bad_upload_is_a_clear_problem_and_stores_nothing(name, ctype, body, status, ptype):
    before = m.stored_files()
    with EventQueue(["media.created"]) as q, h2_client() as client:
        r = post(client, make_token(), ctype, body)
        is_problem(r, status, ptype)
        assert q.take(1, timeout=1.0) == []
    assert m.stored_files() == before


def test_png_bomb_is_refused_from_its_header():
    """20000 x 20000 pixels in 48 KB: refused before decoding (decoding would take the 400
    megapixels through memory for many seconds)."""
    bomb = m.png_bomb()
    assert len(bomb) < 100_000
    before = m.stored_files()
    with h2_client() as client:
        t0 = time.monotonic()
        r = post(client, make_token(), "image/png", bomb)
        elapsed = time.monotonic() - t0
    body = is_problem(r, 422, "image-too-large")
    assert "20000x20000" in body["detail"]
    assert elapsed < 5, f"{elapsed:.1f} s: was it decoded?"
    assert m.stored_files() == before


def test_body_of_25_mib_is_413_at_the_gateway():
    with h2_client() as client:
        ctype, body = m.multipart([("file", "big.jpg", "image/jpeg", b"\xff\xd8\xff" + b"\0" * (25 * MiB))])
        is_problem(post(client, make_token(), ctype, body), 413, "body-too-large")
        assert client.get("/healthz").status_code == 200


def test_file_just_over_20_mib_is_413_from_the_service():
    """Within the gateway's cap (the multipart envelope has room) but over the image limit: the
    20 MiB travel in the RPC message and resize-image refuses them."""
    with h2_client() as client:
        ctype, body = m.multipart([("file", "big.jpg", "image/jpeg", b"\xff\xd8\xff" + b"\0" * (20 * MiB - 2))])
        is_problem(post(client, make_token(), ctype, body), 413, "body-too-large")


def test_foreign_and_wrong_methods():
    with h2_client() as client:
        assert client.post("/v1/media", content=jpeg_body(), headers={"content-type": "image/jpeg"}).status_code == 401
        is_problem(client.put("/v1/media", headers=bearer(make_token()), content=b"x"), 405)


def test_daemon_alive_and_memory_flat_after_bad_input():
    """Rounds of every bad input: the daemon answers each, its resident memory stops growing
    (after a warm-up round that loads libvips' loaders)."""
    pid = resize_pid()
    token = make_token()
    bomb = m.png_bomb()
    with h2_client() as client:
        def round_():
            for _name, ctype, body, status, _t in CASES:
                assert post(client, token, ctype, body).status_code == status
            assert post(client, token, "image/png", bomb).status_code == 422
        round_()
        round_()
        base = rss_kib(pid)
        for _ in range(4):
            round_()
        grown = rss_kib(pid) - base
        assert resize_pid() == pid and os.path.exists(f"/proc/{pid}")
        assert upload(client, token, m.jpeg(300, 200)).status_code == 201
    assert grown < 48 * 1024, f"resident memory grew {grown} KiB over 4 rounds"


# ------------------------------------------------------------------ account deletion

def test_media_go_with_their_owner_account():
    user = User()
    with EventQueue(["media.deleted"]) as q:
        ids, files = [], []
        for _ in range(2):
            r = upload(user.client, user.access, m.jpeg(320, 240))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        stored = m.stored_files()
        mine = {f for f in stored if f.split("/")[1] in ids}
        assert len(mine) == 16
        assert user.delete("/v1/me").status_code == 204
        got = q.take(2, timeout=15, predicate=lambda msg: msg["body"]["id"] in ids)
        assert sorted(e["body"]["id"] for e in got) == sorted(ids)
        assert all(e["body"]["owner_id"] == user.id for e in got)
    assert not (m.stored_files() & mine)
    # The access token lives a few minutes more; the media service refuses it all the same.
    before = m.stored_files()
    is_problem(upload(user.client, user.access, m.jpeg(320, 240)), 401, "account-gone")
    assert m.stored_files() == before
    with h2_client() as client:
        for i in ids:
            r = client.get(f"/v1/media/{i}", headers=bearer(make_token(sub=user.id)))
            assert r.status_code == 404


def test_store_failure_is_503_and_leaves_nothing():
    """The local store cannot write (its m/ directory replaced by a file): 503 with Retry-After,
    no document, no file, no event."""
    store = os.path.join(m.MEDIA_DIR, "m")
    os.makedirs(store, exist_ok=True)
    before = m.stored_files()
    os.rename(store, store + ".saved")
    open(store, "w").close()
    try:
        with EventQueue(["media.created"]) as q, h2_client() as client:
            r = post(client, make_token(), "image/jpeg", jpeg_body())
            is_problem(r, 503, "storage-unavailable")
            assert r.headers["retry-after"] == "1"
            assert q.take(1, timeout=1.5) == []
    finally:
        os.remove(store)
        os.rename(store + ".saved", store)
    assert m.stored_files() == before


def test_user_deleted_twice_deletes_once_and_malformed_ones_are_dead_lettered():
    token = make_token()
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    with h2_client() as client:
        ids = {upload(client, token, m.jpeg(200, 150)).json()["id"] for _ in range(2)}
    event = {"user_id": sub, "username": "gone", "deleted_at": "2026-11-21T12:00:00Z"}
    with EventQueue(["media.deleted"]) as q:
        publish_event("user.deleted", event)
        publish_event("user.deleted", event)  # a second delivery, even under another message id
        got = q.take(3, timeout=8, predicate=lambda e: e["body"]["owner_id"] == sub)
    assert sorted(e["body"]["id"] for e in got) == sorted(ids), "one media.deleted per media, no more"
    assert not {f for f in m.stored_files() if f.split("/")[1] in ids}

    before = queue_info("resize-image.events.dlq")["messages"]
    publish_event("user.deleted", None, raw="{not json")
    publish_event("user.deleted", {"user_id": 42})
    wait_until(lambda: queue_info("resize-image.events.dlq")["messages"] >= before + 2, timeout=15,
               what="two messages dead-lettered")
    wait_until(lambda: queue_info("resize-image.events")["messages"] == 0, timeout=15,
               what="resize-image.events drained")
