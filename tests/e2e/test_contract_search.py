"""test_contract_search.py -- search against proto/: its routes in openapi.yaml (RPC method, optional token,
statuses, parameters, the shapes the running daemon answers), and its queues and its internal exchange
search.sync in asyncapi.yaml (services/search/README.md)."""
import re

import pytest

import publib
from authlib import User, h2
from conftest import h2_client, is_problem, wait_until
from test_contract import (ASYNCAPI, ASYNCAPI_URI, OPENAPI, HTTP_METHODS, _bind, _component, _effective_parameters,
                           _gateway_routes, _payload, _q, _schema_ref, _token_kind, check_operation,
                           check_service_queues, child, follow, get_messages, operation_uri, rabbit, temp_queue,
                           validate)  # noqa: F401 (fixtures)

SEARCH_ROUTES = {
    ("/v1/search", "get"): ("search.search", "SearchResults"),
    ("/v1/search/autocomplete", "get"): ("search.autocomplete", "Autocomplete"),
}
SYNC_KINDS = {"user", "post", "block"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def search_up():
    with h2_client() as c:
        ready = c.get("/readyz").json()
    assert ready.get("services", {}).get("search") == "up", f"search is not up: {ready}"


def test_openapi_has_every_search_route_and_the_gateway_sends_them_to_search():
    ops = {(path, m) for path, item in OPENAPI["paths"].items() for m in HTTP_METHODS
           if m in item and str(item[m].get("x-rpc", "")).startswith("search.")}
    assert ops == set(SEARCH_ROUTES)
    for (path, method), (rpc, shape) in SEARCH_ROUTES.items():
        op = OPENAPI["paths"][path][method]
        op_uri = operation_uri(path, method)
        assert op["x-rpc"] == rpc and op["tags"] == ["search"]
        assert _token_kind(op) == "optional", path
        assert "requestBody" not in op, path
        codes = {int(c) for c in op["responses"]}
        assert codes == {200, 400, 401, 429, 503, 504}, (path, codes)
        resp, resp_uri = follow(child(op_uri, "responses", "200"))
        assert list(resp["content"]) == ["application/json"], path
        assert _schema_ref(child(resp_uri, "content", "application/json", "schema")) == shape, path
        other = OPENAPI["paths"][path]["x-other-methods"]["response"]
        assert other == {"$ref": "#/components/responses/MethodNotAllowed"}, path
    for path, want in (("/v1/search", {"q", "type", "limit", "offset"}), ("/v1/search/autocomplete", {"q"})):
        item_uri = operation_uri(path, "get").rsplit("/", 1)[0]
        params = {n: p for (n, where), p in _effective_parameters(item_uri, operation_uri(path, "get")).items()
                  if where == "query"}
        assert set(params) == want, (path, set(params))
        assert params["q"]["required"] is True
    # The README's rules that a schema can say, and near misses of the shapes.
    post = {"id": "6740a9c3e4b0c1d2e3f40512", "author": {"id": "u1", "username": "alice", "name": "Alice"},
            "caption": "hi #sea", "tags": ["sea"], "thumbnail_url": None, "like_count": 0, "comment_count": 0,
            "created_at": "2026-11-21T18:40:03Z", "edited_at": None}
    user = {"id": "u1", "username": "alice", "name": "Alice", "followers_count": 2}
    tag = {"name": "sea", "post_count": 1}
    for items in ([post], [user], [tag], []):
        validate({"items": items, "total": 7}, _component("SearchResults"), "results")
    validate({"users": [user] * 10, "tags": [tag] * 10}, _component("Autocomplete"), "autocomplete")
    bad_results = [{"items": [post, user], "total": 2}, {"items": [], "total": -1}, {"items": []},
                   {"items": [{**post, "author": {**post["author"], "avatar": None}}], "total": 1},
                   {"items": [{**tag, "name": "#sea"}], "total": 1}, {"items": [{**user, "followers_count": "2"}],
                                                                     "total": 1}]
    for bad in bad_results:
        with pytest.raises(AssertionError):
            validate(bad, _component("SearchResults"), "bad results")
    for bad in ({"users": [user] * 11, "tags": []}, {"users": [], "tags": [post]}, {"users": []}):
        with pytest.raises(AssertionError):
            validate(bad, _component("Autocomplete"), "bad autocomplete")
    routes = _gateway_routes()
    for (path, method), (rpc, _) in SEARCH_ROUTES.items():
        assert routes.get((path, method)) == ("search", rpc, "optional"), (path, method, routes.get((path, method)))


def _search(client_or_user, path, **params):
    r = client_or_user.get(path, params=params)
    body = check_operation(r, path, "get")
    assert r.status_code == 200, (params, r.status_code, r.text)
    return body


def _validate_items(body, name, what):
    for item in body["items"]:
        validate(item, _component(name), what)


def test_live_search_answers_match_the_schemas(search_up):
    word = publib.fresh_tag("srch")  # one word no other test uses: a name word, a caption word and a tag
    a = User(name=f"Contract {word}")
    b = User(name=f"{word} Second")
    assert b.follow(a).status_code == 200
    post = publib.make_post(a, f"Looking for {word} at sea #{word}")
    anon = h2()

    def found():
        items = _search(anon, "/v1/search", q=word)["items"]
        return [p for p in items if p["id"] == post["id"]]

    hit = wait_until(found, timeout=2, interval=0.05, what=f"search finding post {post['id']}")[0]
    assert hit["author"] == {"id": a.id, "username": a.username, "name": f"Contract {word}"}, hit
    assert hit["caption"] == post["caption"] and hit["tags"] == [word], hit
    assert hit["created_at"] == post["created_at"], hit
    _validate_items(_search(b, "/v1/search", q=word, type="posts", limit=5, offset=0), "SearchPost", "a post")
    users = wait_until(lambda: (lambda body: body if body["total"] == 2 else None)(
        _search(anon, "/v1/search", q=word, type="users")), timeout=2, interval=0.05, what="search finding both users")
    assert {u["username"] for u in users["items"]} == {a.username, b.username}, users
    _validate_items(users, "SearchUser", "a user")
    page = _search(a, "/v1/search", q=word, type="users", limit=1)
    assert len(page["items"]) == 1 and page["total"] == 2, page
    tags = _search(anon, "/v1/search", q=f"#{word}", type="tags")
    assert tags == {"items": [{"name": word, "post_count": 1}], "total": 1}, tags
    _validate_items(tags, "SearchTag", "a tag")
    assert _search(anon, "/v1/search", q='"*') == {"items": [], "total": 0}
    both = _search(a, "/v1/search/autocomplete", q=word[:10])
    assert word in {t["name"] for t in both["tags"]} and b.username in {u["username"] for u in both["users"]}, both
    only_tags = _search(anon, "/v1/search/autocomplete", q=f"#{word}")
    assert only_tags == {"users": [], "tags": [{"name": word, "post_count": 1}]}, only_tags
    only_users = _search(anon, "/v1/search/autocomplete", q=f"@{a.username}")
    assert only_users["tags"] == [] and [u["id"] for u in only_users["users"]] == [a.id], only_users
    validate(only_users["users"][0], _component("SearchUser"), "an autocompleted user")
    # 400s: problems with errors naming the parameter.
    for path, params, name in (("/v1/search", {}, "q"), ("/v1/search", {"q": "  "}, "q"),
                               ("/v1/search", {"q": "x" * 513}, "q"),
                               ("/v1/search", {"q": word, "type": "comments"}, "type"),
                               ("/v1/search", {"q": word, "limit": "0"}, "limit"),
                               ("/v1/search", {"q": word, "limit": "ten"}, "limit"),
                               ("/v1/search", {"q": word, "offset": "10001"}, "offset"),
                               ("/v1/search", {"q": word, "offset": "-1"}, "offset"),
                               ("/v1/search/autocomplete", {}, "q"),
                               ("/v1/search/autocomplete", {"q": "x" * 101}, "q")):
        r = anon.get(path, params=params)
        body = is_problem(r, 400)
        check_operation(r, path, "get")
        assert name in body.get("errors", {}), (path, params, body)
    # Not UTF-8 (a raw %FF in the query string).
    for path in ("/v1/search", "/v1/search/autocomplete"):
        r = anon.get(f"{path}?q=%FF")
        assert "q" in is_problem(r, 400).get("errors", {}), (path, r.text)
        check_operation(r, path, "get")
    anon.close()


def test_search_queues_match_asyncapi(search_up, rabbit, temp_queue):
    """search.rpc and search.events (with search.events.dlq) exist as asyncapi.yaml declares them, bound as it
    says and consumed with manual acks; the exchange search.sync exists as declared, each copy of search
    has its own exclusive queue search.sync.<uuid> bound to it with the keys user, post and block, and a
    change (a registration) is announced there as the message searchSync says."""
    check_service_queues(rabbit, "search", ("searchEvents", "searchRpc"))
    channels = ASYNCAPI["channels"]
    spec = channels["searchSyncExchange"]["bindings"]["amqp"]["exchange"]
    ex = rabbit.get(f"/exchanges/%2F/{_q(spec['name'])}")
    assert ex.status_code == 200, f"exchange {spec['name']} is not declared"
    ex = ex.json()
    assert (ex["type"], ex["durable"], ex["auto_delete"], ex["internal"]) == \
           (spec["type"], spec["durable"], spec["autoDelete"], False), ex
    queue_spec = channels["searchSyncQueue"]
    qspec = queue_spec["bindings"]["amqp"]["queue"]
    keys = {b["routingKey"] for b in queue_spec["x-bindings"]}
    assert keys == SYNC_KINDS and {b["exchange"] for b in queue_spec["x-bindings"]} == {"search.sync"}
    bindings = rabbit.get(f"/exchanges/%2F/{_q(spec['name'])}/bindings/source").json()
    copies = {}
    for b in bindings:
        if b["destination"] != temp_queue:
            assert b["destination_type"] == "queue", b
            copies.setdefault(b["destination"], set()).add(b["routing_key"])
    assert copies, "no queue is bound to search.sync"
    pattern = re.escape(qspec["name"]).replace(re.escape("{copy}"), UUID)
    for name, got in copies.items():
        assert re.fullmatch(pattern, name), name
        assert got == keys, (name, got)
        q = rabbit.get(f"/queues/%2F/{_q(name)}").json()
        assert (q["durable"], q["exclusive"], q["auto_delete"]) == (qspec["durable"], qspec["exclusive"],
                                                                    qspec["autoDelete"]), q
        assert q["arguments"] == queue_spec.get("x-arguments", {}), q["arguments"]
        assert q.get("consumer_details"), f"nobody consumes {name}"
    # A registration makes search write a user document, then announce it on search.sync.
    for key in SYNC_KINDS:
        _bind(rabbit, temp_queue, key, exchange="search.sync")
    u = User()
    msg = get_messages(rabbit, temp_queue, timeout=5, predicate=lambda m: m["payload"] == u.id)[0]
    assert msg["exchange"] == "search.sync" and msg["routing_key"] == "user", msg
    sync = child(ASYNCAPI_URI, "components", "messages", "searchSync")
    validate(msg["properties"], child(sync, "headers", "schema"), "a search.sync message's properties")
    validate(_payload(msg), child(sync, "payload", "schema"), "a search.sync message's body")
    u.close()
