"""test_push.py -- mobile push through FCM HTTP v1 (the stack's FCM fake checks the OAuth2 assertion
and the bearer of every send): what a notification pushes, to which devices, and what happens when
FCM says a token is dead, asks to slow down, is down for a while, or the access token expires.

The test stack runs notification with PUSH_ATTEMPTS=3 and PUSH_BACKOFF=200ms (deploy/local/test-env.sh),
so a send that keeps failing is given up on within a second and its job goes back to the queue."""
import time

import publib
from authlib import User
from conftest import wait_until
from fcmlib import config, new_token, register_device, reset, rule, sends, stats, wait_sends
from notiflib import inbox, publish_event, settle, wait_inbox


def device_known(user, token):
    """Registers token for user and waits until notification has the device.registered event."""
    register_device(user, token)
    time.sleep(0.5)


def test_a_like_pushes_to_every_device_of_the_recipient_with_the_notification_id():
    a, b = User(), User()
    t1, t2 = new_token(), new_token()
    device_known(a, t1)
    device_known(a, t2)
    tb = new_token()
    device_known(b, tb)
    post = publib.make_post(a, "push me")
    assert publib.like(b, "posts", post["id"]).status_code == 200
    s1, s2 = wait_sends(t1)[0], wait_sends(t2)[0]
    nid = wait_inbox(a, lambda i: len(i) == 1, what="the like")[0]["id"]
    for s in (s1, s2):
        m = s["message"]
        assert s["http"] == "2", "sent over HTTP/2"
        assert m["notification"]["title"] == "Photo"
        assert m["notification"]["body"] == f"{b.username} liked your post."
        assert m["data"] == {"type": "like", "actor_id": b.id, "post_id": post["id"], "notification_id": nid}
        assert m["android"]["notification"]["tag"] == nid
        assert m["apns"]["headers"]["apns-collapse-id"] == nid
    settle(1)
    assert len(sends(t1)) == 1 and len(sends(t2)) == 1, "once per device"
    assert sends(tb) == [], "never to the one who acted"


def test_each_type_has_its_text_and_a_removed_device_gets_nothing():
    a, b = User(), User()
    t = new_token()
    device_known(a, t)
    assert b.follow(a).status_code == 200
    assert wait_sends(t)[0]["message"]["notification"]["body"] == f"{b.username} started following you."
    post = publib.make_post(a, "x")
    publib.comment(b, post["id"], "lovely colours")
    got = wait_sends(t, 2)
    assert got[1]["message"]["notification"]["body"] == f"{b.username} commented: lovely colours"
    tb = new_token()
    device_known(b, tb)
    publib.make_post(a, "new one")
    assert wait_sends(tb)[0]["message"]["notification"]["body"] == f"{a.username} shared a new post."
    assert a.delete(f"/v1/me/devices/{t}").status_code == 204
    time.sleep(0.5)
    assert publib.like(b, "posts", post["id"]).status_code == 200
    wait_inbox(a, lambda i: any(n["type"] == "like" for n in i), what="the like")
    settle(1.5)
    assert len(sends(t)) == 2, "nothing to a removed device"


def test_an_unregistered_token_is_removed_and_never_tried_again():
    a, b = User(), User()
    dead, alive = new_token(), new_token()
    device_known(a, dead)
    device_known(a, alive)
    rule(dead, 404, "UNREGISTERED")
    before = stats()["sends_rejected"]
    assert b.follow(a).status_code == 200
    wait_sends(alive)
    wait_until(lambda: stats()["sends_rejected"] >= before + 1, timeout=10, what="the dead token refused")
    settle(0.5)
    rejected = stats()["sends_rejected"]
    c = User()
    assert c.follow(a).status_code == 200
    wait_sends(alive, 2)
    settle(1)
    assert sends(dead) == []
    assert stats()["sends_rejected"] == rejected, "the dead token was not tried again"


def test_429_with_retry_after_is_honoured_and_the_push_arrives():
    a, b = User(), User()
    t = new_token()
    device_known(a, t)
    rule(t, 429, "QUOTA_EXCEEDED", times=1, retry_after=2)
    t0 = time.time()
    assert b.follow(a).status_code == 200
    s = wait_sends(t, timeout=30)[0]
    assert s["at_ms"] / 1000 - t0 >= 2, "sent again only after Retry-After"
    settle(1)
    assert len(sends(t)) == 1


def test_503_is_retried_with_backoff_and_beyond_the_attempts_the_job_comes_back_later():
    a, b = User(), User()
    t1, t2 = new_token(), new_token()
    device_known(a, t1)
    device_known(a, t2)
    rule(t1, 503, "UNAVAILABLE", times=2)   # within one job's PUSH_ATTEMPTS (3)
    rule(t2, 503, "UNAVAILABLE", times=7)   # more than two jobs' attempts: queued again twice
    assert b.follow(a).status_code == 200
    assert len(wait_sends(t1, timeout=30)) == 1
    assert len(wait_sends(t2, timeout=60)) == 1
    settle(1)
    assert len(sends(t1)) == 1 and len(sends(t2)) == 1, "nothing pushed twice"


def test_the_access_token_is_renewed_before_it_expires():
    a, b = User(), User()
    t = new_token()
    device_known(a, t)
    # the fake forgets the tokens it issued (the daemon's is refused once and fetched again), and
    # issues 4-second ones from now on
    reset(tokens=True)
    config(token_ttl=4)
    try:
        assert b.follow(a).status_code == 200
        wait_sends(t)
        issued, unauth = stats()["tokens_issued"], stats()["unauthenticated"]
        time.sleep(4.5)  # whatever token the daemon held has expired now
        c = User()
        assert c.follow(a).status_code == 200
        wait_sends(t, 2)
        assert stats()["tokens_issued"] >= issued + 1
        assert stats()["unauthenticated"] == unauth, "never sent with an expired token"
    finally:
        config(token_ttl=3600)


def test_a_push_is_not_sent_for_what_is_not_notified():
    a, b = User(), User()
    t = new_token()
    device_known(a, t)
    post = publib.make_post(a, "self")
    assert publib.like(a, "posts", post["id"]).status_code == 200  # oneself
    assert a.block(b).status_code == 200
    time.sleep(0.5)
    # auth refuses a follow across a block; a follow.created that was on its way still tells no one
    publish_event("follow.created", {"follower_id": b.id, "follower_username": b.username, "followee_id": a.id,
                                     "followee_username": a.username, "created_at": "2026-11-21T18:40:03.000Z"})
    settle(1.5)
    assert sends(t) == [] and inbox(a) == []
