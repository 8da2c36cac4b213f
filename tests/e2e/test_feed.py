"""test_feed.py -- the home feed (GET /v1/feed, services/publication/README.md, "Feed"), black-box through the
gateway over HTTP/2 with the real broker and database.

The test stack (deploy/local/test-env.sh) sets FEED_FANOUT_MAX_FOLLOWERS=5 and FEED_FANOUT_BATCH=2: an author
with 6 followers is merged into feeds at read time, and an author with 3..5 followers is fanned out through
fanout.batch messages. Fanout and the graph projection are asynchronous, so every wait polls with a deadline
(wait_until); what is read once settled is compared exactly (ids in order, whole Post shapes).

A follow reaches publication through auth's follow.created; a test knows it has arrived when the followed
account's earlier post shows up in the follower's feed (the follow's backfill), so "seed" posts made before a
follow double as the signal.
"""
import time

import pytest

from authlib import anon, users  # noqa: F401 (fixtures)
from conftest import is_problem, wait_until
from publib import check_post, comment, ids, make_post, page, walk

FANOUT_MAX_FOLLOWERS = 5  # deploy/local/test-env.sh
FANOUT_BATCH = 2


# ------------------------------------------------------------------ helpers

def feed(user, limit=100):
    """The whole feed of user (every page), as Posts."""
    items, _ = walk(user, "/v1/feed", limit=limit)
    for p in items:
        check_post(p)
    return items


def feed_ids(user, limit=100):
    return ids(feed(user, limit=limit))


def wait_feed(user, want, timeout=15, interval=0.15, what=None):
    """Waits until user's feed holds exactly the posts want (ids, newest first); returns the items."""
    got = {}

    def settled():
        got["items"] = feed(user)
        return ids(got["items"]) == want

    try:
        wait_until(settled, timeout=timeout, interval=interval, what=what or f"{user.username}'s feed to be {want}")
    except AssertionError:
        raise AssertionError(f"{what or user.username + ' feed'}: wanted {want}, last {ids(got.get('items', []))}")
    return got["items"]


def newest_first(*posts):
    return sorted((p["id"] for p in posts), reverse=True)


def follow(u, other):
    r = u.follow(other)
    assert r.status_code == 200 and r.json()["following"] is True, (r.status_code, r.text)


def followed_with_backfill(follower, author, author_posts, own=()):
    """follower follows author; waits until publication has the follow (author's posts backfilled)."""
    follow(follower, author)
    return wait_feed(follower, newest_first(*author_posts, *own), what=f"{author.username}'s posts backfilled "
                                                                        f"into {follower.username}'s feed")


# ------------------------------------------------------------------ basics

def test_author_sees_its_post_at_once_and_a_follower_within_a_second(users):
    a, f = users(2)
    seed = make_post(a, "seed")
    followed_with_backfill(f, a, [seed])
    p = make_post(a, "fresh #feed")
    # The author's own timeline gets the post before the 201: the first read has it.
    mine = feed(a)
    assert ids(mine) == [p["id"], seed["id"]], ids(mine)
    assert mine[0] == p
    start = time.monotonic()
    wait_feed(f, [p["id"], seed["id"]], timeout=1.0, interval=0.05, what="the follower seeing the post within 1 s")
    print(f"fanned out to the follower in {time.monotonic() - start:.3f} s")
    assert feed(f)[0] == p


def test_follows_nobody_sees_own_posts_and_the_feed_needs_a_token(users, anon):
    u, other = users(2)
    assert page(u, "/v1/feed") == {"items": [], "next_cursor": None}
    p1 = make_post(u, "one")
    make_post(other, "not followed")
    p2 = make_post(u, "two")
    body = page(u, "/v1/feed")
    assert body == {"items": [p2, p1], "next_cursor": None}, body
    assert feed(other) != [] and p1["id"] not in feed_ids(other)
    r = anon.get("/v1/feed")
    is_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    r = anon.get("/v1/feed", headers={"authorization": "Bearer not.a.token"})
    is_problem(r, 401)


def test_items_are_full_posts_with_the_callers_likes_counts_and_edits(users):
    a, f, c = users(3)
    p1, p2 = make_post(a, "first #one"), make_post(a, "second")
    followed_with_backfill(f, a, [p1, p2])
    assert f.post(f"/v1/posts/{p1['id']}/like").status_code == 200
    assert c.post(f"/v1/posts/{p1['id']}/like").status_code == 200
    comment(c, p2["id"], "hello")
    r = a.patch(f"/v1/posts/{p2['id']}", json={"caption": f"edited @{c.username} #Two"})
    assert r.status_code == 200, r.text
    edited = r.json()
    items = feed(f)
    assert ids(items) == [p2["id"], p1["id"]]
    for item in items:  # exactly what GET /v1/posts/{id} answers the same caller
        r = f.get(f"/v1/posts/{item['id']}")
        assert r.status_code == 200 and item == r.json(), (item, r.text)
    assert (items[0]["caption"], items[0]["tags"], items[0]["mentions"], items[0]["edited_at"]) == \
        (f"edited @{c.username} #Two", ["two"], [{"id": c.id, "username": c.username}], edited["edited_at"])
    assert (items[0]["comment_count"], items[0]["like_count"], items[0]["liked_by_me"]) == (1, 0, False)
    assert (items[1]["like_count"], items[1]["liked_by_me"], items[1]["edited_at"]) == (2, True, None)
    # The author's own feed: its likes, not the follower's.
    mine = feed(a)
    assert [(x["id"], x["liked_by_me"], x["like_count"]) for x in mine] == [(p2["id"], False, 0), (p1["id"], False, 2)]


# ------------------------------------------------------------------ hybrid: a large account merged at read time

def test_large_account_is_merged_at_read_time_in_order(users):
    """big has FEED_FANOUT_MAX_FOLLOWERS + 1 followers: its posts are merged into feeds at read time; the
    reader's feed interleaves them with small accounts' fanned-out posts, exactly by id, and pages the same."""
    big, s1, s2, reader, *others = users(4 + FANOUT_MAX_FOLLOWERS)
    seeds = {u.id: make_post(u, f"seed of {u.username}") for u in (big, s1, s2)}
    for f in others:
        follow(f, big)
    followed_with_backfill(reader, big, [seeds[big.id]])
    follow(reader, s1)
    follow(reader, s2)
    wait_feed(reader, newest_first(*seeds.values()), what="the reader following big, s1 and s2")
    for f in others:  # every follow of big is known: big has 6 followers at fanout time
        wait_feed(f, [seeds[big.id]["id"]], what=f"{f.username} following big")

    order = [big, s1, big, s2, s1, big, big, s2]
    posts = [make_post(u, f"#{i} by {u.username}") for i, u in enumerate(order)]
    want = newest_first(*posts, *seeds.values())
    items = wait_feed(reader, want, what="the reader's feed with big's posts merged in")
    by_id = {p["id"]: p for p in posts}
    assert [x for x in items if x["id"] in by_id] == sorted(posts, key=lambda p: p["id"], reverse=True)
    for limit in (1, 2, 3):
        assert feed_ids(reader, limit=limit) == want, limit
    # Every other follower of big gets big's posts too (and nothing of s1's and s2's).
    big_posts = newest_first(*(p for p, u in zip(posts, order) if u is big), seeds[big.id])
    for f in others:
        wait_feed(f, big_posts, what=f"{f.username} seeing big's posts")
    # big's own feed: its own posts only, at once.
    assert feed_ids(big) == big_posts
    # Deleting one of big's merged posts, and unfollowing big, take them out.
    gone = posts[5]
    assert big.delete(f"/v1/posts/{gone['id']}").status_code == 204
    want.remove(gone["id"])
    wait_feed(reader, want, what="a deleted merged post gone")
    assert reader.unfollow(big).status_code == 200
    wait_feed(reader, [i for i in want if i not in big_posts], what="big's merged posts gone after unfollow")


# ------------------------------------------------------------------ pagination

def test_pages_neither_repeat_nor_skip_while_posts_arrive(users):
    """Pages of 2 and 3 posts, with new posts by followed authors arriving between the reads: the concatenation
    is exactly the feed as it was at the first read; the new posts only show on a new first page."""
    a1, a2, reader = users(3)
    s1, s2 = make_post(a1, "s1"), make_post(a2, "s2")
    followed_with_backfill(reader, a1, [s1])
    followed_with_backfill(reader, a2, [s2], own=[s1])
    posts = [s1, s2] + [make_post(u, f"p{i}") for i, u in enumerate([a1, a2, a2, a1, a1, a2, a1, a2, a1])]
    posts.append(make_post(reader, "own"))
    want = newest_first(*posts)
    wait_feed(reader, want)

    got, cursor, limits, arrived = [], None, [3, 2, 3, 2, 3, 2, 3], []
    for n, limit in enumerate(limits):
        body = page(reader, "/v1/feed", limit=limit, cursor=cursor)
        got.extend(ids(body["items"]))
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["items"]) == limit, body
        # A new post between the reads, landed in the reader's timeline before the next page is read.
        new = make_post([a1, a2, reader][n % 3], f"arrives after page {n + 1}")
        arrived.append(new["id"])
        wait_until(lambda: page(reader, "/v1/feed", limit=1)["items"][0]["id"] == new["id"], timeout=15,
                   interval=0.1, what="the new post at the top of the feed")
    assert cursor is None, "the walk did not reach the end"
    assert got == want, {"missing": [i for i in want if i not in got], "extra": [i for i in got if i not in want],
                         "duplicates": [i for i in got if got.count(i) > 1]}
    assert feed_ids(reader, limit=2) == newest_first(*posts, *({"id": i} for i in arrived))


def test_bad_limit_and_cursor_change_nothing(users):
    """limit 0, 101, not a number: 422 errors.limit; a cursor the feed did not give (garbage, another list's,
    a tampered one, a bare post id): 400; the feed is the same afterwards."""
    a, reader = users(2)
    p1, p2 = make_post(a, "x"), make_post(a, "y")
    followed_with_backfill(reader, a, [p1, p2])
    before = feed(reader)
    for limit in ("0", "101", "abc", "-1", "1.5", ""):
        r = reader.get("/v1/feed", params={"limit": limit})
        body = is_problem(r, 422)
        assert "limit" in body.get("errors", {}), (limit, body)
    posts_cursor = page(a, f"/v1/users/{a.username}/posts", limit=1)["next_cursor"]
    feed_cursor = page(reader, "/v1/feed", limit=1)["next_cursor"]
    assert posts_cursor and feed_cursor
    tampered = feed_cursor[:8] + ("A" if feed_cursor[8] != "A" else "B") + feed_cursor[9:]
    for cursor in ("garbage", posts_cursor, tampered, p2["id"], feed_cursor + "x"):
        r = reader.get("/v1/feed", params={"cursor": cursor})
        is_problem(r, 400)
    assert feed(reader) == before
    assert page(reader, "/v1/feed", limit=1, cursor=feed_cursor) == {"items": [before[1]], "next_cursor": None}
    assert page(reader, "/v1/feed", limit=100) == {"items": before, "next_cursor": None}


# ------------------------------------------------------------------ what takes posts out

def test_follow_backfills_and_unfollow_removes(users):
    a, reader = users(2)
    older = [make_post(a, f"old {i}") for i in range(3)]
    own = make_post(reader, "mine")
    followed_with_backfill(reader, a, older, own=[own])
    assert reader.unfollow(a).status_code == 200
    wait_feed(reader, [own["id"]], what="a's posts gone after the unfollow")
    newer = make_post(a, "while not followed")
    time.sleep(0.5)
    assert feed_ids(reader) == [own["id"]]
    followed_with_backfill(reader, a, [*older, newer], own=[own])


@pytest.mark.parametrize("blocker", ["author", "reader"])
def test_block_either_way_removes_both_ways(users, blocker):
    a, reader = users(2)
    pa, pr = make_post(a, "by a"), make_post(reader, "by reader")
    followed_with_backfill(reader, a, [pa], own=[pr])
    followed_with_backfill(a, reader, [pr], own=[pa])
    who, whom = (a, reader) if blocker == "author" else (reader, a)
    assert who.block(whom).status_code == 200
    wait_feed(reader, [pr["id"]], what="a's post gone from the reader's feed")
    wait_feed(a, [pa["id"]], what="the reader's post gone from a's feed")
    assert who.unblock(whom).status_code == 200  # the follows the block removed stay removed
    later = make_post(a, "after the unblock")
    time.sleep(0.5)
    assert feed_ids(reader) == [pr["id"]] and feed_ids(a) == [later["id"], pa["id"]]


def test_post_deletion_removes_it_from_every_feed(users):
    a, *followers = users(1 + 3)
    seed = make_post(a, "seed")
    for f in followers:
        followed_with_backfill(f, a, [seed])
    p = make_post(a, "to delete")
    for f in followers:
        wait_feed(f, [p["id"], seed["id"]])
    assert a.delete(f"/v1/posts/{p['id']}").status_code == 204
    assert feed_ids(a) == [seed["id"]]  # left out at read time at once
    for f in followers:
        wait_feed(f, [seed["id"]], what=f"the deleted post gone from {f.username}'s feed")


def test_account_deletion_removes_its_posts_from_feeds(users):
    gone, stays, reader = users(3)
    pg, ps = make_post(gone, "bye"), make_post(stays, "hi")
    followed_with_backfill(reader, gone, [pg])
    followed_with_backfill(reader, stays, [ps], own=[pg])
    r = gone.delete("/v1/me")
    assert r.status_code == 204, r.text
    wait_feed(reader, [ps["id"]], what="the deleted account's post gone")
    r = gone.get("/v1/feed")
    assert r.status_code in (401, 200), r.text  # its token outlives the account (the gateway checks the signature)
    if r.status_code == 200:
        assert r.json() == {"items": [], "next_cursor": None}, r.text


# ------------------------------------------------------------------ fanout in batches

def test_fanout_in_batches_reaches_every_follower_once(users):
    """FEED_FANOUT_MAX_FOLLOWERS followers (not above the threshold) with FEED_FANOUT_BATCH=2: three batches,
    each follower gets the post exactly once, in order; the deletion goes through batches too."""
    a, *followers = users(1 + FANOUT_MAX_FOLLOWERS)
    seed = make_post(a, "seed")
    for f in followers:
        follow(f, a)
    for f in followers:
        wait_feed(f, [seed["id"]], what=f"{f.username} following a")
    posts = [make_post(a, f"batch {i}") for i in range(3)]
    want = newest_first(seed, *posts)
    for f in followers:
        wait_feed(f, want, what=f"{f.username} getting every post")
        assert feed_ids(f, limit=1) == want  # no duplicate on any page
    assert a.delete(f"/v1/posts/{posts[1]['id']}").status_code == 204
    want.remove(posts[1]["id"])
    for f in followers:
        wait_feed(f, want, what=f"the deleted post gone from {f.username}'s feed")
