"""test_contract_notification.py -- notification against proto/: its routes in openapi.yaml (RPC method,
token, statuses, the Notification shapes the running daemon answers), and its queues in asyncapi.yaml."""
import pytest

import publib
from authlib import User
from conftest import h2_client
from notiflib import wait_inbox
from test_contract import (OPENAPI, HTTP_METHODS, _component, _gateway_routes, _token_kind, check_service_queues,
                           rabbit, validate)  # noqa: F401 (fixture)

NOTIFICATION_ROUTES = {
    ("/v1/notifications", "get"): ("notification.list", 200),
    ("/v1/notifications/unread_count", "get"): ("notification.unread_count", 200),
    ("/v1/notifications/read_all", "post"): ("notification.read_all", 204),
    ("/v1/notifications/{id}", "patch"): ("notification.mark", 200),
}


@pytest.fixture
def notification_up():
    with h2_client() as c:
        ready = c.get("/readyz").json()
    assert ready.get("services", {}).get("notification") == "up", f"notification is not up: {ready}"


def test_openapi_has_every_notification_route_and_the_gateway_sends_them_to_notification():
    ops = {(path, m) for path, item in OPENAPI["paths"].items() for m in HTTP_METHODS
           if m in item and str(item[m].get("x-rpc", "")).startswith("notification.")}
    assert ops == set(NOTIFICATION_ROUTES)
    routes = _gateway_routes()
    for (path, method), (rpc, success) in NOTIFICATION_ROUTES.items():
        op = OPENAPI["paths"][path][method]
        assert op["x-rpc"] == rpc and op["tags"] == ["notifications"]
        assert _token_kind(op) == "required", path
        codes = {int(c) for c in op["responses"]}
        assert {success, 400, 401, 429, 503, 504} <= codes, (path, codes)
        assert routes[(path, method)] == ("notification", rpc, "required")
    assert {404, 413, 415, 422} <= {int(c) for c in OPENAPI["paths"]["/v1/notifications/{id}"]["patch"]["responses"]}


def test_live_notifications_match_the_schemas(notification_up):
    a, b = User(), User()
    post = publib.make_post(a, "contract")
    assert b.follow(a).status_code == 200
    assert publib.like(b, "posts", post["id"]).status_code == 200
    top = publib.comment(b, post["id"], "hello")
    assert publib.like(a, "comments", top["id"]).status_code == 200
    publib.comment(a, post["id"], "a reply", reply_to=top["id"])
    wait_inbox(a, lambda i: len(i) == 3, what="a follow, a like and a comment")
    wait_inbox(b, lambda i: len(i) == 2, what="a like of a comment and a reply")
    r = a.get("/v1/notifications", params={"limit": 2})
    validate(r.json(), _component("NotificationList"), "a page of notifications")
    assert r.json()["next_cursor"]
    for user in (a, b):
        for n in user.get("/v1/notifications").json()["items"]:
            validate(n, _component("Notification"), f"a {n['type']} notification")
    validate(a.get("/v1/notifications/unread_count").json(), _component("UnreadCount"), "the unread count")
    nid = r.json()["items"][0]["id"]
    m = a.patch(f"/v1/notifications/{nid}", json={"read": True})
    validate(m.json(), _component("Notification"), "a marked notification")
    bad = [{"id": "x"}, {**m.json(), "type": "mention"}, {**m.json(), "read": "no"},
           {k: v for k, v in m.json().items() if k != "target"}, {**m.json(), "extra": 1}]
    for instance in bad:
        with pytest.raises(AssertionError):
            validate(instance, _component("Notification"), "a bad notification")


def test_notification_queues_match_asyncapi(notification_up, rabbit):
    """notification.events, .rpc, .mail and (when push is on, as on the test stack) .push exist as
    asyncapi.yaml declares them, bound as it says, and consumed with manual acks."""
    check_service_queues(rabbit, "notification",
                         ("notificationEvents", "notificationRpc", "notificationMail", "notificationPush"))
