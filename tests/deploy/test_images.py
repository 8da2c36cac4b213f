"""test_images.py -- deploy/docker/Dockerfile and .dockerignore, checked offline (no container engine here).

What `docker build` would find out late is checked against this machine, which is the build stage's
Debian bookworm: the runtime packages of each daemon are exactly those of the libraries its release
binary is linked with, and every library `ldd` loads comes with the image (apt's own resolution,
simulated on debian:bookworm-slim's packages: deploy/docker/image_packages.py); the build stage's
packages give every pkg-config module the Makefile asks for; the build context that .dockerignore
lets through holds everything make needs for each daemon; each daemon's stage runs it as a non-root
user, with a HEALTHCHECK of `<daemon> --healthcheck` and its listeners on the container's network.
The libraries are read off the sanitizer binaries `make test` has just built (less the sanitizer
runtimes and what --as-needed drops), or off release binaries built here (make); without make
the binary checks are skipped.
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "deploy", "docker"))
import image_packages  # noqa: E402  (deploy/docker/image_packages.py)

DAEMONS = image_packages.DAEMONS
DOCKERFILE_TEXT = open(image_packages.DOCKERFILE).read()
STAGES = image_packages.stages(DOCKERFILE_TEXT)
RUNTIME, COMMON = image_packages.runtime_packages(DOCKERFILE_TEXT)
BUILD = image_packages.build_packages(DOCKERFILE_TEXT)


def lines(stage, keyword):
    return [args for kw, args in STAGES[stage]["lines"] if kw == keyword]


def reads(daemon):
    """The environment variables daemon reads (its cfg table, and libs/svc's common ones)."""
    def names(path):
        text = open(path).read().replace("\\\n", " ")
        return set(re.findall(r'\{\s*"([A-Z][A-Z0-9_]*)",\s*CFG_', text))
    main_c = os.path.join(ROOT, "services", daemon, "main.c")
    out = names(main_c)
    if "SVC_CFG_COMMON(" in open(main_c).read():
        out |= names(os.path.join(ROOT, "libs", "svc", "svc.h"))
    return out


def admin_port(daemon):
    m = re.search(r'SVC_CFG_COMMON\([^,]+,\s*"[^"]*:(\d+)"\)', open(os.path.join(ROOT, "services", daemon, "main.c")).read())
    return int(m.group(1))


# ================================================================ the stages


def test_both_stages_are_bookworm_slim_and_the_image_is_the_daemons_stage():
    assert re.search(r"^ARG DAEMON$", DOCKERFILE_TEXT.split("\nFROM ", 1)[0], re.M), "ARG DAEMON before the first FROM"
    assert STAGES["build"]["from"] == "debian:bookworm-slim"
    assert STAGES["runtime"]["from"] == "debian:bookworm-slim"
    assert STAGES[""]["from"] == "image-${DAEMON}", "the last FROM picks the stage of DAEMON"
    stage_daemons = sorted(name[len("image-"):] for name in STAGES if name.startswith("image-"))
    assert stage_daemons == DAEMONS, f"a stage per daemon of services/: {stage_daemons}"
    assert sorted(RUNTIME) == DAEMONS, f"runtime packages listed for {sorted(RUNTIME)}"
    assert all(RUNTIME.values()) and COMMON and BUILD, "could not read the package lists of the Dockerfile"


def test_runtime_stage_runs_as_a_non_root_user_and_stops_on_sigterm():
    users = lines("runtime", "USER")
    assert len(users) == 1 and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[0]), f"USER {users}: numeric, not root"
    assert lines("runtime", "STOPSIGNAL") == ["SIGTERM"]
    assert "COPY --from=build /usr/local/bin/$DAEMON /usr/local/bin/$DAEMON" in [
        "COPY " + a for a in lines("runtime", "COPY")]
    assert "ca-certificates" in COMMON, COMMON


@pytest.mark.parametrize("daemon", DAEMONS)
def test_daemon_stage_healthcheck_entrypoint_ports_and_environment(daemon):
    stage = f"image-{daemon}"
    assert STAGES[stage]["from"] == "runtime"
    binary = f"/usr/local/bin/{daemon}"
    (health,) = lines(stage, "HEALTHCHECK")
    options, _, cmd = health.partition(" CMD ")
    assert json.loads(cmd) == [binary, "--healthcheck"], health
    timeout = re.search(r"--timeout=(\d+)s", options)
    assert timeout and int(timeout.group(1)) > 2, f"{health}: the probe itself may take 2 s"
    assert [json.loads(e) for e in lines(stage, "ENTRYPOINT")] == [[binary]]
    exposed = {int(p) for e in lines(stage, "EXPOSE") for p in e.split()}
    env = dict(kv.split("=", 1) for e in lines(stage, "ENV") for kv in e.split())
    assert set(env) <= reads(daemon), f"{daemon} does not read {sorted(set(env) - reads(daemon))}"
    if daemon == "gateway":
        assert exposed == {8080, 8443}
        assert env["GATEWAY_LISTEN"] == "0.0.0.0:8080" and env["GATEWAY_TLS_LISTEN"] == "0.0.0.0:8443"
    else:
        assert exposed == {admin_port(daemon)}
        assert env["ADMIN_LISTEN"] == f"0.0.0.0:{admin_port(daemon)}"


def test_build_stage_installs_the_dev_packages_of_setup_and_no_test_tools():
    setup = open(os.path.join(ROOT, "deploy", "local", "setup.sh")).read()
    listed = re.search(r"^APT_PACKAGES=\((.*?)^\)", setup, re.M | re.S).group(1)
    setup_packages = set(re.sub(r"#.*", "", listed).split())
    assert set(BUILD) <= setup_packages, f"not in deploy/local/setup.sh: {sorted(set(BUILD) - setup_packages)}"
    tools = [p for p in BUILD if not p.endswith("-dev") and p not in ("build-essential", "pkg-config")]
    assert not tools, f"the build stage needs -dev packages only, not {tools}"


# ================================================================ against apt and the binaries


@pytest.fixture(scope="module")
def apt():
    """(available stanzas, debian:bookworm-slim's packages)."""
    avail = image_packages.available()
    return avail, image_packages.slim_base(avail)


SANITIZER_RUNTIMES = re.compile(r"^lib(asan|ubsan|lsan|tsan)\.so")


@pytest.fixture(scope="module")
def binaries():
    """{daemon: (needed, loaded)}: the libraries its release binary names (NEEDED) and every library
    the loader then loads ({name: path}). `make test` has just built the sanitizer binaries
    (build/asan/bin): they link the same libraries plus the sanitizer runtimes, but without
    --as-needed, so the release set is theirs less the runtimes and the unused ones (`ldd -u`),
    and what loads is those libraries and their own dependencies. Without them the release
    binaries are built here (make) and read directly."""
    asan = [os.path.join(ROOT, "build", "asan", "bin", d) for d in DAEMONS]
    if all(os.access(b, os.X_OK) for b in asan):
        out = {}
        for d, b in zip(DAEMONS, asan):
            loaded_by_binary = ldd(b)
            unused = set(unused_libraries(b))
            names = [n for n in needed(b) if not SANITIZER_RUNTIMES.match(n) and loaded_by_binary[n] not in unused]
            loaded = {}
            for n in names:
                loaded[n] = loaded_by_binary[n]
                loaded.update(ldd(loaded_by_binary[n]))
            out[d] = (names, loaded)
        return out
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed: cannot build the release binaries to check their libraries")
    targets = [f"build/release/bin/{d}" for d in DAEMONS]
    r = subprocess.run([make, f"-j{os.cpu_count() or 2}", *targets], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"make {' '.join(targets)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return {d: (needed(os.path.join(ROOT, t)), ldd(os.path.join(ROOT, t))) for d, t in zip(DAEMONS, targets)}


def unused_libraries(binary):
    """Paths of the libraries binary names but uses no symbol of (`ldd -u -r`)."""
    out = subprocess.run(["ldd", "-u", "-r", binary], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip().startswith("/")]


@functools.lru_cache(maxsize=None)
def dpkg_owners():
    """{path: package} of every file dpkg knows, from its lists (one read, not a `dpkg -S` per library)."""
    info = "/var/lib/dpkg/info"
    owners = {}
    for name in os.listdir(info):
        if name.endswith(".list"):
            package = name[:-len(".list")].split(":")[0]
            with open(os.path.join(info, name), errors="replace") as f:
                for line in f:
                    owners.setdefault(line.rstrip("\n"), package)
    return owners


def package_of(path):
    """The Debian package that holds a file (dpkg knows some under /lib, some under /usr/lib)."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib/") or p.startswith("/lib64/"):
            candidates.append("/usr" + p)
    for p in candidates:
        if p in dpkg_owners():
            return dpkg_owners()[p]
    raise AssertionError(f"no package holds {path} (tried {candidates})")


def ldd(binary):
    """{library name: path} of everything the dynamic loader loads for binary."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(\S+)\s+=>\s+(\S+)", line) or re.match(r"^\s*(/\S+)\s+\(", line)
        if m:
            libs[m.group(1)] = m.group(2) if m.lastindex == 2 else m.group(1)
        elif "not found" in line:
            raise AssertionError(f"{binary}: {line.strip()}")
    return libs


def needed(binary):
    out = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


@pytest.mark.parametrize("daemon", DAEMONS)
def test_runtime_packages_are_those_of_the_libraries_the_binary_links(binaries, daemon):
    names, loaded = binaries[daemon]
    want = {package_of(loaded[name]) for name in names} - {"libc6"}
    listed = set(RUNTIME[daemon])
    assert listed == want, (f"{daemon}: deploy/docker/Dockerfile lists {sorted(listed)}; its binary links "
                            f"libraries of {sorted(want)} (libc6 is in the base image). "
                            f"Missing: {sorted(want - listed)}, not needed: {sorted(listed - want)}")


@pytest.mark.parametrize("daemon", DAEMONS)
def test_every_library_the_binary_loads_comes_with_its_image(binaries, apt, daemon):
    avail, base = apt
    image = base | set(image_packages.simulate_install(COMMON + RUNTIME[daemon], base, avail))
    missing = {}
    for name, path in binaries[daemon][1].items():
        pkg = package_of(path)
        if pkg not in image:
            missing[name] = pkg
    assert not missing, f"{daemon}: libraries whose package its image lacks: {missing}"
    assert "openssl" in image, f"{daemon}: no openssl (the compose service `keys` runs it in the gateway image)"


def test_build_stage_provides_every_pkg_config_module_the_makefile_uses(apt):
    avail, base = apt
    makefiles = [os.path.join(ROOT, "Makefile"), os.path.join(ROOT, "libs", "module.mk")]
    makefiles += [os.path.join(ROOT, "services", d, "module.mk") for d in DAEMONS]
    modules = set()
    for path in makefiles:
        text = open(path).read()
        m = re.search(r"^PKGS\s*:?=\s*(.*)$", text, re.M)
        if m:
            modules |= set(m.group(1).split())
        for args in re.findall(r"pkg-config --(?:cflags|libs) ([^)]*)\)", text):
            modules |= {a for a in args.split() if not a.startswith("$")}
    assert {"libh2o-evloop", "vips", "sqlite3", "glib-2.0", "openssl"} <= modules, sorted(modules)
    stage = base | set(image_packages.simulate_install(BUILD, base, avail))
    for module in sorted(modules):
        pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", module], capture_output=True, text=True)
        assert pcdir.returncode == 0, f"pkg-config does not know {module} here"
        owner = package_of(os.path.join(pcdir.stdout.strip(), module + ".pc"))
        assert owner in stage, f"pkg-config module {module} ({owner}) is not installed by the build stage"


# ================================================================ the build context


def dockerignore_allowed():
    """The paths .dockerignore lets through; it must be `*` followed by `!path` lines (an allow-list)."""
    rules = [line.strip() for line in open(os.path.join(ROOT, ".dockerignore"))
             if line.strip() and not line.lstrip().startswith("#")]
    assert rules[0] == "*" and all(r.startswith("!") and "*" not in r for r in rules[1:]), \
        f".dockerignore: this test understands `*` then `!path` lines only: {rules}"
    return [r[1:].strip("/") for r in rules[1:]]


def test_build_context_holds_what_make_needs(tmp_path):
    allowed = dockerignore_allowed()
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    sent = [f for f in files if any(f == a or f.startswith(a + "/") for a in allowed) and os.path.exists(os.path.join(ROOT, f))]
    for f in sent:
        os.makedirs(os.path.dirname(tmp_path / f), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), tmp_path / f)
    assert not any(f.startswith(("build/", "var/", "tools/", ".venv/", ".git/")) for f in sent)
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    for target in ["build/release/libphoto.a"] + [f"build/release/bin/{d}" for d in DAEMONS]:
        r = subprocess.run([make, "-n", target], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f"make -n {target} in the build context:\n{r.stderr[-2000:]}"
