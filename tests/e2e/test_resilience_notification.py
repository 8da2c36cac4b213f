"""test_resilience_notification.py -- notification killed with SIGKILL in the middle of a burst of
events: what it had taken but not acked comes again, what it had stored it finds again (ids are
made from the event), so every notification is there exactly once and the unread count is exact."""
import time
import uuid

from authlib import User
from conftest import stack, wait_until
from notiflib import inbox, notification_ready, publish_event, queue_depth, unread
from publib import make_post
from test_resilience import alive, pid_of

LIKES = 240
FOLLOWS = 60


def test_kill9_mid_burst_loses_no_notification_and_duplicates_none():
    a = User()
    post = make_post(a, "burst")
    stack("stop", "notification")
    try:
        # the burst waits in notification.events while the daemon is down
        for i in range(LIKES):
            actor = f"actor{uuid.uuid4().hex[:16]}"
            publish_event("like.created", {
                "target_type": "post", "target_id": post["id"], "post_id": post["id"], "recipient_id": a.id,
                "user_id": actor, "username": f"liker{i:04d}", "created_at": f"2026-11-21T18:{i // 60:02d}:{i % 60:02d}.000Z"})
        for i in range(FOLLOWS):
            actor = f"actor{uuid.uuid4().hex[:16]}"
            publish_event("follow.created", {
                "follower_id": actor, "follower_username": f"fan{i:04d}", "followee_id": a.id,
                "followee_username": a.username, "created_at": f"2026-11-21T19:00:{i:02d}.000Z"})
        total = queue_depth("notification.events")
        assert total >= LIKES + FOLLOWS, total
    finally:
        stack("start", "notification")
    wait_until(notification_ready, timeout=30, what="notification ready")
    # SIGKILL once it is well into the burst
    wait_until(lambda: queue_depth("notification.events") < total - 40, timeout=60, interval=0.05,
               what="notification consuming the burst")
    pid = pid_of("notification")
    stack("kill9", "notification")
    wait_until(lambda: not alive(pid), timeout=20, what="notification gone")
    left = queue_depth("notification.events")
    assert left > 0, "the kill came after the burst: make it longer"
    stack("start", "notification")
    wait_until(notification_ready, timeout=30, what="notification ready again")
    wait_until(lambda: queue_depth("notification.events") == 0, timeout=120, what="the burst handled")
    items = wait_until(lambda: (lambda i: i if len(i) >= LIKES + FOLLOWS else None)(inbox(a)), timeout=30,
                       what="every notification")
    likers = sorted(n["actor"]["username"] for n in items if n["type"] == "like")
    fans = sorted(n["actor"]["username"] for n in items if n["type"] == "follow")
    assert likers == [f"liker{i:04d}" for i in range(LIKES)]
    assert fans == [f"fan{i:04d}" for i in range(FOLLOWS)]
    assert len(items) == LIKES + FOLLOWS and len({n["id"] for n in items}) == len(items)
    assert unread(a) == LIKES + FOLLOWS



def test_events_wait_out_a_database_outage():
    """Events that arrive while FerretDB is down are retried until it is back (notification's
    consumers allow 1,000 redeliveries, not the default 5, which would have dead-lettered them after
    about 12 s): a follow and a like published during a 20 s outage are in the inbox afterwards,
    once each, and nothing is dead-lettered."""
    a = User()
    post = make_post(a, "outage")
    dlq_before = queue_depth("notification.events.dlq")
    stack("stop", "ferretdb")
    try:
        publish_event("follow.created", {"follower_id": "outage-fan", "follower_username": "outagefan",
                                         "followee_id": a.id, "followee_username": a.username,
                                         "created_at": "2026-11-21T18:40:03.000Z"})
        publish_event("like.created", {"target_type": "post", "target_id": post["id"], "post_id": post["id"],
                                       "recipient_id": a.id, "user_id": "outage-fan", "username": "outagefan",
                                       "created_at": "2026-11-21T18:40:04.000Z"})
        time.sleep(20)  # longer than 5 retries of a message last
    finally:
        stack("start", "ferretdb")
    items = wait_until(lambda: (lambda i: i if len(i) == 2 else None)(inbox(a)), timeout=60, interval=0.5,
                       what="both notifications once the database is back")
    assert sorted(n["type"] for n in items) == ["follow", "like"]
    wait_until(lambda: queue_depth("notification.events") == 0, timeout=30, what="notification.events drained")
    assert queue_depth("notification.events.dlq") == dlq_before, "an event was dead-lettered"
