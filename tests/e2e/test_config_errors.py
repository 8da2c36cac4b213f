"""test_config_errors.py -- wrong or missing configuration: every daemon refuses to start with one
clear line naming the variable and a non-zero exit, in seconds (an unknown value, an unreachable
broker, a bad key file), never a loop of retries that hides the cause."""
import json
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("STACK_BIN", os.path.join(ROOT, "build", "asan", "bin"))
DAEMONS = ["gateway", "auth", "resize-image", "publication", "notification", "search"]
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5673")
KEYS = os.path.join(os.environ.get("STACK_VAR", os.path.join(ROOT, "var", "test")), "keys")


def run(daemon, timeout=30, **env):
    """Runs the daemon's binary with env over a clean environment of the machine; (exit code,
    lines it wrote), or fails when it is still running after timeout seconds."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ADMIN_LISTEN": "127.0.0.1:0",
            "GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_TLS_LISTEN": "",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", ""), "LSAN_OPTIONS": os.environ.get("LSAN_OPTIONS", ""),
            "UBSAN_OPTIONS": os.environ.get("UBSAN_OPTIONS", ""), "MONGOC_DISABLE_SHM": "1"}
    full.update(env)
    try:
        p = subprocess.run([os.path.join(BIN, daemon)], env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{daemon} with {env} still running after {timeout} s: it should have refused to start")
    return p.returncode, [line for line in p.stdout.splitlines() if line.strip()]


def refused(daemon, variable, timeout=30, **env):
    """The daemon exits non-zero, and exactly one of its lines is an error naming variable."""
    code, lines = run(daemon, timeout, **env)
    assert code != 0, (daemon, env, lines)
    named = [line for line in lines if variable in line]
    assert len(named) == 1, (daemon, variable, lines)
    line = named[0]
    if line.startswith("{"):
        assert json.loads(line)["level"] == "error", line
    for other in lines:  # no other error: the one line is the cause
        if other is not line and other.startswith("{"):
            assert json.loads(other)["level"] != "error", (daemon, lines)
    return line


@pytest.mark.parametrize("daemon", DAEMONS)
def test_an_unknown_value_is_refused_naming_the_variable(daemon):
    refused(daemon, "LOG_LEVEL", LOG_LEVEL="loud")
    refused(daemon, "STARTUP_TIMEOUT", STARTUP_TIMEOUT="soon")


@pytest.mark.parametrize("daemon", [d for d in DAEMONS if d != "gateway"])
def test_an_unknown_number_is_refused_naming_the_variable(daemon):
    refused(daemon, "WORKERS", WORKERS="many")


@pytest.mark.parametrize("daemon", DAEMONS)
def test_an_unreachable_broker_is_refused_after_the_startup_timeout(daemon):
    env = {"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/", "STARTUP_TIMEOUT": "2s"}
    if daemon == "gateway":
        env["JWT_PUBLIC_KEY_FILE"] = os.path.join(KEYS, "jwt-public.pem")
    line = refused(daemon, "AMQP_URL", timeout=20, **env)
    assert "127.0.0.1:1" in line and "STARTUP_TIMEOUT" in line, line
    assert "guest:guest" not in line, "the password must not be logged"


def test_a_broker_refusing_the_credentials_is_named():
    line = refused("search", "AMQP_URL", timeout=20, STARTUP_TIMEOUT="2s",
                   AMQP_URL=AMQP_URL.replace("guest:guest@", "guest:wrong-password@"))
    assert "login" in line and "wrong-password" not in line, line


def test_a_bad_key_file_is_refused_naming_the_variable():
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as junk:
        junk.write("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
        junk.flush()
        refused("gateway", "JWT_PUBLIC_KEY_FILE", JWT_PUBLIC_KEY_FILE=junk.name, AMQP_URL=AMQP_URL)
        refused("gateway", "JWT_PUBLIC_KEY_FILE", JWT_PUBLIC_KEY_FILE="/nonexistent/jwt-public.pem",
                AMQP_URL=AMQP_URL)
        refused("auth", "JWT_PRIVATE_KEY", JWT_PRIVATE_KEY_FILE=junk.name, AMQP_URL=AMQP_URL)
        refused("auth", "JWT_PRIVATE_KEY_FILE", JWT_PRIVATE_KEY_FILE="/nonexistent/jwt-private.pem",
                AMQP_URL=AMQP_URL)
