"""test_posts.py -- publication's posts over the gateway (services/publication/README.md): create, get,
edit, delete; media copied from resize-image; hashtags and mentions; the embedded author following
auth's events; anonymous reads; user and tag lists newest first with stable cursors; blocks; the
cascade of a deletion and of an account deletion."""
import threading
import time
import unicodedata
import urllib.parse
from datetime import datetime, timedelta, timezone

from authlib import call_as, h2, run_together, uniq
from authlib import users  # noqa: F401 (fixture)
from conftest import is_problem, wait_until
from publib import (anon_get, check_post, comment, comment_ids, create_post, fresh_tag, get_post, hidden, ids,
                    known, like, like_answer, liker_names, make_post, media_ids, parse_time,
                    post_media_of, tag_posts, upload_media, user_posts, visible, walk)


# ------------------------------------------------------------------ create and get

def test_create_and_get_a_post(users):
    a, b = users(2)
    ups = upload_media(a, 3)
    order = [ups[2]["id"], ups[0]["id"], ups[1]["id"]]  # not the upload order: the order given
    t0 = datetime.now(timezone.utc)
    p = make_post(a, "Morning at the lake #Sunrise", ids=order)
    assert p["caption"] == "Morning at the lake #Sunrise"
    assert p["author"] == {"id": a.id, "username": a.username, "name": "", "avatar": None}
    assert ids(p["media"]) == order
    by_id = {u["id"]: u for u in ups}
    assert p["media"] == [post_media_of(by_id[i]) for i in order]
    assert p["tags"] == ["sunrise"] and p["mentions"] == []
    assert (p["like_count"], p["comment_count"], p["liked_by_me"], p["edited_at"]) == (0, 0, False, None)
    assert abs(parse_time(p["created_at"]) - t0) < timedelta(seconds=30)
    # The same post for its author, another user and an anonymous caller.
    assert get_post(a, p["id"]) == p
    assert get_post(b, p["id"]) == p
    with h2() as c:
        assert get_post(c, p["id"]) == p


def test_media_are_copied_with_the_urls_resize_image_gives(users):
    a = users()
    p = make_post(a, n=2)
    for x in p["media"]:
        r = a.get(f"/v1/media/{x['id']}")
        assert r.status_code == 200, r.text
        shown = r.json()
        assert x == post_media_of(shown)
        # The URLs serve the images.
        with h2() as c:
            for v in x["variants"].values():
                got = c.get(v["url"])
                assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg", v["url"]


def test_ten_media_at_most_and_caption_defaults_to_empty(users):
    a = users()
    mids = media_ids(a, 10)
    r = create_post(a, None, ids=list(reversed(mids)))
    assert r.status_code == 201, r.text
    p = check_post(r.json(), a)
    assert ids(p["media"]) == list(reversed(mids))
    assert p["caption"] == "" and p["tags"] == [] and p["mentions"] == []


def test_caption_of_2200_characters_not_bytes(users):
    a = users()
    for caption in ("é" * 2200, "😀" * 2200, "a" * 2200, ""):
        p = make_post(a, caption)
        assert p["caption"] == caption
        assert get_post(a, p["id"])["caption"] == caption


def test_the_same_media_in_two_posts(users):
    """A post copies its media: one photo may be posted twice (nothing in the contract forbids it)."""
    a = users()
    p1, p2 = make_post(a, "one"), make_post(a, "two")
    assert p1["media"] == p2["media"] and p1["id"] != p2["id"]


# ------------------------------------------------------------------ hashtags

def test_hashtags_parsed_from_the_caption(users):
    a = users()
    long_ok, long_bad = "a" * 100, "b" * 101
    caption = ("#Café and #CAFÉ again, #Cafe\u0301 decomposed; #日本 #Ελλάδα (#paren) -#dash "
               "#2024goals #123 #_ #_x1 word#nottag x_#under 1#digit #one#two #fin.  #tag😀 #😀 "
               f"#ﬁx #Ｗｉｄｅ #{long_ok} #{long_bad}\n#newline #sunrise #SUNRISE")
    p = make_post(a, caption)
    assert p["tags"] == ["café", "日本", "ελλάδα", "paren", "dash", "2024goals", "_x1", "one", "fin", "tag",
                         "fix", "wide", long_ok, "newline", "sunrise"], p["tags"]
    for t in p["tags"]:
        assert t == unicodedata.normalize("NFKC", t).casefold()


def test_hashtags_full_case_folding(users):
    """Case-folded (Unicode CaseFolding, full): ß folds to ss, so #Straße and #STRASSE are one tag."""
    a = users()
    p = make_post(a, "#Straße #STRASSE #Maße")
    assert p["tags"] == ["strasse", "masse"], p["tags"]


def test_at_most_30_hashtags_the_first_ones(users):
    a = users()
    base = fresh_tag("cap")
    tags = [f"{base}x{i}" for i in range(35)]
    p = make_post(a, " ".join("#" + t for t in tags))
    assert p["tags"] == tags[:30]
    assert tag_posts(a, tags[29]) == [p["id"]]
    assert tag_posts(a, tags[30]) == []


# ------------------------------------------------------------------ mentions

def test_mentions_of_existing_users_in_order(users):
    a, b, c = users(3)
    known(b)
    known(c)
    ghost = uniq("ghost")
    caption = (f"with @{c.username.upper()} and @{b.username}, again @{c.username}; not mail{b.username}@x "
               f"nor x@{b.username}; (@{b.username}) @{ghost} @ab @{a.username}")
    p = make_post(a, caption)
    assert p["mentions"] == [{"id": c.id, "username": c.username}, {"id": b.id, "username": b.username},
                             {"id": a.id, "username": a.username}], p["mentions"]


def test_mention_only_after_a_non_name_character(users):
    a, b = users(2)
    known(b)
    for caption in (f"x@{b.username}", f"_@{b.username}", f"9@{b.username}", f".@{b.username}"):
        assert make_post(a, caption)["mentions"] == [], caption
    for caption in (f"@{b.username}", f"-@{b.username}", f"hi\n@{b.username}", f"«@{b.username}»"):
        assert make_post(a, caption)["mentions"] == [{"id": b.id, "username": b.username}], caption


def test_at_most_20_mentions(users):
    a = users()
    others = users(21)
    run_together([lambda u=u: known(u) for u in others])
    p = make_post(a, " ".join("@" + u.username for u in others))
    assert p["mentions"] == [{"id": u.id, "username": u.username} for u in others[:20]]


# ------------------------------------------------------------------ edit

def test_author_edits_the_caption_tags_and_mentions_follow(users):
    a, b = users(2)
    known(b)
    old, new = fresh_tag("old"), fresh_tag("new")
    p = make_post(a, f"#{old} caption")
    assert p["edited_at"] is None
    caption = f"#{new.upper()} #tags for @{b.username} #{new}"
    r = a.patch(f"/v1/posts/{p['id']}", json={"caption": caption})
    assert r.status_code == 200, r.text
    e = check_post(r.json(), a)
    assert e["id"] == p["id"] and e["created_at"] == p["created_at"] and e["media"] == p["media"]
    assert e["caption"] == caption
    assert e["tags"] == [new, "tags"]
    assert e["mentions"] == [{"id": b.id, "username": b.username}]
    assert e["edited_at"] is not None and parse_time(e["edited_at"]) >= parse_time(p["created_at"])
    assert get_post(b, p["id"]) == {**e, "liked_by_me": False}
    # The tag lists follow: the old tag no longer lists it, the new one does.
    assert tag_posts(a, old) == []
    assert tag_posts(a, new) == [p["id"]]
    # An empty caption is a caption too.
    r = a.patch(f"/v1/posts/{p['id']}", json={"caption": ""})
    assert r.status_code == 200, r.text
    assert (r.json()["caption"], r.json()["tags"], r.json()["mentions"]) == ("", [], [])
    assert parse_time(r.json()["edited_at"]) >= parse_time(e["edited_at"])


def test_only_the_author_edits_or_deletes(users):
    a, b = users(2)
    p = make_post(a, "mine #keep")
    is_problem(b.patch(f"/v1/posts/{p['id']}", json={"caption": "yours now"}), 403)
    is_problem(b.delete(f"/v1/posts/{p['id']}"), 403)
    with h2() as c:
        is_problem(c.patch(f"/v1/posts/{p['id']}", json={"caption": "anon"}), 401)
        is_problem(c.delete(f"/v1/posts/{p['id']}"), 401)
    assert get_post(a, p["id"]) == p


# ------------------------------------------------------------------ delete

def test_author_deletes_a_post(users):
    a, b = users(2)
    tag = fresh_tag()
    p = make_post(a, f"bye #{tag}")
    keep = make_post(a, f"stay #{tag}")
    r = a.delete(f"/v1/posts/{p['id']}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    for who in (a, b):
        get_post(who, p["id"], status=404)
    is_problem(anon_get(f"/v1/posts/{p['id']}"), 404)
    is_problem(a.delete(f"/v1/posts/{p['id']}"), 404)
    is_problem(a.patch(f"/v1/posts/{p['id']}", json={"caption": "back?"}), 404)
    assert user_posts(b, a.username) == [keep["id"]]
    assert tag_posts(b, tag) == [keep["id"]]


def test_deleting_a_post_takes_its_comments_and_likes(users):
    a, b, c = users(3)
    p = make_post(a, "to go")
    other = make_post(a, "to stay")
    top = comment(b, p["id"], "first")
    reply = comment(c, p["id"], "reply", reply_to=top["id"])
    kept = comment(b, other["id"], "elsewhere")
    like_answer(like(b, "posts", p["id"]), True, 1)
    like_answer(like(c, "comments", top["id"]), True, 1)
    like_answer(like(c, "posts", other["id"]), True, 1)
    assert get_post(a, p["id"])["comment_count"] == 2
    assert a.delete(f"/v1/posts/{p['id']}").status_code == 204
    for path in (f"/v1/posts/{p['id']}/comments", f"/v1/posts/{p['id']}/likes", f"/v1/comments/{top['id']}",
                 f"/v1/comments/{reply['id']}"):
        is_problem(b.get(path), 404)
    is_problem(c.post(f"/v1/comments/{top['id']}/like"), 404)
    is_problem(b.post(f"/v1/posts/{p['id']}/like"), 404)
    is_problem(b.post(f"/v1/posts/{p['id']}/comments", json={"text": "late"}), 404)
    is_problem(b.patch(f"/v1/comments/{top['id']}", json={"text": "edit"}), 404)
    # The other post keeps what is its own.
    o = get_post(c, other["id"])
    assert (o["comment_count"], o["like_count"], o["liked_by_me"]) == (1, 1, True)
    assert comment_ids(c, other["id"]) == [kept["id"]]


# ------------------------------------------------------------------ the embedded author

def test_author_name_change_reaches_the_embedded_author(users):
    a = users()
    p = make_post(a, "named")
    assert a.patch("/v1/me", json={"name": "Ada Lovelace"}).status_code == 200
    wait_until(lambda: get_post(a, p["id"])["author"]["name"] == "Ada Lovelace", timeout=15,
               what="the new name in the post")
    items, _ = walk(a, f"/v1/users/{a.username}/posts")
    assert items[0]["author"] == {"id": a.id, "username": a.username, "name": "Ada Lovelace", "avatar": None}
    # A comment's author too.
    c = comment(a, p["id"], "me")
    assert c["author"]["name"] == "Ada Lovelace"


def test_avatar_is_the_thumb_of_the_avatar_media(users):
    a = users()
    p = make_post(a, "face")
    face = upload_media(a)[0]
    assert a.patch("/v1/me", json={"avatar_media_id": face["id"]}).status_code == 200
    thumb = face["variants"]["thumb"]["url"]
    wait_until(lambda: get_post(a, p["id"])["author"]["avatar"] == thumb, timeout=15,
               what="the avatar in the post")
    with h2() as c:
        assert c.get(thumb).status_code == 200
    assert a.patch("/v1/me", json={"avatar_media_id": None}).status_code == 200
    wait_until(lambda: get_post(a, p["id"])["author"]["avatar"] is None, timeout=15, what="the avatar gone")


def test_avatar_of_someone_elses_or_an_unknown_media_is_null(users):
    """auth takes any media id of the right shape as avatar_media_id; publication shows only the
    user's own media (README: the thumb of "the user's avatar_media_id")."""
    a, b = users(2)
    p = make_post(a, "me")
    own, theirs = upload_media(a)[0], upload_media(b)[0]
    author = lambda: get_post(a, p["id"])["author"]["avatar"]  # noqa: E731
    for media_id, want in ((own["id"], own["variants"]["thumb"]["url"]), (theirs["id"], None),
                           (own["id"], own["variants"]["thumb"]["url"]), ("0123456789abcdef" * 2, None)):
        assert a.patch("/v1/me", json={"avatar_media_id": media_id}).status_code == 200
        wait_until(lambda: author() == want, timeout=15, what=f"avatar {want}")


# ------------------------------------------------------------------ anonymous callers

def test_anonymous_callers_read_but_do_not_write(users):
    a, b = users(2)
    tag = fresh_tag()
    p = make_post(a, f"open #{tag}")
    cm = comment(b, p["id"], "hello")
    like_answer(like(b, "posts", p["id"]), True, 1)
    like_answer(like(b, "comments", cm["id"]), True, 1)
    with h2() as c:
        got = get_post(c, p["id"])
        assert (got["like_count"], got["comment_count"], got["liked_by_me"]) == (1, 1, False)
        assert ids(walk(c, f"/v1/users/{a.username}/posts")[0]) == [p["id"]]
        assert ids(walk(c, f"/v1/tags/{tag}/posts")[0]) == [p["id"]]
        items = walk(c, f"/v1/posts/{p['id']}/comments")[0]
        assert ids(items) == [cm["id"]] and items[0]["liked_by_me"] is False and items[0]["like_count"] == 1
        r = c.get(f"/v1/comments/{cm['id']}")
        assert r.status_code == 200 and r.json()["liked_by_me"] is False
        assert [x["id"] for x in walk(c, f"/v1/posts/{p['id']}/likes")[0]] == [b.id]
        for method, path, body in (("POST", "/v1/posts", {"media_ids": media_ids(a)}),
                                   ("POST", f"/v1/posts/{p['id']}/comments", {"text": "anon"}),
                                   ("POST", f"/v1/posts/{p['id']}/like", None),
                                   ("DELETE", f"/v1/posts/{p['id']}/like", None),
                                   ("POST", f"/v1/comments/{cm['id']}/like", None),
                                   ("DELETE", f"/v1/comments/{cm['id']}/like", None),
                                   ("PATCH", f"/v1/comments/{cm['id']}", {"text": "anon"}),
                                   ("DELETE", f"/v1/comments/{cm['id']}", None)):
            is_problem(c.request(method, path, json=body), 401)
    got = get_post(b, p["id"])
    assert (got["like_count"], got["comment_count"], got["liked_by_me"]) == (1, 1, True)
    assert user_posts(b, a.username) == [p["id"]]


# ------------------------------------------------------------------ lists

def test_user_posts_newest_first_in_pages(users):
    a, b = users(2)
    made = [make_post(a, f"post {i}")["id"] for i in range(7)]
    make_post(b, "someone else's")
    newest_first = list(reversed(made))
    items, pages = walk(b, f"/v1/users/{a.username}/posts", limit=3)
    assert ids(items) == newest_first
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    for it in items:
        check_post(it, a)
    assert [it["caption"] for it in items] == [f"post {i}" for i in reversed(range(7))]
    # Default limit 20: one page.
    body = b.get(f"/v1/users/{a.username}/posts").json()
    assert ids(body["items"]) == newest_first and body["next_cursor"] is None
    # The list items are the posts as GET shows them.
    assert items[0] == get_post(b, made[-1])
    # Usernames are case-folded like auth's.
    assert user_posts(b, a.username.upper()) == newest_first


def test_user_posts_of_an_unknown_user_is_404(users):
    a = users()
    is_problem(a.get(f"/v1/users/{uniq('ghost')}/posts"), 404)
    is_problem(anon_get(f"/v1/users/{uniq('ghost')}/posts"), 404)


def test_user_with_no_posts_has_an_empty_list(users):
    a = users()
    known(a)
    assert walk(a, f"/v1/users/{a.username}/posts")[0] == []


def test_tag_posts_newest_first_in_pages_case_folded(users):
    a, b = users(2)
    tag = fresh_tag("Mixed")
    made = []
    for i in range(5):
        who = (a, b)[i % 2]
        made.append(make_post(who, f"#{tag if i % 2 else tag.upper()} number {i}")["id"])
    make_post(a, "#other no")
    newest_first = list(reversed(made))
    items, pages = walk(a, f"/v1/tags/{tag.lower()}/posts", limit=2)
    assert ids(items) == newest_first
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    for it in items:
        check_post(it)
        assert tag.lower() in it["tags"]
    with h2() as c:
        assert tag_posts(c, tag.lower()) == newest_first
    # The tag in the path is folded like the caption's.
    assert tag_posts(a, tag.upper()) == newest_first


def test_unicode_tag_in_the_path(users):
    a = users()
    tag = "café" + fresh_tag("x")
    p = make_post(a, f"#{tag.upper()}")
    assert p["tags"] == [tag]
    assert tag_posts(a, urllib.parse.quote(tag)) == [p["id"]]
    assert tag_posts(a, urllib.parse.quote(unicodedata.normalize("NFD", tag.upper()))) == [p["id"]]


def test_unknown_or_malformed_tag_is_an_empty_list(users):
    a = users()
    for tag in (fresh_tag("nobody"), "123", "_", "%20", "a" * 101, "%F0%9F%98%80", "semi;colon"):
        r = a.get(f"/v1/tags/{tag}/posts")
        assert r.status_code == 200, (tag, r.status_code, r.text)
        assert r.json() == {"items": [], "next_cursor": None}, tag


def _stable_walk(get, path, creator, limit=3):
    """Walks path page by page while creator() runs in another thread between pages; returns the
    walked ids and what creator made."""
    made, stop = [], threading.Event()

    def run():
        while not stop.is_set():
            made.append(creator())
            stop.wait(0.1)

    t = threading.Thread(target=run)
    seen, cursor, started = [], None, False
    try:
        for _ in range(100):
            params = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            r = get(path, params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            seen.extend(ids(body["items"]))
            if not started:
                t.start()
                started = True
                wait_until(lambda: len(made) >= 1, timeout=20, what="posts made while paging")
            cursor = body["next_cursor"]
            if cursor is None:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        if started:
            t.join(timeout=30)
    return seen, made


def test_user_posts_paging_is_stable_while_posts_are_created(users):
    a, b = users(2)
    before = [make_post(a, f"old {i}")["id"] for i in range(12)]
    seen, made = _stable_walk(b.get, f"/v1/users/{a.username}/posts", lambda: make_post(a, "new")["id"])
    assert made, "nothing was created while paging"
    assert len(seen) == len(set(seen)), f"an item twice: {seen}"
    assert [i for i in seen if i in before] == list(reversed(before)), "an item skipped or out of order"
    # Only the first page may hold new posts (they are newer than any cursor).
    assert set(seen[3:]) <= set(before)
    assert user_posts(b, a.username)[:len(made)] == list(reversed(made))


def test_tag_posts_paging_is_stable_while_posts_are_created(users):
    a, b = users(2)
    tag = fresh_tag()
    before = [make_post((a, b)[i % 2], f"#{tag} old {i}")["id"] for i in range(10)]
    seen, made = _stable_walk(a.get, f"/v1/tags/{tag}/posts", lambda: make_post(b, f"#{tag} new")["id"], limit=2)
    assert made
    assert len(seen) == len(set(seen)), f"an item twice: {seen}"
    assert [i for i in seen if i in before] == list(reversed(before)), "an item skipped or out of order"
    assert set(seen[2:]) <= set(before)


def test_concurrent_creates_all_listed_once(users):
    a = users()
    mids = media_ids(a, 1)
    results = run_together([lambda i=i: call_as(a, "POST", "/v1/posts", json={"caption": f"burst {i}", "media_ids": mids})
                            for i in range(10)])
    made = []
    for r in results:
        assert r.status_code == 201, r.text
        made.append(check_post(r.json(), a)["id"])
    assert len(set(made)) == 10
    listed = user_posts(a, a.username, limit=4)
    assert sorted(listed) == sorted(made)


def test_edits_racing_likes_keep_caption_tags_and_count_together(users):
    a = users()
    fans = users(8)
    p = make_post(a, "orig")
    calls = [lambda u=u: call_as(u, "POST", f"/v1/posts/{p['id']}/like") for u in fans]
    calls += [lambda i=i: call_as(a, "PATCH", f"/v1/posts/{p['id']}", json={"caption": f"#edit{i} @nobody{i}x v{i}"})
              for i in range(5)]
    assert all(r.status_code == 200 for r in run_together(calls))
    got = get_post(a, p["id"])
    i = int(got["caption"].rsplit(" v", 1)[1])
    assert got["caption"] == f"#edit{i} @nobody{i}x v{i}" and got["tags"] == [f"edit{i}"], got
    assert got["like_count"] == 8 and got["edited_at"] is not None


def test_edits_racing_the_delete_never_bring_the_post_back(users):
    a = users()
    tag = fresh_tag()
    p = make_post(a, f"#{tag}")
    calls = [lambda i=i: call_as(a, "PATCH", f"/v1/posts/{p['id']}", json={"caption": f"#{tag} e{i}"}) for i in range(6)]
    calls.insert(3, lambda: call_as(a, "DELETE", f"/v1/posts/{p['id']}"))
    results = run_together(calls)
    assert results[3].status_code == 204
    assert {r.status_code for r in results} <= {200, 204, 404}, [(r.status_code, r.text) for r in results]
    get_post(a, p["id"], status=404)
    assert user_posts(a, a.username) == [] and tag_posts(a, tag) == []


# ------------------------------------------------------------------ blocks

def test_a_block_hides_posts_both_ways(users):
    a, b, c = users(3)
    tag = fresh_tag()
    pa = make_post(a, f"a's #{tag}")
    pb = make_post(b, f"b's #{tag}")
    pc = make_post(c, f"c's #{tag}")
    cb = comment(b, pc["id"], "b was here")
    ca = comment(a, pc["id"], "a was here")
    like_answer(like(b, "posts", pc["id"]), True, 1)
    like_answer(like(a, "posts", pc["id"]), True, 2)
    assert a.block(b).status_code == 200
    hidden(b, pa["id"])
    hidden(a, pb["id"])
    for viewer, other, post in ((b, a, pa), (a, b, pb)):
        pid = post["id"]
        for path in (f"/v1/posts/{pid}", f"/v1/posts/{pid}/comments", f"/v1/posts/{pid}/likes",
                     f"/v1/users/{other.username}/posts"):
            is_problem(viewer.get(path), 404)
        is_problem(viewer.post(f"/v1/posts/{pid}/comments", json={"text": "hi"}), 404)
        is_problem(viewer.post(f"/v1/posts/{pid}/like"), 404)
        # The tag list leaves out the other's post, not the rest.
        assert set(tag_posts(viewer, tag)) == {pc["id"], (pa if viewer is a else pb)["id"]}
    # In c's post, each of them no longer sees the other's comment or like.
    assert comment_ids(a, pc["id"]) == [ca["id"]]
    assert comment_ids(b, pc["id"]) == [cb["id"]]
    assert liker_names(a, pc["id"]) == [a.username]
    assert liker_names(b, pc["id"]) == [b.username]
    # Others and anonymous callers see everything.
    assert set(tag_posts(c, tag)) == {pa["id"], pb["id"], pc["id"]}
    assert comment_ids(c, pc["id"]) == [cb["id"], ca["id"]]
    assert set(liker_names(c, pc["id"])) == {a.username, b.username}
    with h2() as anon:
        get_post(anon, pa["id"])
        get_post(anon, pb["id"])
    # Each still sees itself.
    get_post(a, pa["id"])
    get_post(b, pb["id"])
    # Unblocked: visible again.
    assert a.unblock(b).status_code == 200
    visible(b, pa["id"])
    visible(a, pb["id"])
    assert set(tag_posts(a, tag)) == {pa["id"], pb["id"], pc["id"]}
    assert comment_ids(a, pc["id"]) == [cb["id"], ca["id"]]


def test_no_reply_to_a_comment_hidden_by_a_block(users):
    """A comment hidden from the caller (its author and the caller block each other) is as good as
    unknown to it: replying to it is 422 reply_to, like an unknown id, and nothing is created."""
    a, b, c = users(3)
    pc = make_post(c, "c's")
    ca = comment(a, pc["id"], "a's")
    cb = comment(b, pc["id"], "b's")
    assert a.block(b).status_code == 200
    wait_until(lambda: b.get(f"/v1/comments/{ca['id']}").status_code == 404, timeout=15, what="a's comment hidden")
    wait_until(lambda: a.get(f"/v1/comments/{cb['id']}").status_code == 404, timeout=15, what="b's comment hidden")
    for who, target in ((b, ca), (a, cb)):
        r = who.post(f"/v1/posts/{pc['id']}/comments", json={"text": "sneaky", "reply_to": target["id"]})
        assert "reply_to" in is_problem(r, 422)["errors"], r.text
        is_problem(who.post(f"/v1/comments/{target['id']}/like"), 404)
    assert comment_ids(c, pc["id"]) == [ca["id"], cb["id"]]
    assert get_post(c, pc["id"])["comment_count"] == 2


def test_a_block_by_the_other_side_hides_too(users):
    a, b = users(2)
    pa = make_post(a, "a's")
    pb = make_post(b, "b's")
    cm = comment(a, pa["id"], "own comment")
    assert b.block(a).status_code == 200  # b blocks a: a's post is hidden from b, b's from a
    hidden(a, pb["id"])
    hidden(b, pa["id"])
    is_problem(b.get(f"/v1/comments/{cm['id']}"), 404)
    is_problem(b.post(f"/v1/comments/{cm['id']}/like"), 404)
    is_problem(a.get(f"/v1/users/{b.username}/posts"), 404)
    assert get_post(a, pa["id"])["comment_count"] == 1


# ------------------------------------------------------------------ account deletion

def test_deleted_account_vanishes_from_posts_comments_and_likes(users):
    a, b, c = users(3)
    tag = fresh_tag()
    pa1 = make_post(a, f"#{tag} a1")
    pa2 = make_post(a, "a2")
    pb = make_post(b, f"#{tag} b's")
    cb = comment(b, pb["id"], "b's own")
    ca = comment(a, pb["id"], "a on b")
    ra = comment(a, pb["id"], "a replying to b", reply_to=cb["id"])
    cc = comment(c, pb["id"], "c on b")
    rc = comment(c, pb["id"], "c answering a", reply_to=ca["id"])  # goes with a's comment
    comment(b, pa1["id"], "b on a")
    like_answer(like(a, "posts", pb["id"]), True, 1)
    like_answer(like(c, "posts", pb["id"]), True, 2)
    like_answer(like(a, "comments", cb["id"]), True, 1)
    assert get_post(b, pb["id"])["comment_count"] == 5

    r = a.delete("/v1/me")
    assert r.status_code == 204, r.text

    def gone():
        p = get_post(b, pb["id"])
        return (b.get(f"/v1/posts/{pa1['id']}").status_code == 404 and
                b.get(f"/v1/posts/{pa2['id']}").status_code == 404 and
                (p["comment_count"], p["like_count"]) == (2, 1) and
                b.get(f"/v1/comments/{cb['id']}").json()["like_count"] == 0)
    wait_until(gone, timeout=20, what="a's posts, comments and likes gone")
    assert comment_ids(b, pb["id"]) == [cb["id"], cc["id"]]
    for cid in (ca["id"], ra["id"], rc["id"]):
        is_problem(b.get(f"/v1/comments/{cid}"), 404)
    assert liker_names(b, pb["id"]) == [c.username]
    assert tag_posts(c, tag) == [pb["id"]]
    is_problem(c.get(f"/v1/users/{a.username}/posts"), 404)
    is_problem(anon_get(f"/v1/posts/{pa1['id']}"), 404)
    # The deleted account's token, still unexpired, writes nothing.
    r = wait_until(lambda: (lambda r: r if r.status_code == 401 else None)(
        a.post(f"/v1/posts/{pb['id']}/comments", json={"text": "from beyond"})),
        timeout=15, what="401 for the deleted account")
    assert is_problem(r, 401)["type"].rstrip("/").endswith("account-gone")
    for rr in (create_post(a, "ghost"), a.post(f"/v1/posts/{pb['id']}/like"),
               a.delete(f"/v1/posts/{pb['id']}/like"), a.post(f"/v1/comments/{cb['id']}/like")):
        assert is_problem(rr, 401)["type"].rstrip("/").endswith("account-gone")
    p = get_post(b, pb["id"])
    assert (p["comment_count"], p["like_count"]) == (2, 1)


def test_mention_of_a_deleted_account_vanishes(users):
    """Contract-silent: the issue says deleted users vanish; a mention linking to an account that no
    longer exists would send the app to a 404 profile."""
    a, b = users(2)
    known(b)
    p = make_post(a, f"thanks @{b.username}")
    assert p["mentions"] == [{"id": b.id, "username": b.username}]
    assert b.delete("/v1/me").status_code == 204
    wait_until(lambda: get_post(a, p["id"])["mentions"] == [], timeout=15, what="the mention gone")
    assert get_post(a, p["id"])["caption"] == f"thanks @{b.username}"


def test_post_at_once_after_registering_has_the_full_author(users):
    """publication asks auth about a caller it does not know yet (user.registered may still be on
    its way): the author is complete at once."""
    a = users(name="Grace Hopper")
    mids = media_ids(a, 1)
    p = make_post(a, "first!", ids=mids)
    assert p["author"] == {"id": a.id, "username": a.username, "name": "Grace Hopper", "avatar": None}
