"""test_media_s3.py -- resize-image on the S3 backend, end to end: the daemon restarted with
MEDIA_STORE=s3 against the test stack's versitygw (a real S3 server), an upload through the
gateway, every variant read back from the bucket with a SigV4-signed request, and the objects
gone with their owner's account. The daemon goes back to the local store afterwards."""
import hashlib
import os
import subprocess

import httpx
import pytest

import medialib as m
from authlib import User
from conftest import stack, start_with_env
from rabbitlib import EventQueue
from test_media import upload
from test_resilience_media import resize_ready

S3 = {k: os.environ.get(f"TEST_S3_{k}") for k in ("ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY", "SECRET_KEY")}
PUBLIC = f"{S3['ENDPOINT']}/{S3['BUCKET']}/"


def s3_get(url):
    """GET of an object with curl's SigV4 (the bucket is private). Returns (status, bytes)."""
    empty = hashlib.sha256(b"").hexdigest()
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--aws-sigv4", f"aws:amz:{S3['REGION']}:s3",
                          "--user", f"{S3['ACCESS_KEY']}:{S3['SECRET_KEY']}", "-H", f"x-amz-content-sha256: {empty}",
                          "-o", "-", "-w", "\n%{http_code}", url], capture_output=True, check=True)
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code), body


def restart_resize_image(**env):
    stack("stop", "resize-image")
    start_with_env("resize-image", resize_ready, **env)


@pytest.fixture
def on_s3():
    assert S3["ENDPOINT"], "the test stack runs versitygw (deploy/local/test-env.sh: TEST_S3_*)"
    restart_resize_image(MEDIA_STORE="s3", MEDIA_S3_ENDPOINT=S3["ENDPOINT"], MEDIA_S3_BUCKET=S3["BUCKET"],
                         MEDIA_S3_REGION=S3["REGION"], AWS_ACCESS_KEY_ID=S3["ACCESS_KEY"],
                         AWS_SECRET_ACCESS_KEY=S3["SECRET_KEY"], MEDIA_PUBLIC_URL=PUBLIC)
    try:
        yield
    finally:
        restart_resize_image()


def test_upload_to_s3_and_delete_with_the_account(on_s3):
    user = User()
    before = m.stored_files()
    r = upload(user.client, user.access, m.jpeg(1200, 900, orientation=6))
    assert r.status_code == 201, r.text
    body = r.json()
    assert m.stored_files() == before, "written to the local directory instead of the bucket"
    urls = []
    for name, v in body["variants"].items():
        assert v["url"] == f"{PUBLIC}m/{body['id']}/{name}.jpg"
        for url, fmt in ((v["url"], "JPEG"), (v["webp_url"], "WEBP")):
            status, data = s3_get(url)
            assert status == 200, (url, status, data[:200])
            im = m.open_image(data)
            assert im.format == fmt and im.size == (v["width"], v["height"])
            assert len(im.getexif()) == 0 and im.info.get("icc_profile") == m.icc_profile()
            urls.append(url)
    assert httpx.get(urls[0], timeout=5).status_code == 403  # unsigned: the bucket is private
    with EventQueue(["media.deleted"]) as q:
        assert user.delete("/v1/me").status_code == 204
        assert q.take(1, timeout=15, predicate=lambda e: e["body"]["id"] == body["id"])
    for url in urls:
        assert s3_get(url)[0] == 404, url
