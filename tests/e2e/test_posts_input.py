"""test_posts_input.py -- bad input to publication's routes (services/publication/README.md, "Bad input"):
each a clear 4xx problem+json, nothing changed and no event published."""
import json

import pytest

from authlib import OPERATORS, h2, problem_errors
from authlib import users  # noqa: F401 (fixture)
from conftest import is_problem
from publib import (BAD_PATH_IDS, comment, comment_ids, fresh_tag, get_post, known, like, like_answer, make_post,
                    media_ids, unknown_id, upload_media, walk)
from rabbitlib import EventQueue

EVENT_KEYS = ["post.*", "comment.*", "like.*"]
UNKNOWN_MEDIA = "0123456789abcdef0123456789abcdef"  # the shape of resize-image's ids, naming nothing


def problem_with(r, status, *fields):
    """A problem with this status, a detail, and (for 422s) errors naming each field."""
    body = is_problem(r, status)
    assert body.get("detail"), body
    if fields:
        problem_errors(r, status, *fields)
    return body


def no_event(q, timeout=1.0, ignore=lambda m: False):
    """Nothing (but what ignore(message) accepts) arrives on q within timeout."""
    got = q.take(1, timeout=timeout, predicate=lambda m: not ignore(m))
    assert got == [], [(m["routing_key"], m["body"]) for m in got]


@pytest.fixture
def quiet():
    """An EventQueue on every publication event, bound before the test's requests."""
    with EventQueue(EVENT_KEYS) as q:
        yield q


@pytest.fixture
def author(users):
    """A user with one post (with a tag of its own), one comment and one like on it; their events
    are out before the test (whose `quiet` queue, listed after this fixture, is bound later)."""
    a = users()
    with EventQueue(EVENT_KEYS) as q:
        a.tag_ = fresh_tag("stable")
        p = make_post(a, f"#{a.tag_} caption")
        c = comment(a, p["id"], "stable comment")
        like_answer(like(a, "posts", p["id"]), True, 1)
        assert len(q.take(3, timeout=10, predicate=lambda m: m["body"].get("post_id") == p["id"])) == 3
    a.post_ = p
    a.comment_ = c
    return a


def unchanged(a):
    """a's post, comment and like are as the fixture made them."""
    p = get_post(a, a.post_["id"])
    assert p == {**a.post_, "like_count": 1, "comment_count": 1, "liked_by_me": True}, p
    assert [x["id"] for x in walk(a, f"/v1/users/{a.username}/posts")[0]] == [p["id"]]
    r = a.get(f"/v1/comments/{a.comment_['id']}")
    assert r.status_code == 200 and r.json() == a.comment_, r.text


# ------------------------------------------------------------------ create a post

def bad_creates(a, b):
    mine, theirs = media_ids(a, 1)[0], media_ids(b, 1)[0]
    eleven = media_ids(a, 11)
    return [
        ({"media_ids": [mine], "extra": 1}, 422, "extra"),
        ({"media_ids": [mine], "author_id": b.id}, 422, "author_id"),
        ({"media_ids": [mine], "caption": 42}, 422, "caption"),
        ({"media_ids": [mine], "caption": None}, 422, "caption"),
        ({"media_ids": [mine], "caption": ["x"]}, 422, "caption"),
        ({"media_ids": [mine], "caption": "x" * 2201}, 422, "caption"),
        ({"media_ids": [mine], "caption": "é" * 2201}, 422, "caption"),
        ({"caption": "no media"}, 422, "media_ids"),
        ({"media_ids": []}, 422, "media_ids"),
        ({"media_ids": eleven}, 422, "media_ids"),
        ({"media_ids": mine}, 422, "media_ids"),
        ({"media_ids": None}, 422, "media_ids"),
        ({"media_ids": [42]}, 422, "media_ids"),
        ({"media_ids": [[mine]]}, 422, "media_ids"),
        ({"media_ids": [mine, mine]}, 422, "media_ids"),
        ({"media_ids": ["not-an-id"]}, 422, "media_ids"),
        ({"media_ids": [""]}, 422, "media_ids"),
        ({"media_ids": ["../../etc/passwd"]}, 422, "media_ids"),
        ({"media_ids": [mine.upper()]}, 422, "media_ids"),
        ({"media_ids": [UNKNOWN_MEDIA]}, 422, "media_ids"),
        ({"media_ids": [mine, UNKNOWN_MEDIA]}, 422, "media_ids"),
        ({"media_ids": [theirs]}, 403, None),
        ({"media_ids": [mine, theirs]}, 403, None),
    ] + [({"media_ids": [mine], "caption": op}, 422, "caption") for op in OPERATORS] + [
        ({"media_ids": [op]}, 422, "media_ids") for op in OPERATORS] + [
        ({"media_ids": op}, 422, "media_ids") for op in OPERATORS]


def test_bad_post_bodies_are_problems_and_create_nothing(users, quiet):
    a, b = users(2)
    known(a)
    cases = bad_creates(a, b)
    for body, status, field in cases:
        r = a.post("/v1/posts", json=body)
        p = problem_with(r, status, *([field] if field else []))
        if status == 403:
            assert p["type"].rstrip("/").endswith("forbidden"), p
    assert walk(a, f"/v1/users/{a.username}/posts")[0] == []
    no_event(quiet)


def test_post_body_not_a_json_object_is_400(users, quiet):
    a = users()
    for raw in (b"{not json", b"", b"[]", b'["media_ids"]', b'"a string"', b"null", b"42", b'{"media_ids": ["x"]',
                b"\xff\xfe{}"):
        r = a.post("/v1/posts", content=raw, headers={"content-type": "application/json"})
        problem_with(r, 400)
    known(a)
    assert walk(a, f"/v1/users/{a.username}/posts")[0] == []
    no_event(quiet)


def test_someone_elses_media_is_403_and_the_media_stay_theirs(users, quiet):
    a, b = users(2)
    theirs = upload_media(b)[0]
    r = a.post("/v1/posts", json={"caption": "stolen", "media_ids": [theirs["id"]]})
    body = problem_with(r, 403)
    assert body["type"].rstrip("/").endswith("forbidden")
    known(a)
    assert walk(a, f"/v1/users/{a.username}/posts")[0] == []
    # b can still post it.
    make_post(b, "mine", ids=[theirs["id"]])
    got = quiet.take(1, timeout=10)
    assert [m["routing_key"] for m in got] == ["post.created"] and got[0]["body"]["author_id"] == b.id
    no_event(quiet)


def test_nul_characters_are_refused_not_truncated(author, users, quiet):
    """A NUL in a caption or a comment is valid JSON that a C string would cut short: refused (400 or
    422: the contract does not say which), never stored as something else."""
    a, b = author, users()
    for r in (b.post("/v1/posts", json={"caption": "before\u0000after", "media_ids": media_ids(b, 1)}),
              b.post(f"/v1/posts/{a.post_['id']}/comments", json={"text": "before\u0000after"}),
              a.patch(f"/v1/posts/{a.post_['id']}", json={"caption": "cut\u0000here"}),
              a.patch(f"/v1/comments/{a.comment_['id']}", json={"text": "cut\u0000here"})):
        assert r.status_code in (400, 422), (r.status_code, r.text)
        problem_with(r, r.status_code)
    known(b)
    assert walk(b, f"/v1/users/{b.username}/posts")[0] == []
    unchanged(a)
    no_event(quiet)


# ------------------------------------------------------------------ edit and delete a post

def test_bad_post_edits(author, users, quiet):
    a, other = author, users()
    pid = a.post_["id"]
    for body, field in (({}, "caption"), ({"caption": 1}, "caption"), ({"caption": None}, "caption"),
                        ({"caption": "x" * 2201}, "caption"), ({"caption": "ok", "media_ids": media_ids(a, 1)},
                                                                "media_ids"),
                        ({"caption": "ok", "edited_at": None}, "edited_at"), ({"caption": {"$set": "x"}}, "caption")):
        problem_with(a.patch(f"/v1/posts/{pid}", json=body), 422, field)
    for raw in (b"{", b"[]", b'"caption"', b"null"):
        problem_with(a.patch(f"/v1/posts/{pid}", content=raw, headers={"content-type": "application/json"}), 400)
    problem_with(other.patch(f"/v1/posts/{pid}", json={"caption": "mine"}), 403)
    problem_with(other.delete(f"/v1/posts/{pid}"), 403)
    for bad in BAD_PATH_IDS + [unknown_id()]:
        problem_with(a.patch(f"/v1/posts/{bad}", json={"caption": "x"}), 404)
        problem_with(a.delete(f"/v1/posts/{bad}"), 404)
    unchanged(a)
    no_event(quiet)


def test_unknown_and_malformed_post_ids_are_404(author, quiet):
    a = author
    for bad in BAD_PATH_IDS + [unknown_id()]:
        for method, path in (("GET", f"/v1/posts/{bad}"), ("GET", f"/v1/posts/{bad}/comments"),
                             ("GET", f"/v1/posts/{bad}/likes"), ("POST", f"/v1/posts/{bad}/like"),
                             ("DELETE", f"/v1/posts/{bad}/like"), ("GET", f"/v1/comments/{bad}"),
                             ("PATCH", f"/v1/comments/{bad}"), ("DELETE", f"/v1/comments/{bad}"),
                             ("POST", f"/v1/comments/{bad}/like"), ("DELETE", f"/v1/comments/{bad}/like")):
            body = {"text": "x"} if method == "PATCH" else None
            r = a.client.request(method, path, json=body, headers={"authorization": f"Bearer {a.access}"})
            problem_with(r, 404)
        r = a.post(f"/v1/posts/{bad}/comments", json={"text": "x"})
        problem_with(r, 404)
    # A comment id is not a post id, nor the other way round.
    problem_with(a.get(f"/v1/posts/{a.comment_['id']}"), 404)
    problem_with(a.get(f"/v1/comments/{a.post_['id']}"), 404)
    unchanged(a)
    no_event(quiet)


# ------------------------------------------------------------------ comments

def test_bad_comment_bodies(author, users, quiet):
    a, b = author, users()
    pid = a.post_["id"]
    other_post = make_post(b, "elsewhere")
    foreign = comment(b, other_post["id"], "foreign comment")
    cases = [({}, "text"), ({"text": ""}, "text"), ({"text": "   "}, "text"), ({"text": " \n\t\r "}, "text"),
             ({"text": "x" * 1001}, "text"), ({"text": "é" * 1001}, "text"), ({"text": 5}, "text"),
             ({"text": None}, "text"), ({"text": ["x"]}, "text"), ({"text": "ok", "extra": 1}, "extra"),
             ({"text": "ok", "post_id": pid}, "post_id"),
             ({"text": "ok", "reply_to": "nope"}, "reply_to"), ({"text": "ok", "reply_to": unknown_id()}, "reply_to"),
             ({"text": "ok", "reply_to": 5}, "reply_to"), ({"text": "ok", "reply_to": foreign["id"]}, "reply_to"),
             ({"text": "ok", "reply_to": pid}, "reply_to")]
    cases += [({"text": op}, "text") for op in OPERATORS] + [({"text": "ok", "reply_to": op}, "reply_to")
                                                            for op in OPERATORS]
    for body, field in cases:
        problem_with(b.post(f"/v1/posts/{pid}/comments", json=body), 422, field)
    for raw in (b"{", b"[]", b'"text"', b"null", b""):
        problem_with(b.post(f"/v1/posts/{pid}/comments", content=raw, headers={"content-type": "application/json"}),
                     400)
    unchanged(a)
    assert comment_ids(a, pid) == [a.comment_["id"]]
    no_event(quiet, ignore=lambda m: m["body"].get("post_id") == other_post["id"])


def test_comment_of_unicode_white_space_only_is_422(author, users, quiet):
    """"Not only white space": Unicode's white space (no-break and ideographic spaces) too."""
    b = users()
    pid = author.post_["id"]
    for text in ("\u00a0", " \u3000 ", "\u2003\n"):
        problem_with(b.post(f"/v1/posts/{pid}/comments", json={"text": text}), 422, "text")
    unchanged(author)
    no_event(quiet)


def test_bad_comment_edits_and_deletes(author, users, quiet):
    a, b = author, users()
    cid = a.comment_["id"]
    for body, field in (({}, "text"), ({"text": ""}, "text"), ({"text": " \t "}, "text"), ({"text": "x" * 1001}, "text"),
                        ({"text": 1}, "text"), ({"text": "ok", "reply_to": None}, "reply_to"),
                        ({"text": "ok", "post_id": a.post_["id"]}, "post_id"), ({"text": {"$ne": None}}, "text")):
        problem_with(a.patch(f"/v1/comments/{cid}", json=body), 422, field)
    for raw in (b"{", b"[]", b"null"):
        problem_with(a.patch(f"/v1/comments/{cid}", content=raw, headers={"content-type": "application/json"}), 400)
    problem_with(b.patch(f"/v1/comments/{cid}", json={"text": "b's now"}), 403)
    problem_with(b.delete(f"/v1/comments/{cid}"), 403)
    unchanged(a)
    no_event(quiet)


# ------------------------------------------------------------------ lists

LISTS = ["/v1/users/{user}/posts", "/v1/tags/{tag}/posts", "/v1/posts/{post}/comments", "/v1/posts/{post}/likes"]


def list_paths(a):
    return [p.format(user=a.username, tag=a.tag_, post=a.post_["id"]) for p in LISTS]


def test_limit_out_of_range_is_422(author):
    a = author
    for limit in ("0", "101", "-1", "abc", "1.5", "99999999999999999999", "1e1"):
        for path in list_paths(a):
            r = a.get(f"{path}?limit={limit}")
            problem_with(r, 422, "limit")


def test_limit_bounds_accepted(author):
    a = author
    for path in list_paths(a):
        for limit in (1, 100):
            r = a.get(path, params={"limit": limit})
            assert r.status_code == 200, (path, r.text)
            assert [x["id"] for x in r.json()["items"]] == [a.id if path.endswith("/likes") else
                                                            a.comment_["id"] if path.endswith("/comments") else
                                                            a.post_["id"]], path


def test_bad_cursors_are_400(users):
    a, b = users(2)
    tag = fresh_tag("cur")
    posts = [make_post(a, f"#{tag} {i}") for i in range(3)]
    pid = posts[0]["id"]
    comment(b, pid, "c1")
    comment(b, pid, "c2")
    like_answer(like(b, "posts", pid), True, 1)
    like_answer(like(a, "posts", pid), True, 2)
    for path in (f"/v1/users/{a.username}/posts", f"/v1/tags/{tag}/posts", f"/v1/posts/{pid}/comments",
                 f"/v1/posts/{pid}/likes"):
        r = a.get(path, params={"limit": 1})
        assert r.status_code == 200, r.text
        cursor = r.json()["next_cursor"]
        assert cursor, path
        assert a.get(path, params={"limit": 1, "cursor": cursor}).status_code == 200
        mid = len(cursor) // 2
        flipped = cursor[:mid] + ("A" if cursor[mid] != "A" else "B") + cursor[mid + 1:]
        for bad in (flipped, cursor[:-2], cursor + "AA", "garbage", "!!!", "A" * 400, "%00", json.dumps({"id": pid})):
            r = a.get(path, params={"limit": 1, "cursor": bad})
            problem_with(r, 400)


def test_cursor_of_one_list_on_another_is_400_or_ignored_not_a_500(users):
    """The contract does not say whether a cursor is bound to its list; it must never be a 5xx."""
    a, b = users(2)
    for _ in range(2):
        make_post(a, "x")
        make_post(b, "y")
    cursor = a.get(f"/v1/users/{a.username}/posts", params={"limit": 1}).json()["next_cursor"]
    assert cursor
    r = a.get(f"/v1/users/{b.username}/posts", params={"limit": 1, "cursor": cursor})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        problem_with(r, 400)


def test_unknown_username_is_404(users):
    a = users()
    for name in ("nosuchuser" + a.id[-10:], "ab", "has space", "x" * 31, "%24ne"):
        problem_with(a.get(f"/v1/users/{name}/posts"), 404)


# ------------------------------------------------------------------ writes need an account

def test_writes_with_no_or_a_bad_token_are_401(author, quiet):
    a = author
    pid, cid = a.post_["id"], a.comment_["id"]
    writes = [("POST", "/v1/posts", {"media_ids": media_ids(a, 1)}), ("PATCH", f"/v1/posts/{pid}", {"caption": "x"}),
              ("DELETE", f"/v1/posts/{pid}", None), ("POST", f"/v1/posts/{pid}/comments", {"text": "x"}),
              ("PATCH", f"/v1/comments/{cid}", {"text": "x"}), ("DELETE", f"/v1/comments/{cid}", None),
              ("POST", f"/v1/posts/{pid}/like", None), ("DELETE", f"/v1/posts/{pid}/like", None),
              ("POST", f"/v1/comments/{cid}/like", None), ("DELETE", f"/v1/comments/{cid}/like", None)]
    with h2() as c:
        for method, path, body in writes:
            problem_with(c.request(method, path, json=body), 401)
            problem_with(c.request(method, path, json=body, headers={"authorization": "Bearer garbage"}), 401)
    unchanged(a)
    no_event(quiet)


def test_a_bad_token_on_a_read_is_401_not_anonymous(author):
    with h2() as c:
        r = c.get(f"/v1/posts/{author.post_['id']}", headers={"authorization": "Bearer garbage"})
        problem_with(r, 401)
