"""test_media.py -- POST /v1/media and GET /v1/media/{id} through the gateway over HTTP/2: every
variant's size, orientation and metadata checked in the stored bytes; media.get for services."""
import io
import os

import httpx
import pytest

import medialib as m
from conftest import bearer, h2_client, make_token
from rabbitlib import EventQueue, rpc_call

UPLOAD_TIMEOUT = 60  # the ASan build decodes slowly


def upload(client, token, data, ctype="image/jpeg", multipart=True):
    if multipart:
        ctype, body = m.multipart([("file", "photo.bin", ctype, data)])
    else:
        body = data
    return client.post("/v1/media", headers={**bearer(token), "content-type": ctype}, content=body,
                       timeout=UPLOAD_TIMEOUT)


def fetch(client, url):
    assert url.startswith("/media/m/"), url
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return r


@pytest.fixture
def owner():
    token = make_token()
    with h2_client() as c:
        yield c, token


def size(body, name):
    """(width, height) of a variant as the reply gives it."""
    v = body["variants"][name]
    return v["width"], v["height"]


def check_shape(body, width, height):
    assert set(body) >= {"id", "owner_id", "width", "height", "variants", "blurhash", "created_at"}
    assert (body["width"], body["height"]) == (width, height)
    assert set(body["variants"]) == set(m.VARIANTS)
    for name, v in body["variants"].items():
        assert set(v) == {"url", "webp_url", "width", "height"}
        assert v["url"].endswith(f"/{name}.jpg") and v["webp_url"].endswith(f"/{name}.webp")
    assert 6 <= len(body["blurhash"]) <= 100


def expected_size(width, height, target):
    if width <= target:
        return width, height
    return target, round(height * target / width)


def check_variants(client, body, icc=None):
    """Fetches every stored file and checks it against the reply: size, format, no metadata but
    the colour profile, the red block at the top left (upright)."""
    w, h = body["width"], body["height"]
    for name, target in m.VARIANTS.items():
        v = body["variants"][name]
        if name == "thumb":
            side = min(150, w, h)
            want = (side, side)
        else:
            want = expected_size(w, h, target)
        assert (v["width"], v["height"]) == pytest.approx(want, abs=1), name
        for url, fmt in ((v["url"], "JPEG"), (v["webp_url"], "WEBP")):
            r = fetch(client, url)
            assert r.headers["content-type"] == ("image/jpeg" if fmt == "JPEG" else "image/webp")
            raw = r.content
            im = m.open_image(raw)
            assert im.format == fmt and im.size == (v["width"], v["height"]), (name, fmt, im.size)
            # No metadata: no EXIF (GPS above all), no XMP, no comments; the profile stays.
            assert len(im.getexif()) == 0, (name, fmt, dict(im.getexif()))
            assert b"Exif\x00\x00" not in raw and b"SpyCam" not in raw and b"52.37N" not in raw
            assert b"http://ns.adobe.com/xap" not in raw and "comment" not in im.info
            assert im.info.get("icc_profile") == icc, (name, fmt)
            if name != "thumb":  # the block is at the top left of the upright picture
                rgb = im.convert("RGB")
                assert m.near(rgb.getpixel((2, 2)), m.RED), (name, fmt, rgb.getpixel((2, 2)))
                assert m.near(rgb.getpixel((im.size[0] - 3, im.size[1] - 3)), m.BLUE), (name, fmt)
            if fmt == "JPEG":
                assert m.jpeg_sampling(im) == (0 if name == "large" else 2), (name, m.jpeg_sampling(im))


# ------------------------------------------------------------------ the variants

def test_jpeg_with_exif_rotation_gps_and_profile(owner):
    client, token = owner
    before = m.stored_files()
    data = m.jpeg(2400, 1800, orientation=6)  # stored 1800x2400, shown 2400x1800
    r = upload(client, token, data)
    assert r.status_code == 201, r.text
    body = r.json()
    check_shape(body, 2400, 1800)
    assert r.headers["location"] == f"/v1/media/{body['id']}"
    assert size(body, "large") == (1080, 810)
    check_variants(client, body, icc=m.icc_profile())
    assert len(m.stored_files() - before) == 8


def test_portrait_is_1080_wide_not_1080_high(owner):
    client, token = owner
    r = upload(client, token, m.jpeg(1200, 1600, icc=False))
    assert r.status_code == 201, r.text
    body = r.json()
    assert size(body, "large") == (1080, 1440)
    check_variants(client, body, icc=None)


def test_small_image_is_never_upscaled(owner):
    client, token = owner
    r = upload(client, token, m.jpeg(100, 80), multipart=False)
    assert r.status_code == 201, r.text
    body = r.json()
    for name in ("small", "medium", "large"):
        assert size(body, name) == (100, 80)
    assert size(body, "thumb") == (80, 80)
    check_variants(client, body, icc=m.icc_profile())


def test_panorama_thumb_is_a_full_square(owner):
    client, token = owner
    r = upload(client, token, m.jpeg(3000, 200, icc=False))
    assert r.status_code == 201, r.text
    body = r.json()
    assert size(body, "large") == (1080, 72)
    assert size(body, "thumb") == (150, 150)
    thumb = m.open_image(fetch(client, body["variants"]["thumb"]["url"]).content)
    assert thumb.size == (150, 150)


def test_png_with_alpha_and_text_chunks(owner):
    client, token = owner
    r = upload(client, token, m.png(400, 300, alpha=True), ctype="image/png", multipart=False)
    assert r.status_code == 201, r.text
    body = r.json()
    check_shape(body, 400, 300)
    large = body["variants"]["large"]
    jpg = m.open_image(fetch(client, large["url"]).content)
    assert jpg.mode == "RGB"  # flattened onto white for JPEG
    raw = fetch(client, large["webp_url"]).content
    assert b"private note" not in raw and b"someone" not in raw
    assert m.open_image(raw).mode == "RGBA"  # WebP keeps the alpha
    assert b"private note" not in fetch(client, large["url"]).content


@pytest.mark.parametrize("kind", ["webp", "heic", "png"])
def test_other_formats(owner, kind):
    client, token = owner
    data = {"webp": m.webp, "heic": m.heic, "png": m.png}[kind]()
    r = upload(client, token, data, ctype="application/octet-stream")  # the part's type is not trusted
    assert r.status_code == 201, r.text
    w, h = {"webp": (500, 400), "heic": (640, 480), "png": (400, 300)}[kind]
    body = r.json()
    check_shape(body, w, h)
    check_variants(client, body, icc=m.icc_profile() if kind == "webp" else None)


def test_multipart_with_other_fields_and_quoted_boundary(owner):
    client, token = owner
    ctype, body = m.multipart([("caption", None, None, b"ignored"), ("file", "a.jpg", "image/jpeg", m.jpeg(300, 200))],
                              boundary="quoted boundary:1")
    ctype = 'multipart/form-data; boundary="quoted boundary:1"'
    r = client.post("/v1/media", headers={**bearer(token), "content-type": ctype}, content=body,
                    timeout=UPLOAD_TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.json()["width"] == 300


def test_upload_over_tls_h2(owner):
    _, token = owner
    from conftest import TLS_BASE
    with httpx.Client(base_url=TLS_BASE, http1=False, http2=True, verify=False, timeout=UPLOAD_TIMEOUT) as c:
        r = upload(c, token, m.jpeg(640, 480))
        assert r.status_code == 201, r.text
        assert r.http_version == "HTTP/2"


# ------------------------------------------------------------------ reads and ownership

def test_get_own_media_and_nobody_elses(owner):
    client, token = owner
    body = upload(client, token, m.jpeg(320, 240)).json()
    r = client.get(f"/v1/media/{body['id']}", headers=bearer(token))
    assert r.status_code == 200
    assert r.json() == body
    other = client.get(f"/v1/media/{body['id']}", headers=bearer(make_token()))
    assert other.status_code == 404 and other.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/v1/media/{body['id']}").status_code == 401
    for bad in ("0" * 32, "nothex" * 5 + "xx", "abc", "A" * 32):
        r = client.get(f"/v1/media/{bad}", headers=bearer(token))
        assert r.status_code == 404, bad


def test_ids_and_keys_are_random(owner):
    client, token = owner
    a = upload(client, token, m.jpeg(200, 200)).json()
    b = upload(client, token, m.jpeg(200, 200)).json()
    assert a["id"] != b["id"]
    # 128 random bits each: no shared prefix worth guessing from
    assert len(a["id"]) == 32 and int(a["id"], 16) != int(b["id"], 16)
    assert a["variants"]["large"]["url"].split("/")[3] == a["id"]


def test_media_get_rpc_for_other_services(owner):
    client, token = owner
    sub = __import__("jwt").decode(token, options={"verify_signature": False})["sub"]
    a = upload(client, token, m.jpeg(320, 240)).json()
    b = upload(client, make_token(), m.jpeg(320, 240)).json()
    status, body = rpc_call("resize-image", "media.get", {"ids": [a["id"], b["id"], "f" * 32, "junk"]},
                            user_id=sub)
    assert status == 200, body
    assert [i["id"] for i in body["items"]] == [a["id"], b["id"]]
    assert body["items"][0]["owner_id"] == sub and body["items"][1]["owner_id"] != sub
    assert body["items"][0]["variants"] == a["variants"]
    assert body["missing"] == ["f" * 32, "junk"]
    for bad in ({}, {"ids": []}, {"ids": "x"}, {"ids": [1]}, {"ids": ["a"] * 51}):
        status, body = rpc_call("resize-image", "media.get", bad)
        assert status == 422, (bad, body)


def test_media_created_event(owner):
    client, token = owner
    with EventQueue(["media.created"]) as q:
        body = upload(client, token, m.jpeg(320, 240)).json()
        got = q.take(1, predicate=lambda msg: msg["body"]["id"] == body["id"])
    assert got, "no media.created"
    ev = got[0]
    assert ev["properties"]["message_id"] and ev["properties"]["app_id"] == "resize-image"
    assert ev["body"]["variants"] == body["variants"] and ev["body"]["owner_id"] == body["owner_id"]
