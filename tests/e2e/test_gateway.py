"""test_gateway.py -- the gateway over HTTP/2: health, RPC round trips, tokens, limits, errors, media."""
import json
import os
import re
import socket
import subprocess
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import (BASE, HTTP_PORT, KEYS, ROOT, TLS_BASE, VAR, bearer, fresh_address, h2_client, is_problem,
                      make_token, public_key)


# ------------------------------------------------------------------ health and transport

def test_healthz_over_h2c(client):
    r = client.get("/healthz")
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert re.fullmatch(r"[0-9a-f-]{36}", r.headers["x-request-id"])


def test_healthz_over_http1():
    with httpx.Client(base_url=BASE, http2=False) as c:
        r = c.get("/healthz")
        assert r.http_version == "HTTP/1.1"
        assert r.status_code == 200


def test_tls_negotiates_h2_by_alpn():
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(KEYS, "tls.crt"))
    with httpx.Client(base_url=TLS_BASE, http2=True, verify=ctx) as c:
        r = c.get("/healthz")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200


def test_readyz_reports_broker_and_services(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["broker"] == "up"
    assert body["services"] == {"auth": "up", "resize-image": "up", "publication": "up", "notification": "up", "search": "up",
                                "echo": "up"}


# ------------------------------------------------------------------ RPC round trips

def test_rpc_round_trip_carries_user_request_id_and_body(client):
    token = make_token(sub="user_42")
    r = client.post("/v1/debug/echo?x=1&y=%20z", headers={**bearer(token), "x-request-id": "req-abc.1"},
                    json={"hello": "wörld"})
    assert r.status_code == 200, r.text
    assert r.http_version == "HTTP/2"
    body = r.json()
    assert body["method"] == "echo.echo"
    assert body["user_id"] == "user_42"
    assert body["request_id"] == "req-abc.1"
    assert r.headers["x-request-id"] == "req-abc.1"
    assert body["query"] == "x=1&y=%20z"
    assert json.loads(body["body"]) == {"hello": "wörld"}


def test_malformed_request_id_is_replaced(client):
    r = client.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"
    assert re.fullmatch(r"[0-9a-f-]{36}", r.headers["x-request-id"])


def test_path_parameters_are_decoded(client):
    r = client.get("/v1/debug/public/caf%C3%A9")
    assert r.status_code == 200, r.text
    assert r.json()["params"] == {"name": "café"}
    assert r.json()["user_id"] is None  # optional auth, no token: anonymous


def test_path_parameters_are_decoded_once(client):
    r = client.get("/v1/debug/public/a%2541")
    assert r.status_code == 200, r.text
    assert r.json()["params"] == {"name": "a%41"}


def test_bad_path_parameter(client):
    is_problem(client.get("/v1/debug/public/a%00b"), 400)
    is_problem(client.get("/v1/debug/public/a%09b"), 400)
    # An encoded slash is a path separator once decoded: no route has that shape.
    is_problem(client.get("/v1/debug/public/a%2Fb"), 404)


def test_many_requests_in_flight_on_one_connection():
    """h2load multiplexes 100 streams on one connection; every RPC gets its own reply."""
    token = make_token()
    out = subprocess.run(["h2load", "-n", "140", "-c", "1", "-m", "100",
                          "-H", f"authorization: Bearer {token}", "-H", f"x-forwarded-for: {fresh_address()}",
                          f"{BASE}/v1/debug/echo"], capture_output=True, text=True, timeout=60)
    assert "140 succeeded" in out.stdout, out.stdout
    assert re.search(r"status codes: 140 2xx", out.stdout), out.stdout


def test_reply_status_and_headers_are_relayed(client):
    r = client.get("/v1/debug/status?status=409")
    is_problem(r, 409)
    r = client.get("/v1/debug/status?status=429")
    is_problem(r, 429)
    assert r.headers["retry-after"] == "7"


def test_rpc_timeout_is_504(client):
    t0 = time.monotonic()
    rid = "timeout-" + os.urandom(6).hex()
    r = client.get("/v1/debug/sleep?ms=3000", headers={"x-request-id": rid})
    elapsed = time.monotonic() - t0
    is_problem(r, 504)
    assert elapsed < 2.5  # the route's timeout is 1 s
    # Operators find it in the gateway's JSON log by its request id.
    with open(os.path.join(VAR, "log", "gateway.log")) as f:
        lines = [json.loads(line) for line in f if rid in line]
    assert len(lines) == 1, lines
    assert lines[0]["level"] == "warn" and lines[0]["status"] == 504
    assert lines[0]["request_id"] == rid and lines[0]["route"] == "/v1/debug/sleep"
    # The daemon is still answering afterwards.
    assert client.get("/v1/debug/sleep?ms=0").status_code == 200


def test_service_not_running_is_503(client):
    body = is_problem(client.get("/v1/debug/nobody"), 503)
    assert "nobody" in body["detail"]


# ------------------------------------------------------------------ routing errors

def test_unknown_route_is_404_problem(client):
    is_problem(client.get("/v1/no/such/route"), 404)
    is_problem(client.get("/nothing-here"), 404)
    is_problem(client.get("/v1//debug/echo"), 404)


def test_unknown_method_is_405_with_allow(client):
    r = client.delete("/v1/debug/echo", headers=bearer(make_token()))
    is_problem(r, 405)
    assert set(m.strip() for m in r.headers["allow"].split(",")) == {"GET", "POST"}


# ------------------------------------------------------------------ body caps

def test_body_over_route_cap_is_413(client):
    token = make_token()
    cap = 64 * 1024
    ok = client.post("/v1/debug/echo", headers={**bearer(token), "content-type": "application/octet-stream"},
                     content=b"a" * cap)
    assert ok.status_code == 200, ok.text
    assert ok.json()["body_len"] == cap
    is_problem(client.post("/v1/debug/echo", headers=bearer(token), content=b"a" * (cap + 1)), 413)


def test_body_over_gateway_cap_is_refused(client):
    """Over h2o's own cap (twice the largest route cap: POST /v1/media takes 20 MiB + 64 KiB) the
    body is refused before it is buffered: on HTTP/1.1 from the Content-Length alone (413, not a
    byte of the body read); on HTTP/2 h2o resets that stream (REFUSED_STREAM) once the cap is
    passed, and the connection lives."""
    cap = 2 * (20 * 1024 * 1024 + 64 * 1024)
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10) as s:
        s.sendall(f"POST /v1/debug/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {cap + 1}\r\n"
                  f"Authorization: Bearer {make_token()}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 413 ")
    with pytest.raises(httpx.RemoteProtocolError, match="StreamReset"):
        client.post("/v1/debug/echo", headers=bearer(make_token()), content=b"a" * (cap + 1024 * 1024))
    assert client.get("/healthz").status_code == 200


# ------------------------------------------------------------------ tokens

def other_rsa_key():
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def unsigned_token(claims):
    return jwt.encode(claims, None, algorithm="none")


@pytest.mark.parametrize("case", [
    "garbage", "wrong_key", "hs256_with_public_key", "alg_none", "expired", "not_yet_valid",
    "issued_in_future", "wrong_issuer", "wrong_audience", "no_subject", "bad_subject", "no_exp",
    "basic_scheme", "truncated_signature",
])
def test_bad_tokens_are_401(client, case):
    now = int(time.time())
    if case == "garbage":
        header = "Bearer not.a.token"
    elif case == "wrong_key":
        header = "Bearer " + make_token(key=other_rsa_key())
    elif case == "hs256_with_public_key":
        # The classic confusion attack: HMAC keyed with the RSA public key PEM.
        import hmac, hashlib, base64
        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        p = b64(json.dumps({"sub": "mallory", "iss": "photo-auth", "aud": "photo-api", "exp": now + 600}).encode())
        sig = b64(hmac.new(public_key(), f"{h}.{p}".encode(), hashlib.sha256).digest())
        header = f"Bearer {h}.{p}.{sig}"
    elif case == "alg_none":
        header = "Bearer " + unsigned_token({"sub": "mallory", "iss": "photo-auth", "aud": "photo-api",
                                             "exp": now + 600})
    elif case == "expired":
        header = "Bearer " + make_token(iat=now - 3600, exp=now - 60)
    elif case == "not_yet_valid":
        header = "Bearer " + make_token(nbf=now + 600)
    elif case == "issued_in_future":
        header = "Bearer " + make_token(iat=now + 600, exp=now + 1200)
    elif case == "wrong_issuer":
        header = "Bearer " + make_token(iss="someone-else")
    elif case == "wrong_audience":
        header = "Bearer " + make_token(aud="another-api")
    elif case == "no_subject":
        header = "Bearer " + make_token(sub=None)
    elif case == "bad_subject":
        header = "Bearer " + make_token(sub="evil\r\nx-user-id: admin")
    elif case == "no_exp":
        header = "Bearer " + make_token(exp=None)
    elif case == "basic_scheme":
        header = "Basic dXNlcjpwYXNz"
    elif case == "truncated_signature":
        header = "Bearer " + make_token()[:-10]
    r = client.get("/v1/debug/echo", headers={"authorization": header})
    is_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_missing_token_is_401(client):
    r = client.get("/v1/debug/echo")
    body = is_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in body["detail"]


def test_invalid_token_on_optional_route_is_401(client):
    is_problem(client.get("/v1/debug/public/x", headers=bearer(make_token(exp=int(time.time()) - 60))), 401)
    r = client.get("/v1/debug/public/x", headers=bearer(make_token(sub="optional_user")))
    assert r.status_code == 200 and r.json()["user_id"] == "optional_user"


def test_valid_token_within_leeway(client):
    now = int(time.time())
    r = client.get("/v1/debug/echo", headers=bearer(make_token(iat=now - 900, exp=now - 2)))
    assert r.status_code == 200  # 5 s of clock skew tolerated


# ------------------------------------------------------------------ rate limits

def h2load_status_counts(args):
    out = subprocess.run(["h2load", *args], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def test_rate_limit_per_address():
    """The test stack allows a burst of 300 per address, refilled at 1/s (deploy/local/test-env.sh)."""
    addr = fresh_address()
    ok, _, limited, _ = h2load_status_counts(["-n", "500", "-c", "1", "-m", "50", "-H", f"x-forwarded-for: {addr}",
                                              f"{BASE}/v1/debug/public/x"])
    # 300 from the burst, plus one a second while h2load runs (slack for a slow, loaded machine).
    assert 300 <= ok < 330, (ok, limited)
    assert limited >= 170
    with h2_client(address=addr) as c:
        r = c.get("/v1/debug/public/x")
        is_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1
    with h2_client() as c:  # another address is not affected
        assert c.get("/v1/debug/public/x").status_code == 200
    time.sleep(1.1)  # one token a second comes back
    with h2_client(address=addr) as c:
        assert c.get("/v1/debug/public/x").status_code == 200


def test_rate_limit_per_user_across_addresses():
    """The test stack allows a burst of 150 per user, refilled at 1/s, whatever the address."""
    token = make_token()
    statuses = []
    for i in range(4):
        ok, _, limited, _ = h2load_status_counts(["-n", "60", "-c", "1", "-m", "20",
                                                  "-H", f"authorization: Bearer {token}",
                                                  "-H", f"x-forwarded-for: {fresh_address()}",
                                                  f"{BASE}/v1/debug/echo"])
        statuses.append((ok, limited))
    total_ok = sum(s[0] for s in statuses)
    assert 150 <= total_ok < 175, statuses  # the burst, plus one a second while it runs
    with h2_client() as c:
        r = c.get("/v1/debug/echo", headers=bearer(token))
        body = is_problem(r, 429)
        assert "user" in body["detail"]
        assert c.get("/v1/debug/echo", headers=bearer(make_token())).status_code == 200


# ------------------------------------------------------------------ media

@pytest.fixture
def media_file():
    d = os.path.join(VAR, "media", "u1", "abc")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "thumb.jpg")
    with open(path, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0not-really-a-jpeg")
    return "u1/abc/thumb.jpg"


def test_media_is_served(client, media_file):
    r = client.get(f"/media/{media_file}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content.startswith(b"\xff\xd8")
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", [
    "/media/../keys/jwt-private.pem", "/media/%2e%2e/keys/jwt-private.pem", "/media/u1/../../keys/tls.key",
    "/media/u1/%2E%2E/%2E%2E/keys/tls.key", "/media/.hidden", "/media/u1//abc/thumb.jpg",
    "/media/u1/abc/missing.jpg", "/media/u1/abc/thumb.jpg%00.png",
])
def test_media_refuses_traversal_and_missing(client, media_file, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code, r.content[:100])
    assert b"PRIVATE KEY" not in r.content


def test_media_is_read_only(client, media_file):
    r = client.post(f"/media/{media_file}", content=b"x")
    is_problem(r, 405)


# ------------------------------------------------------------------ metrics

def test_metrics_count_requests_and_latency(client):
    token = make_token()
    for _ in range(3):
        assert client.get("/v1/debug/echo", headers=bearer(token)).status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    m = re.search(r'^gateway_http_requests_total\{route="/v1/debug/echo",method="GET",status="200"\} (\d+)$',
                  text, re.M)
    assert m and int(m.group(1)) >= 3, text[:2000]
    assert re.search(r'^gateway_http_request_duration_seconds_bucket\{route="/v1/debug/echo",le="\+Inf"\} \d+$',
                     text, re.M)
    assert re.search(r"^gateway_rpc_in_flight \d+$", text, re.M)


# ------------------------------------------------------------------ binaries

def bin_path(name):
    return os.path.join(os.environ.get("STACK_BIN", os.path.join(ROOT, "build", "asan", "bin")), name)


def test_healthcheck_flag():
    env = dict(os.environ, GATEWAY_LISTEN=f"127.0.0.1:{BASE.rsplit(':', 1)[1]}")
    assert subprocess.run([bin_path("gateway"), "--healthcheck"], env=env, timeout=10).returncode == 0
    env["GATEWAY_LISTEN"] = "127.0.0.1:1"
    assert subprocess.run([bin_path("gateway"), "--healthcheck"], env=env, timeout=10).returncode == 1


def test_help_lists_every_variable():
    out = subprocess.run([bin_path("gateway"), "--help"], capture_output=True, text=True, timeout=10).stdout
    for var in ["GATEWAY_LISTEN", "GATEWAY_TLS_LISTEN", "AMQP_URL", "JWT_PUBLIC_KEY_FILE", "GATEWAY_RATE_IP_BURST",
                "MEDIA_DIR", "GATEWAY_DEBUG_ROUTES"]:
        assert var in out


def test_bad_configuration_exits_2():
    env = dict(os.environ, GATEWAY_RATE_IP_BURST="lots")
    r = subprocess.run([bin_path("gateway")], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "GATEWAY_RATE_IP_BURST" in r.stderr


# ------------------------------------------------------------------ hostile bytes

def test_garbage_on_the_wire_leaves_the_gateway_serving():
    """Random bytes, a broken HTTP/2 preface, huge or contradictory HTTP/1 headers, on both
    listeners: each connection may be refused, none may take the gateway down."""
    import random
    import socket
    import ssl
    rnd = random.Random(20261121)
    port, tls_port = int(BASE.rsplit(":", 1)[1]), int(TLS_BASE.rsplit(":", 1)[1])
    noise = lambda n: bytes(rnd.getrandbits(8) for _ in range(n))  # noqa: E731
    payloads = [
        b"\x00" * 100,
        noise(65536),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + noise(4096),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" * 50,  # WINDOW_UPDATE 0
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"A" * 200000 + b"\r\n\r\n",
        b"GET /v1/debug/echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/debug/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        b"POST /v1/debug/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\nhello",
        b"GET /v1/debug/public/" + b"%" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    for p in payloads:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            try:
                s.sendall(p)
                s.recv(65536)
            except OSError:
                pass
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for p in payloads[:4]:
        with socket.create_connection(("127.0.0.1", tls_port), timeout=3) as raw:
            try:
                raw.sendall(p)  # not even a TLS handshake
                raw.recv(65536)
            except OSError:
                pass
        with socket.create_connection(("127.0.0.1", tls_port), timeout=3) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(p)
                    s.recv(65536)
            except OSError:
                pass
    with h2_client() as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/debug/echo", headers=bearer(make_token())).status_code == 200


def test_clients_leaving_before_the_reply():
    """Clients that hang up while their RPC is in flight: the reply arrives for a request that is
    gone and is dropped (under ASan a use-after-free here would fail the run), and nothing leaks
    into the in-flight gauge."""
    procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-m", "0.2", "--http2-prior-knowledge",
                               "-H", f"x-forwarded-for: {fresh_address()}", f"{BASE}/v1/debug/sleep?ms=600"])
             for _ in range(20)]
    for p in procs:
        p.wait(timeout=10)
        assert p.returncode == 28  # curl: operation timed out, it hung up
    # echod's 4 workers have 20 x 600 ms of sleeping prefetched; what is still waiting when its
    # 1 s deadline passes is skipped (x-deadline), so the backlog is gone after about 1.2 s.
    time.sleep(1.5)
    with h2_client() as c:
        assert c.get("/healthz").status_code == 200
        text = c.get("/metrics").text
        assert re.search(r"^gateway_rpc_in_flight 0$", text, re.M), text[-500:]
        assert c.get("/v1/debug/sleep?ms=0").status_code == 200
