"""test_welcome_mail.py -- the welcome e-mail: sent once per account over SMTP (to the stack's
smtp-sink), plain text and HTML, even when user.registered is delivered again; a mail server that
is down delays it and loses nothing."""
import email
import email.policy
import json
import os
import glob
import time

from authlib import User
from conftest import stack, wait_until
from notiflib import publish_event, settle

MAIL_DIR = os.environ.get("TEST_MAIL_DIR", "")


def mails_to(address):
    """The messages the sink holds for address, parsed."""
    out = []
    for meta in sorted(glob.glob(os.path.join(MAIL_DIR, "*.json"))):
        with open(meta) as f:
            m = json.load(f)
        if address in m["rcpt_to"]:
            with open(meta[:-5] + ".eml", "rb") as f:
                out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def test_a_new_account_gets_one_welcome_mail_in_text_and_html():
    assert MAIL_DIR, "TEST_MAIL_DIR is not set"
    u = User(name="Zoë")
    got = wait_until(lambda: mails_to(u.email), timeout=20, what="the welcome mail")
    assert len(got) == 1
    m = got[0]
    assert m["To"].addresses[0].addr_spec == u.email
    assert "no-reply@photo.test" in m["From"]
    assert m["Message-ID"] == f"<welcome.{u.id}@photo.test>"
    assert "Zoë" in m["Subject"]
    parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert u.username in parts["text/plain"] and u.username in parts["text/html"]
    # the same event again (a redelivery, a replay from the dead-letter queue): no second mail
    publish_event("user.registered", {"user_id": u.id, "username": u.username, "email": u.email, "name": "Zoë",
                                      "created_at": "2026-11-21T18:40:03.000Z"})
    settle(2)
    assert len(mails_to(u.email)) == 1


def test_a_mail_server_that_is_down_delays_the_mail_and_loses_nothing():
    stack("stop", "smtp-sink")
    try:
        u = User()
        settle(3)  # tried, refused, waiting to try again
        assert mails_to(u.email) == []
    finally:
        stack("start", "smtp-sink")
    got = wait_until(lambda: mails_to(u.email), timeout=30, what="the delayed welcome mail")
    assert len(got) == 1
