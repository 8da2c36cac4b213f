"""test_compose.py -- docker-compose.yaml, checked offline (no container engine runs on our machines).

Debian's docker-compose 1.29 validates the file (`config -q`); its resolved form (`config`) is then
checked against the code: every daemon of services/ is there, built from deploy/docker/Dockerfile;
each daemon's environment is what `make up` gives it (deploy/local/stack.sh) restricted to the
variables that daemon reads (its table in services/<d>/main.c, with libs/svc's common ones), so a
misspelt or forgotten variable fails; its URIs name services of the file; one MongoDB with its own
volume per daemon that owns a database; start order gated on health; the gateway on 8080 and 8443.
Also deploy/docker/make-keys.sh, the compose service that makes the keys, run here with dash.
"""
import os
import re
import shutil
import subprocess
import urllib.parse

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE_FILE = os.path.join(ROOT, "docker-compose.yaml")
DAEMONS = sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                 if os.path.isfile(os.path.join(ROOT, "services", d, "main.c")))
UPPER = {d: d.upper().replace("-", "_") for d in DAEMONS}
DOCKERFILE = "deploy/docker/Dockerfile"
COMPOSE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}  # defaults, not ours


def docker_compose(*args):
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: make deps (deploy/local/setup.sh) installs Debian's"
    return subprocess.run([exe, "-f", COMPOSE_FILE, *args], cwd=ROOT, env=COMPOSE_ENV,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def compose():
    """The file as docker-compose resolves it (anchors merged, ${VARIABLES} at their defaults)."""
    r = docker_compose("config")
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


# ================================================================ what the code reads

CFG_ENTRY = re.compile(r'\{\s*"([A-Z][A-Z0-9_]*)",\s*(CFG_[A-Z]+)')


def table_vars(path):
    """Variables of a cfg table ({"NAME", CFG_TYPE, ...}); a CFG_SECRET is also read as NAME_FILE."""
    names = set()
    text = open(path).read().replace("\\\n", " ")  # svc.h's SVC_CFG_COMMON is a macro over several lines
    for name, kind in CFG_ENTRY.findall(text):
        names.add(name)
        if kind == "CFG_SECRET":
            names.add(name + "_FILE")
    return names


def reads(daemon):
    """Every environment variable daemon reads."""
    main_c = os.path.join(ROOT, "services", daemon, "main.c")
    names = table_vars(main_c)
    if "SVC_CFG_COMMON(" in open(main_c).read():
        names |= table_vars(os.path.join(ROOT, "libs", "svc", "svc.h"))
    assert names, f"no configuration table found in {main_c}"
    return names


def admin_default(daemon):
    m = re.search(r'SVC_CFG_COMMON\([^,]+,\s*"([^"]+)"\)', open(os.path.join(ROOT, "services", daemon, "main.c")).read())
    return m.group(1) if m else None


def stack_env_names(daemon):
    """The variables deploy/local/stack.sh hands daemon in `make up` (start_gateway or start_daemon)."""
    text = open(os.path.join(ROOT, "deploy", "local", "stack.sh")).read()
    fn = "start_gateway" if daemon == "gateway" else "start_daemon"
    body = re.search(rf"^{fn}\(\) \{{\n(.*?)^\}}", text, re.M | re.S).group(1)
    call = body[body.index("start_proc"):]
    call = call[:re.search(r"\s--\s", call).start()]
    names = {m.replace("${upper}", UPPER[daemon]) for m in re.findall(r'^\s*"?([A-Za-z_${}]+)=', call, re.M)}
    assert "AMQP_URL" in names, f"could not read {fn} in stack.sh: {sorted(names)}"
    return names


def port_pairs(service):
    """{(published, target)} of a service's ports, long or short syntax ("127.0.0.1:5672:5672/tcp")."""
    pairs = set()
    for p in service.get("ports", []):
        if isinstance(p, dict):
            pairs.add((int(p["published"]), int(p["target"])))
        else:
            parts = p.split("/")[0].split(":")
            pairs.add((int(parts[-2]), int(parts[-1])))
    return pairs


def owns_database(daemon):
    return f"{UPPER[daemon]}_MONGO_URI" in reads(daemon)


# ================================================================ the file


def test_docker_compose_validates_the_file():
    r = docker_compose("config", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", f"warnings (a variable without a default?):\n{r.stderr}"


def test_every_daemon_is_built_from_the_dockerfile(compose):
    services = compose["services"]
    for d in DAEMONS:
        assert d in services, f"daemon {d} (services/{d}) is not in docker-compose.yaml"
        build = services[d].get("build", {})
        assert build.get("dockerfile") == DOCKERFILE, f"{d}: build {build}"
        assert os.path.realpath(build.get("context", "")) == ROOT, f"{d}: build context {build.get('context')}"
        assert build.get("args", {}).get("DAEMON") == d, f"{d}: build args {build.get('args')}"
        # The image's HEALTHCHECK (`<daemon> --healthcheck`) is the one that gates the start order.
        assert "healthcheck" not in services[d], f"{d}: overrides its image's HEALTHCHECK"
        grace = services[d].get("stop_grace_period", "10s")
        assert grace.endswith("s") and int(grace[:-1]) >= 25, f"{d}: stop_grace_period {grace} (SIGTERM takes up to 25 s)"


@pytest.mark.parametrize("daemon", DAEMONS)
def test_environment_is_what_make_up_gives_and_the_daemon_reads(compose, daemon):
    env = compose["services"][daemon].get("environment", {})
    unknown = set(env) - reads(daemon)
    assert not unknown, f"{daemon} does not read {sorted(unknown)} (misspelt? see services/{daemon}/main.c)"
    want = stack_env_names(daemon) & reads(daemon)
    assert set(env) == want, (f"{daemon}: compose gives {sorted(env)}, `make up` gives (of what it reads) "
                              f"{sorted(want)}")


@pytest.mark.parametrize("daemon", DAEMONS)
def test_environment_points_at_the_services_of_the_file(compose, daemon):
    services = compose["services"]
    svc = services[daemon]
    env = svc["environment"]
    broker = services["rabbitmq"]["environment"]
    amqp = urllib.parse.urlsplit(env["AMQP_URL"])
    assert (amqp.scheme, amqp.hostname, amqp.port) == ("amqp", "rabbitmq", 5672), env["AMQP_URL"]
    assert amqp.path == "", f"{env['AMQP_URL']}: no trailing slash (it would name the empty vhost)"
    assert (amqp.username, amqp.password) == (broker["RABBITMQ_DEFAULT_USER"], broker["RABBITMQ_DEFAULT_PASS"])
    if owns_database(daemon):
        uri = urllib.parse.urlsplit(env[f"{UPPER[daemon]}_MONGO_URI"])
        assert (uri.scheme, uri.hostname, uri.port) == ("mongodb", f"mongo-{daemon}", 27017), uri.geturl()
        assert uri.path == "/" + daemon.replace("-", "_"), f"{uri.geturl()}: the database `make up` uses"
    # Listeners face the container's network; an admin port as the binary's default (the image EXPOSEs it).
    for var in ("ADMIN_LISTEN", "GATEWAY_LISTEN", "GATEWAY_TLS_LISTEN"):
        if var in env:
            assert env[var].startswith("0.0.0.0:"), f"{daemon}: {var}={env[var]}"
    if "ADMIN_LISTEN" in env:
        assert env["ADMIN_LISTEN"].rsplit(":", 1)[1] == admin_default(daemon).rsplit(":", 1)[1]
    # Files and directories lie on what is mounted there.
    mounts = [v.split(":")[1] if isinstance(v, str) else v["target"] for v in svc.get("volumes", [])]
    mounts += [t.split(":")[0] for t in svc.get("tmpfs", [])]
    for var, path in env.items():
        if var.endswith("_FILE") or var.endswith("_DIR"):
            assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), \
                f"{daemon}: {var}={path} is on no volume or tmpfs ({mounts})"


def test_one_mongodb_with_its_own_volume_per_database(compose):
    services, volumes = compose["services"], compose.get("volumes", {})
    owners = [d for d in DAEMONS if owns_database(d)]
    assert len(owners) >= 5, owners
    mongos = sorted(s for s in services if s.startswith("mongo"))
    assert mongos == sorted(f"mongo-{d}" for d in owners), mongos
    seen = set()
    for d in owners:
        svc = services[f"mongo-{d}"]
        assert svc["image"].startswith("mongo:"), svc["image"]
        assert svc.get("healthcheck", {}).get("test"), f"mongo-{d}: no healthcheck"
        data = [v for v in svc.get("volumes", []) if v.endswith(":/data/db") or ":/data/db:" in v]
        assert len(data) == 1, f"mongo-{d}: volumes {svc.get('volumes')}"
        name = data[0].split(":")[0]
        assert name in volumes, f"mongo-{d}: {name} is not a named volume"
        assert name not in seen, f"mongo-{d} shares volume {name}"
        seen.add(name)


def test_broker_with_management_ui_healthcheck_and_volume(compose):
    rabbit = compose["services"]["rabbitmq"]
    assert re.match(r"^rabbitmq:3[.\d]*-management$", rabbit["image"]), rabbit["image"]
    assert rabbit.get("healthcheck", {}).get("test"), "rabbitmq: no healthcheck"
    assert any(v.startswith("rabbitmq:/var/lib/rabbitmq") for v in rabbit["volumes"]), rabbit["volumes"]
    assert "rabbitmq" in compose["volumes"]
    assert {t for _, t in port_pairs(rabbit)} >= {5672, 15672}


def test_start_order_is_gated_on_health(compose):
    services = compose["services"]
    for d in DAEMONS:
        deps = services[d].get("depends_on", {})
        assert deps.get("rabbitmq", {}).get("condition") == "service_healthy", f"{d}: depends_on {deps}"
        if owns_database(d):
            assert deps.get(f"mongo-{d}", {}).get("condition") == "service_healthy", f"{d}: depends_on {deps}"
    gateway_deps = services["gateway"]["depends_on"]
    for d in DAEMONS:
        if d != "gateway":
            assert gateway_deps.get(d, {}).get("condition") == "service_healthy", f"gateway: depends_on {gateway_deps}"
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            if cond["condition"] == "service_healthy":
                # A daemon's health check comes with its image (tests/deploy/test_images.py).
                assert dep in DAEMONS or services[dep].get("healthcheck", {}).get("test"), \
                    f"{name} waits for {dep} to be healthy, and {dep} has no healthcheck"
            else:
                assert cond["condition"] == "service_completed_successfully" and dep == "keys", (name, dep, cond)


def test_gateway_is_published_on_8080_and_8443(compose):
    ports = port_pairs(compose["services"]["gateway"])
    assert {(8080, 8080), (8443, 8443)} <= ports, ports
    env = compose["services"]["gateway"]["environment"]
    assert env["GATEWAY_LISTEN"] == "0.0.0.0:8080" and env["GATEWAY_TLS_LISTEN"] == "0.0.0.0:8443"


def test_keys_reach_the_daemons_that_use_them(compose):
    services = compose["services"]
    keys = services["keys"]
    assert keys["build"]["args"]["DAEMON"] == "gateway" and keys["image"] == services["gateway"]["image"]
    made = {v.split(":")[0]: v.split(":")[1] for v in keys["volumes"] if not v.startswith("/")}
    jwt_dir, keys_dir = "/var/lib/photo/jwt", "/var/lib/photo/keys"
    assert made.get("jwt-key") == jwt_dir and made.get("gateway-keys") == keys_dir, keys["volumes"]
    assert services["auth"]["environment"]["JWT_PRIVATE_KEY_FILE"] == f"{jwt_dir}/jwt-private.pem"
    gw = services["gateway"]["environment"]
    assert gw["JWT_PUBLIC_KEY_FILE"] == f"{keys_dir}/jwt-public.pem"
    assert (gw["GATEWAY_TLS_CERT_FILE"], gw["GATEWAY_TLS_KEY_FILE"]) == (f"{keys_dir}/tls.crt", f"{keys_dir}/tls.key")
    # auth's private key is mounted in auth only.
    holders = [n for n, s in services.items() if any(str(v).startswith("jwt-key:") for v in s.get("volumes", []))]
    assert sorted(holders) == ["auth", "keys"], holders


# ================================================================ make-keys.sh


def test_make_keys_makes_a_matching_pair_and_a_certificate_once(tmp_path):
    dash = shutil.which("dash") or "/bin/sh"
    script = os.path.join(ROOT, "deploy", "docker", "make-keys.sh")
    jwt_dir, keys_dir = tmp_path / "jwt", tmp_path / "keys"
    jwt_dir.mkdir()
    keys_dir.mkdir()
    env = dict(COMPOSE_ENV, JWT_DIR=str(jwt_dir), KEYS_DIR=str(keys_dir))
    r = subprocess.run([dash, script], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    private, public = jwt_dir / "jwt-private.pem", keys_dir / "jwt-public.pem"
    derived = subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout"], check=True,
                             capture_output=True, text=True).stdout
    assert derived == public.read_text()
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    cert = subprocess.run(["openssl", "x509", "-in", str(keys_dir / "tls.crt"), "-noout", "-ext", "subjectAltName"],
                          check=True, capture_output=True, text=True).stdout
    assert "DNS:localhost" in cert and "IP Address:127.0.0.1" in cert, cert
    key_of_cert = subprocess.run(["openssl", "x509", "-in", str(keys_dir / "tls.crt"), "-noout", "-pubkey"],
                                 check=True, capture_output=True, text=True).stdout
    key_of_key = subprocess.run(["openssl", "pkey", "-in", str(keys_dir / "tls.key"), "-pubout"],
                                check=True, capture_output=True, text=True).stdout
    assert key_of_cert == key_of_key
    before = {p: p.read_bytes() for p in (private, public, keys_dir / "tls.crt", keys_dir / "tls.key")}
    r = subprocess.run([dash, script], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "keys: ready\n", r.stdout + r.stderr
    assert before == {p: p.read_bytes() for p in before}, "a second start made new keys"
    assert not list(tmp_path.rglob("*.tmp"))
