"""image_packages.py -- what each image of deploy/docker/Dockerfile installs, worked out offline from this
machine's apt lists (Debian bookworm), since no container engine runs here.

    python3 deploy/docker/image_packages.py          the size estimates of deploy/docker/README.md
    python3 deploy/docker/image_packages.py -v       the same, with the packages each image adds

debian:bookworm-slim is debootstrap's minbase: the Essential and Priority: required packages and what
they depend on (usr-is-merged for the merged /usr). apt-get resolves that set here, in simulation,
against an empty dpkg status; it comes out as the 88 packages of debuerreotype's bookworm/slim
rootfs.manifest. An image's runtime stage adds what apt-get, simulating its `apt-get install
--no-install-recommends` against a dpkg status holding that base, would install. Nothing is
downloaded or installed: `apt-get -s` with a dpkg status file of our own, no lock, no cache written.
tests/deploy/test_images.py uses the same functions to check the runtime lists against `ldd`.
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILE = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
DAEMONS = sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                 if os.path.isfile(os.path.join(ROOT, "services", d, "main.c")))

# ================================================================ the Dockerfile


def instructions(text):
    """The Dockerfile's instructions as (KEYWORD, arguments) pairs: comments dropped, continued lines joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    return out


def stages(text):
    """{stage name: {"from": image, "lines": [(KEYWORD, args), ...]}}, plus "" for the last, unnamed stage."""
    result, current = {}, None
    for keyword, args in instructions(text):
        if keyword == "FROM":
            m = re.match(r"^(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            current = {"from": m.group(1), "lines": []}
            result[m.group(2) or ""] = current
        elif current is not None:
            current["lines"].append((keyword, args))
    return result


def runtime_packages(text):
    """{daemon: [packages]} from the runtime stage's `case "$DAEMON"`, and the packages every image gets."""
    run = " ".join(args for keyword, args in stages(text)["runtime"]["lines"] if keyword == "RUN" and "case" in args)
    per_daemon = {m.group(1): m.group(2).split() for m in re.finditer(r'\b([a-z][a-z-]*)\)\s+libs="([^"]*)"', run)}
    m = re.search(r"apt-get install [^;]*?--no-install-recommends\s+((?:[a-z0-9.+-]+\s+)*)\$libs", run)
    common = m.group(1).split() if m else []
    return per_daemon, common


def build_packages(text):
    """The packages the build stage installs."""
    run = " ".join(args for keyword, args in stages(text)["build"]["lines"] if keyword == "RUN" and "apt-get" in args)
    m = re.search(r"--no-install-recommends\s+((?:[a-z0-9.+-]+\s+)+)&&", run)
    return m.group(1).split() if m else []


# ================================================================ apt, simulated


def available():
    """{package: its stanza in the apt lists (candidate version)}."""
    text = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True, text=True).stdout
    out = {}
    for stanza in text.split("\n\n"):
        m = re.search(r"^Package: (\S+)$", stanza, re.M)
        if m:
            out[m.group(1)] = stanza.strip()
    if not out:
        raise RuntimeError("apt-cache dumpavail is empty: run apt-get update (make deps does)")
    return out


def field(stanza, name):
    m = re.search(rf"^{name}: (.*)$", stanza, re.M)
    return m.group(1) if m else None


def simulate_install(packages, installed, avail):
    """What `apt-get install --no-install-recommends packages` would add to a system holding `installed`."""
    with tempfile.TemporaryDirectory() as tmp:
        status = os.path.join(tmp, "status")
        with open(status, "w") as f:
            for p in sorted(installed):
                f.write(avail[p] + "\nStatus: install ok installed\n\n")
        r = subprocess.run(
            ["apt-get", "-s", "-q", "-o", f"Dir::State::status={status}", "-o", "Debug::NoLocking=1",
             "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
             "install", "--no-install-recommends", *packages],
            capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        if r.returncode != 0:
            raise RuntimeError(f"apt-get -s install {' '.join(packages)}: {r.stderr.strip() or r.stdout[-2000:]}")
        return sorted(line.split()[1] for line in r.stdout.splitlines() if line.startswith("Inst "))


def slim_base(avail):
    """The packages of debian:bookworm-slim (see the top of this file)."""
    seeds = [p for p, s in avail.items() if field(s, "Priority") == "required" or field(s, "Essential") == "yes"]
    return set(simulate_install(seeds + ["usr-is-merged"], set(), avail))


def installed_kib(packages, avail):
    return sum(int(field(avail[p], "Installed-Size") or 0) for p in packages)


# ================================================================ sizes

# debian:bookworm-slim as `docker images` shows it on amd64 (about 28 MB compressed in the registry);
# a published figure, not measured here (no engine).
SLIM_MB = 74.8


def stripped_size(daemon):
    """Bytes of the release binary after `strip --strip-debug`, as the build stage leaves it."""
    binary = os.path.join(ROOT, "build", "release", "bin", daemon)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, daemon)
        subprocess.run(["strip", "--strip-debug", "-o", out, binary], check=True)
        return os.path.getsize(out)


def main(argv):
    verbose = "-v" in argv
    with open(DOCKERFILE) as f:
        per_daemon, common = runtime_packages(f.read())
    avail = available()
    base = slim_base(avail)
    print(f"debian:bookworm-slim: {len(base)} packages, {SLIM_MB} MB (published size, amd64)")
    print()
    print("| image | packages added | their Installed-Size | binary (stripped of debug) | estimate |")
    print("|---|---|---|---|---|")
    for d in DAEMONS:
        added = simulate_install(common + per_daemon[d], base, avail)
        kib = installed_kib(added, avail)
        binary = stripped_size(d)
        total = SLIM_MB + kib / 1024 + binary / 1e6
        print(f"| photo/{d} | {len(added)} | {kib / 1024:.1f} MB | {binary / 1e6:.2f} MB | {total:.0f} MB |")
        if verbose:
            print("    " + " ".join(added))


if __name__ == "__main__":
    main(sys.argv[1:])
