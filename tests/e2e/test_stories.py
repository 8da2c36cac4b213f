"""test_stories.py -- stories and highlights over the gateway (services/publication/README.md, "Stories and
highlights"): create with media checked by resize-image, who sees a user's stories, the stories feed
(unseen first, then newest first) and seen marks, deletion, highlights (create, list, delete) keeping
their copies past expiry and purge, and an account's deletion taking all of it."""
import time
from datetime import datetime, timezone

import pytest

from authlib import h2
from authlib import users  # noqa: F401 (fixture)
from conftest import is_problem, wait_until
from publib import BAD_PATH_IDS, anon_get, ids, known, media_body, media_ids, page, parse_time, post_media_of, unknown_id
from storylib import (create_highlight, create_story, feed, feed_users, follow_seen, highlights, make_highlight,
                      make_story, restart_publication, seen, user_stories, block_seen, DAY)


def stories_count(user, username):
    return len(user_stories(user, username))


# ------------------------------------------------------------------ create

def test_create_a_story(users):
    a = users()
    mid = media_ids(a, 1)[0]
    t0 = datetime.now(timezone.utc)
    s = make_story(a, mid)
    assert s["author"] == {"id": a.id, "username": a.username, "name": "", "avatar": None}
    assert s["media"] == post_media_of(media_body(a, mid))
    assert abs(parse_time(s["created_at"]) - t0).total_seconds() < 30
    assert parse_time(s["expires_at"]) - parse_time(s["created_at"]) == DAY
    s2 = make_story(a, mid)  # the same media again: a story copies it
    assert s2["id"] > s["id"]
    assert user_stories(a, a.username) == [s, s2]  # oldest first; one's own never "seen"


def test_story_media_must_be_the_callers_and_known(users):
    a, b = users(2)
    foreign = media_ids(b, 1)[0]
    is_problem(create_story(a, foreign), 403)
    errs = is_problem(create_story(a, unknown_id()), 422)["errors"]
    assert set(errs) == {"media_id"}, errs
    assert user_stories(a, a.username) == []


@pytest.mark.parametrize("body", [
    {}, {"media_id": None}, {"media_id": ""}, {"media_id": 7}, {"media_id": ["x"]}, {"media_id": {"$ne": None}},
    {"media_id": "m" * 65}, "EXTRA",
])
def test_bad_story_bodies_are_422_and_create_nothing(users, body):
    a = users()
    known(a)  # a refused body never reaches the caller's lookup: publication learns of a from auth's event
    if body == "EXTRA":
        body = {"media_id": media_ids(a, 1)[0], "caption": "hi"}
    r = a.post("/v1/stories", json=body)
    errs = is_problem(r, 422)["errors"]
    assert set(errs) <= {"media_id", "caption"} and errs, errs
    assert user_stories(a, a.username) == []


def test_story_bodies_that_are_not_json_objects_are_400(users):
    a = users()
    for content in (b"{", b"[1]", b"\"media\"", b"null"):
        r = a.post("/v1/stories", content=content, headers={"content-type": "application/json"})
        is_problem(r, 400)
    assert user_stories(a, a.username) == []
    with h2() as c:
        is_problem(c.post("/v1/stories", json={"media_id": media_ids(a, 1)[0]}), 401)


# ------------------------------------------------------------------ who sees a user's stories

def test_followers_see_a_users_stories_others_an_empty_list(users):
    a, fan, stranger, foe = users(4)
    s1, s2 = make_story(a), make_story(a)
    follow_seen(fan, a, s1["id"])
    got = user_stories(fan, a.username)
    assert ids(got) == [s1["id"], s2["id"]]
    assert got == [dict(x, seen=False) for x in (s1, s2)]
    assert user_stories(stranger, a.username) == []
    with h2() as c:
        assert user_stories(c, a.username) == []
    is_problem(fan.get(f"/v1/users/nouser{unknown_id()[:10]}/stories"), 404)
    # A block either way is 404, for a follower too.
    follow_seen(foe, a, s1["id"])
    block_seen(foe, a)
    is_problem(a.get(f"/v1/users/{foe.username}/stories"), 404)
    is_problem(seen(foe, s1["id"]), 404)
    assert user_stories(fan, a.username) != []
    # Lists' arguments are checked as elsewhere; the page is never cut.
    is_problem(fan.get(f"/v1/users/{a.username}/stories", params={"limit": 0}), 422)
    is_problem(fan.get(f"/v1/users/{a.username}/stories", params={"cursor": "nope"}), 400)
    assert ids(page(fan, f"/v1/users/{a.username}/stories", limit=1)["items"]) == [s1["id"], s2["id"]]


# ------------------------------------------------------------------ the stories feed and seen marks

def test_stories_feed_unseen_first_then_newest_first(users):
    v, a, b, c, d = users(5)
    a1 = make_story(a)
    b1 = make_story(b)
    c1 = make_story(c)
    a2 = make_story(a)
    d1 = make_story(d)  # not followed
    mine = make_story(v)  # one's own are not in one's feed
    for u, s in ((a, a1), (b, b1), (c, c1)):
        follow_seen(v, u, s["id"])
    items, _ = feed(v)
    assert [x["user"]["username"] for x in items] == [a.username, c.username, b.username]
    assert [x["has_unseen"] for x in items] == [True, True, True]
    assert ids(items[0]["stories"]) == [a1["id"], a2["id"]]
    assert items[0]["stories"] == [dict(a1, seen=False), dict(a2, seen=False)]
    assert items[0]["user"] == a1["author"]

    # Seeing one of a's two stories: a still has an unseen one.
    for _ in range(2):  # idempotent
        r = seen(v, a1["id"])
        assert r.status_code == 204, r.text
    items, _ = feed(v)
    assert [x["user"]["username"] for x in items] == [a.username, c.username, b.username]
    assert [s["seen"] for s in items[0]["stories"]] == [True, False]
    # All of a's seen: a goes after those with unseen stories.
    assert seen(v, a2["id"]).status_code == 204
    items, _ = feed(v)
    assert [x["user"]["username"] for x in items] == [c.username, b.username, a.username]
    assert [x["has_unseen"] for x in items] == [True, True, False]
    assert [s["seen"] for s in user_stories(v, a.username)] == [True, True]
    # Marks are the viewer's: the author and others still see them unseen.
    assert [s["seen"] for s in user_stories(a, a.username)] == [False, False]
    assert seen(b, a1["id"]).status_code == 404  # b does not follow a
    # Seeing b's too: among accounts all seen, newest first.
    assert seen(v, b1["id"]).status_code == 204
    assert feed_users(v) == [c.username, a.username, b.username]
    # Pages of one account each give the same order, without duplicates.
    one, pages = feed(v, limit=1)
    assert [x["user"]["username"] for x in one] == [c.username, a.username, b.username]
    assert len(pages) == 3 and pages[-1]["next_cursor"] is None
    assert mine["id"] not in [s["id"] for x in one for s in x["stories"]]
    assert d1["id"] not in [s["id"] for x in one for s in x["stories"]]
    # One's own story: 204, nothing recorded.
    assert seen(v, mine["id"]).status_code == 204
    assert user_stories(v, v.username)[0]["seen"] is False


def test_seen_is_404_for_unknown_malformed_and_invisible_stories(users):
    a, b = users(2)
    s = make_story(a)
    is_problem(seen(b, s["id"]), 404)  # not a follower
    is_problem(seen(b, unknown_id()), 404)
    for bad in BAD_PATH_IDS:
        is_problem(b.post(f"/v1/stories/{bad}/seen"), 404)
    with h2() as c:
        is_problem(c.post(f"/v1/stories/{s['id']}/seen"), 401)


def test_stories_feed_arguments_and_empty_feed(users):
    v = users()
    body = page(v, "/v1/stories/feed")
    assert body == {"items": [], "next_cursor": None}
    is_problem(v.get("/v1/stories/feed", params={"limit": 101}), 422)
    is_problem(v.get("/v1/stories/feed", params={"cursor": "garbage"}), 400)
    # A cursor of another list is refused too.
    with h2() as c:
        is_problem(c.get("/v1/stories/feed"), 401)


# ------------------------------------------------------------------ delete a story

def test_delete_a_story_everywhere(users):
    a, fan = users(2)
    s1, s2, s3 = make_story(a), make_story(a), make_story(a)
    follow_seen(fan, a, s1["id"])
    both = make_highlight(a, [s1["id"], s2["id"]], "Both")
    only = make_highlight(a, [s1["id"]], "Only one")
    is_problem(fan.delete(f"/v1/stories/{s1['id']}"), 403)
    is_problem(a.delete(f"/v1/stories/{unknown_id()}"), 404)
    for bad in BAD_PATH_IDS:
        is_problem(a.delete(f"/v1/stories/{bad}"), 404)
    assert a.delete(f"/v1/stories/{s1['id']}").status_code == 204
    is_problem(a.delete(f"/v1/stories/{s1['id']}"), 404)
    assert ids(user_stories(fan, a.username)) == [s2["id"], s3["id"]]
    assert [s["id"] for x in feed(fan)[0] for s in x["stories"]] == [s2["id"], s3["id"]]
    is_problem(seen(fan, s1["id"]), 404)
    got, _ = highlights(fan, a.username)
    assert ids(got) == [both["id"]]  # the one left without stories is deleted
    assert ids(got[0]["stories"]) == [s2["id"]]
    is_problem(a.delete(f"/v1/highlights/{only['id']}"), 404)
    # The last story of a's: no more a in the feed.
    for s in (s2, s3):
        assert a.delete(f"/v1/stories/{s['id']}").status_code == 204
    assert feed(fan)[0] == []
    assert highlights(fan, a.username)[0] == []


# ------------------------------------------------------------------ highlights

def test_create_a_highlight(users):
    a = users()
    s1, s2, s3 = make_story(a), make_story(a), make_story(a)
    t0 = datetime.now(timezone.utc)
    h = make_highlight(a, [s3["id"], s1["id"], s2["id"]], "  Trip to Lisbon ✈  ")
    assert h["owner"] == s1["author"]
    by_id = {s["id"]: s for s in (s1, s2, s3)}
    assert h["stories"] == [{k: by_id[i][k] for k in ("id", "media", "created_at")} for i in (s3["id"], s1["id"], s2["id"])]
    assert abs(parse_time(h["created_at"]) - t0).total_seconds() < 30
    assert highlights(a, a.username)[0] == [h]
    make_highlight(a, [s2["id"]], "t" * 100)


def test_highlight_bad_input_creates_nothing(users):
    a, b = users(2)
    s = make_story(a)
    other = make_story(b)
    is_problem(create_highlight(a, [s["id"], other["id"]]), 403)
    cases = [
        ({"title": "x", "story_ids": []}, "story_ids"),
        ({"title": "x", "story_ids": [unknown_id()]}, "story_ids"),
        ({"title": "x", "story_ids": [s["id"], s["id"]]}, "story_ids"),
        ({"title": "x", "story_ids": ["nope"]}, "story_ids"),
        ({"title": "x", "story_ids": [s["id"].upper()]}, "story_ids"),
        ({"title": "x", "story_ids": s["id"]}, "story_ids"),
        ({"title": "x", "story_ids": [7]}, "story_ids"),
        ({"title": "x", "story_ids": [{"$ne": None}]}, "story_ids"),
        ({"title": "x", "story_ids": [unknown_id() for _ in range(101)]}, "story_ids"),
        ({"title": "x"}, "story_ids"),
        ({"title": "", "story_ids": [s["id"]]}, "title"),
        ({"title": " \t\n ", "story_ids": [s["id"]]}, "title"),
        ({"title": "t" * 101, "story_ids": [s["id"]]}, "title"),
        ({"title": 5, "story_ids": [s["id"]]}, "title"),
        ({"story_ids": [s["id"]]}, "title"),
        ({"title": "x", "story_ids": [s["id"]], "cover": "y"}, "cover"),
    ]
    for body, field in cases:
        errs = is_problem(a.post("/v1/highlights", json=body), 422)["errors"]
        assert field in errs, (body, errs)
    is_problem(a.post("/v1/highlights", content=b"[]", headers={"content-type": "application/json"}), 400)
    is_problem(a.post("/v1/highlights", content=b"{", headers={"content-type": "application/json"}), 400)
    assert highlights(a, a.username)[0] == []
    with h2() as c:
        is_problem(c.post("/v1/highlights", json={"title": "x", "story_ids": [s["id"]]}), 401)


def test_highlights_newest_first_in_pages(users):
    a, b, foe = users(3)
    s = make_story(a)
    made = [make_highlight(a, [s["id"]], f"h{i}")["id"] for i in range(5)]
    newest_first = list(reversed(made))
    got, pages = highlights(b, a.username, limit=2)
    assert ids(got) == newest_first and len(pages) == 3
    assert pages[-1]["next_cursor"] is None
    # A highlight made between pages does not shift the next one.
    first = page(b, f"/v1/users/{a.username}/highlights", limit=2)
    late = make_highlight(a, [s["id"]], "late")["id"]
    second = page(b, f"/v1/users/{a.username}/highlights", limit=2, cursor=first["next_cursor"])
    assert ids(first["items"]) + ids(second["items"]) == newest_first[:4]
    assert ids(highlights(a, a.username)[0]) == [late] + newest_first
    # Anyone reads them, anonymous callers too; a block is 404; bad arguments as any list.
    assert ids(highlights(anon_client := h2(), a.username)[0]) == [late] + newest_first
    anon_client.close()
    is_problem(anon_get(f"/v1/users/nouser{unknown_id()[:10]}/highlights"), 404)
    assert a.block(foe).status_code == 200
    wait_until(lambda: foe.get(f"/v1/users/{a.username}/highlights").status_code == 404, timeout=20,
               what="the block reaching publication")
    is_problem(b.get(f"/v1/users/{a.username}/highlights", params={"limit": 0}), 422)
    is_problem(b.get(f"/v1/users/{a.username}/highlights", params={"cursor": "x"}), 400)


def test_delete_a_highlight(users):
    a, b = users(2)
    s = make_story(a)
    h1, h2_ = make_highlight(a, [s["id"]], "one"), make_highlight(a, [s["id"]], "two")
    is_problem(b.delete(f"/v1/highlights/{h1['id']}"), 403)
    is_problem(a.delete(f"/v1/highlights/{unknown_id()}"), 404)
    for bad in BAD_PATH_IDS:
        is_problem(a.delete(f"/v1/highlights/{bad}"), 404)
    assert a.delete(f"/v1/highlights/{h1['id']}").status_code == 204
    is_problem(a.delete(f"/v1/highlights/{h1['id']}"), 404)
    assert ids(highlights(b, a.username)[0]) == [h2_["id"]]
    assert ids(user_stories(a, a.username)) == [s["id"]]  # the story stays
    with h2() as c:
        is_problem(c.delete(f"/v1/highlights/{h2_['id']}"), 401)


# ------------------------------------------------------------------ expiry and purge

TTL_S = 4


@pytest.fixture
def short_stories():
    """publication with stories of TTL_S seconds and a purge every second, for one test."""
    restart_publication(STORY_TTL=f"{TTL_S}s", STORY_PURGE_INTERVAL="1s")
    try:
        yield
    finally:
        restart_publication()


def test_expired_stories_vanish_and_highlights_keep_their_copies(users, short_stories):
    from datetime import timedelta
    a, fan, other = users(3)
    s = make_story(a, ttl=timedelta(seconds=TTL_S))
    follow_seen(fan, a, s["id"])
    h = make_highlight(a, [s["id"]], "kept")
    assert feed_users(fan) == [a.username]
    # Past expires_at: gone from the lists at once (whether purged yet or not).
    time.sleep(max(0.0, (parse_time(s["expires_at"]) - datetime.now(timezone.utc)).total_seconds()) + 0.3)
    assert user_stories(fan, a.username) == []
    assert user_stories(a, a.username) == []
    assert feed(fan)[0] == []
    is_problem(seen(fan, s["id"]), 404)
    assert "story_ids" in is_problem(create_highlight(a, [s["id"]]), 422)["errors"]
    # The purge deletes it: someone else's delete is then 404 rather than 403.
    wait_until(lambda: other.delete(f"/v1/stories/{s['id']}").status_code == 404, timeout=15,
               what="the purge deleting the story")
    is_problem(a.delete(f"/v1/stories/{s['id']}"), 404)
    got, _ = highlights(fan, a.username)
    assert got == [h], "the highlight keeps its copy"


# ------------------------------------------------------------------ account deletion

def test_account_deletion_removes_stories_and_highlights(users):
    a, fan = users(2)
    s1, s2 = make_story(a), make_story(a)
    follow_seen(fan, a, s1["id"])
    h = make_highlight(a, [s1["id"], s2["id"]])
    f = make_story(fan)
    follow_seen(a, fan, f["id"])
    assert seen(a, f["id"]).status_code == 204
    assert seen(fan, s1["id"]).status_code == 204
    # Before: someone else's story or highlight is 403 for fan (they exist).
    is_problem(fan.delete(f"/v1/stories/{s2['id']}"), 403)
    is_problem(fan.delete(f"/v1/highlights/{h['id']}"), 403)
    assert a.delete("/v1/me").status_code == 204
    wait_until(lambda: fan.get(f"/v1/users/{a.username}/stories").status_code == 404, timeout=20,
               what="publication handling the account's deletion")
    # After: deleted (404), not merely hidden (403).
    wait_until(lambda: fan.delete(f"/v1/stories/{s2['id']}").status_code == 404, timeout=20,
               what="a's stories deleted")
    for s in (s1, s2):
        is_problem(fan.delete(f"/v1/stories/{s['id']}"), 404)
        is_problem(seen(fan, s["id"]), 404)
    is_problem(fan.delete(f"/v1/highlights/{h['id']}"), 404)
    is_problem(fan.get(f"/v1/users/{a.username}/highlights"), 404)
    assert feed(fan)[0] == []
    assert ids(user_stories(fan, fan.username)) == [f["id"]]
    # Its token writes nothing any more.
    r = wait_until(lambda: (lambda r: r if r.status_code == 401 else None)(create_story(a)), timeout=15,
                   what="401 for the deleted account")
    assert is_problem(r, 401)["type"].rstrip("/").endswith("account-gone")
