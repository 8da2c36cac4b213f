#!/usr/bin/env bash
# run.sh -- publication benchmark through the gateway over h2c (release build, a stack of its own):
#   - post creation: POST /v1/posts with one pre-uploaded photo of the caller's, a caption with two
#     hashtags and an @mention (JWT + RPC + media.get RPC to resize-image + hashtags and mentions
#     + post, counts and outbox writes in FerretDB + post.created relayed), 4 x 4 streams and 1 stream;
#   - single-post reads: GET /v1/posts/{id} of a post with likes and comments, signed in (post,
#     author, counts, liked_by_me and block lookups), 4 x 16 streams and 1 stream;
#   - the references, in the same run: auth's profile read GET /v1/users/{username} signed in
#     (one RPC and FerretDB lookups, the row of bench/auth) and GET /healthz (the gateway alone);
#   - the reads again once the creations stored their thousands of posts (of the first post and of
#     the newest), and one page of the author's and of the hashtag's post list on that data.
# Each run starts from a fresh database of its own (var/bench-posts).
#
#   make bench      (or: BENCH_DURATION=20 bench/posts/run.sh; make bench-posts for this one only)
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
. "$ROOT/bench/lib.sh"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"

# Ports of its own: not the developer stack's, the test stack's (8081, 5673, 27018, 9200), the other
# benchmarks' (8092, 8094, 9400, 9500, ...) nor the private stacks of deploy/local (8100+, 9300+).
export STACK_VAR="$ROOT/var/bench-posts" STACK_BIN="$ROOT/build/release/bin" STACK_NODE="rabbit-bposts@localhost"
export STACK_AMQP_PORT=5679 STACK_MGMT_PORT=15679 STACK_DIST_PORT=25679 STACK_EPMD_PORT=4375
export STACK_MONGO_PORT=27024 STACK_HTTP_PORT=8096 STACK_HTTPS_PORT=8456 STACK_ADMIN_BASE=9650
export STACK_DAEMONS="auth resize-image publication" LOG_LEVEL=warn
unset STACK_S3_PORT STACK_EXTRA_DAEMONS
# The benchmark measures the request path, not the limiters' refusals.
export GATEWAY_RATE_IP_PER_SEC=10000000 GATEWAY_RATE_IP_BURST=10000000
export GATEWAY_RATE_USER_PER_SEC=10000000 GATEWAY_RATE_USER_BURST=10000000
export AUTH_REGISTRATIONS_PER_ADDRESS=1000000 AUTH_ACCESS_TTL=2h
STACK="$ROOT/deploy/local/stack.sh"
OUT="$STACK_VAR/bench"
BASE="http://127.0.0.1:$STACK_HTTP_PORT"

for bin in gateway auth resize-image publication; do
    [ -x "$STACK_BIN/$bin" ] || {
        echo "bench/posts: $STACK_BIN/$bin is missing: make build" >&2
        exit 1
    }
done

trap '"$STACK" down >/dev/null 2>&1 || true' EXIT
# A fresh database each run: what a read costs depends on how many posts are stored (see RESULTS.md),
# and every run creates thousands.
"$STACK" down >/dev/null 2>&1 || true
rm -rf "$STACK_VAR/ferretdb" "$STACK_VAR/media" "$STACK_VAR/bench"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
# Other stacks on the machine (each runs a RabbitMQ node and a FerretDB): they share the cores.
OTHER_STACKS="$(pgrep -c -f 'beam.smp' || true) RabbitMQ nodes and $(pgrep -c -x ferretdb || true) FerretDB"
"$STACK" up >/dev/null
mkdir -p "$OUT"

# Fixtures: an author with one uploaded photo (its id in every create body) and a post with 5 likes
# and 5 comments; the reader is one of the likers.
"$ROOT/.venv/bin/python" - "$BASE" "$OUT" <<'PY'
import io, json, sys, time
import httpx
from PIL import Image

base, out = sys.argv[1], sys.argv[2]
with httpx.Client(base_url=base, http2=True, http1=False, timeout=60) as c:
    def reg(name):
        r = c.post("/v1/auth/register", json={"username": name, "email": f"{name}@bench.example",
                                                "password": "bench password", "name": name.replace("_", " ")})
        if r.status_code == 409:
            r = c.post("/v1/auth/login", json={"login": name, "password": "bench password"})
        r.raise_for_status()
        t = r.json()
        return t["user"], {"authorization": "Bearer " + t["access_token"]}

    def known(username):  # publication's projection has the user (from user.registered)
        for _ in range(300):
            if c.get(f"/v1/users/{username}/posts").status_code == 200:
                return
            time.sleep(0.1)
        raise SystemExit(f"publication never learnt of {username}")

    author, auth_a = reg("bench_author")
    photo = io.BytesIO()
    Image.new("RGB", (1280, 960), (40, 120, 200)).save(photo, "JPEG", quality=85)
    r = c.post("/v1/media", headers={**auth_a, "content-type": "image/jpeg"}, content=photo.getvalue())
    r.raise_for_status()
    media_id = r.json()["id"]
    fans = [reg(f"bench_liker{i}") for i in range(5)]
    for u, _ in fans:
        known(u["username"])
    known(author["username"])
    body = {"caption": "Evening light over the harbour #sunset #bench with @bench_liker0", "media_ids": [media_id]}
    r = c.post("/v1/posts", headers=auth_a, json=body)
    r.raise_for_status()
    post = r.json()
    assert post["tags"] == ["sunset", "bench"] and len(post["mentions"]) == 1, post
    for i, (u, h) in enumerate(fans):
        c.post(f"/v1/posts/{post['id']}/like", headers=h).raise_for_status()
        c.post(f"/v1/posts/{post['id']}/comments", headers=h, json={"text": f"lovely #{i}"}).raise_for_status()
    got = c.get(f"/v1/posts/{post['id']}", headers=fans[0][1]).json()
    assert (got["like_count"], got["comment_count"], got["liked_by_me"]) == (5, 5, True), got
    json.dump(body, open(f"{out}/post.json", "w"))
    open(f"{out}/post_id", "w").write(post["id"])
    open(f"{out}/author_token", "w").write(auth_a["authorization"][7:])
    open(f"{out}/reader_token", "w").write(fans[0][1]["authorization"][7:])
PY
POST_ID="$(cat "$OUT/post_id")"
AUTHOR_TOKEN="$(cat "$OUT/author_token")"
READER_TOKEN="$(cat "$OUT/reader_token")"
# posts_count [final]: bench_author's posts_count as auth keeps it from post.created events; with
# "final", once it holds still for a second (the events of the last requests may be on their way).
posts_count() {
    "$ROOT/.venv/bin/python" - "$BASE" "${1:-}" <<'PY'
import sys, time, httpx
with httpx.Client(base_url=sys.argv[1], http2=True, http1=False, timeout=30) as c:
    count = lambda: c.get("/v1/users/bench_author").json()["posts_count"]
    n = count()
    for _ in range(30 if sys.argv[2] else 0):
        time.sleep(1)
        m, n = n, count()
        if m == n:
            break
    print(n)
PY
}
POSTS_BEFORE="$(posts_count final)"

# run FILE NAME URL [h2load args...]: bench_run into $OUT.
run() {
    local file="$1" name="$2" url="$3"
    shift 3
    bench_run "$OUT" "$file" "$name" "$url" "$@"
}

bench_header
# References first; reads on the fresh database (one post stored), then the creations, then the same
# reads again with every post the creations stored, and the auth reference once more.
run healthz "reference: GET /healthz (the gateway alone), 4 x 16 streams" "$BASE/healthz" -c 4 -m 16
run profile "reference: GET /v1/users/bench_author (auth), signed in, 4 x 16 streams" "$BASE/v1/users/bench_author" \
    -c 4 -m 16 -H "authorization: Bearer $READER_TOKEN"
run read "GET /v1/posts/{id}, signed in, 4 x 16 streams (posts stored: $POSTS_BEFORE)" "$BASE/v1/posts/$POST_ID" \
    -c 4 -m 16 -H "authorization: Bearer $READER_TOKEN"
run read-seq "GET /v1/posts/{id}, signed in, 1 stream (posts stored: $POSTS_BEFORE)" "$BASE/v1/posts/$POST_ID" \
    -c 1 -m 1 -H "authorization: Bearer $READER_TOKEN"
run create "POST /v1/posts (1 photo, 2 tags, 1 mention), 4 x 4 streams" "$BASE/v1/posts" \
    -c 4 -m 4 -d "$OUT/post.json" -H "content-type: application/json" -H "authorization: Bearer $AUTHOR_TOKEN"
run create-seq "POST /v1/posts, 1 stream" "$BASE/v1/posts" \
    -c 1 -m 1 -d "$OUT/post.json" -H "content-type: application/json" -H "authorization: Bearer $AUTHOR_TOKEN"
POSTS_AFTER="$(posts_count final)"
# On FerretDB a post's read costs more the later it was stored (RESULTS.md): the first post, and the newest.
NEWEST_ID="$(curl -s --http2-prior-knowledge "$BASE/v1/users/bench_author/posts?limit=1" |
    "$ROOT/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["items"][0]["id"])')"
run read-after-seq "GET /v1/posts/{id}, the first post, 1 stream (posts stored: $POSTS_AFTER)" "$BASE/v1/posts/$POST_ID" \
    -c 1 -m 1 -H "authorization: Bearer $READER_TOKEN"
run read-newest-seq "GET /v1/posts/{id}, the newest post, 1 stream (posts stored: $POSTS_AFTER)" \
    "$BASE/v1/posts/$NEWEST_ID" -c 1 -m 1 -H "authorization: Bearer $READER_TOKEN"
run read-newest "GET /v1/posts/{id}, the newest post, 4 x 16 streams (posts stored: $POSTS_AFTER)" \
    "$BASE/v1/posts/$NEWEST_ID" -c 4 -m 16 -H "authorization: Bearer $READER_TOKEN"
run profile-after "reference: GET /v1/users/bench_author (auth), signed in, 4 x 16 streams, again" \
    "$BASE/v1/users/bench_author" -c 4 -m 16 -H "authorization: Bearer $READER_TOKEN"
# One page of a list on the same data, timed alone (curl): the user's and the hashtag's newest post.
list_ms() { curl -s -o /dev/null -w '%{http_code} %{time_total}' --http2-prior-knowledge "$BASE$1" | awk '{ printf "%s in %.0f ms", $1, $2 * 1000 }'; }
LISTS="GET /v1/users/bench_author/posts?limit=1: $(list_ms '/v1/users/bench_author/posts?limit=1'); GET /v1/tags/bench/posts?limit=1: $(list_ms '/v1/tags/bench/posts?limit=1')"
echo
echo "h2load -t 1 --warm-up-time=$WARMUP -D $DURATION (h2c); auth, resize-image and publication with WORKERS=4 (default); $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "Load average (1/5/15 min) before the stack started: $LOAD_START ($OTHER_STACKS of other stacks running); after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Posts stored (bench_author's posts_count, which auth keeps from post.created): $POSTS_BEFORE before the creations, $POSTS_AFTER after (warm-up requests included)."
echo "Lists on that data, one request each, unloaded: $LISTS."
echo "RSS after the run: gateway $(ps -o rss= -p "$(cat "$STACK_VAR/run/gateway.pid")") KiB, publication $(ps -o rss= -p "$(cat "$STACK_VAR/run/publication.pid")") KiB, auth $(ps -o rss= -p "$(cat "$STACK_VAR/run/auth.pid")") KiB, resize-image $(ps -o rss= -p "$(cat "$STACK_VAR/run/resize-image.pid")") KiB"
