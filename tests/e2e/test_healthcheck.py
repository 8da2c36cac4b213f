"""test_healthcheck.py -- `<daemon> --healthcheck`, the probe of container HEALTHCHECKs and ECS health checks.

Each daemon of services/ is run with --healthcheck in the very environment the stack started it with
(read from /proc/<pid>/environ of the running process, the binary from /proc/<pid>/exe): it must say
"healthy" in one line and exit 0. Pointed at a port where nothing listens, or at a listener that never
answers, it must say "unhealthy" in one line and exit 1, quickly; with a bad configuration it must refuse
with one line naming the variable. It reads only the configuration: a broker that is not there changes
nothing.
"""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import ROOT, VAR

DAEMONS = sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                 if os.path.isfile(os.path.join(ROOT, "services", d, "main.c")))
# Where each daemon answers /healthz: svc daemons on their admin listener, the gateway on its HTTP one.
LISTEN_VAR = {d: "GATEWAY_LISTEN" if d == "gateway" else "ADMIN_LISTEN" for d in DAEMONS}


def daemon_process(name):
    """(binary, environment) of the stack's running daemon name."""
    pid_file = os.path.join(VAR, "run", f"{name}.pid")
    assert os.path.exists(pid_file), f"{name} is not running in the stack ({pid_file} missing)"
    pid = int(open(pid_file).read().strip())
    exe = os.readlink(f"/proc/{pid}/exe")
    assert os.path.basename(exe) == name, f"pid {pid} of {name} runs {exe}"
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    env = {k.decode(): v.decode() for k, v in env.items()}
    # libmongoc's counters live in /dev/shm/mongoc-<pid>; a segment left there by a daemon killed with
    # SIGKILL under the same pid (the resilience tests do that) makes its constructor print a warning
    # before main() runs. Not the probe's output: keep it out of the line counted below.
    env["MONGOC_DISABLE_SHM"] = "1"
    return exe, env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthcheck(exe, env, timeout=10):
    t0 = time.monotonic()
    r = subprocess.run([exe, "--healthcheck"], env=env, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def one_line(r):
    """The single line the probe printed (on stdout when healthy, stderr otherwise)."""
    lines = (r.stdout + r.stderr).splitlines()
    assert len(lines) == 1, f"want one line, got {len(lines)}: stdout {r.stdout!r} stderr {r.stderr!r}"
    return lines[0]


@pytest.mark.parametrize("name", DAEMONS)
def test_healthy_in_the_stack_environment(name):
    exe, env = daemon_process(name)
    r, took = healthcheck(exe, env)
    line = one_line(r)
    assert r.returncode == 0, line
    addr = env[LISTEN_VAR[name]]
    assert line == f"{name} healthy: GET http://{addr}/healthz answered 200"
    assert r.stderr == "", r.stderr
    assert took < 3, f"took {took:.1f}s"


@pytest.mark.parametrize("name", DAEMONS)
def test_unhealthy_when_nothing_listens(name):
    exe, env = daemon_process(name)
    port = free_port()
    env[LISTEN_VAR[name]] = f"127.0.0.1:{port}"
    r, took = healthcheck(exe, env)
    line = one_line(r)
    assert r.returncode == 1, line
    assert line == f"{name} unhealthy: GET http://127.0.0.1:{port}/healthz: Connection refused"
    assert r.stdout == "", r.stdout
    assert took < 3, f"took {took:.1f}s"


@pytest.mark.parametrize("name", ["gateway", "auth"])
def test_unhealthy_when_the_listener_never_answers(name):
    """A hung daemon: its port accepts connections (the kernel's backlog) but nothing answers."""
    exe, env = daemon_process(name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        port = s.getsockname()[1]
        env[LISTEN_VAR[name]] = f"127.0.0.1:{port}"
        r, took = healthcheck(exe, env)
    line = one_line(r)
    assert r.returncode == 1, line
    assert line == f"{name} unhealthy: GET http://127.0.0.1:{port}/healthz: no answer within 2 s"
    assert 1.5 < took < 5, f"took {took:.1f}s"


@pytest.mark.parametrize("name", DAEMONS)
def test_no_broker_needed(name):
    """The probe reads the configuration and asks /healthz; it never connects to the broker."""
    exe, env = daemon_process(name)
    env["AMQP_URL"] = f"amqp://guest:guest@127.0.0.1:{free_port()}"
    r, _ = healthcheck(exe, env)
    assert r.returncode == 0, one_line(r)


@pytest.mark.parametrize("name", DAEMONS)
def test_a_bad_listen_address_is_one_line(name):
    exe, env = daemon_process(name)
    var = LISTEN_VAR[name]
    env[var] = "no-port-here"
    r, _ = healthcheck(exe, env)
    line = one_line(r)
    assert r.returncode == 1, line
    assert line == f"{name} unhealthy: bad listen address no-port-here (want host:port)"


@pytest.mark.parametrize("name", DAEMONS)
def test_a_bad_configuration_is_refused_naming_the_variable(name):
    """As the daemon itself would be (exit 2): a probe must not pass where the daemon cannot start."""
    exe, env = daemon_process(name)
    env["LOG_LEVEL"] = "info"
    var = "GATEWAY_RPC_TIMEOUT" if name == "gateway" else "WORKERS"
    env[var] = "many"
    r, _ = healthcheck(exe, env)
    line = one_line(r)
    assert r.returncode == 2, line
    assert re.match(rf"^(\S+: )?{var}: ", line), line
