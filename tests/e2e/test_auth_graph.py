"""test_auth_graph.py -- auth over the gateway: profiles with counts and relationship flags, follow and
unfollow, blocks, follower/following lists with cursors, and counters under concurrent follows
(services/auth/README.md, "Follow and block" and "Shapes")."""
import pytest

from authlib import (PROFILE_KEYS, RELATIONSHIP_KEYS, anon_profile, call_as, counts, h2, list_all, problem_errors,
                     run_together, uniq)
from authlib import users  # noqa: F401 (fixture)
from conftest import is_problem


def rel(r, following, followed_by, blocking, target=None):
    """r is a 200 Relationship about target with these flags."""
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert set(body) == RELATIONSHIP_KEYS, body
    if target is not None:
        assert body["id"] == target.id and body["username"] == target.username
    assert (body["following"], body["followed_by"], body["blocking"]) == (following, followed_by, blocking), body
    return body


def flags(viewer, target):
    r = viewer.profile(target.username)
    assert r.status_code == 200, r.text
    x = r.json()["relationship"]
    return x["following"], x["followed_by"], x["blocking"]


# ------------------------------------------------------------------ profiles

def test_profile_shape_anonymous_self_and_other(users):
    a, b = users(2)
    assert a.patch("/v1/me", json={"name": "Ann", "bio": "hi"}).status_code == 200
    r = anon_profile(a.username)
    assert r.status_code == 200, r.text
    p = r.json()
    assert set(p) == PROFILE_KEYS, sorted(p)
    assert "email" not in p
    assert p["id"] == a.id and p["username"] == a.username and p["name"] == "Ann" and p["bio"] == "hi"
    assert (p["posts_count"], p["followers_count"], p["following_count"]) == (0, 0, 0)
    assert p["relationship"] is None  # anonymous
    mine = a.profile(a.username).json()
    assert mine["relationship"] is None and "email" not in mine  # oneself
    theirs = b.profile(a.username).json()
    assert set(theirs) == PROFILE_KEYS
    assert theirs["relationship"] == {"following": False, "followed_by": False, "blocking": False}


def test_unknown_user_is_404(users):
    a = users()
    ghost = uniq("ghost")
    with h2() as c:
        is_problem(c.get(f"/v1/users/{ghost}"), 404)
        is_problem(c.get(f"/v1/users/{ghost}/followers"), 404)
        is_problem(c.get(f"/v1/users/{ghost}/following"), 404)
    is_problem(a.profile(ghost), 404)
    is_problem(a.follow(ghost), 404)
    is_problem(a.unfollow(ghost), 404)
    is_problem(a.block(ghost), 404)
    is_problem(a.unblock(ghost), 404)
    assert counts(a) == (0, 0)


def test_graph_writes_need_a_token(users):
    a = users()
    with h2() as c:
        for method in ("POST", "DELETE"):
            for what in ("follow", "block"):
                r = c.request(method, f"/v1/users/{a.username}/{what}")
                is_problem(r, 401)
    assert counts(a) == (0, 0)


# ------------------------------------------------------------------ follow / unfollow

def test_follow_sets_flags_and_counts(users):
    a, b = users(2)
    rel(a.follow(b), True, False, False, target=b)
    assert flags(a, b) == (True, False, False)
    assert flags(b, a) == (False, True, False)
    assert counts(a) == (0, 1) and counts(b) == (1, 0)
    p = anon_profile(b.username).json()
    assert (p["followers_count"], p["following_count"]) == (1, 0)
    rel(b.follow(a), True, True, False, target=a)
    assert flags(a, b) == (True, True, False)
    assert counts(a) == (1, 1) and counts(b) == (1, 1)
    assert list_all(a, b.username, "followers")[0] == [a.username]
    assert list_all(a, a.username, "following")[0] == [b.username]


def test_follow_and_unfollow_are_idempotent(users):
    a, b = users(2)
    rel(a.unfollow(b), False, False, False, target=b)  # never followed: fine, nothing changes
    assert counts(b) == (0, 0)
    rel(a.follow(b), True, False, False)
    rel(a.follow(b), True, False, False)
    assert counts(a) == (0, 1) and counts(b) == (1, 0)
    assert list_all(b, b.username, "followers")[0] == [a.username]
    rel(a.unfollow(b), False, False, False)
    rel(a.unfollow(b), False, False, False)
    assert counts(a) == (0, 0) and counts(b) == (0, 0)
    assert list_all(b, b.username, "followers")[0] == []


def test_self_follow_and_self_block_are_422(users):
    a = users()
    for r in (a.follow(a), a.block(a)):
        problem_errors(r, 422)
    assert counts(a) == (0, 0)
    assert a.profile(a.username).status_code == 200


# ------------------------------------------------------------------ blocks

def test_block_drops_follows_both_ways(users):
    a, b, c = users(3)
    rel(a.follow(b), True, False, False)
    rel(b.follow(a), True, True, False)
    rel(c.follow(a), True, False, False)
    rel(a.block(b), False, False, True, target=b)
    assert counts(a) == (1, 0)  # c still follows a
    assert counts(b) == (0, 0)
    assert list_all(c, a.username, "followers")[0] == [c.username]
    assert list_all(c, b.username, "following")[0] == []
    rel(a.block(b), False, False, True)  # again: still blocking


def test_blocked_pair_see_each_other_as_404(users):
    a, b, c = users(3)
    rel(a.block(b), False, False, True)
    for viewer, other in ((a, b), (b, a)):
        is_problem(viewer.profile(other.username), 404)
        is_problem(viewer.get(f"/v1/users/{other.username}/followers"), 404)
        is_problem(viewer.get(f"/v1/users/{other.username}/following"), 404)
        is_problem(viewer.follow(other), 404)
    assert counts(a) == (0, 0) and counts(b) == (0, 0)
    # Others, and anonymous callers, still see both; and each still sees itself.
    for u in (a, b):
        assert c.profile(u.username).status_code == 200
        assert anon_profile(u.username).status_code == 200
        assert u.profile(u.username).status_code == 200


def test_block_back_and_unblock(users):
    a, b = users(2)
    rel(a.follow(b), True, False, False)
    rel(a.block(b), False, False, True)
    # The blocked one can still block back.
    rel(b.block(a), False, False, True, target=a)
    # a lifts its block: b's block still hides them from each other.
    rel(a.unblock(b), False, False, False, target=b)
    is_problem(a.profile(b.username), 404)
    is_problem(b.profile(a.username), 404)
    is_problem(a.follow(b), 404)
    rel(a.unblock(b), False, False, False)  # idempotent
    # b lifts its block too: visible again, follows are not restored.
    rel(b.unblock(a), False, False, False, target=a)
    assert flags(a, b) == (False, False, False)
    assert flags(b, a) == (False, False, False)
    assert counts(a) == (0, 0) and counts(b) == (0, 0)
    rel(a.follow(b), True, False, False)
    assert counts(b) == (1, 0)


def test_blocked_user_cannot_follow_blocker(users):
    a, b = users(2)
    rel(a.block(b), False, False, True)
    is_problem(b.follow(a), 404)
    is_problem(a.follow(b), 404)
    assert counts(a) == (0, 0) and counts(b) == (0, 0)
    rel(a.unblock(b), False, False, False)
    rel(b.follow(a), True, False, False)
    assert counts(a) == (1, 0)


# ------------------------------------------------------------------ lists and cursors

def test_followers_and_following_pages_newest_first(users):
    target, *fans = users(8)
    fans = fans[:7]
    seeker = users()
    for f in fans:  # one after the other: edge order is known
        rel(f.follow(target), True, False, False)
        rel(seeker.follow(f), True, False, False)
    expect = [f.username for f in reversed(fans)]
    names, pages = list_all(seeker, target.username, "followers", limit=3)
    assert names == expect
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert pages[-1]["next_cursor"] is None
    names, pages = list_all(seeker, seeker.username, "following", limit=3)
    assert names == expect
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    # Anonymous callers page the same lists.
    with h2() as c:
        assert list_all(c, target.username, "followers", limit=5)[0] == expect
    # Items carry the listed user's fields.
    with h2() as c:
        item = c.get(f"/v1/users/{target.username}/followers", params={"limit": 1}).json()["items"][0]
    assert item == {"id": fans[-1].id, "username": fans[-1].username, "name": "", "avatar_media_id": None}
    # A whole list in one page has no cursor.
    body = seeker.get(f"/v1/users/{target.username}/followers", params={"limit": 100}).json()
    assert len(body["items"]) == 7 and body["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "99999999999999999999"])
def test_list_limit_out_of_range_is_422(users, limit):
    """README: `?limit=` 1..100; a bad value is 422 with errors naming the field (README, Rules)."""
    a = users()
    for which in ("followers", "following"):
        r = a.client.get(f"/v1/users/{a.username}/{which}?limit={limit}")
        problem_errors(r, 422, "limit")


def test_list_limit_bounds_accepted(users):
    a = users()
    for limit in (1, 100):
        r = a.client.get(f"/v1/users/{a.username}/followers", params={"limit": limit})
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [], "next_cursor": None}


def test_tampered_cursor_is_400(users):
    target, f1, f2, f3 = users(4)
    for f in (f1, f2, f3):
        rel(f.follow(target), True, False, False)
    r = target.get(f"/v1/users/{target.username}/followers", params={"limit": 1})
    cursor = r.json()["next_cursor"]
    assert cursor
    ok = target.get(f"/v1/users/{target.username}/followers", params={"limit": 1, "cursor": cursor})
    assert ok.status_code == 200 and ok.json()["items"][0]["username"] == f2.username
    mid = len(cursor) // 2
    flipped = cursor[:mid] + ("A" if cursor[mid] != "A" else "B") + cursor[mid + 1:]
    for bad in (flipped, cursor[:-2], cursor + "AA", "garbage", "!!!", "A" * 400):
        r = target.get(f"/v1/users/{target.username}/followers", params={"limit": 1, "cursor": bad})
        is_problem(r, 400)


# ------------------------------------------------------------------ concurrency

def test_concurrent_follows_of_one_target(users):
    target = users()
    fans = users(30)
    results = run_together([lambda f=f: f.follow(target) for f in fans])
    for r in results:
        rel(r, True, False, False, target=target)
    assert counts(target) == (30, 0)
    p = anon_profile(target.username).json()
    assert p["followers_count"] == 30
    for f in fans:
        assert counts(f) == (0, 1)
    # Default page size 20, then the rest.
    with h2() as c:
        first = c.get(f"/v1/users/{target.username}/followers").json()
        assert len(first["items"]) == 20 and first["next_cursor"]
        names, pages = list_all(c, target.username, "followers")
    assert sorted(names) == sorted(f.username for f in fans)
    assert [len(p["items"]) for p in pages] == [20, 10]
    # A third of them unfollow at once (more unfollow races: the flapping test below).
    leaving, staying = fans[:10], fans[10:]
    for r in run_together([lambda f=f: f.unfollow(target) for f in leaving]):
        rel(r, False, False, False)
    assert counts(target) == (20, 0)
    assert sorted(list_all(target, target.username, "followers")[0]) == sorted(f.username for f in staying)


def test_concurrent_duplicate_follows_count_once(users):
    a, b = users(2)
    path = f"/v1/users/{b.username}/follow"
    for r in run_together([lambda: call_as(a, "POST", path)] * 8):
        rel(r, True, False, False)
    assert counts(b) == (1, 0) and counts(a) == (0, 1)
    assert list_all(b, b.username, "followers")[0] == [a.username]
    for r in run_together([lambda: call_as(a, "DELETE", path)] * 8):
        rel(r, False, False, False)
    assert counts(b) == (0, 0) and counts(a) == (0, 0)


def test_concurrent_follow_unfollow_flapping(users):
    target = users()
    fans = users(8)

    def flap(i, f):
        def run():
            out = []
            for k in range(4 + (i % 2)):  # odd ones end on a follow
                r = f.follow(target) if k % 2 == 0 else f.unfollow(target)
                out.append(r.status_code)
            return out
        return run

    for statuses in run_together([flap(i, f) for i, f in enumerate(fans)]):
        assert set(statuses) == {200}, statuses
    staying = {f.username for i, f in enumerate(fans) if i % 2 == 1}
    assert counts(target) == (len(staying), 0)
    assert set(list_all(target, target.username, "followers")[0]) == staying
    for f in fans:
        assert counts(f) == (0, 1 if f.username in staying else 0)


def test_concurrent_mixed_follow_unfollow_of_one_pair_stays_consistent(users):
    a, b = users(2)
    path = f"/v1/users/{b.username}/follow"
    calls = [lambda: call_as(a, "POST", path), lambda: call_as(a, "DELETE", path)] * 6
    for r in run_together(calls):
        assert r.status_code == 200, r.text
    following = flags(a, b)[0]
    n = 1 if following else 0
    assert counts(b) == (n, 0) and counts(a) == (0, n)
    assert list_all(b, b.username, "followers")[0] == ([a.username] if following else [])
    assert list_all(a, a.username, "following")[0] == ([b.username] if following else [])


def test_concurrent_block_and_follows_leave_no_edge(users):
    """Follows racing a block: afterwards neither follows the other and the counters say so."""
    for _ in range(2):
        a, b = users(2)
        calls = ([lambda: call_as(a, "POST", f"/v1/users/{b.username}/block")]
                 + [lambda: call_as(b, "POST", f"/v1/users/{a.username}/follow")] * 4
                 + [lambda: call_as(a, "POST", f"/v1/users/{b.username}/follow")] * 3)
        for r in run_together(calls):
            assert r.status_code in (200, 404), r.text
        is_problem(b.profile(a.username), 404)
        assert counts(a) == (0, 0), counts(a)
        assert counts(b) == (0, 0), counts(b)
        rel(a.unblock(b), False, False, False)
        assert flags(a, b) == (False, False, False)
        assert list_all(a, a.username, "followers")[0] == [] and list_all(a, a.username, "following")[0] == []
