"""test_rolling_restart.py -- a rolling restart under a steady stream of writes: each daemon in turn
(auth, resize-image, publication, notification, search, then the gateway) gets SIGTERM by its
recorded pid at a moment a write reaching it is in flight, must exit by itself within 25 s with
status 0 (seen when the exited process is caught before it is reaped), its log saying "stopped"
and holding no sanitizer report (DESIGN.md, Operations), and is started again; meanwhile client
threads keep registering, following, uploading, posting, commenting and liking through the gateway
over HTTP/2.

Every write answered 2xx ("accepted") is recorded, and once everything is back up each must be
there: the account logs in, is found by search and got exactly one welcome mail; the follow is
listed and notified; the media is readable and its thumb served; the post is readable as made,
with exactly the comments and likes it was given (each notified to the author), is found by search,
and a star's post is in its fans' feeds and inboxes; the star's counters agree with its lists.
Writes refused while a daemon is down (502, 503, 504, a refused connection) were not accepted; a
write whose answer was lost (a 504 after the daemon stored it, a stream the gateway's GOAWAY ended)
may still have happened, so what is listed must hold every accepted write and nothing that was
not attempted (each comment and like names its attempt).

Each stream user makes a handful of requests from an address of its own, so the test stack's
rate limits never trip. Notifications of posts are checked for fans that followed their star
before the stream started: a follow and a post made a moment apart may reach notification's
competing consumers in either order, which the design allows (README of notification: the
follow projection).
"""
import glob
import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from authlib import PASSWORD, User, h2, login, new_address, register_body
from conftest import VAR, bearer, gateway_ready, stack, wait_until
from medialib import multipart
from notiflib import wait_inbox
from publib import small_jpeg, walk
from searchlib import word
from test_resilience import alive, pid_of

ADMIN_BASE = int(os.environ.get("STACK_ADMIN_BASE", "9200"))
# In the order of stack.sh's KNOWN_DAEMONS (admin port ADMIN_BASE + 1 + index); the gateway last.
DAEMONS = ["auth", "resize-image", "publication", "notification", "search"]
EXIT_LIMIT_S = 25.0  # DESIGN.md, Operations: SIGTERM ... exit 0 within 25 s
THREADS = 6
FANS_PER_STAR = 2
ROUND_S = 0.6  # a thread's round (7 writes) at most this often
MAX_ROUNDS = 140  # per thread: a star's inbox (3 notifications a round) stays under its cap of 500
STEADY_S = 3.0  # traffic before the first stop and between a restart and the next stop
SETTLE_S = 90.0  # how long the checks at the end wait for queues to drain
REFUSED = {502, 503}  # refused at once; a 504 (no answer in time) counts as unknown
# The daemons each kind of write reaches (notification and search through the events it causes).
REACHES = {"register": {"auth", "notification", "search"}, "follow": {"auth", "publication", "notification"},
           "upload": {"resize-image"}, "post": {"publication", "resize-image", "notification", "search"},
           "comment": {"publication", "notification"}, "like": {"publication", "notification"}}
MAIL_DIR = os.environ.get("TEST_MAIL_DIR", "")  # the stack's SMTP sink (N.json per message)
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def admin_ready(name):
    port = ADMIN_BASE + 1 + DAEMONS.index(name)
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------ the record of writes

class Record:
    """What the stream attempted and what was accepted (2xx), per kind; shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}  # username of each accepted registration -> the star it follows, once accepted
        self.user_ids = {}  # username -> account id
        self.tried_emails = set()  # of every registration attempted
        self.follows = {}  # star username -> [(follower username, accepted)]
        self.media = []  # (owner access token, upload answer)
        self.posts = {}  # post id -> (author username, caption, media id)
        self.star_posts = {}  # star username -> [post id]
        self.comments = {}  # post id -> {"accepted": {text: id}, "attempted": {text}}
        self.likes = {}  # post id -> {"accepted": {username}, "attempted": {username}}
        self.attempts = {}  # kind -> {"accepted": n, "refused": n, "unknown": n}
        self.unexpected = []  # (kind, status, body): neither accepted nor a refusal of a daemon down
        self.not_accepted = {}  # status or exception name -> writes
        self.post_attempts = 0
        self.timeline = []  # (kind, sent, answered): monotonic times of every write
        self.in_flight = {}  # kind -> writes sent and not answered yet

    def outcome(self, kind, r):
        """Files the answer (or exception) of one write; returns True when it was accepted."""
        with self.lock:
            n = self.attempts.setdefault(kind, {"accepted": 0, "refused": 0, "unknown": 0})
            why = type(r).__name__ if isinstance(r, Exception) else r.status_code
            if why not in range(200, 300):
                self.not_accepted[why] = self.not_accepted.get(why, 0) + 1
            if isinstance(r, httpx.ConnectError):  # never reached the gateway
                n["refused"] += 1
                return False
            if isinstance(r, Exception):
                n["unknown"] += 1
                return False
            if 200 <= r.status_code < 300:
                n["accepted"] += 1
                return True
            if r.status_code in REFUSED:
                n["refused"] += 1
            elif r.status_code == 504:
                n["unknown"] += 1
            else:
                self.unexpected.append((kind, r.status_code, r.text[:300]))
            return False


def send(rec, kind, fn):
    """Runs one write; returns (accepted, response or None)."""
    with rec.lock:
        rec.in_flight[kind] = rec.in_flight.get(kind, 0) + 1
    t0 = time.monotonic()
    try:
        r = fn()
    except httpx.HTTPError as e:
        r = e
    with rec.lock:
        rec.in_flight[kind] -= 1
        rec.timeline.append((kind, t0, time.monotonic()))
    ok = rec.outcome(kind, r)
    return ok, (None if isinstance(r, Exception) else r)


def upload(client, token):
    ctype, body = multipart([("file", "photo.jpg", "image/jpeg", small_jpeg())])
    return client.post("/v1/media", headers={**bearer(token), "content-type": ctype}, content=body, timeout=30)


# ------------------------------------------------------------------ the stream

class Star:
    """An account the stream users follow, comment on and like, which posts every round; its fans
    followed it before the stream."""

    def __init__(self, runw):
        self.user = User()
        r = upload(self.user.client, self.user.access)
        assert r.status_code == 201, r.text
        self.media_id = r.json()["id"]
        self.fans = [User() for _ in range(FANS_PER_STAR)]
        for f in self.fans:
            r = f.follow(self.user)
            assert r.status_code == 200, r.text
        self.runw = runw
        self.last_post = None


def stream(rec, star, stop, rounds_done):
    """One client thread: rounds of register, follow, upload, post (the user's and the star's),
    comment and like, until stop is set."""
    for i in range(MAX_ROUNDS):
        if stop.is_set():
            break
        t0 = time.monotonic()
        stream_round(rec, star)
        rounds_done.append(i)
        stop.wait(max(0.0, ROUND_S - (time.monotonic() - t0)))


def stream_round(rec, star):
    s = star.user
    c = h2()
    try:
        body = register_body()
        with rec.lock:
            rec.tried_emails.add(body["email"])
        ok, r = send(rec, "register", lambda: c.post("/v1/auth/register", json=body))
        if not ok:
            return
        username, token = body["username"], r.json()["access_token"]
        auth = bearer(token)
        with rec.lock:
            rec.users[username] = None
            rec.user_ids[username] = r.json()["user"]["id"]
            rec.follows.setdefault(s.username, []).append([username, False])
            entry = rec.follows[s.username][-1]
        ok, _ = send(rec, "follow", lambda: c.post(f"/v1/users/{s.username}/follow", headers=auth))
        if ok:
            with rec.lock:
                entry[1] = True
                rec.users[username] = s.username

        ok, r = send(rec, "upload", lambda: upload(c, token))
        if ok:
            answer = r.json()
            with rec.lock:
                rec.media.append((token, answer))
            caption = f"{star.runw} {word()}"
            with rec.lock:
                rec.post_attempts += 1
            ok, r = send(rec, "post", lambda: c.post("/v1/posts", headers=auth,
                                                     json={"caption": caption, "media_ids": [answer["id"]]}))
            if ok:
                with rec.lock:
                    rec.posts[r.json()["id"]] = (username, caption, answer["id"])

        caption = f"{star.runw} {word()}"
        with rec.lock:
            rec.post_attempts += 1
        ok, r = send(rec, "post", lambda: s.post("/v1/posts", json={"caption": caption, "media_ids": [star.media_id]}))
        if ok:
            pid = r.json()["id"]
            with rec.lock:
                rec.posts[pid] = (s.username, caption, star.media_id)
                rec.star_posts.setdefault(s.username, []).append(pid)
                rec.comments[pid] = {"accepted": {}, "attempted": set()}
                rec.likes[pid] = {"accepted": set(), "attempted": set()}
            star.last_post = pid
        pid = star.last_post
        if pid is None:
            return

        text = f"c{uuid.uuid4().hex[:16]}"
        with rec.lock:
            rec.comments[pid]["attempted"].add(text)
        ok, r = send(rec, "comment", lambda: c.post(f"/v1/posts/{pid}/comments", headers=auth, json={"text": text}))
        if ok:
            with rec.lock:
                rec.comments[pid]["accepted"][text] = r.json()["id"]
        with rec.lock:
            rec.likes[pid]["attempted"].add(username)
        ok, _ = send(rec, "like", lambda: c.post(f"/v1/posts/{pid}/like", headers=auth))
        if ok:
            with rec.lock:
                rec.likes[pid]["accepted"].add(username)
    finally:
        c.close()


# ------------------------------------------------------------------ SIGTERM, exit, start

def exit_status(pid):
    """The exit status of pid while it is a zombie (field 52 of /proc/PID/stat: 0 for exit(0), a
    signal's number when killed), or None once it is reaped (PID 1 of this machine reaps lazily)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] != "Z" or len(fields) < 50:
        return None
    code = int(fields[49])
    return code >> 8 if code & 0x7F == 0 else f"signal {code & 0x7F}"


def reaching(rec, name):
    with rec.lock:
        return sum(n for kind, n in rec.in_flight.items() if name == "gateway" or name in REACHES[kind])


def stop_and_start(rec, name, exits):
    """SIGTERM to name by its recorded pid, at a moment a write reaching it is in flight; measures the
    time to exit, checks the log says it stopped (and nothing of a sanitizer), then starts it again
    and waits until it serves."""
    pid = pid_of(name)
    deadline = time.monotonic() + 10
    while reaching(rec, name) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    log_path = os.path.join(VAR, "log", f"{name}.log")
    offset = os.path.getsize(log_path)
    t0 = time.monotonic()
    exits[name] = {"signalled": t0}
    os.kill(pid, signal.SIGTERM)
    while alive(pid) and time.monotonic() - t0 < EXIT_LIMIT_S + 5:
        time.sleep(0.02)
    took = time.monotonic() - t0
    gone = not alive(pid)
    status = exit_status(pid) if gone else None
    stack("stop", name)  # removes the pid file (and SIGKILLs what did not exit)
    with open(log_path, errors="replace") as f:
        f.seek(offset)
        tail = f.read()
    exits[name] |= {
        "seconds": round(took, 2),
        "exited": gone,
        "status": status,
        "stopped_logged": ('"msg":"stopped"' in tail) if name != "gateway" else ('"msg":"stopped (' in tail),
        "sanitizer": [s for s in SANITIZER if s in tail],
        "log": tail[-1500:],
    }
    stack("start", name)
    if name == "gateway":
        wait_until(gateway_ready, timeout=60, what="gateway ready again")
    else:
        wait_until(lambda: admin_ready(name), timeout=60, what=f"{name} ready again")


# ------------------------------------------------------------------ the checks at the end

def settle(check, what, timeout=SETTLE_S):
    """Polls check() (a list of what is still missing) until it is empty; returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            missing = check()
        except (httpx.HTTPError, AssertionError) as e:
            missing = [f"{what}: {e!r}"]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(2.0)  # slow enough for the per-user rate limit of the stars and fans that poll


def pmap(fn, items, workers=4):
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(fn, items))


def inbox_of(user):
    items, cursor = [], None
    for _ in range(50):
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        r = user.get("/v1/notifications", params=params)
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("inbox pagination did not end")


def search_ids(runw):
    """Every post id the search finds for the run's word, and its total."""
    got, offset, total = set(), 0, None
    with h2() as c:
        while True:
            r = c.get("/v1/search", params={"q": runw, "type": "posts", "limit": 100, "offset": offset},
                      headers={"x-forwarded-for": new_address()})
            assert r.status_code == 200, r.text
            body = r.json()
            total = body["total"]
            got |= {i["id"] for i in body["items"]}
            offset += 100
            if not body["items"] or offset >= total:
                return got, total


# ------------------------------------------------------------------ the test

def test_rolling_restart_under_load_loses_no_accepted_write():
    assert gateway_ready()
    for name in DAEMONS:
        assert admin_ready(name), f"{name} is not ready before the test"
    runw = word(14)
    stars = [Star(runw) for _ in range(THREADS)]
    # the fans' follows reached notification's projection before the stream
    for st in stars:
        wait_inbox(st.user, lambda items: sum(n["type"] == "follow" for n in items) >= FANS_PER_STAR,
                   timeout=30, what=f"{st.user.username} told of its fans")

    rec, stop, rounds = Record(), threading.Event(), []
    threads = [threading.Thread(target=stream, args=(rec, st, stop, rounds), daemon=True) for st in stars]
    t_start = time.monotonic()
    for t in threads:
        t.start()
        time.sleep(ROUND_S / THREADS)  # out of step: every kind of write goes on all the time
    exits = {}
    try:
        time.sleep(STEADY_S)
        for name in DAEMONS + ["gateway"]:
            stop_and_start(rec, name, exits)
            time.sleep(STEADY_S)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        for name in DAEMONS:
            if not admin_ready(name):
                stack("start", name, check=False)
        if not gateway_ready():
            stack("start", "gateway", check=False)
    stream_s = time.monotonic() - t_start
    wait_until(gateway_ready, timeout=60, what="gateway ready after the stream")

    # Under load: writes reaching each daemon were in flight when it got SIGTERM.
    for name, e in exits.items():
        t = e["signalled"]
        e["in_flight"] = sum(1 for kind, a, b in rec.timeline
                             if a <= t <= b and (name == "gateway" or name in REACHES[kind]))
    summary = (f"{len(rounds)} rounds in {stream_s:.0f}s; writes {rec.attempts}; not accepted {rec.not_accepted}; exit seconds (writes in flight "
               f"at SIGTERM, exit status if seen) { {n: (e['seconds'], e['in_flight'], e['status']) for n, e in exits.items()} }")
    print(summary)

    # Each daemon exited by itself, in time, saying so, without a sanitizer report.
    for name, e in exits.items():
        assert e["exited"], f"{name} still running {EXIT_LIMIT_S + 5}s after SIGTERM ({summary})\n{e['log']}"
        assert e["seconds"] <= EXIT_LIMIT_S, f"{name} took {e['seconds']}s to exit after SIGTERM ({summary})"
        assert e["status"] in (None, 0), f"{name} exited with status {e['status']} after SIGTERM:\n{e['log']}"
        assert e["stopped_logged"], f"{name}'s log does not say it stopped after SIGTERM:\n{e['log']}"
        assert not e["sanitizer"], f"{name}: {e['sanitizer']} in its log after SIGTERM:\n{e['log']}"
        assert e["in_flight"] > 0, f"no write reaching {name} was in flight at its SIGTERM ({summary})"
    assert set(exits) == set(DAEMONS + ["gateway"]), exits
    assert not rec.unexpected, f"answers that are neither accepted nor a refusal: {rec.unexpected[:10]} ({summary})"
    for kind in ("register", "follow", "upload", "post", "comment", "like"):
        assert rec.attempts.get(kind, {}).get("accepted", 0) >= 10, f"too few accepted {kind} writes: {summary}"

    # Accounts: each accepted registration logs in.
    def cannot_log_in(username):
        with h2() as c:
            r = login(c, username, PASSWORD)
            return None if r.status_code == 200 else (username, r.status_code)
    users = sorted(rec.users)
    bad = [x for x in pmap(cannot_log_in, users) if x]
    assert not bad, f"{len(bad)} of {len(users)} accepted registrations cannot log in: {bad[:5]}"

    # Follows: each star's followers are its fans, every accepted follower, and no one who did not try.
    def follows_missing():
        missing = []
        for st in stars:
            s = st.user.username
            listed = {u["username"] for u in walk(st.user, f"/v1/users/{s}/followers", limit=100)[0]}
            tried = rec.follows.get(s, [])
            want = {u for u, ok in tried if ok} | {f.username for f in st.fans}
            extra = listed - {u for u, _ in tried} - {f.username for f in st.fans}
            missing += [f"{s}: follower {u} missing" for u in want - listed]
            missing += [f"{s}: follower {u} never tried" for u in extra]
        return missing
    n_follows = sum(ok for v in rec.follows.values() for _, ok in v)
    left = settle(follows_missing, "followers")
    assert not left, f"{len(left)} accepted follows lost (of {n_follows}): {left[:5]}"

    # Media: each accepted upload is readable, and its thumb is served.
    def media_missing(item):
        token, answer = item
        with h2() as c:
            r = c.get(f"/v1/media/{answer['id']}", headers=bearer(token))
            if r.status_code != 200:
                return (answer["id"], r.status_code)
            thumb = c.get(answer["variants"]["thumb"]["url"])
            return None if thumb.status_code == 200 else (answer["variants"]["thumb"]["url"], thumb.status_code)
    bad = [x for x in pmap(media_missing, rec.media) if x]
    assert not bad, f"{len(bad)} of {len(rec.media)} accepted uploads not readable: {bad[:5]}"

    # Posts: each accepted post is readable as it was made; a star's post has exactly the comments and
    # likes it was given (every accepted one, none that was not attempted), and counts that agree.
    def post_problems(pid):
        author, caption, mid = rec.posts[pid]
        with h2() as c:
            r = c.get(f"/v1/posts/{pid}")
            if r.status_code != 200:
                return [f"post {pid}: {r.status_code}"]
            p = r.json()
            out = []
            if (p["author"]["username"], p["caption"], [m["id"] for m in p["media"]]) != (author, caption, [mid]):
                out.append(f"post {pid}: {p['author']['username']} {p['caption']!r} {p['media']}")
            if pid not in rec.comments:
                return out
            cs = walk(c, f"/v1/posts/{pid}/comments", limit=100)[0]
            texts = {x["text"]: x["id"] for x in cs}
            acc, tried = rec.comments[pid]["accepted"], rec.comments[pid]["attempted"]
            out += [f"post {pid}: accepted comment {t} missing" for t in acc if texts.get(t) != acc[t]]
            out += [f"post {pid}: comment {t} never tried" for t in set(texts) - tried]
            if p["comment_count"] != len(cs):
                out.append(f"post {pid}: comment_count {p['comment_count']}, {len(cs)} listed")
            likers = {x["username"] for x in walk(c, f"/v1/posts/{pid}/likes", limit=100)[0]}
            lacc, ltried = rec.likes[pid]["accepted"], rec.likes[pid]["attempted"]
            out += [f"post {pid}: accepted like of {u} missing" for u in lacc - likers]
            out += [f"post {pid}: like of {u} never tried" for u in likers - ltried]
            if p["like_count"] != len(likers):
                out.append(f"post {pid}: like_count {p['like_count']}, {len(likers)} listed")
            return out

    def posts_missing():
        return [x for xs in pmap(post_problems, sorted(rec.posts)) for x in xs]
    n_comments = sum(len(v["accepted"]) for v in rec.comments.values())
    n_likes = sum(len(v["accepted"]) for v in rec.likes.values())
    left = settle(posts_missing, "posts")
    assert not left, (f"{len(left)} problems in {len(rec.posts)} accepted posts, {n_comments} comments, "
                      f"{n_likes} likes: {left[:8]}")

    # Notifications: each star is told of every accepted follow, comment and like; each fan of every
    # accepted post of its star.
    def notifications_missing():
        missing = []
        for st in stars:
            s = st.user.username
            items = inbox_of(st.user)
            follows = {n["actor"]["username"] for n in items if n["type"] == "follow"}
            missing += [f"{s}: follow of {u} not notified" for u, ok in rec.follows.get(s, []) if ok and u not in follows]
            comments = {n["target"]["id"] for n in items if n["type"] == "comment"}
            likes = {(n["actor"]["username"], n["target"]["id"]) for n in items if n["type"] == "like"}
            for pid in rec.star_posts.get(s, []):
                missing += [f"{s}: comment {cid} not notified" for cid in rec.comments[pid]["accepted"].values()
                            if cid not in comments]
                missing += [f"{s}: like of {u} on {pid} not notified" for u in rec.likes[pid]["accepted"]
                            if (u, pid) not in likes]
            for f in st.fans:
                told = {n["target"]["id"] for n in inbox_of(f) if n["type"] == "post"}
                missing += [f"{f.username}: post {pid} of {s} not notified" for pid in rec.star_posts.get(s, [])
                            if pid not in told]
        return missing
    left = settle(notifications_missing, "notifications")
    assert not left, f"{len(left)} accepted writes not notified: {left[:8]} ({summary})"

    # Search: every accepted post is found by the run's word, and nothing that was not attempted.
    def search_missing():
        found, total = search_ids(runw)
        missing = [f"post {pid} not found" for pid in rec.posts if pid not in found]
        if total > rec.post_attempts:
            missing.append(f"{total} found, {rec.post_attempts} attempted")
        return missing
    left = settle(search_missing, "search")
    assert not left, f"{len(left)} of {len(rec.posts)} accepted posts not searchable: {left[:8]}"

    # Users: each accepted registration is found by its username.
    def user_not_found(username):
        with h2() as c:
            r = c.get("/v1/search", params={"q": username, "type": "users"})
            assert r.status_code == 200, r.text
            return None if rec.user_ids[username] in {i["id"] for i in r.json()["items"]} else username

    def users_missing():
        return [x for x in pmap(user_not_found, users) if x]
    left = settle(users_missing, "users in search")
    assert not left, f"{len(left)} of {len(users)} accepted registrations not searchable: {left[:8]}"

    # Home feeds: each fan's feed holds every accepted post of its star; the star's counts (auth's, from
    # publication's events and its own graph) agree with what is listed.
    def feeds_and_counts_wrong():
        wrong = []
        for st in stars:
            s = st.user.username
            mine = rec.star_posts.get(s, [])
            for f in st.fans:
                feed = {p["id"] for p in walk(f, "/v1/feed", limit=100)[0]}
                wrong += [f"{f.username}: post {pid} of {s} not in the feed" for pid in mine if pid not in feed]
            listed = {p["id"] for p in walk(st.user, f"/v1/users/{s}/posts", limit=100)[0]}
            wrong += [f"{s}: post {pid} not listed" for pid in mine if pid not in listed]
            me = st.user.me()
            followers = walk(st.user, f"/v1/users/{s}/followers", limit=100)[0]
            if me["posts_count"] != len(listed):
                wrong.append(f"{s}: posts_count {me['posts_count']}, {len(listed)} listed")
            if me["followers_count"] != len(followers):
                wrong.append(f"{s}: followers_count {me['followers_count']}, {len(followers)} listed")
        return wrong
    left = settle(feeds_and_counts_wrong, "feeds and counts")
    assert not left, f"{len(left)} feeds or counts wrong: {left[:8]}"

    # Welcome mail: one per accepted registration (a graceful stop sends none twice), none to anyone
    # who did not try.
    def mails_wrong():
        sent = {}
        for meta in glob.glob(os.path.join(MAIL_DIR, "*.json")):
            with open(meta) as f:
                for to in json.load(f)["rcpt_to"]:
                    sent[to] = sent.get(to, 0) + 1
        accepted = {f"{u}@example.com" for u in users}
        wrong = [f"{a}: {sent.get(a, 0)} welcome mails" for a in accepted if sent.get(a, 0) != 1]
        wrong += [f"{a}: {n} welcome mails, not accepted" for a, n in sent.items()
                  if a in rec.tried_emails and a not in accepted and n > 1]
        return wrong
    if MAIL_DIR:
        left = settle(mails_wrong, "welcome mails")
        assert not left, f"{len(left)} of {len(users)} accepted registrations without exactly one welcome mail: {left[:8]}"

    for st in stars:
        for u in [st.user, *st.fans]:
            u.close()
