"""conftest.py -- fixtures for black-box tests of the running suite (started by deploy/local/test.sh).

The stack runs on the test ports with GATEWAY_TRUSTED_PROXIES=1, so each test speaks
from an address of its own (X-Forwarded-For) and rate limits of one test never leak
into another. Clients speak HTTP/2: h2c with prior knowledge, or h2 over TLS by ALPN.
"""
import itertools
import os
import random
import subprocess
import time
import uuid

import httpx
import jwt
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK_SH = os.path.join(ROOT, "deploy", "local", "stack.sh")
HTTP_PORT = int(os.environ.get("STACK_HTTP_PORT", "8081"))
HTTPS_PORT = int(os.environ.get("STACK_HTTPS_PORT", "8444"))
VAR = os.environ.get("STACK_VAR", os.path.join(ROOT, "var", "test"))
BASE = f"http://127.0.0.1:{HTTP_PORT}"
TLS_BASE = f"https://127.0.0.1:{HTTPS_PORT}"
KEYS = os.path.join(VAR, "keys")
ISSUER = os.environ.get("JWT_ISSUER", "photo-auth")
AUDIENCE = os.environ.get("JWT_AUDIENCE", "photo-api")

# Random start: a rerun against the same stack does not inherit the limits of an earlier run.
_addresses = itertools.count(random.randrange(1, 1 << 23))


def fresh_address():
    """A client address no other test of this run uses (in 10.0.0.0/8)."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def h2_client(address=None, **kw):
    headers = kw.pop("headers", {})
    headers.setdefault("x-forwarded-for", address or fresh_address())
    kw.setdefault("timeout", 10)
    return httpx.Client(base_url=BASE, http1=False, http2=True, headers=headers, **kw)


@pytest.fixture
def client():
    with h2_client() as c:
        yield c


def private_key():
    with open(os.path.join(KEYS, "jwt-private.pem"), "rb") as f:
        return f.read()


def public_key():
    with open(os.path.join(KEYS, "jwt-public.pem"), "rb") as f:
        return f.read()


def make_token(sub="", ttl=900, key=None, alg="RS256", headers=None, **claims):
    """An access token as auth issues them, with any claim overridable (None drops it;
    sub="" means a fresh random subject)."""
    now = int(time.time())
    body = {
        "sub": sub if sub != "" else "u" + uuid.uuid4().hex[:16],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key if key is not None else private_key(), algorithm=alg, headers=headers)


def bearer(token):
    return {"authorization": f"Bearer {token}"}


def stack(*args, check=True):
    """Runs deploy/local/stack.sh with the test stack's environment (inherited from test.sh); with
    check, a failure says what stack.sh said."""
    r = subprocess.run([STACK_SH, *args], check=False, env=os.environ.copy(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    if check and r.returncode != 0:
        raise AssertionError(f"stack.sh {' '.join(args)} failed ({r.returncode}):\n{r.stdout}")
    return r


def start_with_env(name, ready, **env):
    """Starts daemon name (stack.sh start) with env added to the test stack's environment, then
    waits until ready() says it serves. The environment of this process is left as it was."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        stack("start", name)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wait_until(ready, timeout=30, what=f"{name} ready")


def wait_until(predicate, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, OSError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def is_problem(r, status):
    """The response is an RFC 9457 problem with this status, and carries x-request-id."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    assert "type" in body
    assert r.headers.get("x-request-id")
    return body


def gateway_ready():
    with h2_client() as c:
        r = c.get("/readyz")
        return r.status_code == 200
