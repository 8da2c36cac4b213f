"""test_search.py -- the search daemon (services/search/README.md) through the gateway over HTTP/2,
with the real broker and database: freshness of the index after posts, edits, deletions and
account deletion; matching (#tag, @user, folding); the ranking rules (exact match, engagement,
exact username); counts kept true (follows removed by blocks, a deleted account's likes, comments
and follows); out-of-order and redelivered events; autocomplete; block filtering both ways; limit
and offset; hostile queries; and the index rebuilt after a restart and a SIGKILL, with the events
sent while the daemon was down.

Every test uses words of its own (searchlib.word: random letters), so tests never see each
other's data or an earlier run's. Users and posts that no test changes are made once per module.
"""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from authlib import User
from conftest import is_problem, stack, wait_until
from notiflib import publish_event
from publib import comment, like, make_post, parse_time, unknown_id
from searchlib import (FRESH_S, autocomplete, autocomplete_r, bad_param, check_search_body, ids,
                       named_user, names, no_engine_text, poll, raw_q, search, search_r, search_ready, get,
                       usernames, wait_ids, wait_search, word)
from test_resilience import alive, pid_of


# ------------------------------------------------------------------ module-wide users and posts

@pytest.fixture(scope="module")
def author():
    """An author whose posts (each with words of its own test) several tests share."""
    u = named_user()
    yield u
    u.close()


@pytest.fixture(scope="module")
def corpus(author):
    """Three posts of author's sharing one word and two of them one tag, captions of different
    lengths (so their order is decided by BM25, not by ties)."""
    w, t = word(), word()
    posts = [make_post(author, f"{w} #{t}"),
             make_post(author, f"{w} one two three"),
             make_post(author, f"{w} one two three four five six seven eight #{t}")]
    wait_ids(None, w, [p["id"] for p in posts])
    return {"word": w, "tag": t, "posts": posts}


def name_words(user):
    return user.account["name"].lower().split()


def thumb(post):
    return post["media"][0]["variants"]["thumb"]["url"]


# ------------------------------------------------------------------ freshness and shapes

def test_a_new_post_is_found_within_a_second_by_caption_word_tag_and_username():
    u = named_user()
    w, t = word(), word()
    post = make_post(u, f"Sunset over the {w} #{t.capitalize()}")
    assert post["tags"] == [t]
    body, took = wait_ids(None, w, [post["id"]], timeout=FRESH_S)
    print(f"a new post was found {took:.3f} s after its 201")
    item = body["items"][0]
    assert item == {"id": post["id"], "author": {"id": u.id, "username": u.username, "name": u.account["name"]},
                    "caption": f"Sunset over the {w} #{t.capitalize()}", "tags": [t], "thumbnail_url": thumb(post),
                    "like_count": 0, "comment_count": 0, "created_at": item["created_at"], "edited_at": None}, item
    assert parse_time(item["created_at"]) == parse_time(post["created_at"]), (item["created_at"], post["created_at"])
    # by its hashtag with and without '#', by its author's username, case-folded
    for q in (f"#{t}", t, f"#{t.upper()}", u.username, w.upper(), f"{w} {t}", f"@{u.username}"):
        got = search(None, q)
        assert ids(got) == [post["id"]] and got["total"] == 1, (q, got)
    # tags: the tag with its post count, by its name and a prefix of it (with '#', any case)
    for q in (t, f"#{t}", t[:6], f"#{t[:6].upper()}"):
        got = search(None, q, type="tags")
        assert got == {"items": [{"name": t, "post_count": 1}], "total": 1}, (q, got)
    # users: by username, a prefix of it, and a word (or a prefix of a word) of the name
    first, last = name_words(u)
    want = {"items": [{"id": u.id, "username": u.username, "name": u.account["name"], "followers_count": 0}],
            "total": 1}
    for q in (u.username, u.username[:10], last, first[:5], f"{first} {last}", last.upper()):
        assert search(None, q, type="users") == want, q


def test_an_edited_caption_is_searched_anew_and_a_deleted_post_leaves_search():
    u = named_user()
    old, new, keep, t = word(), word(), word(), word()
    p1 = make_post(u, f"{old} at dawn #{t}")
    p2 = make_post(u, f"{keep} at dusk #{t}")
    wait_ids(None, old, [p1["id"]])
    wait_search(None, t, lambda b: b["items"] == [{"name": t, "post_count": 2}], type="tags")
    r = u.patch(f"/v1/posts/{p1['id']}", json={"caption": f"{new} at dawn #{t}"})
    assert r.status_code == 200, r.text

    def edited():
        n, o = search(None, new), search(None, old)
        return n if ids(n) == [p1["id"]] and o == {"items": [], "total": 0} else None
    body, took = poll(edited, timeout=FRESH_S, what="the new caption found, the old one not")
    print(f"an edit was searchable {took:.3f} s after its 200")
    item = body["items"][0]
    assert item["caption"] == f"{new} at dawn #{t}" and item["tags"] == [t]
    assert item["edited_at"] is not None and parse_time(item["edited_at"]) >= parse_time(item["created_at"])
    assert parse_time(item["edited_at"]) == parse_time(r.json()["edited_at"])

    assert u.delete(f"/v1/posts/{p2['id']}").status_code == 204

    def deleted():
        return (search(None, keep) == {"items": [], "total": 0}
                and search(None, t, type="tags")["items"] == [{"name": t, "post_count": 1}])
    _, took = poll(deleted, timeout=FRESH_S, what="the deleted post gone and its tag counted once")
    print(f"a deletion was searchable {took:.3f} s after its 204")
    assert ids(search(None, f"#{t}")) == [p1["id"]]


def test_a_deleted_account_and_its_posts_leave_search():
    u = named_user()
    w, t = word(), word()
    p = make_post(u, f"{w} #{t}")
    wait_ids(None, w, [p["id"]])
    wait_ids(None, u.username, [u.id], type="users")
    last = name_words(u)[1]
    assert autocomplete(None, f"@{u.username}")["users"] != []
    assert u.delete("/v1/me").status_code == 204
    empty = {"items": [], "total": 0}

    def gone():
        return (search(None, u.username, type="users") == empty and search(None, last, type="users") == empty
                and search(None, w) == empty and search(None, u.username) == empty
                and search(None, t, type="tags") == empty and autocomplete(None, f"@{u.username}")["users"] == []
                and autocomplete(None, f"#{t}")["tags"] == [])
    _, took = poll(gone, what="the deleted account and its posts out of search")
    print(f"a deleted account left search {took:.3f} s after its 204")


def test_hashtag_and_at_words_match_only_tags_and_authors_and_words_are_folded_not_prefixed(author):
    y = named_user()
    w, t = word(), word()
    tagged = make_post(author, f"{w} sunrise #{t}")["id"]
    plain = make_post(author, f"{w} sunrise {t}")["id"]
    by_y = make_post(y, f"{w} sunrise @{author.username} {t}")["id"]
    accented = make_post(author, f"Crème brûlée {w}é")["id"]
    wait_ids(None, f"{w}e", [accented])
    # a word is a whole word: "{w}" is not a prefix of "{w}é"
    assert sorted(ids(search(None, w))) == sorted([tagged, plain, by_y])
    cases = {f"#{t}": [tagged], t: [tagged, plain, by_y], f"{w} #{t}": [tagged],
             f"@{author.username} {w}": [tagged, plain], f"{author.username} {w}": [tagged, plain, by_y],
             f"@{y.username}": [by_y], f"@{y.username} #{t}": [], f"#{t} @{author.username}": [tagged],
             f"{w.upper()}É": [accented], f"{w}E": [accented], f"CREME {w}e": [accented],
             f"creme brulee {w}é": [accented], f"Brûlée {w.capitalize()}É": [accented]}
    for q, want in cases.items():
        got = search(None, q)
        assert sorted(ids(got)) == sorted(want) and got["total"] == len(want), (q, want, got)
    # tags: NFKC and case-folded (full-width letters are their ASCII forms)
    wide = "".join(chr(ord(c) - ord("a") + 0xFF21) for c in t[:6])
    assert names(search(None, f"#{wide}", type="tags")) == [t]


# ------------------------------------------------------------------ ranking

def test_an_exact_caption_match_ranks_first(author):
    w1, w2 = word(), word()
    exact = make_post(author, f"{w1} {w2}")
    swapped = make_post(author, f"{w2} {w1}")
    apart = make_post(author, f"{w1} the quick brown fox jumps over the lazy dog and then {w2} runs away home")
    one = make_post(author, f"{w1} alone")
    # Without the exact factor, exact and swapped tie on BM25 and the newer (swapped) would lead.
    body, _ = wait_search(None, f"{w1} {w2}", lambda b: b["total"] == 3)
    assert ids(body) == [exact["id"], swapped["id"], apart["id"]], body
    assert ids(search(None, f"{w1.upper()} {w2.upper()}")) == [exact["id"], swapped["id"], apart["id"]]
    # one word: every caption holds it as written (exact for all); equal BM25 for the three
    # two-word captions, so newest first, and the long caption last
    body, _ = wait_search(None, w1, lambda b: b["total"] == 4)
    assert ids(body) == [one["id"], swapped["id"], exact["id"], apart["id"]], body


def test_likes_and_comments_raise_a_post_above_an_identical_newer_one(author):
    w = word()
    older = make_post(author, f"{w} by the sea")
    newer = make_post(author, f"{w} by the sea")
    body, _ = wait_search(None, w, lambda b: b["total"] == 2)
    assert ids(body) == [newer["id"], older["id"]], "identical posts: newest first"
    assert like(author, "posts", older["id"]).status_code == 200
    comment(author, older["id"], "what a view")
    body, took = wait_search(None, w, lambda b: {(x["id"], x["like_count"], x["comment_count"]) for x in b["items"]}
                             == {(older["id"], 1, 1), (newer["id"], 0, 0)}, what="the like and comment counted")
    print(f"a like and a comment were counted {took:.3f} s after they were made")
    # engagement 1 + 0.25 ln(4) = 1.35 against a recency edge of a few seconds in 30 days
    assert ids(body) == [older["id"], newer["id"]], body


def test_a_username_equal_to_the_query_ranks_above_longer_ones():
    w = "s" + word(11)
    exact = User(username=w)
    longer = User(username=w + "z")
    longest = User(username=w + "zz")
    assert longest.follow(longer).status_code == 200
    # equal BM25 (one username word each, no name): without the x10, the followed one would lead
    body, _ = wait_search(None, w, lambda b: b["total"] == 3 and
                          {x["username"]: x["followers_count"] for x in b["items"]}.get(longer.username) == 1,
                          type="users", what="three users, one followed")
    assert usernames(body["items"]) == [exact.username, longer.username, longest.username], body


# ------------------------------------------------------------------ counts kept true

COUNT_WAIT_S = 3.0  # counts are fresh within a second; a count that never comes right fails soon


def followers_in_search(user):
    got = search(None, user.username, type="users")
    return next((u["followers_count"] for u in got["items"] if u["id"] == user.id), None)


def test_followers_count_follows_follows_unfollows_and_the_follows_a_block_removes():
    a = named_user()
    fans = [named_user() for _ in range(3)]
    for f in fans:
        assert f.follow(a).status_code == 200
    poll(lambda: followers_in_search(a) == 3, timeout=COUNT_WAIT_S, what="3 followers")
    assert fans[0].unfollow(a).status_code == 200
    poll(lambda: followers_in_search(a) == 2, timeout=COUNT_WAIT_S, what="2 followers after an unfollow")
    # a block removes the follows both ways (API.md; block.created implies them, with no follow.deleted)
    assert a.block(fans[1]).status_code == 200
    assert fans[2].block(a).status_code == 200
    assert a.me()["followers_count"] == 0
    poll(lambda: followers_in_search(a) == 0, timeout=COUNT_WAIT_S,
         what=lambda: f"0 followers after two blocks, as GET /v1/me says (search: {followers_in_search(a)})")


def test_a_deleted_accounts_likes_comments_and_follows_leave_the_counts():
    a, b = named_user(), named_user()
    w = word()
    p = make_post(a, f"{w} counted")
    assert like(b, "posts", p["id"]).status_code == 200
    comment(b, p["id"], "first")
    assert b.follow(a).status_code == 200

    def counts():
        it = search(None, w)["items"]
        return (it[0]["like_count"], it[0]["comment_count"], followers_in_search(a)) if it else None
    poll(lambda: counts() == (1, 1, 1), timeout=COUNT_WAIT_S, what="a like, a comment and a follower")
    # the account goes, and with it its likes, comments and follows (API.md: "vanish everywhere")
    assert b.delete("/v1/me").status_code == 204
    assert a.me()["followers_count"] == 0

    def publication_counts():
        got = a.get(f"/v1/posts/{p['id']}").json()
        return got["like_count"], got["comment_count"]
    poll(lambda: publication_counts() == (0, 0), interval=0.1, what="publication dropping the like and comment")
    poll(lambda: counts() == (0, 0, 0), timeout=COUNT_WAIT_S,
         what=lambda: f"(likes, comments, followers) (0, 0, 0) as publication and auth say (search: {counts()})")


def test_out_of_order_and_redelivered_events_end_in_the_right_state():
    """Hand-made events (as a redelivery or a slow publisher would bring them): an edit before its
    create, a like delivered twice with one message id, an edit older than the deletion after it."""
    u = named_user()
    media = make_post(u, "")["media"]
    pid = unknown_id()
    old, new, t, zombie, marker = word(), word(), word(), word(), word()
    publish_event("post.updated", {"post_id": pid, "author_id": u.id, "caption": f"{new} #{t}", "tags": [t],
                                   "mentions": [], "edited_at": "2026-11-21T18:41:00.000Z"})
    publish_event("post.created", {"post_id": pid, "author_id": u.id, "author_username": u.username,
                                   "caption": f"{old} first", "tags": [], "mentions": [], "media": media,
                                   "created_at": "2026-11-21T18:40:00.000Z"})
    body, _ = wait_ids(None, new, [pid])
    item = body["items"][0]
    assert (item["caption"], item["tags"], item["author"]["username"]) == (f"{new} #{t}", [t], u.username), item
    assert parse_time(item["created_at"]) == parse_time("2026-11-21T18:40:00Z")
    assert parse_time(item["edited_at"]) == parse_time("2026-11-21T18:41:00Z")
    assert search(None, old) == {"items": [], "total": 0}
    fan = "s" + word(13)
    liked = {"target_type": "post", "target_id": pid, "post_id": pid, "recipient_id": u.id, "user_id": "hand-" + fan,
             "username": fan, "created_at": "2026-11-21T18:42:00.000Z"}
    mid = str(uuid.uuid4())
    publish_event("like.created", liked, message_id=mid)
    publish_event("like.created", liked, message_id=mid)
    publish_event("comment.created", {"comment_id": unknown_id(), "post_id": pid, "post_author_id": u.id,
                                      "author_id": "hand-" + fan, "author_username": fan, "text": "hi",
                                      "reply_to": None, "reply_to_author_id": None,
                                      "created_at": "2026-11-21T18:42:01.000Z"})
    body, _ = wait_search(None, new, lambda b: b["items"] and b["items"][0]["comment_count"] == 1,
                          what="the comment published after the like twice")
    assert body["items"][0]["like_count"] == 1, body
    publish_event("post.deleted", {"post_id": pid, "author_id": u.id, "deleted_at": "2026-11-21T18:43:00.000Z"})
    publish_event("post.updated", {"post_id": pid, "author_id": u.id, "caption": f"{zombie} #{t}", "tags": [t],
                                   "mentions": [], "edited_at": "2026-11-21T18:42:30.000Z"})
    # a post made after those: once it is found, they have been handled (one queue, in order)
    later = make_post(u, f"{marker} later")
    wait_ids(None, marker, [later["id"]])
    wait_ids(None, new, [])
    assert search(None, zombie) == {"items": [], "total": 0}
    assert search(None, t, type="tags") == {"items": [], "total": 0}


# ------------------------------------------------------------------ autocomplete

def test_autocomplete_by_prefix_users_and_tags_most_followed_and_most_used_first():
    p = word(8)
    with ThreadPoolExecutor(max_workers=8) as ex:
        us = list(ex.map(lambda i: User(username=f"{p}{chr(ord('a') + i)}{word(5)}"), range(11)))
    top, second = us[5], us[7]
    for follower, followed in ((us[3], top), (us[4], top), (us[3], second)):
        assert follower.follow(followed).status_code == 200
    fillers = [f"{p}f{c}" for c in "abcdefghi"]
    make_post(us[0], f"#{p} #{p}m #{p}n")
    make_post(us[0], f"#{p}n " + " ".join(f"#{t}" for t in fillers))
    all_tags = [p, f"{p}m", f"{p}n"] + fillers

    def settled():
        b = autocomplete(None, p)
        return b if (len(b["users"]) == 10 and {u["followers_count"] for u in b["users"]} == {0, 1, 2}
                     and len(b["tags"]) == 10 and {"name": f"{p}n", "post_count": 2} in b["tags"]) else None
    both, _ = poll(settled, what="11 users (two followed) and 12 tags")
    users_only, tags_only = autocomplete(None, f"@{p}"), autocomplete(None, f"#{p}")
    assert users_only["tags"] == [] and tags_only["users"] == []
    for b in (both, users_only):
        assert usernames(b["users"])[:2] == [top.username, second.username], b
        assert [u["followers_count"] for u in b["users"]][:2] == [2, 1]
        assert set(usernames(b["users"])) <= {u.username for u in us}, b
        assert len(set(usernames(b["users"]))) == 10
    for b in (both, tags_only):
        assert {t["name"] for t in b["tags"]} <= set(all_tags) and len({t["name"] for t in b["tags"]}) == 10, b
    # the search itself: total counts all, tags exact name first, then by count, then by name
    got = search(None, p, type="tags", limit=100)
    assert got["total"] == 12
    assert names(got) == [p, f"{p}n"] + sorted([f"{p}m"] + fillers), got
    got = search(None, p, type="users", limit=100)
    assert got["total"] == 11 and usernames(got["items"])[:2] == [top.username, second.username], got
    # without '@', a word of the name counts too; with it only the username
    q = word(8)
    d = named_user(name=f"Dee {q.capitalize()}ster")
    body, _ = poll(lambda: (lambda b: b if b["users"] else None)(autocomplete(None, q)), what="a name word prefix")
    assert usernames(body["users"]) == [d.username] and body["tags"] == [], body
    assert autocomplete(None, f"@{q}") == {"users": [], "tags": []}
    for q in ("#", "@"):
        assert autocomplete(None, q) == {"users": [], "tags": []}, q
    # autocomplete's tags: most used first (README), whether or not one is the prefix itself
    for b in (both, tags_only):
        assert b["tags"][0] == {"name": f"{p}n", "post_count": 2}, b["tags"]
        assert all(t["post_count"] == 1 for t in b["tags"][1:]), b["tags"]


# ------------------------------------------------------------------ blocks

def test_a_block_hides_each_from_the_other_and_unblock_brings_them_back():
    a, b = named_user(), named_user()
    w = word()
    pa = make_post(a, f"{w} from one side")
    pb = make_post(b, f"{w} from the other")
    both = sorted([pa["id"], pb["id"]])
    wait_ids(None, w, both)
    assert sorted(ids(search(a, w))) == both and sorted(ids(search(b, w))) == both
    assert ids(search(a, b.username, type="users")) == [b.id]
    assert a.block(b).status_code == 200

    def hidden():
        # one request per user per round: polls stay far below the per-user rate limit
        return ids(search(a, w)) == [pa["id"]] and ids(search(b, w)) == [pb["id"]]
    _, took = poll(hidden, interval=0.1, what="each one's post hidden from the other")
    print(f"a block reached search {took:.3f} s after its 200")
    empty = {"items": [], "total": 0}
    assert search(a, w)["total"] == 1 and search(b, w)["total"] == 1, "total counts after filtering"
    assert search(a, b.username, type="users") == empty
    assert search(a, name_words(b)[1], type="users") == empty
    assert search(a, b.username) == empty
    assert search(b, a.username, type="users") == empty
    assert search(b, a.username) == empty
    assert autocomplete(a, f"@{b.username}")["users"] == []
    assert autocomplete(b, f"@{a.username}")["users"] == []
    assert autocomplete(b, a.username)["users"] == []
    # without a token nothing is filtered
    assert sorted(ids(search(None, w))) == both and search(None, w)["total"] == 2
    assert ids(search(None, b.username, type="users")) == [b.id]
    assert usernames(autocomplete(None, f"@{a.username}")["users"]) == [a.username]
    assert a.unblock(b).status_code == 200

    def back():
        return sorted(ids(search(a, w))) == both and sorted(ids(search(b, w))) == both
    poll(back, interval=0.1, what="both posts back after unblock")
    assert ids(search(a, b.username, type="users")) == [b.id]
    assert ids(search(b, a.username, type="users")) == [a.id]
    assert usernames(autocomplete(a, f"@{b.username}")["users"]) == [b.username]


# ------------------------------------------------------------------ limit, offset, type

def test_limit_offset_and_type_rules(corpus, author):
    w = corpus["word"]
    full = search(None, w)
    assert full["total"] == 3 and len(full["items"]) == 3
    order = ids(full)
    one = search(None, w, limit=1)
    assert ids(one) == order[:1] and one["total"] == 3
    pages = [search(None, w, limit=1, offset=i) for i in range(3)]
    assert [ids(x) for x in pages] == [[i] for i in order] and all(x["total"] == 3 for x in pages)
    assert [ids(search(None, w, limit=2, offset=o)) for o in (0, 2)] == [order[:2], order[2:]]
    assert search(None, w, offset=3) == {"items": [], "total": 3}
    assert search(None, w, offset=10000) == {"items": [], "total": 3}
    assert ids(search(None, w, limit=100)) == order
    # 120 tags of one prefix: default 20, at most 100 a page, disjoint pages in the documented order
    tp = word(8)
    tags = [f"{tp}{i:03d}" for i in range(120)]
    for i in range(0, 120, 30):
        make_post(author, " ".join(f"#{t}" for t in tags[i:i + 30]))
    body, _ = wait_search(None, tp, lambda b: b["total"] == 120, type="tags", what="120 tags")
    assert len(body["items"]) == 20
    for lim in (100, 101, 1000):
        got = search(None, tp, type="tags", limit=lim)
        assert len(got["items"]) == 100 and got["total"] == 120, (lim, len(got["items"]))
    paged = [names(search(None, tp, type="tags", limit=50, offset=o)) for o in (0, 50, 100)]
    assert [len(x) for x in paged] == [50, 50, 20]
    assert sum(paged, []) == sorted(tags), "each tag once, by post count then by name"
    # bad values: 400 problem naming the parameter, for every type
    for t in (None, "users", "tags"):
        for v in ("0", "-1", "abc", "1.5", "", "0x10", "-99999999999999999999"):
            bad_param(search_r(None, w, type=t, limit=v), "limit")
        for v in ("-1", "10001", "abc", "", "1e3", "99999999999999999999"):
            bad_param(search_r(None, w, type=t, offset=v), "offset")
    for v in ("bogus", "post", "POSTS", "users,tags"):
        bad_param(search_r(None, w, type=v), "type")
    # an integer above 100 is clamped, however many digits it has (only non-integers and < 1 are 400)
    for lim in ("99999999999999999999", "1" + "0" * 30):
        got = search(None, tp, type="tags", limit=lim)
        assert len(got["items"]) == 100 and got["total"] == 120, (lim, len(got["items"]))


# ------------------------------------------------------------------ hostile queries

GREEK = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
NO_WORD = ['"', '""', "*", "(", ")", "-", "^", "+", "{}", ":", "'", "\\", "%", "#", "@", "##", "@@", "#@",
           "!?.,;:'\"()[]{}<>@#$%^&*-+=~|\\/`", "-- ;", "''''", "\"*\"", "^*"]
WORDS_OF_SYNTAX = ["sea*", "NEAR(a b)", "NEAR(a b, 2)", "AND OR", "a AND", "AND", "OR", "NOT", "NEAR", "a OR b",
                   '"a" NOT "b"', '"unbalanced', "col:word", "caption:x", "{a b}", "{caption}: x", "*a", "a*b",
                   "rank:bm25", "x' OR '1'='1", "x\" OR \"1\"=\"1", "a; DROP TABLE posts", "$ne", "{\"$gt\": \"\"}",
                   "📷🌅", "emoji 🙂 here", "ＡＮＤ ＯＲ", "\u0301", "\u200b", "\u202e abc", "ﬁsh", "İstanbul",
                   "a" * 100, "x " * 200]


def _ok_or_400(r, what):
    assert r.status_code < 500, (what, r.status_code, r.text)
    no_engine_text(r)
    if r.status_code == 400:
        is_problem(r, 400)
    else:
        assert r.status_code == 200, (what, r.status_code, r.text)


def test_hostile_queries_are_400_or_searched_as_words_never_an_error(author):
    w = word()
    # a caption holding the words the syntax below is made of, so any reading of it finds the post
    filler = ["and", "or", "not", "near", "caption", "col", "word", "1"] + GREEK
    post = make_post(author, f"{w} {' '.join(filler)}")
    wait_ids(None, w, [post["id"]])
    types = (None, "users", "tags")
    # the q rules
    too_long = ["x" * 513, "a " * 256 + "b", "q" * 1000, "w" * 600]
    bad = [raw_q(x) for x in ["", "   ", "\t\n "] + too_long] + ["%ff%fe", "%c0%af", "%ed%a0%80", "%e2%82", "a%ff",
                                                                  "%f8%88%80%80%80", f"{w}%80"]
    for t in types:
        bad_param(get(None, "/v1/search", raw="" if t is None else f"type={t}"), "q")
        for q in bad:
            bad_param(get(None, "/v1/search", raw=f"q={q}" + ("" if t is None else f"&type={t}")), "q")
    bad_param(get(None, "/v1/search/autocomplete", raw=""), "q")
    for q in bad + [raw_q("x" * 101)]:
        bad_param(get(None, "/v1/search/autocomplete", raw=f"q={q}"), "q")
    # at the limits: 512 characters after trimming, 100 for autocomplete
    for q in ("x" * 512, "  " + "x" * 512 + "  ", "a " * 255 + "b", "é" * 512, "📷" * 512, "\u3000" + "ж" * 512):
        check_search_body(search(None, q))
    for q in ("x" * 100, "é" * 100, "📷" * 100):
        autocomplete(None, q)
    for q in ("é" * 513, "📷" * 513):
        bad_param(search_r(None, q), "q")
    for q in ("é" * 101, "📷" * 101):
        bad_param(autocomplete_r(None, q), "q")
    # syntax, punctuation, emoji: 200 with its words searched as words (none: nothing found)
    for q in NO_WORD + WORDS_OF_SYNTAX:
        for t in types:
            r = search_r(None, q, type=t)
            assert r.status_code == 200, (q, t, r.status_code, r.text)
            no_engine_text(r)
            check_search_body(r.json(), t or "posts")
        if q in NO_WORD:
            assert search(None, q) == {"items": [], "total": 0}, q
        r = autocomplete_r(None, q)
        assert r.status_code == (200 if len(q.strip()) <= 100 else 400), (q, r.status_code, r.text)
        no_engine_text(r)
    # a real word inside the syntax still finds the post
    hits = [f'"{w}', f'{w}"', f'"{w}"', f'{w} AND OR', f"{w} and or", f"NEAR({w} near)", f"NEAR({w}",
            f"({w})", f"{w})", f"{w}*", f"*{w}", f"-{w}", f"^{w}", f"+{w}", f"{{{w}}}", f"caption:{w}",
            f"col:{w}", f"{w}:", f"{w} NOT", f"'{w}'", f"{w};--", f"  {w}  ", f"{w.upper()}", f"{w} OR 1",
            f"{w}\"*", f'"{w} near', " ".join([w] + filler[:15] + [word()])]
    for q in hits:
        r = search_r(None, q)
        assert r.status_code == 200, (q, r.status_code, r.text)
        assert post["id"] in ids(check_search_body(r.json())), (q, r.json())
    # only the first 16 words count (above, the 17th was unknown): an unknown one among them finds nothing
    assert search(None, " ".join([w, word()] + filler[:14])) == {"items": [], "total": 0}
    # control characters: refused or searched, never a 5xx
    for q in ("%00", "%01", f"{w}%00", f"{w}%01", "%7f", f"%09{w}%0a", f"{w}%0d%0a", "%1b[31m"):
        for t in types:
            _ok_or_400(get(None, "/v1/search", raw=f"q={q}" + ("" if t is None else f"&type={t}")), q)
        _ok_or_400(get(None, "/v1/search/autocomplete", raw=f"q={q}"), q)


# ------------------------------------------------------------------ restart

def test_a_restart_rebuilds_the_same_index_and_catches_up_with_events_sent_while_down(corpus, author):
    w, t = corpus["word"], corpus["tag"]
    first, last = name_words(author)
    # what the index must rebuild besides the corpus: an edit, a deletion, a block, a like
    old, new, gone, bw = word(), word(), word(), word()
    edited = make_post(author, f"{old} to be edited")
    assert author.patch(f"/v1/posts/{edited['id']}", json={"caption": f"{new} edited"}).status_code == 200
    deleted = make_post(author, f"{gone} to be deleted")
    assert author.delete(f"/v1/posts/{deleted['id']}").status_code == 204
    a, b = named_user(), named_user()
    pa, pb = make_post(a, f"{bw} of a"), make_post(b, f"{bw} of b")
    assert like(b, "posts", pb["id"]).status_code == 200
    assert a.block(b).status_code == 200
    # and what will change while search is down
    zold, znew, yw = word(), word(), word()
    z, y = make_post(author, f"{zold} to be edited while down"), make_post(author, f"{yw} to be deleted while down")
    queries = [(None, w, None, None, None), (None, f"#{t}", None, None, None), (None, t, None, None, None),
               (None, w, None, 2, 1), (None, f"{w} one", None, None, None), (None, author.username, "users", None, None),
               (None, last, "users", None, None), (None, first[:6], "users", None, None), (None, t, "tags", None, None),
               (None, t[:5], "tags", None, None), (None, new, None, None, None), (None, old, None, None, None),
               (None, gone, None, None, None), (a, bw, None, None, None), (b, bw, None, None, None),
               (None, bw, None, None, None), (a, b.username, "users", None, None)]

    def snapshot():
        return [search(who, q, type=ty, limit=li, offset=of) for who, q, ty, li, of in queries]
    wait_ids(a, bw, [pa["id"]])
    wait_ids(None, zold, [z["id"]])
    wait_ids(None, yw, [y["id"]])
    wait_ids(None, gone, [])
    before = snapshot()
    assert [x["total"] for x in before[:2]] == [3, 2] and before[5]["total"] == 1
    assert [ids(x) for x in before[10:16]] == [[edited["id"]], [], [], [pa["id"]], [pb["id"]], ids(before[15])]
    assert sorted(ids(before[15])) == sorted([pa["id"], pb["id"]]) and before[16]["total"] == 0
    n = word()
    stack("stop", "search")
    try:
        late_post = make_post(author, f"{n} posted while search was down")
        late_user = named_user(username="s" + n)
        assert author.patch(f"/v1/posts/{z['id']}", json={"caption": f"{znew} edited while down"}).status_code == 200
        assert author.delete(f"/v1/posts/{y['id']}").status_code == 204
    finally:
        stack("start", "search")
    wait_until(search_ready, timeout=30, interval=0.1, what="search ready")
    after = snapshot()
    for q, x, y_ in zip(queries, before, after):
        assert y_ == x, (q[1:], x, y_)
    _, took = wait_ids(None, n, [late_post["id"]])
    print(f"a post made while search was down was found {took:.3f} s after search was ready")
    wait_ids(None, late_user.username, [late_user.id], type="users")
    wait_ids(None, znew, [z["id"]])
    assert search(None, zold) == {"items": [], "total": 0}
    assert search(None, yw) == {"items": [], "total": 0}
    # and after a SIGKILL, the same again
    queries += [(None, n, None, None, None), (None, znew, None, None, None), (None, late_user.username, "users", None, None)]
    before = snapshot()
    pid = pid_of("search")
    stack("kill9", "search")
    wait_until(lambda: not alive(pid), timeout=20, what="search gone")
    stack("start", "search")
    wait_until(search_ready, timeout=30, interval=0.1, what="search ready after SIGKILL")
    for q, x, y_ in zip(queries, before, snapshot()):
        assert y_ == x, (q[1:], x, y_)
