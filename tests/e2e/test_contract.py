"""test_contract.py -- the running suite against proto/: openapi.yaml over HTTP/2, asyncapi.yaml and the
JSON Schemas of messages over AMQP (read and written through RabbitMQ's management HTTP API).

Every $ref in proto/ is resolved offline through one `referencing` registry holding openapi.yaml,
asyncapi.yaml and proto/schemas/**/*.json under their file URIs (schema files under their $id too), so
responses and messages are validated against the documents exactly as written.

The routes of auth (API.md, "Accounts and graph"; services/auth/README.md), of resize-image (API.md,
"Media"; services/resize-image/README.md) and of publication (API.md, "Posts, comments, likes";
services/publication/README.md) are called for real through the gateway and every answer is checked
against its operation; the events they publish are read from a queue of the test's own bound to `events`
and checked against proto/schemas/events/<key>.json and their asyncapi.yaml messages.
"""
import glob
import json
import os
import pathlib
import random
import re
import threading
import time
import urllib.parse
import uuid

import httpx
import jwt
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

import medialib
from authlib import User
from conftest import (AUDIENCE, BASE, ISSUER, VAR, bearer, gateway_ready, h2_client, is_problem, make_token,
                      public_key, stack, wait_until)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTO = os.path.join(ROOT, "proto")
SCHEMA_DIR = os.path.join(PROTO, "schemas")
OPENAPI_PATH = os.path.join(PROTO, "openapi.yaml")
ASYNCAPI_PATH = os.path.join(PROTO, "asyncapi.yaml")
RABBIT_API = os.environ.get("TEST_RABBITMQ_API", "http://127.0.0.1:15673/api").rstrip("/")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FORMATS = Draft202012Validator.FORMAT_CHECKER


# ------------------------------------------------------------------ the documents and their $refs

class _StrictLoader(yaml.SafeLoader):
    """YAML without silently merged duplicate keys (a spec error PyYAML would hide)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dups = {k for k in keys if keys.count(k) > 1}
        if dups:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {sorted(map(str, dups))}",
                                                    node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys {sorted(k for k in set(keys) if keys.count(k) > 1)}"
    return dict(pairs)


def _load(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith(".yaml"):
            return yaml.load(f, Loader=_StrictLoader)
        return json.load(f, object_pairs_hook=_no_duplicate_keys)


def _uri(path):
    return pathlib.Path(path).resolve().as_uri()


OPENAPI_URI = _uri(OPENAPI_PATH)
ASYNCAPI_URI = _uri(ASYNCAPI_PATH)
SCHEMA_PATHS = sorted(glob.glob(os.path.join(SCHEMA_DIR, "**", "*.json"), recursive=True))
DOCS = {OPENAPI_URI: _load(OPENAPI_PATH), ASYNCAPI_URI: _load(ASYNCAPI_PATH)}
DOCS.update({_uri(p): _load(p) for p in SCHEMA_PATHS})
OPENAPI = DOCS[OPENAPI_URI]
ASYNCAPI = DOCS[ASYNCAPI_URI]


def _registry():
    pairs = []
    for uri, doc in DOCS.items():
        resource = DRAFT202012.create_resource(doc)
        pairs.append((uri, resource))
        if isinstance(doc, dict) and isinstance(doc.get("$id"), str):
            pairs.append((doc["$id"], resource))
    return Registry().with_resources(pairs)


REGISTRY = _registry()


def schema_uri(name, pointer=""):
    """The URI of proto/schemas/<name>.json, or of a JSON pointer inside it."""
    return _uri(os.path.join(SCHEMA_DIR, name + ".json")) + ("#" + pointer if pointer else "")


def child(uri, *segments):
    """uri with JSON-pointer segments appended to its fragment."""
    base, _, frag = uri.partition("#")
    return base + "#" + frag + "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in segments)


def lookup(uri):
    return REGISTRY.resolver().lookup(uri).contents


def follow(uri):
    """(node, uri) at uri, through Reference Objects ({"$ref": ...}) to what they name."""
    for _ in range(32):
        node = lookup(uri)
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node, uri
        uri = urllib.parse.urljoin(uri.partition("#")[0], node["$ref"])
    raise AssertionError(f"$ref loop at {uri}")


def validate(instance, uri, what):
    """Validates instance against the schema at uri (refs resolved through the registry)."""
    validator = Draft202012Validator({"$ref": uri}, registry=REGISTRY, format_checker=FORMATS)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, f"{what} does not match {uri}:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors) + \
        f"\n  instance: {json.dumps(instance)[:2000]}"


def walk_refs(node, path=()):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield path, node["$ref"]
        for k, v in node.items():
            yield from walk_refs(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_refs(v, path + (i,))


# ------------------------------------------------------------------ HTTP responses against openapi.yaml

def _media(value):
    """("type/subtype", {param: value}) of a Content-Type or media-type key, lowercased."""
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].lower(), params


def _media_matches(key, content_type):
    ktype, kparams = _media(key)
    ctype, cparams = _media(content_type)
    if ktype != ctype and not (ktype.endswith("/*") and ctype.startswith(ktype[:-1])) and ktype != "*/*":
        return False
    return all(cparams.get(k) == v for k, v in kparams.items())


def _header_value(value, header_uri):
    schema, _ = follow(child(header_uri, "schema"))
    if isinstance(schema, dict) and schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


def response_uri_for(operation_uri, status):
    """The response object of an operation for this status: exact code, then NXX, then default."""
    responses = lookup(child(operation_uri, "responses"))
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return child(operation_uri, "responses", key)
    return None


def check_response(r, response_uri, where):
    """The response has what the Response Object at response_uri says: required headers matching
    their schemas, a listed media type and a body matching its schema. Returns the parsed body."""
    resp, resp_uri = follow(response_uri)
    for name in resp.get("headers", {}):
        if name.lower() == "content-type":
            continue
        h, h_uri = follow(child(resp_uri, "headers", name))
        value = r.headers.get(name)
        if value is None:
            assert not h.get("required"), f"{where}: required header {name} missing: {dict(r.headers)}"
            continue
        if "schema" in h:
            validate(_header_value(value, h_uri), child(h_uri, "schema"), f"{where}: header {name}")
    content = resp.get("content")
    if not content or r.request.method == "HEAD" or r.status_code in (204, 304):
        return None
    ctype = r.headers.get("content-type")
    assert ctype, f"{where}: no content-type"
    key = next((k for k in content if _media_matches(k, ctype)), None)
    assert key is not None, f"{where}: content-type {ctype!r} is not one of {list(content)}"
    media = content[key] or {}
    if "schema" not in media:
        return None
    schema = child(resp_uri, "content", key, "schema")
    subtype = _media(key)[0]
    if subtype == "application/json" or subtype.endswith("+json"):
        body = r.json()
    else:
        body = r.text
    validate(body, schema, f"{where}: body")
    return body


def operation_uri(path, method):
    item = OPENAPI["paths"][path]
    assert method in item, f"{method.upper()} {path} is not in openapi.yaml"
    return child(OPENAPI_URI, "paths", path, method)


def check_operation(r, path, method):
    """The status is one the operation lists, and the response matches what it says of it."""
    op = operation_uri(path, method)
    resp = response_uri_for(op, r.status_code)
    assert resp is not None, (f"{method.upper()} {path} answered {r.status_code}, which openapi.yaml does not list "
                              f"({list(lookup(child(op, 'responses')))}): {r.text[:500]}")
    return check_response(r, resp, f"{method.upper()} {path} -> {r.status_code}")


def component_response(name):
    return child(OPENAPI_URI, "components", "responses", name)


# ------------------------------------------------------------------ openapi.yaml itself

def check_not_allowed(client, token, cases):
    """Each (method, url, allow) of cases answers 405 MethodNotAllowed with exactly those methods in Allow."""
    for method, url, allow in cases:
        r = client.request(method, url, headers=bearer(token))
        is_problem(r, 405)
        check_response(r, component_response("MethodNotAllowed"), f"{method} {url}")
        assert set(r.headers["allow"].split(", ")) == set(allow), (method, url, r.headers["allow"])


def _effective_parameters(path_item_uri, op_uri):
    params = {}
    for uri in (path_item_uri, op_uri):
        for i, _ in enumerate(lookup(uri).get("parameters", [])):
            p, _ = follow(child(uri, "parameters", i))
            params[(p["name"], p["in"])] = p
    return params


def test_openapi_is_structurally_3_1():
    doc = OPENAPI
    assert isinstance(doc.get("openapi"), str) and re.fullmatch(r"3\.1\.\d+", doc["openapi"]), doc.get("openapi")
    top = {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components", "security", "tags",
           "externalDocs"}
    assert not {k for k in doc if k not in top and not k.startswith("x-")}, doc.keys()
    assert isinstance(doc["info"].get("title"), str) and isinstance(doc["info"].get("version"), str)
    assert {"http://127.0.0.1:8080", "https://127.0.0.1:8443"} <= {s["url"] for s in doc["servers"]}
    components = doc.get("components", {})
    allowed = {"schemas", "responses", "parameters", "examples", "requestBodies", "headers", "securitySchemes", "links",
               "callbacks", "pathItems"}
    assert not {k for k in components if k not in allowed and not k.startswith("x-")}
    for kind, entries in components.items():
        for name in entries:
            assert re.fullmatch(r"[a-zA-Z0-9._-]+", name), f"components/{kind}/{name}: bad name"
    schemes = components.get("securitySchemes", {})
    tags = {t["name"] for t in doc.get("tags", [])}
    operation_ids = set()

    def check_security(reqs, where):
        for req in reqs:
            for name, scopes in req.items():
                assert name in schemes, f"{where}: unknown security scheme {name}"
                assert isinstance(scopes, list)

    check_security(doc.get("security", []), "top level")
    item_keys = {"$ref", "summary", "description", "servers", "parameters", *HTTP_METHODS}
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        assert not path.startswith("/v1/debug"), f"{path}: debug routes are not part of the contract"
        assert not {k for k in item if k not in item_keys and not k.startswith("x-")}, f"{path}: {item.keys()}"
        item_uri = child(OPENAPI_URI, "paths", path)
        template = set(re.findall(r"{([^}/]+)}", path))
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            where = f"{method.upper()} {path}"
            op_uri = child(item_uri, method)
            assert op.get("operationId"), f"{where}: no operationId"
            assert op["operationId"] not in operation_ids, f"{where}: duplicate operationId {op['operationId']}"
            operation_ids.add(op["operationId"])
            for tag in op.get("tags", []):
                assert tag in tags, f"{where}: tag {tag} is not declared"
            check_security(op.get("security", []), where)
            params = _effective_parameters(item_uri, op_uri)
            for (name, where_in), p in params.items():
                assert where_in in ("query", "header", "path", "cookie"), f"{where}: parameter {name} in {where_in}"
                assert ("schema" in p) != ("content" in p), f"{where}: parameter {name} needs schema xor content"
                if where_in == "path":
                    assert p.get("required") is True, f"{where}: path parameter {name} must be required"
            assert {n for (n, i) in params if i == "path"} == template, f"{where}: path parameters != template"
            responses = op.get("responses")
            assert responses, f"{where}: no responses"
            for status in responses:
                assert re.fullmatch(r"[1-5](?:\d\d|XX)|default", str(status)), f"{where}: bad response key {status}"
                resp, _ = follow(child(op_uri, "responses", status))
                assert isinstance(resp.get("description"), str), f"{where} {status}: no description"
                headers = {h.lower() for h in resp.get("headers", {})}
                assert "x-request-id" in headers, f"{where} {status}: every response carries x-request-id"
                code = str(status)
                if code[0] == "4" or (code[0] == "5" and path.startswith("/v1/")):  # /readyz 503 is a status
                    media = resp.get("content", {})
                    assert list(media) == ["application/problem+json"], f"{where} {status}: errors are problems"
                if code == "429":
                    assert "retry-after" in headers, f"{where} 429: Retry-After"
                if code == "401":
                    assert "www-authenticate" in headers, f"{where} 401: WWW-Authenticate"
                if code == "405":
                    assert "allow" in headers, f"{where} 405: Allow"


def test_openapi_refs_resolve_and_schemas_are_2020_12():
    for uri, doc in DOCS.items():
        for path, ref in walk_refs(doc):
            target = urllib.parse.urljoin(uri, ref)
            try:
                lookup(target)
            except Unresolvable as e:
                raise AssertionError(f"{uri} at {'/'.join(map(str, path))}: $ref {ref} does not resolve ({e})")
    # Every Schema Object of openapi.yaml is a valid 2020-12 schema.
    schemas = list(OPENAPI["components"].get("schemas", {}).values())

    def collect(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "schema" and isinstance(v, dict):
                    schemas.append(v)
                else:
                    collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(OPENAPI)
    assert len(schemas) > 10
    for s in schemas:
        Draft202012Validator.check_schema(s)


def test_openapi_examples_match_their_schemas():
    """Examples in openapi.yaml are what a client would really get."""
    checked = 0
    for path, item in OPENAPI["paths"].items():
        for method in HTTP_METHODS:
            for status in item.get(method, {}).get("responses", {}):
                resp, resp_uri = follow(child(OPENAPI_URI, "paths", path, method, "responses", status))
                for key, media in (resp.get("content") or {}).items():
                    if media and "example" in media and "schema" in media:
                        validate(media["example"], child(resp_uri, "content", key, "schema"), f"{path} {status} example")
                        checked += 1
                    for name in (media or {}).get("examples", {}):
                        example, _ = follow(child(resp_uri, "content", key, "examples", name))
                        assert set(example) <= {"summary", "description", "value"}, (path, status, name)
                        validate(example["value"], child(resp_uri, "content", key, "schema"),
                                 f"{path} {status} example {name}")
                        checked += 1
    for name, resp in OPENAPI["components"].get("responses", {}).items():
        for key, media in resp.get("content", {}).items():
            if "example" in media:
                validate(media["example"], child(component_response(name), "content", key, "schema"), f"{name} example")
                checked += 1
    for name, body in OPENAPI["components"].get("requestBodies", {}).items():
        for key, media in body.get("content", {}).items():
            if "example" in media and "schema" in media:
                uri = child(OPENAPI_URI, "components", "requestBodies", name, "content", key, "schema")
                validate(media["example"], uri, f"request body {name} example")
                checked += 1
    assert checked >= 5


def test_openapi_conventions_of_api_md():
    c = OPENAPI["components"]
    bearer_scheme = c["securitySchemes"]["bearerAuth"]
    assert bearer_scheme["type"] == "http" and bearer_scheme["scheme"].lower() == "bearer"
    assert bearer_scheme["bearerFormat"] == "JWT"
    for word in ("RS256", "photo-auth", "photo-api", "15 minutes"):
        assert word in bearer_scheme["description"], word
    assert {"bearerAuth": []} in OPENAPI["security"]
    limit = c["parameters"]["Limit"]
    assert (limit["name"], limit["in"]) == ("limit", "query")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["default"]) == (1, 100, 20)
    assert (c["parameters"]["Cursor"]["name"], c["parameters"]["Cursor"]["in"]) == ("cursor", "query")
    envelope = child(OPENAPI_URI, "components", "schemas", "ListEnvelope")
    validate({"items": [1, 2], "next_cursor": "abc"}, envelope, "a page")
    validate({"items": [], "next_cursor": None}, envelope, "the last page")
    with pytest.raises(AssertionError):
        validate({"items": []}, envelope, "a page without next_cursor")
    # The error statuses of API.md, each a reusable problem response.
    expected = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                409: "Conflict", 413: "ContentTooLarge", 415: "UnsupportedMediaType", 422: "UnprocessableContent",
                429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
    for status, name in expected.items():
        resp = c["responses"][name]
        assert resp["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert "x-request-id" in resp["headers"]
        example = resp["content"]["application/problem+json"].get("example")
        assert example is None or example["status"] == status, name
    problem = c["schemas"]["Problem"]
    assert problem == {"$ref": "schemas/problem.json"}  # one source of truth for the shape
    problem_uri = child(OPENAPI_URI, "components", "schemas", "Problem")
    validate({"type": "about:blank", "title": "Not Found", "status": 404}, problem_uri, "a minimal problem")
    validate({"type": "https://problems.photo.invalid/invalid-field", "title": "Unprocessable Content", "status": 422,
              "detail": "bad", "errors": {"username": "too short"}}, problem_uri, "a field problem")
    for bad in ({"title": "x", "status": 404}, {"type": "about:blank", "title": "x", "status": "404"},
                {"type": "about:blank", "title": "x", "status": 404, "errors": {"f": 1}}):
        with pytest.raises(AssertionError):
            validate(bad, problem_uri, "a bad problem")


# ------------------------------------------------------------------ proto/schemas and asyncapi.yaml

# Events auth publishes, with exactly the members of services/auth/README.md ("Event payloads"), and the
# events it consumes (publication owns them; auth relies on these members only).
AUTH_EVENTS = {
    "user.registered": ["user_id", "username", "email", "name", "created_at"],
    "user.updated": ["user_id", "username", "email", "name", "bio", "avatar_media_id", "updated_at"],
    "user.deleted": ["user_id", "username", "deleted_at"],
    "follow.created": ["follower_id", "follower_username", "followee_id", "followee_username", "created_at"],
    "follow.deleted": ["follower_id", "followee_id", "deleted_at"],
    "block.created": ["blocker_id", "blocked_id", "created_at"],
    "block.deleted": ["blocker_id", "blocked_id", "deleted_at"],
    "device.registered": ["user_id", "token", "platform", "created_at"],
    "device.removed": ["user_id", "token", "reason", "removed_at"],
}
AUTH_CONSUMES = {"post.created": ["post_id", "author_id"], "post.deleted": ["post_id", "author_id"]}

# Events resize-image publishes, with exactly the members of services/resize-image/README.md ("Queues",
# "Shapes": media.created is the Media shape, owner_id included), all required but those in
# MEDIA_EVENTS_OPTIONAL; and what it relies on in the events it consumes (auth's).
MEDIA_EVENTS = {
    "media.created": ["id", "owner_id", "width", "height", "variants", "blurhash", "created_at"],
    "media.deleted": ["id", "owner_id", "deleted_at"],
}
MEDIA_EVENTS_OPTIONAL = {"media.created": ["blurhash"]}
MEDIA_CONSUMES = {"user.deleted": ["user_id"]}

# Events publication publishes, with exactly the members of services/publication/README.md ("Event payloads"),
# all required; and the events it consumes (auth's) on publication.events.
PUBLICATION_EVENTS = {
    "post.created": ["post_id", "author_id", "author_username", "caption", "tags", "mentions", "media", "created_at"],
    "post.updated": ["post_id", "author_id", "caption", "tags", "mentions", "edited_at"],
    "post.deleted": ["post_id", "author_id", "deleted_at"],
    "comment.created": ["comment_id", "post_id", "post_author_id", "author_id", "author_username", "text", "reply_to",
                        "reply_to_author_id", "created_at"],
    "comment.deleted": ["comment_id", "post_id", "post_author_id", "author_id", "reply_ids", "deleted_at"],
    "like.created": ["target_type", "target_id", "post_id", "recipient_id", "user_id", "username", "created_at"],
    "like.deleted": ["target_type", "target_id", "post_id", "recipient_id", "user_id", "deleted_at"],
}
PUBLICATION_CONSUMES = ["user.registered", "user.updated", "user.deleted", "follow.created", "follow.deleted",
                        "block.created", "block.deleted"]

EXPECTED_SCHEMAS = ["event-envelope", "ping-reply", "problem", "readyz", "rpc-reply-headers", "rpc-request-headers",
                    "publication.fanout",
                    *(f"events/{key}" for key in {**AUTH_EVENTS, **AUTH_CONSUMES, **MEDIA_EVENTS, **PUBLICATION_EVENTS})]


@pytest.mark.parametrize("name", EXPECTED_SCHEMAS)
def test_message_schema_is_valid_2020_12(name):
    doc = DOCS[schema_uri(name)]
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(doc)
    assert doc.get("$id", "").endswith(f"/{name}.json")
    assert doc.get("title") and doc.get("description")


def test_every_schema_file_is_valid_2020_12():
    ids = set()
    for path in SCHEMA_PATHS:
        doc = DOCS[_uri(path)]
        Draft202012Validator.check_schema(doc)
        assert doc.get("$schema") == "https://json-schema.org/draft/2020-12/schema", path
        assert doc.get("$id") not in ids, f"{path}: duplicate $id"
        ids.add(doc.get("$id"))


def test_schema_samples():
    """The schemas accept what the code sends and refuse near misses."""
    ping = schema_uri("ping-reply")
    validate({"service": "resize-image", "status": "ok"}, ping, "ping")
    with pytest.raises(AssertionError):
        validate({"service": "echo", "status": "down"}, ping, "bad ping")
    readyz = schema_uri("readyz")
    validate({"status": "ready", "broker": "up", "services": {"echo": "up"}}, readyz, "ready")
    validate({"status": "not ready", "broker": "down", "services": {"echo": "down"}}, readyz, "not ready")
    for bad in ({"status": "ready", "broker": "down", "services": {}},
                {"status": "ready", "broker": "up", "services": {"echo": "down"}},
                {"status": "not ready", "broker": "up", "services": {"echo": "up"}}):
        with pytest.raises(AssertionError):
            validate(bad, readyz, "inconsistent readiness")
    event = schema_uri("event-envelope")
    good = {"message_id": str(uuid.uuid4()), "type": "post.created", "timestamp": int(time.time()),
            "app_id": "publication", "content_type": "application/json", "delivery_mode": 2,
            "headers": {"x-request-id": "r1", "x-retry": 2}}
    validate(good, event, "event")
    for change in ({"message_id": "not-a-uuid"}, {"type": "PostCreated"}, {"delivery_mode": 1},
                   {"content_type": "text/plain"}, {"headers": {"x-retry": "2"}}):
        with pytest.raises(AssertionError):
            validate({**good, **change}, event, "bad event")
    reply = schema_uri("rpc-reply-headers")
    with pytest.raises(AssertionError):  # errors are problems
        validate({"content_type": "application/json", "correlation_id": "1", "headers": {"x-status": 404}}, reply, "r")


def test_asyncapi_document():
    doc = ASYNCAPI
    assert re.fullmatch(r"3\.0\.\d+|2\.6\.\d+", str(doc.get("asyncapi"))), doc.get("asyncapi")
    assert doc["info"]["title"] and doc["info"]["version"]
    # The two exchanges of DESIGN.md.
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"]: c["bindings"]["amqp"]["exchange"]
                 for c in doc["channels"].values() if c.get("bindings", {}).get("amqp", {}).get("is") == "routingKey"}
    assert exchanges["rpc"]["type"] == "direct" and exchanges["rpc"]["durable"] is True
    assert exchanges["events"]["type"] == "topic" and exchanges["events"]["durable"] is True
    queues = {c["bindings"]["amqp"]["queue"]["name"] for c in doc["channels"].values()
              if c.get("bindings", {}).get("amqp", {}).get("is") == "queue"}
    assert {"{service}.rpc", "{service}.events", "{service}.events.dlq", "amq.rabbitmq.reply-to"} <= queues
    # Channel addresses and their parameters agree; operations name messages of their own channel.
    for name, ch in doc["channels"].items():
        params = set(re.findall(r"{([^}]+)}", ch.get("address") or ""))
        assert params == set(ch.get("parameters", {})), f"channel {name}: address parameters"
    for name, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), name
        ch_ref = op["channel"]["$ref"]
        for m in op.get("messages", []):
            assert m["$ref"].startswith(ch_ref + "/messages/"), f"operation {name}: {m['$ref']} not of {ch_ref}"
        if "reply" in op:
            for m in op["reply"].get("messages", []):
                assert m["$ref"].startswith(op["reply"]["channel"]["$ref"] + "/messages/"), name
    # Message headers and payloads are valid schemas, and every example matches them.
    checked = 0
    for name, msg in doc["components"]["messages"].items():
        msg_uri = child(ASYNCAPI_URI, "components", "messages", name)
        for part in ("headers", "payload"):
            if part not in msg:
                continue
            multi = isinstance(msg[part], dict) and "schemaFormat" in msg[part]
            if multi:
                assert "2020-12" in msg[part]["schemaFormat"], f"{name}.{part}: schemaFormat"
            schema = child(msg_uri, part, "schema") if multi else child(msg_uri, part)
            Draft202012Validator.check_schema(lookup(schema))
            for i, ex in enumerate(msg.get("examples", [])):
                if part in ex:
                    validate(ex[part], schema, f"asyncapi message {name} example {i} {part}")
                    checked += 1
    assert checked >= 6


# ------------------------------------------------------------------ live HTTP responses against openapi.yaml

def test_healthz_matches_spec(client):
    r = client.get("/healthz", headers={"x-request-id": "contract.healthz-1"})
    assert r.status_code == 200
    assert check_operation(r, "/healthz", "get") == {"status": "ok"}
    assert r.headers["x-request-id"] == "contract.healthz-1"


def test_readyz_matches_spec(client):
    r = client.get("/readyz")
    body = check_operation(r, "/readyz", "get")
    validate(body, schema_uri("readyz"), "GET /readyz")
    assert (r.status_code == 200) == (body["status"] == "ready"), (r.status_code, body)


def test_readyz_503_matches_spec(debug_routes):
    """With a service down, /readyz answers 503 with the body the spec gives it."""
    stack("stop", "echod")
    try:
        def not_ready():
            with h2_client() as c:
                r = c.get("/readyz")
            return r if r.status_code == 503 else None

        r = wait_until(not_ready, timeout=15, what="/readyz 503 with echod stopped")
        body = check_operation(r, "/readyz", "get")
        assert body["status"] == "not ready" and body["broker"] == "up" and body["services"]["echo"] == "down", body
    finally:
        stack("start", "echod")
        wait_until(gateway_ready, timeout=30, what="/readyz 200 after echod came back")


def test_metrics_content_type_matches_spec(client):
    client.get("/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200
    check_operation(r, "/metrics", "get")
    ctype, params = _media(r.headers["content-type"])
    assert ctype == "text/plain" and params.get("version") == "0.0.4", r.headers["content-type"]
    samples = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    assert samples, r.text
    sample = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                        r'(-?[0-9.eE+-]+|NaN|[+-]Inf)')
    for line in samples:
        assert sample.fullmatch(line), f"not a Prometheus sample: {line!r}"
    assert any(line.startswith("gateway_http_requests_total{") for line in samples)


def test_unknown_v1_route_is_a_404_problem(client):
    for path in (f"/v1/contract-no-such-route-{uuid.uuid4().hex[:8]}", "/v1/", "/no-such-thing"):
        r = client.get(path)
        body = is_problem(r, 404)
        check_response(r, component_response("NotFound"), f"GET {path}")
        validate(body, schema_uri("problem"), f"GET {path}")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_media_are_405_problems(client, method):
    r = client.request(method, "/media/contract/x.jpg")
    is_problem(r, 405)
    check_response(r, component_response("MethodNotAllowed"), f"{method} /media")
    assert r.headers["allow"] == "GET, HEAD"
    ref = OPENAPI["paths"]["/media/{key}"]["x-other-methods"]["response"]["$ref"]
    assert ref == "#/components/responses/MethodNotAllowed"


@pytest.mark.parametrize("path", ["/media/contract/no-such-file.jpg", "/media/.hidden", "/media/contract%2Fx.jpg",
                                  "/media/contract/"])
def test_missing_media_is_a_404_problem(client, path):
    for method in ("GET", "HEAD"):
        r = client.request(method, path)
        assert r.status_code == 404, (method, path, r.status_code)
        if method == "GET":
            is_problem(r, 404)
        check_operation(r, "/media/{key}", method.lower())


@pytest.fixture
def stored_media():
    key = f"contract/{uuid.uuid4().hex}.png"
    path = os.path.join(VAR, "media", key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    yield key
    os.unlink(path)


def test_stored_media_matches_spec(client, stored_media):
    key_schema = child(OPENAPI_URI, "paths", "/media/{key}", "parameters", 1, "schema")
    validate(stored_media, key_schema, "the media key")
    r = client.get(f"/media/{stored_media}")
    assert r.status_code == 200, r.text
    check_operation(r, "/media/{key}", "get")
    assert r.headers["content-type"] == "image/png"


def test_stored_media_head_matches_spec(client, stored_media):
    h = client.head(f"/media/{stored_media}")
    assert h.status_code == 200
    check_operation(h, "/media/{key}", "head")
    assert h.headers["content-type"] == "image/png"
    assert h.content == b""
    g = client.get(f"/media/{stored_media}")
    assert int(h.headers["content-length"]) == len(g.content) > 0
    with httpx.Client(base_url=BASE, http2=False) as c1:  # HTTP/1.1: no body bytes after a HEAD
        assert c1.head(f"/media/{stored_media}").content == b""
        assert c1.get("/healthz").status_code == 200


def _effective_security(op):
    return op.get("security", OPENAPI.get("security", []))


def test_every_parameterless_path_answers_a_status_the_spec_lists():
    """Each operation of each path without parameters, called as a client would (a valid token where
    the operation takes one, no body), answers a status its responses list, shaped as they say."""
    called = 0
    for path, item in OPENAPI["paths"].items():
        if "{" in path:
            continue
        for method in HTTP_METHODS:
            if method not in item:
                continue
            sec = _effective_security(item[method])
            headers = bearer(make_token()) if sec and {} not in sec else {}
            with h2_client() as c:
                r = c.request(method.upper(), path, headers=headers)
            check_operation(r, path, method)
            called += 1
    assert called >= 3


# ------------------------------------------------------------------ error responses, through the debug routes

@pytest.fixture
def debug_routes():
    with h2_client() as c:
        assert c.get("/v1/debug/status?status=200").status_code != 404, \
            "needs GATEWAY_DEBUG_ROUTES=true and tests/echod (the test stack of deploy/local/test.sh has them)"


def test_gateway_401s_match_spec(client, debug_routes):
    r = client.get("/v1/debug/echo")
    is_problem(r, 401)
    check_response(r, component_response("Unauthorized"), "no token")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/v1/debug/echo", headers=bearer(make_token(exp=int(time.time()) - 3600)))
    is_problem(r, 401)
    check_response(r, component_response("Unauthorized"), "expired token")
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_gateway_own_errors_match_spec(client, debug_routes):
    r = client.get("/v1/debug/nobody")
    is_problem(r, 503)
    check_response(r, component_response("ServiceUnavailable"), "no service")
    r = client.post("/v1/debug/echo", headers=bearer(make_token()), content=b"a" * (64 * 1024 + 1))
    is_problem(r, 413)
    check_response(r, component_response("ContentTooLarge"), "body over the cap")
    r = client.get("/v1/debug/sleep?ms=2500")
    is_problem(r, 504)
    check_response(r, component_response("GatewayTimeout"), "timeout")
    r = client.delete("/v1/debug/echo")
    is_problem(r, 405)
    check_response(r, component_response("MethodNotAllowed"), "DELETE /v1/debug/echo")


@pytest.mark.parametrize("status,name", [
    (400, "BadRequest"), (403, "Forbidden"), (404, "NotFound"), (409, "Conflict"), (413, "ContentTooLarge"),
    (415, "UnsupportedMediaType"), (422, "UnprocessableContent"), (429, "TooManyRequests"),
    (503, "ServiceUnavailable"), (504, "GatewayTimeout")])
def test_relayed_service_errors_match_spec(client, debug_routes, status, name):
    """A service's problem reply reaches the client as the reusable response of its status."""
    r = client.get(f"/v1/debug/status?status={status}")
    is_problem(r, status)
    check_response(r, component_response(name), f"relayed {status}")


# ------------------------------------------------------------------ AMQP, through RabbitMQ's management API

@pytest.fixture
def rabbit():
    with httpx.Client(base_url=RABBIT_API, auth=("guest", "guest"), timeout=10) as c:
        try:
            c.get("/overview").raise_for_status()
        except httpx.HTTPError as e:
            pytest.fail(f"RabbitMQ management API at {RABBIT_API} (TEST_RABBITMQ_API): {e}")
        yield c


def _q(name):
    return urllib.parse.quote(name, safe="")


@pytest.fixture
def temp_queue(rabbit):
    """A queue of this test's own (it expires by itself if the test dies before deleting it)."""
    name = f"contract.tmp.{uuid.uuid4().hex[:12]}"
    r = rabbit.put(f"/queues/%2F/{_q(name)}",
                   json={"durable": False, "auto_delete": False, "arguments": {"x-expires": 120000}})
    assert r.status_code in (201, 204), r.text
    try:
        yield name
    finally:
        rabbit.delete(f"/queues/%2F/{_q(name)}")


def publish(rabbit, exchange, routing_key, properties, payload=""):
    r = rabbit.post(f"/exchanges/%2F/{_q(exchange)}/publish",
                    json={"properties": properties, "routing_key": routing_key, "payload": payload,
                          "payload_encoding": "string"})
    r.raise_for_status()
    return r.json()


def get_messages(rabbit, queue, want=1, timeout=5.0, predicate=lambda m: True):
    """Takes messages off queue until want of them satisfy predicate (or times out)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r = rabbit.post(f"/queues/%2F/{_q(queue)}/get",
                        json={"count": 50, "ackmode": "ack_requeue_false", "encoding": "auto"})
        r.raise_for_status()
        msgs = [m for m in r.json() if predicate(m)]
        got.extend(msgs)
        if not msgs:
            time.sleep(0.05)
    assert len(got) >= want, f"{len(got)} of {want} messages arrived on {queue} in {timeout}s"
    return got


def call_rpc(rabbit, reply_queue, service, method, headers=None, payload=""):
    """One RPC through the broker, replying to reply_queue. Returns (request properties, reply)."""
    corr = uuid.uuid4().hex
    props = {"type": method, "reply_to": reply_queue, "correlation_id": corr, "expiration": "5000",
             "app_id": "contract-test", "delivery_mode": 1, "headers": headers or {}}
    assert publish(rabbit, "rpc", service, props, payload)["routed"], f"nothing bound to rpc/{service}"
    reply = get_messages(rabbit, reply_queue, predicate=lambda m: m["properties"].get("correlation_id") == corr)[0]
    assert reply["exchange"] == "" and reply["routing_key"] == reply_queue
    return props, reply


def _payload(msg):
    assert msg["payload_encoding"] == "string", msg
    return msg["payload"]


def test_rpc_topology_matches_asyncapi(rabbit, client):
    channels = ASYNCAPI["channels"]
    for channel in ("rpcExchange", "events"):
        spec = channels[channel]["bindings"]["amqp"]["exchange"]
        ex = rabbit.get(f"/exchanges/%2F/{spec['name']}")
        assert ex.status_code == 200, f"exchange {spec['name']} is not declared"
        ex = ex.json()
        assert (ex["type"], ex["durable"], ex["auto_delete"], ex["internal"]) == \
               (spec["type"], spec["durable"], spec["autoDelete"], False), ex
    services = client.get("/readyz").json()["services"]
    queue_spec = channels["rpcQueue"]["bindings"]["amqp"]["queue"]
    for service in services:
        name = queue_spec["name"].replace("{service}", service)
        q = rabbit.get(f"/queues/%2F/{_q(name)}")
        assert q.status_code == 200, f"queue {name} does not exist"
        q = q.json()
        assert (q["durable"], q["exclusive"], q["auto_delete"]) == \
               (queue_spec["durable"], queue_spec["exclusive"], queue_spec["autoDelete"]), q
        assert q["arguments"] == {}, q["arguments"]
        bindings = rabbit.get(f"/queues/%2F/{_q(name)}/bindings").json()
        assert {"source": "rpc", "routing_key": service} in [
            {"source": b["source"], "routing_key": b["routing_key"]} for b in bindings], bindings
    # Whatever queue dead-letters does it the way asyncapi.yaml says, into <queue>.dlq.
    queues = {q["name"]: q for q in rabbit.get("/queues/%2F").json()}
    for name, q in queues.items():
        args = q.get("arguments", {})
        if name.endswith(".events") or "x-dead-letter-routing-key" in args:
            assert args.get("x-dead-letter-exchange") == "", (name, args)
            assert args.get("x-dead-letter-routing-key") == name + ".dlq", (name, args)
            assert queues.get(name + ".dlq", {}).get("durable") is True, f"{name}.dlq missing or not durable"


def test_ping_replies_match_schemas_and_readyz(rabbit, client, temp_queue):
    ready = client.get("/readyz").json()
    validate(ready, schema_uri("readyz"), "GET /readyz")
    assert "echo" in ready["services"], ready  # the test stack always runs tests/echod
    ping_request = child(ASYNCAPI_URI, "components", "messages", "pingRequest", "headers", "schema")
    ping_reply = child(ASYNCAPI_URI, "components", "messages", "pingReply", "headers", "schema")
    ping_body = child(ASYNCAPI_URI, "components", "messages", "pingReply", "payload", "schema")
    for service, state in ready["services"].items():
        rid = f"contract-ping-{uuid.uuid4().hex[:8]}"
        props, reply = call_rpc(rabbit, temp_queue, service, f"{service}.ping", {"x-request-id": rid})
        validate(props, ping_request, "our ping request")
        p = reply["properties"]
        validate(p, schema_uri("rpc-reply-headers"), f"{service}.ping reply properties")
        validate(p, ping_reply, f"{service}.ping reply properties")
        assert p["correlation_id"] == props["correlation_id"]
        assert p["headers"]["x-request-id"] == rid
        assert p.get("app_id") == service
        body = json.loads(_payload(reply))
        validate(body, ping_body, f"{service}.ping reply body")
        validate(body, schema_uri("ping-reply"), f"{service}.ping reply body")
        assert body == {"service": service, "status": "ok"}
        # The gateway's /readyz saw what we see.
        assert state == "up", f"{service} answers its ping but /readyz says {state}"


def test_rpc_error_replies_match_schemas(rabbit, temp_queue, debug_routes):
    _, reply = call_rpc(rabbit, temp_queue, "echo", "echo.status", {"x-request-id": "contract-429",
                                                                   "x-query": "status=429"})
    p = reply["properties"]
    validate(p, schema_uri("rpc-reply-headers"), "echo.status reply properties")
    assert p["headers"]["x-status"] == 429 and p["content_type"].startswith("application/problem+json")
    extra = json.loads(p["headers"]["x-headers"])
    validate(extra, schema_uri("rpc-reply-headers", "/$defs/http_headers"), "x-headers")
    assert extra == {"retry-after": "7"}
    validate(json.loads(_payload(reply)), schema_uri("problem"), "echo.status reply body")
    # An unknown method: 404, a problem of type unknown-method.
    _, reply = call_rpc(rabbit, temp_queue, "echo", "echo.no_such_method")
    p = reply["properties"]
    validate(p, schema_uri("rpc-reply-headers"), "unknown method reply properties")
    assert p["headers"]["x-status"] == 404
    assert "x-request-id" not in p["headers"]  # the request had none
    body = json.loads(_payload(reply))
    validate(body, schema_uri("problem"), "unknown method reply body")
    assert body["type"].endswith("/unknown-method")


def _bind(rabbit, queue, key, exchange="rpc"):
    r = rabbit.post(f"/bindings/%2F/e/{_q(exchange)}/q/{_q(queue)}", json={"routing_key": key, "arguments": {}})
    assert r.status_code == 201, r.text


def test_gateway_rpc_requests_match_schema(rabbit, temp_queue, debug_routes):
    """Copies of real requests the gateway sends to echo (our queue bound beside echo.rpc) carry the
    properties and headers rpc-request-headers.json describes, and the HTTP request's parts."""
    _bind(rabbit, temp_queue, "echo")
    rid = f"contract-req-{uuid.uuid4().hex[:8]}"
    token = make_token(sub="contract_user_1")
    with h2_client() as c:
        r1 = c.post("/v1/debug/echo?limit=5&cursor=a%20b", headers={**bearer(token), "x-request-id": rid + "a"},
                    json={"caption": "héllo"})
        r2 = c.get("/v1/debug/public/caf%C3%A9", headers={"x-request-id": rid + "b"})
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    msgs = get_messages(rabbit, temp_queue, want=2,
                        predicate=lambda m: m["properties"].get("headers", {}).get("x-request-id", "").startswith(rid))
    by_rid = {m["properties"]["headers"]["x-request-id"]: m for m in msgs}
    spec = schema_uri("rpc-request-headers")
    for m in by_rid.values():
        p = m["properties"]
        validate(p, spec, "a gateway RPC request")
        validate(p, child(ASYNCAPI_URI, "components", "messages", "rpcRequest", "headers", "schema"), "rpcRequest")
        assert m["exchange"] == "rpc" and m["routing_key"] == "echo"
        assert p["reply_to"].startswith("amq.rabbitmq.reply-to"), p["reply_to"]
        assert p["app_id"] == "gateway" and int(p["expiration"]) > 0
    post = by_rid[rid + "a"]["properties"]
    assert post["type"] == "echo.echo"
    assert post["headers"]["x-user-id"] == "contract_user_1"
    assert post["headers"]["x-query"] == "limit=5&cursor=a%20b"
    assert post["content_type"].startswith("application/json")
    assert "x-params" not in post["headers"]
    assert json.loads(_payload(by_rid[rid + "a"])) == {"caption": "héllo"}
    get = by_rid[rid + "b"]["properties"]
    assert "x-user-id" not in get["headers"] and "content_type" not in get
    params = json.loads(get["headers"]["x-params"])
    validate(params, schema_uri("rpc-request-headers", "/$defs/path_params"), "x-params")
    assert params == {"name": "café"}
    assert _payload(by_rid[rid + "b"]) == ""


def test_gateway_maps_a_reply_1_to_1(rabbit, temp_queue, debug_routes):
    """We stand in for a service (our queue bound to rpc as `nobody`) and answer the gateway's real
    request with a reply as rpc-reply-headers.json describes: the HTTP response is that reply."""
    _bind(rabbit, temp_queue, "nobody")
    rid = f"contract-map-{uuid.uuid4().hex[:8]}"
    result = {}

    def call():
        with h2_client() as c:
            result["r"] = c.get("/v1/debug/nobody?x=1", headers={"x-request-id": rid})

    t = threading.Thread(target=call)
    t.start()
    try:
        req = get_messages(rabbit, temp_queue,
                           predicate=lambda m: m["properties"].get("headers", {}).get("x-request-id") == rid)[0]
        validate(req["properties"], schema_uri("rpc-request-headers"), "the gateway's request")
        assert req["properties"]["type"] == "nobody.echo"
        assert req["properties"]["headers"]["x-query"] == "x=1"
        body = json.dumps({"id": "p1", "created_at": "2026-11-21T18:40:03Z"})
        reply = {"correlation_id": req["properties"]["correlation_id"], "content_type": "application/json",
                 "app_id": "nobody",
                 "headers": {"x-status": 201, "x-request-id": rid,
                             "x-headers": json.dumps({"location": "/v1/posts/p1", "cache-control": "no-store"})}}
        validate(reply, schema_uri("rpc-reply-headers"), "our reply")
        publish(rabbit, "amq.default", req["properties"]["reply_to"], reply, body)
    finally:
        t.join(15)
    r = result["r"]
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["location"] == "/v1/posts/p1"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-request-id"] == rid
    assert r.text == body


# ------------------------------------------------------------------ accounts and graph (auth): the documents

# services/auth/README.md, "RPC methods": route -> (RPC method, token, success status of API.md).
AUTH_ROUTES = {
    ("/v1/auth/register", "post"): ("auth.register", "none", 201),
    ("/v1/auth/login", "post"): ("auth.login", "none", 200),
    ("/v1/auth/refresh", "post"): ("auth.refresh", "none", 200),
    ("/v1/auth/logout", "post"): ("auth.logout", "none", 204),
    ("/v1/me", "get"): ("auth.me_get", "required", 200),
    ("/v1/me", "patch"): ("auth.me_update", "required", 200),
    ("/v1/me", "delete"): ("auth.me_delete", "required", 204),
    ("/v1/me/devices", "post"): ("auth.device_add", "required", 201),
    ("/v1/me/devices/{token}", "delete"): ("auth.device_remove", "required", 204),
    ("/v1/users/{username}", "get"): ("auth.user_get", "optional", 200),
    ("/v1/users/{username}/followers", "get"): ("auth.followers", "optional", 200),
    ("/v1/users/{username}/following", "get"): ("auth.following", "optional", 200),
    ("/v1/users/{username}/follow", "post"): ("auth.follow", "required", 200),
    ("/v1/users/{username}/follow", "delete"): ("auth.unfollow", "required", 200),
    ("/v1/users/{username}/block", "post"): ("auth.block", "required", 200),
    ("/v1/users/{username}/block", "delete"): ("auth.unblock", "required", 200),
}
# The body schema of each success (README, "Shapes"); None: no body.
AUTH_SUCCESS_SCHEMA = {
    "auth.register": "Tokens", "auth.login": "Tokens", "auth.refresh": "Tokens", "auth.logout": None,
    "auth.me_get": "Account", "auth.me_update": "Account", "auth.me_delete": None, "auth.device_add": "Device",
    "auth.device_remove": None, "auth.user_get": "Profile", "auth.followers": "UserList",
    "auth.following": "UserList", "auth.follow": "Relationship", "auth.unfollow": "Relationship",
    "auth.block": "Relationship", "auth.unblock": "Relationship",
}
AUTH_REQUEST_SCHEMA = {
    "auth.register": "RegisterRequest", "auth.login": "LoginRequest", "auth.refresh": "RefreshRequest",
    "auth.logout": "LogoutRequest", "auth.me_update": "UpdateMeRequest", "auth.device_add": "DeviceRequest",
}


def _token_kind(op):
    sec = _effective_security(op)
    if not sec:
        return "none"
    assert {"bearerAuth": []} in sec, sec
    return "optional" if {} in sec else "required"


def _schema_ref(uri):
    """The component schema name a Schema Object at uri is a bare $ref to."""
    node = lookup(uri)
    assert set(node) == {"$ref"} and node["$ref"].startswith("#/components/schemas/"), (uri, node)
    return node["$ref"].rsplit("/", 1)[1]


def test_openapi_has_every_auth_route():
    """Each route of API.md's "Accounts and graph" table, as services/auth/README.md maps it: the RPC method,
    whether it takes a token, its success status and shape, and the errors it can answer."""
    ops = {(path, m) for path, item in OPENAPI["paths"].items()
           if path == "/v1/me" or path.startswith(("/v1/auth/", "/v1/me/", "/v1/users/")) for m in HTTP_METHODS if m in item}
    ops -= set(PUBLICATION_ROUTES)  # /v1/users/{username}/posts
    assert ops == set(AUTH_ROUTES), f"missing {set(AUTH_ROUTES) - ops}, extra {ops - set(AUTH_ROUTES)}"
    for (path, method), (rpc, kind, success) in AUTH_ROUTES.items():
        where = f"{method.upper()} {path}"
        op = OPENAPI["paths"][path][method]
        op_uri = operation_uri(path, method)
        assert op.get("x-rpc") == rpc, where
        assert _token_kind(op) == kind, f"{where}: token {_token_kind(op)}, README says {kind}"
        codes = {int(c) for c in op["responses"]}
        assert min(codes) == success, f"{where}: success {min(codes)}, API.md says {success}"
        want = {429, 503, 504}
        if kind != "none":
            want.add(401)
        if "{username}" in path:
            want |= {400, 404}
        elif "{" in path:
            want.add(400)
        if rpc in AUTH_REQUEST_SCHEMA:
            want |= {400, 413, 422}
            body, body_uri = follow(child(op_uri, "requestBody"))
            assert body.get("required") is True and list(body["content"]) == ["application/json"], where
            assert _schema_ref(child(body_uri, "content", "application/json", "schema")) == AUTH_REQUEST_SCHEMA[rpc]
        else:
            assert "requestBody" not in op, where
        assert want <= codes, f"{where}: lacks {sorted(want - codes)}"
        resp, resp_uri = follow(child(op_uri, "responses", str(success)))
        shape = AUTH_SUCCESS_SCHEMA[rpc]
        if shape is None:
            assert "content" not in resp, where
        else:
            assert list(resp["content"]) == ["application/json"], where
            assert _schema_ref(child(resp_uri, "content", "application/json", "schema")) == shape, where
        assert OPENAPI["paths"][path]["x-other-methods"]["response"] == {"$ref": "#/components/responses/MethodNotAllowed"}
    # Lists take ?limit= and ?cursor=.
    for path in ("/v1/users/{username}/followers", "/v1/users/{username}/following"):
        params = _effective_parameters(child(OPENAPI_URI, "paths", path), operation_uri(path, "get"))
        assert {("limit", "query"), ("cursor", "query"), ("username", "path")} <= set(params), path


def _component(name):
    return child(OPENAPI_URI, "components", "schemas", name)


T0 = "2026-11-21T18:40:03Z"
ACCOUNT = {"id": "u1", "username": "alice", "email": "alice@example.com", "name": "", "bio": "",
           "avatar_media_id": None, "created_at": T0, "posts_count": 0, "followers_count": 2, "following_count": 1}
PROFILE = {**{k: v for k, v in ACCOUNT.items() if k != "email"},
           "relationship": {"following": True, "followed_by": False, "blocking": False}}


def test_auth_schemas_are_exactly_the_readme_shapes():
    """Response objects have exactly the README's members (all required, nothing more); requests refuse
    unknown members, as auth does (422)."""
    members = {
        "Account": ["id", "username", "email", "name", "bio", "avatar_media_id", "created_at", "posts_count",
                    "followers_count", "following_count"],
        "Profile": ["id", "username", "name", "bio", "avatar_media_id", "created_at", "posts_count", "followers_count",
                    "following_count", "relationship"],
        "RelationshipFlags": ["following", "followed_by", "blocking"],
        "Relationship": ["id", "username", "following", "followed_by", "blocking"],
        "Tokens": ["user", "access_token", "refresh_token", "token_type", "expires_in"],
        "UserListItem": ["id", "username", "name", "avatar_media_id"],
        "Device": ["token", "platform", "created_at"],
    }
    schemas = OPENAPI["components"]["schemas"]
    for name, want in members.items():
        s = schemas[name]
        assert s["type"] == "object" and s["additionalProperties"] is False, name
        assert sorted(s["required"]) == sorted(want) == sorted(s["properties"]), name
    assert schemas["UserList"]["unevaluatedProperties"] is False
    for name in AUTH_REQUEST_SCHEMA.values():
        assert schemas[name]["additionalProperties"] is False, name
    # Samples and near misses.
    validate(ACCOUNT, _component("Account"), "an account")
    validate(PROFILE, _component("Profile"), "a profile")
    validate({**PROFILE, "relationship": None}, _component("Profile"), "an anonymous caller's profile")
    tokens = {"user": ACCOUNT, "access_token": make_token(), "refresh_token": "A" * 43, "token_type": "Bearer",
              "expires_in": 900}
    validate(tokens, _component("Tokens"), "tokens")
    validate({"items": [{"id": "u2", "username": "bob", "name": "Bob", "avatar_media_id": "m1"}], "next_cursor": "c"},
             _component("UserList"), "a page of users")
    validate({"token": "fcm:abc-DEF_1.2", "platform": "web", "created_at": T0}, _component("Device"), "a device")
    bad = [
        ("Account", {**ACCOUNT, "password_hash": "x"}), ("Account", {**ACCOUNT, "username": "Alice"}),
        ("Account", {**ACCOUNT, "email": "Alice@Example.com"}), ("Account", {**ACCOUNT, "created_at": "yesterday"}),
        ("Account", {**ACCOUNT, "posts_count": -1}), ("Account", {**ACCOUNT, "bio": None}),
        ("Profile", {**PROFILE, "email": "alice@example.com"}), ("Profile", {**PROFILE, "relationship": {}}),
        ("Tokens", {**tokens, "token_type": "bearer"}), ("Tokens", {**tokens, "user": {**ACCOUNT, "x": 1}}),
        ("UserList", {"items": [{"id": "u2", "username": "bob", "name": "Bob", "avatar_media_id": None, "email": "b@x.io"}],
                      "next_cursor": None}),
        ("UserList", {"items": [], "next_cursor": None, "total": 0}),
        ("Device", {"token": "a b", "platform": "web", "created_at": T0}),
        ("Device", {"token": "t", "platform": "symbian", "created_at": T0}),
        ("RegisterRequest", {"username": "alice", "email": "a@example.com", "password": "short"}),
        ("RegisterRequest", {"username": "al", "email": "a@example.com", "password": "long enough"}),
        ("RegisterRequest", {"username": "alice", "email": "a@localhost", "password": "long enough"}),
        ("RegisterRequest", {"username": "alice", "email": "a@example.com", "password": "long enough", "role": "admin"}),
        ("LoginRequest", {"login": {"$ne": None}, "password": "x"}),
        ("UpdateMeRequest", {"bio": "b" * 301}), ("UpdateMeRequest", {"username": "other"}),
        ("DeviceRequest", {"token": "t"}),
    ]
    for name, instance in bad:
        with pytest.raises(AssertionError):
            validate(instance, _component(name), f"a bad {name}")
    validate({"username": "Alice.B_1", "email": "Alice@Example.com", "password": "8 chars!", "name": ""},
             _component("RegisterRequest"), "a registration (case-folded by auth)")
    validate({}, _component("UpdateMeRequest"), "an empty edit")


@pytest.mark.parametrize("key", sorted(AUTH_EVENTS))
def test_auth_event_schema_is_the_readme_payload(key):
    uri = schema_uri(f"events/{key}")
    doc = DOCS[uri]
    assert doc["$id"] == f"https://schemas.photo.invalid/events/{key}.json"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert doc["required"] == AUTH_EVENTS[key] == list(doc["properties"])
    assert doc["examples"], key
    for ex in doc["examples"]:
        validate(ex, uri, f"{key} example")
    ex = doc["examples"][0]
    near_misses = [{**ex, "extra": 1}] + [{k: v for k, v in ex.items() if k != m} for m in ex]
    near_misses += [{**ex, m: 123} for m in ex if m.endswith("_id")]
    near_misses += [{**ex, m: "2026-11-21 18:40:03"} for m in ex if m.endswith("_at")]
    for bad in near_misses:
        with pytest.raises(AssertionError):
            validate(bad, uri, f"a bad {key}")


@pytest.mark.parametrize("key", sorted(AUTH_CONSUMES))
def test_consumed_post_event_schema_has_what_auth_relies_on(key):
    """publication owns post.created and post.deleted (its full payloads); auth keeps posts_count from their
    post_id and author_id, which the schemas require as non-empty strings."""
    uri = schema_uri(f"events/{key}")
    doc = DOCS[uri]
    assert set(AUTH_CONSUMES[key]) <= set(doc["required"]), doc["required"]
    assert "publication" in doc["description"] and "auth" in doc["description"]
    for member in AUTH_CONSUMES[key]:
        prop = doc["properties"][member]
        assert prop["type"] == "string" and (prop.get("minLength", 0) >= 1 or "pattern" in prop), (key, member)
    ex = doc["examples"][0]
    validate(ex, uri, key)
    for bad in ({k: v for k, v in ex.items() if k != "post_id"}, {k: v for k, v in ex.items() if k != "author_id"},
                {**ex, "post_id": 1}, {**ex, "author_id": ""}):
        with pytest.raises(AssertionError):
            validate(bad, uri, f"a bad {key}")


def check_event_channels(keys, app_of, bad_app):
    """Each event key has one channel on the topic exchange `events` whose message's payload is
    proto/schemas/events/<key>.json and whose headers are the envelope narrowed to that type and to the
    app_id of its publisher (app_of(key)); a wrong type, app_id (bad_app), delivery mode or message_id is
    refused. Returns the channels' names by address."""
    channels = ASYNCAPI["channels"]
    by_address = {ch.get("address"): name for name, ch in channels.items()}
    envelope = {"message_id": str(uuid.uuid4()), "timestamp": int(time.time()), "content_type": "application/json",
                "delivery_mode": 2, "headers": {"x-request-id": "r1"}}
    for key in keys:
        assert key in by_address, f"no channel with address {key}"
        name = by_address[key]
        ch = channels[name]
        assert ch["bindings"]["amqp"]["is"] == "routingKey" and ch["bindings"]["amqp"]["exchange"]["name"] == "events"
        assert ch["bindings"]["amqp"]["exchange"]["type"] == "topic"
        assert len(ch["messages"]) == 1, name
        msg_uri = _message_schema(key)
        payload, _ = follow(child(msg_uri, "payload", "schema"))
        assert payload == DOCS[schema_uri(f"events/{key}")], f"{name}: payload is not schemas/events/{key}.json"
        headers = child(msg_uri, "headers", "schema")
        app = app_of(key)
        validate({**envelope, "type": key, "app_id": app}, headers, f"{key} envelope")
        for change in ({"type": "x.y"}, {"app_id": bad_app}, {"delivery_mode": 1}, {"message_id": "1"}):
            with pytest.raises(AssertionError):
                validate({**envelope, "type": key, "app_id": app, **change}, headers, f"a bad {key} envelope")
    return by_address


def event_senders():
    """The channel references of every send operation."""
    return {op["channel"]["$ref"] for op in ASYNCAPI["operations"].values() if op["action"] == "send"}


def test_asyncapi_has_the_auth_events():
    """A channel on `events` per event key, whose message's payload is proto/schemas/events/<key>.json and
    whose headers are the envelope narrowed to that type; auth sends its nine and receives the post events
    on auth.events."""
    channels = ASYNCAPI["channels"]
    files = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(SCHEMA_DIR, "events", "*.json"))}
    assert files == set(AUTH_EVENTS) | set(AUTH_CONSUMES) | set(MEDIA_EVENTS) | set(PUBLICATION_EVENTS), files
    by_address = check_event_channels((*AUTH_EVENTS, *AUTH_CONSUMES),
                                      lambda key: "auth" if key in AUTH_EVENTS else "publication", "search")
    sends = event_senders()
    for key in AUTH_EVENTS:
        assert f"#/channels/{by_address[key]}" in sends, f"no operation sends {key}"
    queue = channels[by_address["auth.events"]]
    assert queue["bindings"]["amqp"]["queue"]["name"] == "auth.events"
    assert sorted(b["routingKey"] for b in queue["x-bindings"]) == sorted(AUTH_CONSUMES)
    assert queue["x-arguments"] == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "auth.events.dlq"}
    receivers = [op for op in ASYNCAPI["operations"].values()
                 if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{by_address['auth.events']}"]
    assert len(receivers) == 1
    got = set()
    for m in receivers[0]["messages"]:
        msg, _ = follow(urllib.parse.urljoin(ASYNCAPI_URI, m["$ref"]))
        got.add(msg["title"])
    assert got == set(AUTH_CONSUMES)


# ------------------------------------------------------------------ accounts and graph (auth): live, over HTTP/2

@pytest.fixture
def auth_up():
    with h2_client() as c:
        ready = c.get("/readyz").json()
    assert ready.get("services", {}).get("auth") == "up", f"auth is not up behind the gateway: {ready}"


def _auth_client():
    """A client speaking from a random address of its own: auth limits registrations and failed logins per
    client address in windows that outlive a test run (its database persists between stacks)."""
    address = f"172.{random.randrange(16, 32)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    return h2_client(address=address)


def _new_username(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


class AuthCalls:
    """Calls routes of auth through the gateway over HTTP/2: each answer must have the expected status and
    match its operation in openapi.yaml (status listed, headers, content type, body schema). Remembers the
    (path, method, status) it saw."""

    def __init__(self, rid_prefix=None):
        self.seen = set()
        self.rid_prefix = rid_prefix
        self.n = 0

    def __call__(self, c, method, template, expect, tok=None, path=None, **kw):
        url = template.format(**{k: urllib.parse.quote(v, safe="") for k, v in (path or {}).items()})
        headers = dict(kw.pop("headers", {}))
        if tok is not None:
            headers.update(bearer(tok))
        if self.rid_prefix:
            self.n += 1
            headers["x-request-id"] = f"{self.rid_prefix}{self.n}"
        r = c.request(method, url, headers=headers, **kw)
        where = f"{method} {url}"
        assert r.status_code == expect, f"{where}: {r.status_code}, wanted {expect}: {r.text[:800]}"
        if expect >= 400:
            is_problem(r, expect)
        assert r.headers.get("x-request-id"), where
        if self.rid_prefix:
            assert r.headers["x-request-id"] == headers["x-request-id"], where
        if expect < 300 and expect != 204:
            assert _media(r.headers["content-type"])[0] == "application/json", (where, r.headers["content-type"])
        body = check_operation(r, template, method.lower())
        self.seen.add((template, method.lower(), expect))
        self.last = r
        return body

    def register(self, c, prefix, **fields):
        username = _new_username(prefix)
        password = "pw-" + uuid.uuid4().hex
        t = self(c, "POST", "/v1/auth/register", 201,
                 json={"username": username, "email": f"{username}@example.com", "password": password, **fields})
        assert t["user"]["username"] == username
        return {**t, "password": password}


def _check_tokens(t):
    """The access token is a JWT auth signed for the gateway, about the account it came with."""
    claims = jwt.decode(t["access_token"], public_key(), algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == t["user"]["id"], claims
    assert abs(claims["exp"] - time.time() - t["expires_in"]) <= 10, (claims, t["expires_in"])
    if "AUTH_ACCESS_TTL" not in os.environ:
        assert t["expires_in"] == 900
    assert t["token_type"] == "Bearer"


JSON_CT = {"content-type": "application/json"}


def test_auth_routes_match_spec(auth_up):
    """A representative call of every auth route (and the errors the README names), each answer checked
    against openapi.yaml, and the values the README promises."""
    call = AuthCalls()
    ca, cb, cc = _auth_client(), _auth_client(), _auth_client()
    try:
        # ---- register: username and e-mail case-folded; 422, 409, 400
        name_a = _new_username("ca")
        pw_a = "pw-" + uuid.uuid4().hex
        t = call(ca, "POST", "/v1/auth/register", 201,
                 json={"username": name_a.upper(), "email": f"{name_a.upper()}@Example.COM", "password": pw_a,
                       "name": "Contract A"})
        a = t["user"]
        assert (a["username"], a["email"], a["name"], a["bio"], a["avatar_media_id"]) == \
               (name_a, f"{name_a}@example.com", "Contract A", "", None), a
        assert (a["posts_count"], a["followers_count"], a["following_count"]) == (0, 0, 0), a
        _check_tokens(t)
        tok_a = t["access_token"]
        body = call(ca, "POST", "/v1/auth/register", 422,
                    json={"username": "no spaces!", "email": "cx@example.com", "password": "long enough"})
        assert "username" in body.get("errors", {}), body
        body = call(ca, "POST", "/v1/auth/register", 422,
                    json={"username": _new_username("cx"), "email": "cx@example.com", "password": "long enough",
                          "role": "admin"})
        assert "role" in body.get("errors", {}), body
        body = call(ca, "POST", "/v1/auth/register", 409,
                    json={"username": name_a, "email": f"other.{name_a}@example.com", "password": "long enough"})
        assert body["errors"] == {"username": "taken"}, body
        call(ca, "POST", "/v1/auth/register", 400, content=b"{not json", headers=JSON_CT)
        call(ca, "POST", "/v1/auth/register", 400, content=b'["an array"]', headers=JSON_CT)
        call(ca, "POST", "/v1/auth/register", 413, content=b'{"name": "' + b"n" * (16 * 1024) + b'"}', headers=JSON_CT)

        # ---- login: by username or e-mail; one 401 whether the account exists or not
        t1 = call(ca, "POST", "/v1/auth/login", 200, json={"login": name_a, "password": pw_a})
        assert t1["user"]["id"] == a["id"]
        _check_tokens(t1)
        t2 = call(ca, "POST", "/v1/auth/login", 200, json={"login": a["email"], "password": pw_a})
        assert t2["user"]["id"] == a["id"] and t2["refresh_token"] != t1["refresh_token"]
        wrong = call(ca, "POST", "/v1/auth/login", 401, json={"login": name_a, "password": pw_a + "x"})
        assert wrong["type"].endswith("/invalid-credentials"), wrong
        unknown = call(ca, "POST", "/v1/auth/login", 401, json={"login": _new_username("nobody"), "password": pw_a})
        assert {k: unknown.get(k) for k in ("type", "title", "detail")} == \
               {k: wrong.get(k) for k in ("type", "title", "detail")}, (wrong, unknown)
        body = call(ca, "POST", "/v1/auth/login", 422, json={"login": {"$ne": None}, "password": pw_a})
        assert "login" in body.get("errors", {}), body

        # ---- refresh: rotates; a spent token revokes its family
        r1 = call(ca, "POST", "/v1/auth/refresh", 200, json={"refresh_token": t1["refresh_token"]})
        assert r1["user"]["id"] == a["id"] and r1["refresh_token"] != t1["refresh_token"]
        _check_tokens(r1)
        call(ca, "POST", "/v1/auth/refresh", 401, json={"refresh_token": t1["refresh_token"]})
        call(ca, "POST", "/v1/auth/refresh", 401, json={"refresh_token": r1["refresh_token"]})
        call(ca, "POST", "/v1/auth/refresh", 422, json={"refresh_token": 5})

        # ---- logout: revokes the family; 204 for an unknown token too
        call(ca, "POST", "/v1/auth/logout", 204, json={"refresh_token": t2["refresh_token"]})
        call(ca, "POST", "/v1/auth/refresh", 401, json={"refresh_token": t2["refresh_token"]})
        call(ca, "POST", "/v1/auth/logout", 204, json={"refresh_token": "A" * 43})
        call(ca, "POST", "/v1/auth/logout", 400, content=b"null", headers=JSON_CT)

        # ---- me
        me = call(ca, "GET", "/v1/me", 200, tok=tok_a)
        assert me["id"] == a["id"] and me["email"] == a["email"] and me["created_at"] == a["created_at"], me
        call(ca, "GET", "/v1/me", 401)
        me = call(ca, "PATCH", "/v1/me", 200, tok=tok_a, json={"name": "Contract A2", "bio": "b" * 300})
        assert (me["name"], me["bio"], me["email"], me["username"]) == ("Contract A2", "b" * 300, a["email"], name_a)
        me = call(ca, "PATCH", "/v1/me", 200, tok=tok_a, json={"bio": "b" * 300})  # the answer is the whole account
        assert (me["name"], me["bio"], me["email"]) == ("Contract A2", "b" * 300, a["email"]), me
        body = call(ca, "PATCH", "/v1/me", 422, tok=tok_a, json={"nickname": "x"})
        assert "nickname" in body.get("errors", {}), body
        body = call(ca, "PATCH", "/v1/me", 422, tok=tok_a, json={"name": {"$ne": None}})
        assert "name" in body.get("errors", {}), body
        body = call(ca, "PATCH", "/v1/me", 422, tok=tok_a, json={"bio": "b" * 301})
        assert "bio" in body.get("errors", {}), body
        call(ca, "PATCH", "/v1/me", 400, tok=tok_a, content=b"nope", headers=JSON_CT)
        assert call(ca, "GET", "/v1/me", 200, tok=tok_a)["bio"] == "b" * 300  # nothing written on a 4xx

        tb = call.register(cb, "cb", name="Contract B")
        tc = call.register(cc, "cc")
        b, cu = tb["user"], tc["user"]
        tok_b, tok_c = tb["access_token"], tc["access_token"]
        body = call(ca, "PATCH", "/v1/me", 409, tok=tok_a, json={"email": b["email"]})
        assert body["errors"] == {"email": "taken"}, body

        # ---- profiles: relationship null for anonymous callers and oneself
        p = call(ca, "GET", "/v1/users/{username}", 200, path={"username": b["username"]})
        assert p["id"] == b["id"] and p["name"] == "Contract B" and p["relationship"] is None, p
        p = call(ca, "GET", "/v1/users/{username}", 200, tok=tok_a, path={"username": name_a})
        assert p["relationship"] is None and p["name"] == "Contract A2", p
        p = call(ca, "GET", "/v1/users/{username}", 200, tok=tok_a, path={"username": b["username"]})
        assert p["relationship"] == {"following": False, "followed_by": False, "blocking": False}, p
        call(ca, "GET", "/v1/users/{username}", 404, path={"username": _new_username("nobody")})
        call(ca, "GET", "/v1/users/{username}", 401, tok="not.a.token", path={"username": b["username"]})

        # ---- follow (idempotent), self 422, unknown 404, no token 401
        rel = call(ca, "POST", "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": b["username"]})
        assert rel == {"id": b["id"], "username": b["username"], "following": True, "followed_by": False,
                       "blocking": False}, rel
        assert call(ca, "POST", "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": b["username"]}) == rel
        call(ca, "POST", "/v1/users/{username}/follow", 422, tok=tok_a, path={"username": name_a})
        call(ca, "POST", "/v1/users/{username}/follow", 404, tok=tok_a, path={"username": _new_username("nobody")})
        call(ca, "POST", "/v1/users/{username}/follow", 401, path={"username": b["username"]})
        call(ca, "POST", "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": cu["username"]})
        rel = call(cb, "POST", "/v1/users/{username}/follow", 200, tok=tok_b, path={"username": name_a})
        assert (rel["following"], rel["followed_by"], rel["blocking"]) == (True, True, False), rel

        # ---- lists: newest edge first, paginated by cursor
        page = call(ca, "GET", "/v1/users/{username}/following", 200, path={"username": name_a}, params={"limit": 1})
        assert [i["username"] for i in page["items"]] == [cu["username"]] and page["next_cursor"], page
        page = call(ca, "GET", "/v1/users/{username}/following", 200, tok=tok_a, path={"username": name_a},
                    params={"limit": 1, "cursor": page["next_cursor"]})
        assert [i["username"] for i in page["items"]] == [b["username"]], page
        if page["next_cursor"] is not None:
            page = call(ca, "GET", "/v1/users/{username}/following", 200, path={"username": name_a},
                        params={"limit": 1, "cursor": page["next_cursor"]})
            assert page == {"items": [], "next_cursor": None}, page
        page = call(cb, "GET", "/v1/users/{username}/followers", 200, tok=tok_b, path={"username": b["username"]})
        assert page == {"items": [{"id": a["id"], "username": name_a, "name": "Contract A2", "avatar_media_id": None}],
                        "next_cursor": None}, page
        call(ca, "GET", "/v1/users/{username}/followers", 404, path={"username": _new_username("nobody")})
        call(ca, "GET", "/v1/users/{username}/following", 404, path={"username": _new_username("nobody")})
        me = call(ca, "GET", "/v1/me", 200, tok=tok_a)
        assert (me["followers_count"], me["following_count"]) == (1, 2), me

        # ---- unfollow (idempotent)
        rel = call(ca, "DELETE", "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": b["username"]})
        assert (rel["following"], rel["followed_by"], rel["blocking"]) == (False, True, False), rel
        assert call(ca, "DELETE", "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": b["username"]}) == rel
        call(ca, "DELETE", "/v1/users/{username}/follow", 422, tok=tok_a, path={"username": name_a})

        # ---- block: removes follows both ways, hides each from the other; the blocked can block back
        call(ca, "POST", "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": b["username"]})
        rel = call(ca, "POST", "/v1/users/{username}/block", 200, tok=tok_a, path={"username": b["username"]})
        assert rel == {"id": b["id"], "username": b["username"], "following": False, "followed_by": False,
                       "blocking": True}, rel
        call(cb, "GET", "/v1/users/{username}", 404, tok=tok_b, path={"username": name_a})
        call(ca, "GET", "/v1/users/{username}", 404, tok=tok_a, path={"username": b["username"]})
        call(cb, "GET", "/v1/users/{username}/followers", 404, tok=tok_b, path={"username": name_a})
        call(cb, "POST", "/v1/users/{username}/follow", 404, tok=tok_b, path={"username": name_a})
        rel = call(cb, "POST", "/v1/users/{username}/block", 200, tok=tok_b, path={"username": name_a})
        assert (rel["id"], rel["blocking"], rel["following"], rel["followed_by"]) == (a["id"], True, False, False), rel
        call(ca, "POST", "/v1/users/{username}/block", 422, tok=tok_a, path={"username": name_a})
        call(ca, "POST", "/v1/users/{username}/block", 404, tok=tok_a, path={"username": _new_username("nobody")})
        rel = call(ca, "DELETE", "/v1/users/{username}/block", 200, tok=tok_a, path={"username": b["username"]})
        assert (rel["blocking"], rel["following"], rel["followed_by"]) == (False, False, False), rel
        call(cb, "DELETE", "/v1/users/{username}/block", 200, tok=tok_b, path={"username": name_a})
        p = call(ca, "GET", "/v1/users/{username}", 200, tok=tok_a, path={"username": b["username"]})
        assert p["relationship"] == {"following": False, "followed_by": False, "blocking": False}, p
        assert (p["followers_count"], p["following_count"]) == (0, 0), p

        # ---- devices
        device = "contract:" + uuid.uuid4().hex
        d = call(ca, "POST", "/v1/me/devices", 201, tok=tok_a, json={"token": device, "platform": "ios"})
        assert (d["token"], d["platform"]) == (device, "ios"), d
        body = call(ca, "POST", "/v1/me/devices", 422, tok=tok_a, json={"token": device, "platform": "symbian"})
        assert "platform" in body.get("errors", {}), body
        body = call(ca, "POST", "/v1/me/devices", 422, tok=tok_a, json={"token": "no spaces", "platform": "ios"})
        assert "token" in body.get("errors", {}), body
        call(ca, "POST", "/v1/me/devices", 401, json={"token": device, "platform": "ios"})
        call(ca, "DELETE", "/v1/me/devices/{token}", 204, tok=tok_a, path={"token": device})

        # ---- delete the account: gone for everyone, its login too
        call(cc, "DELETE", "/v1/me", 204, tok=tok_c)
        call(ca, "GET", "/v1/users/{username}", 404, path={"username": cu["username"]})
        call(cc, "POST", "/v1/auth/login", 401, json={"login": cu["username"], "password": tc["password"]})
        page = call(ca, "GET", "/v1/users/{username}/following", 200, path={"username": name_a})
        assert page["items"] == [], page

        # ---- a method the route does not take: 405 with Allow
        r = ca.get("/v1/auth/login")
        is_problem(r, 405)
        check_response(r, component_response("MethodNotAllowed"), "GET /v1/auth/login")
        assert "POST" in r.headers["allow"].split(", "), r.headers["allow"]
    finally:
        for c in (ca, cb, cc):
            c.close()
    missing = {op for op in AUTH_ROUTES if not any(s[:2] == op and s[2] < 300 for s in call.seen)}
    assert not missing, f"auth operations never called successfully: {sorted(missing)}"


# ------------------------------------------------------------------ auth's events, read off the broker

@pytest.fixture
def event_queue(rabbit, temp_queue):
    """temp_queue bound to `events` with every key auth publishes."""
    for key in AUTH_EVENTS:
        _bind(rabbit, temp_queue, key, exchange="events")
    return temp_queue


_EVENT_USER_MEMBERS = ("user_id", "follower_id", "followee_id", "blocker_id", "blocked_id")


def _event_users(msg):
    body = json.loads(_payload(msg))
    return {body[k] for k in _EVENT_USER_MEMBERS if isinstance(body, dict) and k in body}


def _drain(rabbit, queue, got, done, timeout, what):
    """Takes every message off queue into got until done(got) holds; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        r = rabbit.post(f"/queues/%2F/{_q(queue)}/get",
                        json={"count": 200, "ackmode": "ack_requeue_false", "encoding": "auto"})
        r.raise_for_status()
        msgs = r.json()
        got.extend(msgs)
        if done(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; got "
                                 f"{sorted((m['routing_key'], _payload(m)) for m in got)}")
        if not msgs:
            time.sleep(0.1)


def collect_events(rabbit, queue, users_of, ours, expected, timeout):
    """Drains queue until the events about the users ours (users_of(message) names a message's users)
    reach the counts by routing key of expected, waits for anything more (a duplicate, an event for a
    no-op), and asserts the counts are exactly expected. Returns every message drained."""

    def counts(got):
        n = {}
        for m in got:
            if users_of(m) & ours:
                n[m["routing_key"]] = n.get(m["routing_key"], 0) + 1
        return n

    got = []
    _drain(rabbit, queue, got, lambda g: all(counts(g).get(k, 0) >= v for k, v in expected.items()),
           timeout=timeout, what=f"events {expected}")
    time.sleep(1.5)  # anything more would have arrived by now
    _drain(rabbit, queue, got, lambda g: True, timeout=0, what="the rest")
    assert counts(got) == expected, counts(got)
    return got


def _message_schema(key):
    """The asyncapi message of the channel whose address is key."""
    name = next(n for n, ch in ASYNCAPI["channels"].items() if ch.get("address") == key)
    msg_key = next(iter(ASYNCAPI["channels"][name]["messages"]))
    _, msg_uri = follow(child(ASYNCAPI_URI, "channels", name, "messages", msg_key))
    return msg_uri


def test_auth_events_match_schemas(auth_up, rabbit, event_queue):
    """Real events auth publishes for register, PATCH /v1/me, follow, unfollow, block, unblock, device add,
    remove, eviction and move, and DELETE /v1/me: each arrives once per change (none for a no-op), with the
    envelope and the payload of asyncapi.yaml and proto/schemas/events/<key>.json."""
    rid_prefix = f"ev-{uuid.uuid4().hex[:8]}-"
    call = AuthCalls(rid_prefix=rid_prefix)
    max_devices = int(os.environ.get("AUTH_MAX_DEVICES", "10"))
    ca, cb, cc = _auth_client(), _auth_client(), _auth_client()
    try:
        ta, tb, tc = call.register(ca, "ea", name="Event A"), call.register(cb, "eb"), call.register(cc, "ec")
        a, b, cu = ta["user"], tb["user"], tc["user"]
        tok_a, tok_b, tok_c = ta["access_token"], tb["access_token"], tc["access_token"]
        call(ca, "PATCH", "/v1/me", 200, tok=tok_a, json={"name": "Event A2", "bio": "events"})
        call(ca, "PATCH", "/v1/me", 200, tok=tok_a, json={"bio": "events 2"})  # the event is the whole profile
        for method in ("POST", "POST", "DELETE", "DELETE", "POST"):  # a no-op each second time
            call(ca, method, "/v1/users/{username}/follow", 200, tok=tok_a, path={"username": b["username"]})
        call(cb, "POST", "/v1/users/{username}/follow", 200, tok=tok_b, path={"username": a["username"]})
        for method in ("POST", "POST", "DELETE", "DELETE"):  # idempotent too
            call(ca, method, "/v1/users/{username}/block", 200, tok=tok_a, path={"username": b["username"]})
        first = f"contract:{uuid.uuid4().hex}"
        call(ca, "POST", "/v1/me/devices", 201, tok=tok_a, json={"token": first, "platform": "android"})
        call(cb, "DELETE", "/v1/me/devices/{token}", 204, tok=tok_b, path={"token": first})  # not b's: no effect
        call(ca, "DELETE", "/v1/me/devices/{token}", 204, tok=tok_a, path={"token": first})
        tokens = [f"contract:{i}:{uuid.uuid4().hex}" for i in range(max_devices + 1)]
        for t in tokens:  # the last one evicts the oldest, tokens[0]
            call(ca, "POST", "/v1/me/devices", 201, tok=tok_a, json={"token": t, "platform": "web"})
        call(cb, "POST", "/v1/me/devices", 201, tok=tok_b, json={"token": tokens[-1], "platform": "web"})  # moved
        call(cc, "DELETE", "/v1/me", 204, tok=tok_c)
    finally:
        for c in (ca, cb, cc):
            c.close()

    ours = {a["id"], b["id"], cu["id"]}
    expected = {"user.registered": 3, "user.updated": 2, "user.deleted": 1, "follow.created": 3, "follow.deleted": 1,
                "block.created": 1, "block.deleted": 1, "device.registered": max_devices + 3, "device.removed": 3}

    got = collect_events(rabbit, event_queue, _event_users, ours, expected, timeout=30)

    mine = [m for m in got if _event_users(m) & ours]
    by_key = {}
    message_ids = set()
    for m in mine:
        key = m["routing_key"]
        props = m["properties"]
        where = f"{key} {_payload(m)}"
        assert m["exchange"] == "events", where
        validate(props, schema_uri("event-envelope"), f"{where}: properties")
        validate(props, child(_message_schema(key), "headers", "schema"), f"{where}: properties")
        assert props["type"] == key and props["app_id"] == "auth" and props["delivery_mode"] == 2, props
        assert props["message_id"] not in message_ids, f"{where}: message_id used twice"
        message_ids.add(props["message_id"])
        rid = props.get("headers", {}).get("x-request-id")  # the request that caused it
        assert rid is not None and rid.startswith(rid_prefix), f"{where}: x-request-id {rid}"
        body = json.loads(_payload(m))
        validate(body, schema_uri(f"events/{key}"), f"{where}: payload")
        validate(body, child(_message_schema(key), "payload", "schema"), f"{where}: payload")
        by_key.setdefault(key, []).append(body)

    assert sorted(e["user_id"] for e in by_key["user.registered"]) == sorted(ours)
    reg_a = next(e for e in by_key["user.registered"] if e["user_id"] == a["id"])
    assert (reg_a["username"], reg_a["email"], reg_a["name"], reg_a["created_at"]) == \
           (a["username"], a["email"], "Event A", a["created_at"]), reg_a
    updates = sorted(((e["user_id"], e["username"], e["email"], e["name"], e["bio"], e["avatar_media_id"])
                      for e in by_key["user.updated"]), key=lambda u: u[4])
    assert updates == [(a["id"], a["username"], a["email"], "Event A2", bio, None) for bio in ("events", "events 2")], \
        updates
    assert by_key["user.deleted"][0]["user_id"] == cu["id"] and by_key["user.deleted"][0]["username"] == cu["username"]
    assert sorted((e["follower_id"], e["followee_id"]) for e in by_key["follow.created"]) == \
           sorted([(a["id"], b["id"]), (a["id"], b["id"]), (b["id"], a["id"])])
    fc = next(e for e in by_key["follow.created"] if e["follower_id"] == b["id"])
    assert (fc["follower_username"], fc["followee_username"]) == (b["username"], a["username"]), fc
    # One follow.deleted: the unfollow; the block implies the two follows it removed.
    assert [(e["follower_id"], e["followee_id"]) for e in by_key["follow.deleted"]] == [(a["id"], b["id"])]
    assert [(e["blocker_id"], e["blocked_id"]) for e in by_key["block.created"]] == [(a["id"], b["id"])]
    assert [(e["blocker_id"], e["blocked_id"]) for e in by_key["block.deleted"]] == [(a["id"], b["id"])]
    registered = sorted((e["user_id"], e["token"], e["platform"]) for e in by_key["device.registered"])
    assert registered == sorted([(a["id"], first, "android"), *((a["id"], t, "web") for t in tokens),
                                 (b["id"], tokens[-1], "web")]), registered
    removed = sorted((e["reason"], e["user_id"], e["token"]) for e in by_key["device.removed"])
    assert removed == sorted([("removed", a["id"], first), ("evicted", a["id"], tokens[0]),
                              ("moved", a["id"], tokens[-1])]), removed


def _post_event(key, post_id, author, message_id=None):
    """A post.created or post.deleted as publication sends it (its full payload), about author's post."""
    props = {"message_id": message_id or str(uuid.uuid4()), "type": key, "timestamp": int(time.time()),
             "app_id": "publication", "content_type": "application/json", "delivery_mode": 2,
             "headers": {"x-request-id": f"contract-{key}"}}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if key == "post.created":
        media = {k: v for k, v in media_sample().items() if k not in ("owner_id", "created_at")}
        body = {"post_id": post_id, "author_id": author["id"], "author_username": author["username"], "caption": "",
                "tags": [], "mentions": [], "media": [media], "created_at": now}
    else:
        body = {"post_id": post_id, "author_id": author["id"], "deleted_at": now}
    validate(props, child(_message_schema(key), "headers", "schema"), f"our {key} properties")
    validate(body, schema_uri(f"events/{key}"), f"our {key} payload")
    return props, json.dumps(body)


def test_auth_consumes_post_events(auth_up, rabbit):
    """post.created and post.deleted as their schemas describe them (on `events`, as publication sends them)
    keep posts_count; a redelivered event changes nothing twice."""
    call = AuthCalls()
    with _auth_client() as c:
        t = call.register(c, "ep")
        user = t["user"]

        def posts_count():
            return call(c, "GET", "/v1/users/{username}", 200, path={"username": user["username"]})["posts_count"]

        def wait_count(n, what):
            seen = []
            wait_until(lambda: seen.append(posts_count()) or seen[-1] == n, timeout=15,
                       what=f"posts_count {n} {what} (seen {seen[-3:]})")

        def send(key, post_id, message_id=None):
            props, body = _post_event(key, post_id, user, message_id)
            assert publish(rabbit, "events", key, props, body)["routed"], f"nothing bound to events/{key}"
            return props["message_id"]

        p1, p2 = uuid.uuid4().hex[:24], uuid.uuid4().hex[:24]
        mid = send("post.created", p1)
        wait_count(1, "after post.created")
        send("post.created", p1, message_id=mid)  # a redelivery
        send("post.created", p2)
        wait_count(2, "after a redelivery and a second post")
        time.sleep(0.5)
        assert posts_count() == 2
        assert call(c, "GET", "/v1/me", 200, tok=t["access_token"])["posts_count"] == 2
        send("post.deleted", p1)
        send("post.deleted", p1)
        wait_count(1, "after post.deleted, twice")
        send("post.deleted", p2)
        wait_count(0, "after both were deleted")


def test_auth_queues_match_asyncapi(auth_up, rabbit):
    spec = ASYNCAPI["channels"]["authEvents"]
    queue = spec["bindings"]["amqp"]["queue"]
    q = rabbit.get(f"/queues/%2F/{_q(queue['name'])}")
    assert q.status_code == 200, f"queue {queue['name']} does not exist"
    q = q.json()
    assert (q["durable"], q["exclusive"], q["auto_delete"]) == (queue["durable"], queue["exclusive"],
                                                                queue["autoDelete"]), q
    assert q["arguments"] == spec["x-arguments"], q["arguments"]
    bindings = rabbit.get(f"/queues/%2F/{_q(queue['name'])}/bindings").json()
    keys = {b["routing_key"] for b in bindings if b["source"] == "events"}
    assert keys == {b["routingKey"] for b in spec["x-bindings"]}, keys
    dlq = rabbit.get(f"/queues/%2F/{_q(queue['name'] + '.dlq')}")
    assert dlq.status_code == 200 and dlq.json()["durable"] is True, dlq.text


# ------------------------------------------------------------------ media (resize-image): the documents

# services/resize-image/README.md, "RPC methods": route -> (RPC method, token, success status of API.md).
MEDIA_ROUTES = {
    ("/v1/media", "post"): ("media.upload", "required", 201),
    ("/v1/media/{id}", "get"): ("media.show", "required", 200),
}
# The README's "Answers to bad input": the problem types of each error status of an upload.
UPLOAD_PROBLEMS = {
    400: ["empty-body", "empty-file", "missing-file", "too-many-files", "malformed-multipart"],
    413: ["body-too-large"],
    415: ["unsupported-media-type", "unsupported-image"],
    422: ["image-too-large", "corrupt-image"],
}
PROBLEM_BASE = "https://problems.photo.invalid/"
VARIANT_NAMES = ["thumb", "small", "medium", "large"]
MEDIA_ID = "9f86d081884c7d659a2feaa0c55ad015"
BLURHASH = "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
ROUTES_C = os.path.join(ROOT, "services", "gateway", "routes.c")


def test_openapi_has_every_media_route():
    """Each route of API.md's "Media" table, as services/resize-image/README.md maps it: the RPC method, the
    token, the success status and shape, the errors it can answer (for an upload, with exactly the problem
    types of the README), and the two ways an upload comes in."""
    ops = {(path, m) for path, item in OPENAPI["paths"].items() if path.startswith("/v1/media")
           for m in HTTP_METHODS if m in item}
    assert ops == set(MEDIA_ROUTES), f"missing {set(MEDIA_ROUTES) - ops}, extra {ops - set(MEDIA_ROUTES)}"
    for (path, method), (rpc, kind, success) in MEDIA_ROUTES.items():
        where = f"{method.upper()} {path}"
        op = OPENAPI["paths"][path][method]
        op_uri = operation_uri(path, method)
        assert op.get("x-rpc") == rpc, where
        assert op.get("tags") == ["media"], where
        assert _token_kind(op) == kind, f"{where}: token {_token_kind(op)}, README says {kind}"
        codes = {int(c) for c in op["responses"]}
        want = {success, 401, 429, 503, 504}
        if method == "post":
            want |= set(UPLOAD_PROBLEMS)
        else:
            want |= {400, 404}  # 400: the gateway's bad-path (a malformed percent-encoding)
        assert codes == want, f"{where}: lists {sorted(codes)}, wanted {sorted(want)}"
        resp, resp_uri = follow(child(op_uri, "responses", str(success)))
        assert list(resp["content"]) == ["application/json"], where
        assert _schema_ref(child(resp_uri, "content", "application/json", "schema")) == "Media", where
        assert OPENAPI["paths"][path]["x-other-methods"]["response"] == {"$ref": "#/components/responses/MethodNotAllowed"}
    assert "requestBody" not in OPENAPI["paths"]["/v1/media/{id}"]["get"]

    post = operation_uri("/v1/media", "post")
    body, body_uri = follow(child(post, "requestBody"))
    assert body.get("required") is True and list(body["content"]) == ["multipart/form-data", "image/*"], body
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["type"] == "object" and form["required"] == ["file"], form
    assert (form["properties"]["file"]["type"], form["properties"]["file"]["format"]) == ("string", "binary")
    raw = body["content"]["image/*"]["schema"]
    assert (raw["type"], raw["format"]) == ("string", "binary"), raw
    created, created_uri = follow(child(post, "responses", "201"))
    location, location_uri = follow(child(created_uri, "headers", "location"))
    assert location["required"] is True
    validate(f"/v1/media/{MEDIA_ID}", child(location_uri, "schema"), "a Location")
    every_type = {t for types in UPLOAD_PROBLEMS.values() for t in types} | {"invalid-field", "not-found"}
    for status, types in UPLOAD_PROBLEMS.items():
        schema = child(post, "responses", str(status))
        resp, resp_uri = follow(schema)
        schema = child(resp_uri, "content", "application/problem+json", "schema")
        for t in types:
            validate({"type": PROBLEM_BASE + t, "title": "x", "status": status, "detail": "d"}, schema, f"{status} {t}")
            assert f"`{t}`" in resp["description"] or status == 413, f"{status}: the description does not name {t}"
        if status == 413:  # the reusable ContentTooLarge: the gateway's cap and the service's say the same
            assert OPENAPI["paths"]["/v1/media"]["post"]["responses"]["413"] == \
                   {"$ref": "#/components/responses/ContentTooLarge"}
            continue
        for t in every_type - set(types):
            with pytest.raises(AssertionError):
                validate({"type": PROBLEM_BASE + t, "title": "x", "status": status}, schema, f"{status} {t}")
        with pytest.raises(AssertionError):
            validate({"type": PROBLEM_BASE + types[0], "title": "x", "status": 400 if status != 400 else 422},
                     schema, "another status")
    params = _effective_parameters(child(OPENAPI_URI, "paths", "/v1/media/{id}"), operation_uri("/v1/media/{id}", "get"))
    assert set(params) == {("id", "path"), ("x-request-id", "header")}, params
    id_schema = child(OPENAPI_URI, "components", "parameters", "MediaId", "schema")
    validate(MEDIA_ID, id_schema, "a media id")
    for bad in ("A" * 32, "0" * 31, "0" * 33, "g" * 32):
        with pytest.raises(AssertionError):
            validate(bad, id_schema, "a bad media id")


def _gateway_routes():
    """(pattern, method) -> (service, RPC method, token) of every route services/gateway/routes.c serves
    outside the debug routes."""
    with open(ROUTES_C, encoding="utf-8") as f:
        text = f.read()
    found = re.findall(r'\{"([A-Z]+)", "(/[^"]*)", "([a-z][a-z0-9-]*)", "([^"]+)", GW_AUTH_(NONE|OPTIONAL|REQUIRED),'
                       r'[^}]*,\s*([0-9])\}', text)  # (clang-format may break a route's line anywhere)
    assert found, f"no routes found in {ROUTES_C}"
    return {(pattern, method.lower()): (service, rpc, token.lower())
            for method, pattern, service, rpc, token, debug in found if debug == "0"}


def test_gateway_route_table_is_the_openapi_paths():
    """The gateway serves exactly the /v1 operations of openapi.yaml, each relayed as the RPC method its
    x-rpc names, with the token its security says; the media routes go to resize-image, the posts, comments
    and likes routes to publication."""
    routes = _gateway_routes()
    spec = {(path, m): (item[m].get("x-rpc"), _token_kind(item[m])) for path, item in OPENAPI["paths"].items()
            if path.startswith("/v1/") for m in HTTP_METHODS if m in item}
    assert {k: (rpc, tok) for k, (_, rpc, tok) in routes.items()} == spec
    for key in MEDIA_ROUTES:
        assert routes[key][0] == "resize-image", (key, routes[key])
    for key in AUTH_ROUTES:
        assert routes[key][0] == "auth", (key, routes[key])
    for key in PUBLICATION_ROUTES:
        assert routes[key][0] == "publication", (key, routes[key])


def media_sample(media_id=MEDIA_ID, width=300, height=200, owner="u01hx3k5v8r"):
    """A Media as media_json writes it (services/resize-image/media.c)."""
    variants = {}
    for name in VARIANT_NAMES:
        w, h = (min(150, width, height),) * 2 if name == "thumb" else (width, height)
        variants[name] = {"url": f"/media/m/{media_id}/{name}.jpg", "webp_url": f"/media/m/{media_id}/{name}.webp",
                          "width": w, "height": h}
    return {"id": media_id, "owner_id": owner, "width": width, "height": height, "variants": variants,
            "blurhash": BLURHASH, "created_at": "2026-11-21T18:40:03.512Z"}


def _media_near_misses():
    good = media_sample()

    def variant(name, **change):
        v = {**good["variants"][name], **change}
        return {**good, "variants": {**good["variants"], name: {k: x for k, x in v.items() if x is not None}}}

    bad = [{**good, "state": "ready"}, {**good, "format": "jpeg"}, {**good, "id": "A" * 32}, {**good, "id": "0" * 31},
           {**good, "id": 7}, {**good, "owner_id": ""}, {**good, "owner_id": None}, {**good, "width": 0},
           {**good, "height": "200"}, {**good, "blurhash": None}, {**good, "blurhash": BLURHASH[:-1]},
           {**good, "blurhash": BLURHASH[:-1] + "\""}, {**good, "created_at": "2026-11-21 18:40:03"},
           {**good, "created_at": "2026-11-21T18:40:03+01:00"},
           {**good, "variants": {**good["variants"], "huge": good["variants"]["large"]}},
           {**good, "variants": {k: v for k, v in good["variants"].items() if k != "thumb"}},
           variant("small", webp_url=None), variant("small", bytes=1234), variant("large", url="/media/x.png"),
           variant("large", webp_url=good["variants"]["large"]["url"]), variant("thumb", width=0),
           variant("medium", height=None)]
    bad += [{k: v for k, v in good.items() if k != m} for m in good if m != "blurhash"]
    return bad


def test_media_schemas_are_exactly_the_readme_shapes():
    """Media and MediaVariant have exactly the members media_json emits (README, "Shapes"), all required but
    blurhash; and openapi's Media and the media.created payload accept and refuse the same documents."""
    schemas = OPENAPI["components"]["schemas"]
    media, variant = schemas["Media"], schemas["MediaVariant"]
    assert media["type"] == "object" and media["additionalProperties"] is False
    assert list(media["properties"]) == MEDIA_EVENTS["media.created"]
    assert media["required"] == [m for m in MEDIA_EVENTS["media.created"] if m not in MEDIA_EVENTS_OPTIONAL["media.created"]]
    variants = media["properties"]["variants"]
    assert variants["type"] == "object" and variants["additionalProperties"] is False
    assert variants["required"] == VARIANT_NAMES == list(variants["properties"])
    assert all(v == {"$ref": "#/components/schemas/MediaVariant"} for v in variants["properties"].values())
    assert variant["type"] == "object" and variant["additionalProperties"] is False
    assert variant["required"] == ["url", "webp_url", "width", "height"] == list(variant["properties"])
    assert media["properties"]["created_at"] == {"$ref": "#/components/schemas/Time"}
    id_schema, _ = follow(child(_component("Media"), "properties", "id"))
    assert id_schema["pattern"] == "^[0-9a-f]{32}$"
    good = [media_sample(), {k: v for k, v in media_sample().items() if k != "blurhash"},
            media_sample(width=100, height=80), media_sample(width=1080, height=1440),
            {**media_sample(), "created_at": "2026-11-21T18:40:03Z"},
            {**media_sample(), "variants": {k: {**v, "url": "https://cdn.example.com/m/" + v["url"].split("/m/")[1]}
                                            for k, v in media_sample()["variants"].items()}}]
    for uri in (_component("Media"), schema_uri("events/media.created")):
        for instance in good:
            validate(instance, uri, "a media")
        for instance in _media_near_misses():
            with pytest.raises(AssertionError):
                validate(instance, uri, "a bad media")
    for name in ("Media", "MediaVariant", "MediaId"):
        assert name in schemas


@pytest.mark.parametrize("key", sorted(MEDIA_EVENTS))
def test_media_event_schema_is_the_readme_payload(key):
    uri = schema_uri(f"events/{key}")
    doc = DOCS[uri]
    assert doc["$id"] == f"https://schemas.photo.invalid/events/{key}.json"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert list(doc["properties"]) == MEDIA_EVENTS[key]
    optional = MEDIA_EVENTS_OPTIONAL.get(key, [])
    assert doc["required"] == [m for m in MEDIA_EVENTS[key] if m not in optional]
    assert "resize-image" in doc["description"] and "app_id resize-image" in doc["description"]
    assert doc["examples"], key
    for ex in doc["examples"]:
        validate(ex, uri, f"{key} example")
    ex = doc["examples"][0]
    near_misses = [{**ex, "extra": 1}] + [{k: v for k, v in ex.items() if k != m} for m in ex if m not in optional]
    near_misses += [{**ex, m: 123} for m in ex if m == "id" or m.endswith("_id")]
    near_misses += [{**ex, m: "2026-11-21 18:40:03"} for m in ex if m.endswith("_at")]
    near_misses += [{**ex, "id": ex["id"].upper()}, {**ex, "id": ex["id"][:-1]}, {**ex, "owner_id": ""}]
    for bad in near_misses:
        with pytest.raises(AssertionError):
            validate(bad, uri, f"a bad {key}")


def test_user_deleted_is_what_resize_image_relies_on():
    """resize-image deletes a user's media from user.deleted's user_id (a non-empty string; it dead-letters
    the event otherwise): auth's schema requires exactly that."""
    uri = schema_uri("events/user.deleted")
    doc = DOCS[uri]
    for key, members in MEDIA_CONSUMES.items():
        assert set(members) <= set(DOCS[schema_uri(f"events/{key}")]["required"]), key
    assert doc["properties"]["user_id"]["type"] == "string" and doc["properties"]["user_id"]["minLength"] >= 1
    assert "resize-image" in doc["description"]
    for bad in ({"user_id": "", "username": "alice", "deleted_at": T0}, {"username": "alice", "deleted_at": T0},
                {"user_id": 5, "username": "alice", "deleted_at": T0}):
        with pytest.raises(AssertionError):
            validate(bad, uri, "a user.deleted resize-image could not use")


def test_asyncapi_has_the_media_events_and_queues():
    """resize-image sends media.created and media.deleted (app_id resize-image) on `events`, receives
    user.deleted on resize-image.events, and serves resize-image.rpc one request at a time, media.get's
    request and reply described."""
    channels = ASYNCAPI["channels"]
    by_address = check_event_channels(MEDIA_EVENTS, lambda key: "resize-image", "auth")
    sends = event_senders()
    for key in MEDIA_EVENTS:
        name = by_address[key]
        ch = channels[name]
        assert f"#/channels/{name}" in sends, f"no operation sends {key}"
        assert "resize-image" in ch["description"]

    queue = channels[by_address["resize-image.events"]]
    assert queue["bindings"]["amqp"]["is"] == "queue"
    assert queue["bindings"]["amqp"]["queue"]["name"] == "resize-image.events"
    assert queue["bindings"]["amqp"]["queue"]["durable"] is True
    assert [(b["exchange"], b["routingKey"]) for b in queue["x-bindings"]] == [("events", k) for k in MEDIA_CONSUMES]
    assert queue["x-arguments"] == {"x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": "resize-image.events.dlq"}
    receivers = [op for op in ASYNCAPI["operations"].values()
                 if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{by_address['resize-image.events']}"]
    assert len(receivers) == 1
    got = set()
    for m in receivers[0]["messages"]:
        msg, _ = follow(urllib.parse.urljoin(ASYNCAPI_URI, m["$ref"]))
        got.add(msg["title"])
        # the very message auth's user.deleted channel carries
        assert msg == follow(_message_schema(msg["title"]))[0]
    assert got == set(MEDIA_CONSUMES)

    rpc = channels[by_address["resize-image.rpc"]]
    assert rpc["bindings"]["amqp"]["is"] == "queue"
    spec_q = rpc["bindings"]["amqp"]["queue"]
    generic = channels["rpcQueue"]["bindings"]["amqp"]["queue"]
    assert spec_q["name"] == generic["name"].replace("{service}", "resize-image")
    assert {k: v for k, v in spec_q.items() if k != "name"} == {k: v for k, v in generic.items() if k != "name"}
    assert rpc["x-bindings"] == [{"exchange": "rpc", "routingKey": "resize-image"}]
    assert rpc["x-prefetch"] == 1
    for method in ("media.upload", "media.show", "media.get", "resize-image.ping"):
        assert f"`{method}`" in rpc["description"], method
    servers = [op for op in ASYNCAPI["operations"].values()
               if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{by_address['resize-image.rpc']}"]
    assert len(servers) == 1 and servers[0]["reply"]["channel"]["$ref"] == "#/channels/rpcReply"
    replies = {m["$ref"].rsplit("/", 1)[1] for m in servers[0]["reply"]["messages"]}
    assert {"mediaGetReply", "rpcReply", "pingReply"} == replies
    request = child(ASYNCAPI_URI, "components", "messages", "mediaGetRequest")
    props = {"type": "media.get", "reply_to": "amq.rabbitmq.reply-to", "correlation_id": "1", "expiration": "5000",
             "headers": {"x-request-id": "r1"}}
    validate(props, child(request, "headers", "schema"), "a media.get request")
    with pytest.raises(AssertionError):
        validate({**props, "type": "media.show"}, child(request, "headers", "schema"), "not media.get")
    body = child(request, "payload", "schema")
    validate({"ids": [MEDIA_ID]}, body, "media.get body")
    validate({"ids": ["junk"] * 50}, body, "50 ids of any shape (they come back missing)")
    for bad in ({}, {"ids": []}, {"ids": ["a"] * 51}, {"ids": [1]}, {"ids": MEDIA_ID}):
        with pytest.raises(AssertionError):
            validate(bad, body, "a media.get body resize-image answers 422")
    reply = child(ASYNCAPI_URI, "components", "messages", "mediaGetReply", "payload", "schema")
    validate({"items": [media_sample()], "missing": ["junk"]}, reply, "a media.get reply")
    item, _ = follow(child(reply, "properties", "items", "items"))
    assert item == DOCS[schema_uri("events/media.created")]
    for bad in ({"items": []}, {"items": [], "missing": [], "next_cursor": None},
                {"items": [{**media_sample(), "state": "ready"}], "missing": []}):
        with pytest.raises(AssertionError):
            validate(bad, reply, "a bad media.get reply")


# ------------------------------------------------------------------ media (resize-image): live, over HTTP/2

UPLOAD_TIMEOUT = 60  # the ASan build decodes slowly
MiB = 1024 * 1024


@pytest.fixture
def media_up():
    with h2_client() as c:
        ready = c.get("/readyz").json()
    assert ready.get("services", {}).get("resize-image") == "up", f"resize-image is not up behind the gateway: {ready}"


def _sub(token):
    return jwt.decode(token, options={"verify_signature": False})["sub"]


def media_call(c, method, template, expect, tok=None, path=None, ptype=None, url=None, **kw):
    """One call of a media route (template filled from path, or url as is): the expected status (and problem
    type), and the answer as its operation in openapi.yaml says (status listed, headers, content type, body
    schema). Returns (response, body)."""
    if url is None:
        url = template.format(**{k: urllib.parse.quote(v, safe="") for k, v in (path or {}).items()})
    headers = dict(kw.pop("headers", {}))
    if tok is not None:
        headers.update(bearer(tok))
    kw.setdefault("timeout", UPLOAD_TIMEOUT)
    r = c.request(method, url, headers=headers, **kw)
    where = f"{method} {url}"
    assert r.status_code == expect, f"{where}: {r.status_code}, wanted {expect}: {r.text[:800]}"
    if expect >= 400:
        problem = is_problem(r, expect)
        if ptype is not None:
            assert problem["type"] == PROBLEM_BASE + ptype, f"{where}: {problem}"
    assert r.headers.get("x-request-id"), where
    body = check_operation(r, template, method.lower())
    return r, body


def _upload_kw(data, ctype="image/jpeg", multipart=True, rid=None):
    if multipart:
        ctype, data = medialib.multipart([("caption", None, None, b"ignored"), ("file", "photo.jpg", ctype, data)])
    headers = {"content-type": ctype}
    if rid:
        headers["x-request-id"] = rid
    return {"headers": headers, "content": data}


def _check_media(body, owner, width, height):
    """What the README promises of a Media beyond its schema."""
    validate(body, schema_uri("events/media.created"), "a media, as media.created carries it")
    assert (body["owner_id"], body["width"], body["height"]) == (owner, width, height), body
    for name, v in body["variants"].items():
        assert v["url"].endswith(f"m/{body['id']}/{name}.jpg") and v["webp_url"].endswith(f"m/{body['id']}/{name}.webp")
    assert body["variants"]["thumb"]["width"] == body["variants"]["thumb"]["height"] == min(150, width, height)
    for name, target in (("small", 320), ("medium", 640), ("large", 1080)):
        assert body["variants"][name]["width"] == min(width, target), (name, body["variants"][name])
    assert abs(time.time() - _epoch(body["created_at"])) < 300, body["created_at"]


def _epoch(rfc3339):
    import datetime
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def test_media_routes_live_match_spec(media_up):
    """Uploads (multipart and raw) and reads through the gateway over HTTP/2, and every error answer the
    README names, each checked against its operation in openapi.yaml; the variants' URLs are served as
    /media/{key} says."""
    tok, other = make_token(), make_token()
    owner = _sub(tok)
    with h2_client() as c:
        rid = f"contract-up-{uuid.uuid4().hex[:8]}"
        r, created = media_call(c, "POST", "/v1/media", 201, tok=tok, **_upload_kw(medialib.jpeg(640, 480), rid=rid))
        assert r.headers["location"] == f"/v1/media/{created['id']}", r.headers["location"]
        assert r.headers["x-request-id"] == rid
        _check_media(created, owner, 640, 480)
        _, got = media_call(c, "GET", "/v1/media/{id}", 200, tok=tok, path={"id": created["id"]})
        assert got == created
        # A raw body; the claimed type is not trusted (a PNG sent as image/jpeg is a PNG).
        r, raw = media_call(c, "POST", "/v1/media", 201, tok=tok,
                            **_upload_kw(medialib.png(400, 300), ctype="image/jpeg", multipart=False))
        assert r.headers["location"] == f"/v1/media/{raw['id']}" and raw["id"] != created["id"]
        _check_media(raw, owner, 400, 300)
        for v in created["variants"].values():
            for url in (v["url"], v["webp_url"]):
                key = url[len("/media/"):]
                validate(key, child(OPENAPI_URI, "paths", "/media/{key}", "parameters", 1, "schema"), "a variant key")
                f = c.get(url)
                assert f.status_code == 200, (url, f.status_code)
                check_operation(f, "/media/{key}", "get")
                assert f.headers["content-type"] == ("image/jpeg" if url.endswith(".jpg") else "image/webp")

        # ---- the reads: the owner's only; 404 for anyone else and for unknown and ill-shaped ids
        media_call(c, "GET", "/v1/media/{id}", 404, tok=other, path={"id": created["id"]}, ptype="not-found")
        media_call(c, "GET", "/v1/media/{id}", 404, tok=tok, path={"id": "f" * 32}, ptype="not-found")
        media_call(c, "GET", "/v1/media/{id}", 404, tok=tok, path={"id": created["id"].upper()}, ptype="not-found")
        media_call(c, "GET", "/v1/media/{id}", 401, path={"id": created["id"]}, ptype="missing-token")
        media_call(c, "GET", "/v1/media/{id}", 401, tok="not.a.token", path={"id": created["id"]})
        media_call(c, "GET", "/v1/media/{id}", 400, tok=tok, url="/v1/media/a%00b", ptype="bad-path")

        # ---- bad uploads: every status and problem type of the README
        jpg = medialib.jpeg(600, 400, comment=False)
        two = medialib.multipart([("file", "a.jpg", "image/jpeg", jpg), ("file", "b.jpg", "image/jpeg", jpg)])
        empty = medialib.multipart([("file", "a.jpg", "image/jpeg", b"")])
        cases = [
            (400, "empty-body", {"headers": {"content-type": "image/jpeg"}, "content": b""}),
            (400, "empty-file", {"headers": {"content-type": empty[0]}, "content": empty[1]}),
            (400, "missing-file", {"headers": {"content-type": "multipart/form-data; boundary=x"},
                                   "content": b'--x\r\nContent-Disposition: form-data; name="caption"\r\n\r\nhi\r\n--x--\r\n'}),
            (400, "too-many-files", {"headers": {"content-type": two[0]}, "content": two[1]}),
            (400, "malformed-multipart", {"headers": {"content-type": "multipart/form-data"}, "content": b"--x\r\n\r\n--x--"}),
            (415, "unsupported-media-type", {"headers": {"content-type": "application/json"}, "content": b'{"file": 1}'}),
            (415, "unsupported-image", _upload_kw(b"Hello, I am certainly a photo.\n" * 50)),
            (422, "corrupt-image", _upload_kw(jpg[: len(jpg) * 6 // 10], multipart=False)),
            (422, "image-too-large", _upload_kw(medialib.png_bomb(), ctype="image/png", multipart=False)),
            (413, "body-too-large", _upload_kw(b"\xff\xd8\xff" + b"\0" * (20 * MiB - 2), multipart=False)),  # the service's
            (413, "body-too-large", _upload_kw(b"\xff\xd8\xff" + b"\0" * (21 * MiB), multipart=False)),  # the gateway's
        ]
        for status, ptype, kw in cases:
            media_call(c, "POST", "/v1/media", status, tok=tok, ptype=ptype, **kw)
        media_call(c, "POST", "/v1/media", 401, ptype="missing-token", **_upload_kw(jpg))

        # ---- methods the routes do not take: 405 with Allow
        check_not_allowed(c, tok, (("PUT", "/v1/media", {"POST"}), ("GET", "/v1/media", {"POST"}),
                                   ("DELETE", f"/v1/media/{created['id']}", {"GET"})))


# ------------------------------------------------------------------ resize-image's events and RPC, off the broker

@pytest.fixture
def media_event_queue(rabbit, temp_queue):
    """temp_queue bound to `events` with every key resize-image publishes."""
    for key in MEDIA_EVENTS:
        _bind(rabbit, temp_queue, key, exchange="events")
    return temp_queue


def _check_event(m, key, app_id):
    """The message is an event of key as asyncapi.yaml and its schemas say. Returns its payload."""
    props = m["properties"]
    where = f"{key} {_payload(m)[:300]}"
    assert m["exchange"] == "events" and m["routing_key"] == key, where
    validate(props, schema_uri("event-envelope"), f"{where}: properties")
    validate(props, child(_message_schema(key), "headers", "schema"), f"{where}: properties")
    assert props["type"] == key and props["app_id"] == app_id and props["delivery_mode"] == 2, props
    body = json.loads(_payload(m))
    validate(body, schema_uri(f"events/{key}"), f"{where}: payload")
    validate(body, child(_message_schema(key), "payload", "schema"), f"{where}: payload")
    return body


def test_media_events_match_schemas(media_up, auth_up, rabbit, media_event_queue):
    """A real account (through auth) uploads: media.created is the 201 answer, with the envelope of
    asyncapi.yaml; DELETE /v1/me: auth's user.deleted makes resize-image delete the media, and media.deleted
    arrives, with the x-request-id of the request behind it; the media and its files are gone."""
    user = User()
    try:
        rid = f"contract-mc-{uuid.uuid4().hex[:8]}"
        r, created = media_call(user.client, "POST", "/v1/media", 201, tok=user.access,
                                **_upload_kw(medialib.jpeg(800, 600), rid=rid))
        _check_media(created, user.id, 800, 600)
        got = []
        _drain(rabbit, media_event_queue, got,
               lambda g: any(json.loads(_payload(m)).get("id") == created["id"] for m in g), timeout=20,
               what="media.created")
        mine = [m for m in got if json.loads(_payload(m)).get("id") == created["id"]]
        assert [m["routing_key"] for m in mine] == ["media.created"], mine
        body = _check_event(mine[0], "media.created", "resize-image")
        assert body == created, (body, created)
        assert mine[0]["properties"].get("headers", {}).get("x-request-id") == rid, mine[0]["properties"]

        rid = f"contract-md-{uuid.uuid4().hex[:8]}"
        r = user.delete("/v1/me", headers={"x-request-id": rid})
        assert r.status_code == 204, r.text
        got = []
        _drain(rabbit, media_event_queue, got,
               lambda g: any(m["routing_key"] == "media.deleted" and json.loads(_payload(m))["id"] == created["id"]
                             for m in g), timeout=30, what="media.deleted")
        mine = [m for m in got if json.loads(_payload(m)).get("id") == created["id"]]
        assert [m["routing_key"] for m in mine] == ["media.deleted"], mine
        body = _check_event(mine[0], "media.deleted", "resize-image")
        assert (body["id"], body["owner_id"]) == (created["id"], user.id), body
        assert _epoch(created["created_at"]) <= _epoch(body["deleted_at"]) <= time.time() + 5, body
        assert mine[0]["properties"]["message_id"] != created["id"]
        assert mine[0]["properties"].get("headers", {}).get("x-request-id") == rid, mine[0]["properties"]
        media_call(user.client, "GET", "/v1/media/{id}", 404, tok=make_token(sub=user.id), path={"id": created["id"]})
        for v in created["variants"].values():
            assert user.client.get(v["url"]).status_code == 404, v["url"]
    finally:
        user.close()


def test_media_get_rpc_matches_asyncapi(media_up, rabbit, temp_queue):
    """media.get through the broker, as another service calls it: request and reply as mediaGetRequest and
    mediaGetReply say, items in the order asked, someone else's media included, ids not found missing."""
    tok = make_token()
    with h2_client() as c:
        _, a = media_call(c, "POST", "/v1/media", 201, tok=tok, **_upload_kw(medialib.jpeg(320, 240)))
        _, b = media_call(c, "POST", "/v1/media", 201, tok=make_token(), **_upload_kw(medialib.jpeg(200, 300)))
    request = child(ASYNCAPI_URI, "components", "messages", "mediaGetRequest")
    reply_msg = child(ASYNCAPI_URI, "components", "messages", "mediaGetReply")
    ids = [b["id"], "f" * 32, a["id"], "junk"]
    payload = json.dumps({"ids": ids})
    validate(json.loads(payload), child(request, "payload", "schema"), "our media.get body")
    rid = f"contract-mg-{uuid.uuid4().hex[:8]}"
    props, reply = call_rpc(rabbit, temp_queue, "resize-image", "media.get",
                            {"x-request-id": rid, "x-user-id": _sub(tok)}, payload)
    props["content_type"] = "application/json"  # (call_rpc sends none; resize-image does not look)
    validate(props, child(request, "headers", "schema"), "our media.get request")
    p = reply["properties"]
    validate(p, child(reply_msg, "headers", "schema"), "media.get reply properties")
    assert p["headers"]["x-status"] == 200 and p["content_type"].startswith("application/json"), p
    assert p["headers"].get("x-request-id") == rid and p.get("app_id") == "resize-image", p
    body = json.loads(_payload(reply))
    validate(body, child(reply_msg, "payload", "schema"), "media.get reply body")
    assert body == {"items": [b, a], "missing": ["f" * 32, "junk"]}, body
    for bad in ({}, {"ids": []}, {"ids": ["a"] * 51}, {"ids": [1]}):
        _, reply = call_rpc(rabbit, temp_queue, "resize-image", "media.get", {}, json.dumps(bad))
        p = reply["properties"]
        validate(p, schema_uri("rpc-reply-headers"), f"media.get {bad} reply properties")
        assert p["headers"]["x-status"] == 422, (bad, p)
        problem = json.loads(_payload(reply))
        validate(problem, schema_uri("problem"), f"media.get {bad} reply body")
        assert problem["type"] == PROBLEM_BASE + "invalid-field" and "ids" in problem.get("errors", {}), problem


def check_service_queues(rabbit, service, channel_names):
    """The queues of channel_names exist as asyncapi.yaml declares them (durability, arguments,
    bindings), are consumed with manual acks (and the declared x-prefetch, if any), and
    <service>.events.dlq exists, durable and plain."""
    channels = ASYNCAPI["channels"]
    for name in channel_names:
        spec = channels[name]
        queue = spec["bindings"]["amqp"]["queue"]
        q = rabbit.get(f"/queues/%2F/{_q(queue['name'])}")
        assert q.status_code == 200, f"queue {queue['name']} does not exist"
        q = q.json()
        assert (q["durable"], q["exclusive"], q["auto_delete"]) == (queue["durable"], queue["exclusive"],
                                                                    queue["autoDelete"]), q
        assert q["arguments"] == spec.get("x-arguments", {}), q["arguments"]
        bindings = rabbit.get(f"/queues/%2F/{_q(queue['name'])}/bindings").json()
        got = {(b["source"], b["routing_key"]) for b in bindings if b["source"]}
        assert got == {(b["exchange"], b["routingKey"]) for b in spec["x-bindings"]}, got
        consumers = q.get("consumer_details", [])
        assert consumers, f"nobody consumes {queue['name']}"
        assert all(cd["ack_required"] for cd in consumers), consumers
        if "x-prefetch" in spec:
            assert {cd["prefetch_count"] for cd in consumers} == {spec["x-prefetch"]}, consumers
    dlq = rabbit.get(f"/queues/%2F/{_q(service + '.events.dlq')}")
    assert dlq.status_code == 200 and dlq.json()["durable"] is True, dlq.text
    assert dlq.json()["arguments"] == {}


def test_resize_image_queues_match_asyncapi(media_up, rabbit):
    """resize-image.events and resize-image.rpc exist as asyncapi.yaml declares them, bound as it says, and
    resize-image consumes them one message at a time (prefetch 1)."""
    check_service_queues(rabbit, "resize-image", ("resizeImageEvents", "resizeImageRpc"))


# ------------------------------------------------------------------ publication: the documents

# services/publication/README.md, "RPC methods": route -> (RPC method, token, success status of API.md).
PUBLICATION_ROUTES = {
    ("/v1/posts", "post"): ("publication.post_create", "required", 201),
    ("/v1/posts/{id}", "get"): ("publication.post_get", "optional", 200),
    ("/v1/posts/{id}", "patch"): ("publication.post_update", "required", 200),
    ("/v1/posts/{id}", "delete"): ("publication.post_delete", "required", 204),
    ("/v1/users/{username}/posts", "get"): ("publication.user_posts", "optional", 200),
    ("/v1/tags/{tag}/posts", "get"): ("publication.tag_posts", "optional", 200),
    ("/v1/posts/{id}/comments", "get"): ("publication.comments_list", "optional", 200),
    ("/v1/posts/{id}/comments", "post"): ("publication.comment_create", "required", 201),
    ("/v1/comments/{id}", "get"): ("publication.comment_get", "optional", 200),
    ("/v1/comments/{id}", "patch"): ("publication.comment_update", "required", 200),
    ("/v1/comments/{id}", "delete"): ("publication.comment_delete", "required", 204),
    ("/v1/posts/{id}/like", "post"): ("publication.post_like", "required", 200),
    ("/v1/posts/{id}/like", "delete"): ("publication.post_unlike", "required", 200),
    ("/v1/comments/{id}/like", "post"): ("publication.comment_like", "required", 200),
    ("/v1/comments/{id}/like", "delete"): ("publication.comment_unlike", "required", 200),
    ("/v1/posts/{id}/likes", "get"): ("publication.post_likes", "optional", 200),
    ("/v1/feed", "get"): ("publication.feed", "required", 200),
    ("/v1/stories", "post"): ("publication.story_create", "required", 201),
    ("/v1/stories/feed", "get"): ("publication.stories_feed", "required", 200),
    ("/v1/stories/{id}", "delete"): ("publication.story_delete", "required", 204),
    ("/v1/stories/{id}/seen", "post"): ("publication.story_seen", "required", 204),
    ("/v1/users/{username}/stories", "get"): ("publication.user_stories", "optional", 200),
    ("/v1/highlights", "post"): ("publication.highlight_create", "required", 201),
    ("/v1/users/{username}/highlights", "get"): ("publication.user_highlights", "optional", 200),
    ("/v1/highlights/{id}", "delete"): ("publication.highlight_delete", "required", 204),
}
# The routes of the feed, stories and highlights (README, "Feed", "Stories and highlights").
FEED_ROUTES = {("/v1/feed", "get")}
STORY_ROUTES = {k for k in PUBLICATION_ROUTES if "/stories" in k[0] or "/highlights" in k[0]}
# The body schema of each success (README, "Shapes"); None: no body.
PUBLICATION_SUCCESS_SCHEMA = {
    "publication.post_create": "Post", "publication.post_get": "Post", "publication.post_update": "Post",
    "publication.post_delete": None, "publication.user_posts": "PostList", "publication.tag_posts": "PostList",
    "publication.comments_list": "CommentList", "publication.comment_create": "Comment",
    "publication.comment_get": "Comment", "publication.comment_update": "Comment", "publication.comment_delete": None,
    "publication.post_like": "LikeState", "publication.post_unlike": "LikeState", "publication.comment_like": "LikeState",
    "publication.comment_unlike": "LikeState", "publication.post_likes": "AuthorList",
    "publication.feed": "PostList", "publication.story_create": "Story", "publication.stories_feed": "StoriesFeed",
    "publication.story_delete": None, "publication.story_seen": None, "publication.user_stories": "StoryList",
    "publication.highlight_create": "Highlight", "publication.user_highlights": "HighlightList",
    "publication.highlight_delete": None,
}
PUBLICATION_REQUEST_SCHEMA = {
    "publication.post_create": "CreatePostRequest", "publication.post_update": "UpdatePostRequest",
    "publication.comment_create": "CreateCommentRequest", "publication.comment_update": "UpdateCommentRequest",
    "publication.story_create": "CreateStoryRequest", "publication.highlight_create": "CreateHighlightRequest",
}
PUBLICATION_LISTS = {"publication.user_posts", "publication.tag_posts", "publication.comments_list",
                     "publication.post_likes", "publication.feed", "publication.stories_feed",
                     "publication.user_highlights"}  # (a user's stories: all in one page, no ?limit=)
# README, "Rules": who may do it is checked (someone else's post or comment, someone else's media: 403).
PUBLICATION_FORBIDDEN = {"publication.post_create", "publication.post_update", "publication.post_delete",
                         "publication.comment_update", "publication.comment_delete", "publication.story_create",
                         "publication.story_delete", "publication.highlight_create", "publication.highlight_delete"}
PUBLICATION_LOCATION = {"publication.post_create": ("PostLocation", "/v1/posts/"),
                        "publication.comment_create": ("CommentLocation", "/v1/comments/")}
OBJECT_ID = "6740a9c3e4b0c1d2e3f40512"


def test_openapi_has_every_publication_route():
    """Each route of API.md's "Posts, comments, likes" table that publication serves now, as its README maps
    it: the RPC method, the token, the success status and shape (Location on 201s), the request body, ?limit=
    and ?cursor= on lists, and exactly the errors the README's rules give it."""
    ops = {(path, m) for path, item in OPENAPI["paths"].items() for m in HTTP_METHODS
           if m in item and str(item[m].get("x-rpc", "")).startswith("publication.")}
    assert ops == set(PUBLICATION_ROUTES), \
        f"missing {set(PUBLICATION_ROUTES) - ops}, extra {ops - set(PUBLICATION_ROUTES)}"
    for (path, method), (rpc, kind, success) in PUBLICATION_ROUTES.items():
        where = f"{method.upper()} {path}"
        op = OPENAPI["paths"][path][method]
        op_uri = operation_uri(path, method)
        assert op.get("x-rpc") == rpc, where
        assert op.get("tags") and set(op["tags"]) <= {"posts", "comments", "likes", "feed", "stories", "highlights"}, \
            where
        assert _token_kind(op) == kind, f"{where}: token {_token_kind(op)}, README says {kind}"
        codes = {int(c) for c in op["responses"]}
        want = {success, 400, 401, 429, 503, 504}  # 400: a malformed body, a bad cursor, the gateway's bad-path
        if "{id}" in path or "{username}" in path:
            want.add(404)
        if rpc in PUBLICATION_REQUEST_SCHEMA:
            want |= {413, 422}
            body, body_uri = follow(child(op_uri, "requestBody"))
            assert body.get("required") is True and list(body["content"]) == ["application/json"], where
            assert _schema_ref(child(body_uri, "content", "application/json", "schema")) == \
                PUBLICATION_REQUEST_SCHEMA[rpc], where
        else:
            assert "requestBody" not in op, where
        if rpc in PUBLICATION_LISTS:
            want.add(422)  # limit out of range
            params = _effective_parameters(child(OPENAPI_URI, "paths", path), op_uri)
            assert {("limit", "query"), ("cursor", "query")} <= set(params), where
            assert params[("limit", "query")] == OPENAPI["components"]["parameters"]["Limit"], where
        if rpc in PUBLICATION_FORBIDDEN:
            want.add(403)
        assert codes == want, f"{where}: lists {sorted(codes)}, wanted {sorted(want)}"
        resp, resp_uri = follow(child(op_uri, "responses", str(success)))
        shape = PUBLICATION_SUCCESS_SCHEMA[rpc]
        if shape is None:
            assert "content" not in resp, where
        else:
            assert list(resp["content"]) == ["application/json"], where
            assert _schema_ref(child(resp_uri, "content", "application/json", "schema")) == shape, where
        if rpc in PUBLICATION_LOCATION:
            name, prefix = PUBLICATION_LOCATION[rpc]
            assert resp["headers"]["location"] == {"$ref": f"#/components/headers/{name}"}, where
            location, location_uri = follow(child(resp_uri, "headers", "location"))
            assert location["required"] is True
            validate(prefix + OBJECT_ID, child(location_uri, "schema"), f"{where}: a Location")
            for bad in (prefix + OBJECT_ID.upper(), prefix + "p1", "/v1/things/" + OBJECT_ID):
                with pytest.raises(AssertionError):
                    validate(bad, child(location_uri, "schema"), f"{where}: a bad Location")
        else:
            assert "location" not in resp.get("headers", {}), where
        assert OPENAPI["paths"][path]["x-other-methods"]["response"] == \
            {"$ref": "#/components/responses/MethodNotAllowed"}, where
        params = _effective_parameters(child(OPENAPI_URI, "paths", path), op_uri)
        if ("id", "path") in params:
            assert params[("id", "path")]["schema"] == {"$ref": "#/components/schemas/ObjectId"}, where
    id_schema = _component("ObjectId")
    validate(OBJECT_ID, id_schema, "an ObjectId")
    for bad in (OBJECT_ID.upper(), OBJECT_ID[:-1], OBJECT_ID + "0", "g" * 24, MEDIA_ID):
        with pytest.raises(AssertionError):
            validate(bad, id_schema, "a bad ObjectId")


def post_media_sample(media_id=MEDIA_ID, width=300, height=200, blurhash=True):
    """A media as a post carries it: resize-image's Media without owner_id and created_at."""
    m = {k: v for k, v in media_sample(media_id, width, height).items() if k not in ("owner_id", "created_at")}
    if not blurhash:
        del m["blurhash"]
    return m


AUTHOR = {"id": "u1", "username": "alice", "name": "Alice", "avatar": f"/media/m/{MEDIA_ID}/thumb.jpg"}
POST = {"id": OBJECT_ID, "author": AUTHOR, "caption": "hello #café @bob", "media": [post_media_sample()],
        "tags": ["café"], "mentions": [{"id": "u2", "username": "bob"}], "like_count": 2, "comment_count": 3,
        "liked_by_me": True, "created_at": T0, "edited_at": None}
COMMENT = {"id": "6740a9d1e4b0c1d2e3f40513", "post_id": OBJECT_ID, "author": {**AUTHOR, "avatar": None},
           "text": "nice", "reply_to": None, "like_count": 0, "liked_by_me": False, "created_at": T0, "edited_at": None}


def test_publication_schemas_are_exactly_the_readme_shapes():
    """Post, Comment, Author, PostMedia, LikeState and the lists have exactly the README's members (all
    required but a media's blurhash, nothing more); requests refuse unknown members and what the README
    answers 422 for; a post's media and post.created's accept and refuse the same documents."""
    members = {
        "Author": ["id", "username", "name", "avatar"],
        "Mention": ["id", "username"],
        "Post": ["id", "author", "caption", "media", "tags", "mentions", "like_count", "comment_count", "liked_by_me",
                 "created_at", "edited_at"],
        "Comment": ["id", "post_id", "author", "text", "reply_to", "like_count", "liked_by_me", "created_at",
                    "edited_at"],
        "LikeState": ["liked", "like_count"],
    }
    schemas = OPENAPI["components"]["schemas"]
    for name, want in members.items():
        s = schemas[name]
        assert s["type"] == "object" and s["additionalProperties"] is False, name
        assert s["required"] == want == list(s["properties"]), name
    pm = schemas["PostMedia"]
    assert pm["type"] == "object" and pm["additionalProperties"] is False
    assert list(pm["properties"]) == ["id", "width", "height", "blurhash", "variants"]
    assert pm["required"] == ["id", "width", "height", "variants"]
    for name in ("PostList", "CommentList", "AuthorList"):
        assert schemas[name]["unevaluatedProperties"] is False, name
    for name in PUBLICATION_REQUEST_SCHEMA.values():
        assert schemas[name]["type"] == "object" and schemas[name]["additionalProperties"] is False, name

    edited = {**POST, "edited_at": "2026-11-21T18:52:41Z", "author": {**AUTHOR, "avatar": None}, "tags": [],
              "mentions": [], "caption": "", "media": [post_media_sample(blurhash=False)] * 10}
    for instance in (POST, edited):
        validate(instance, _component("Post"), "a post")
    validate(COMMENT, _component("Comment"), "a comment")
    validate({**COMMENT, "reply_to": "6740a9d1e4b0c1d2e3f40514", "edited_at": T0, "text": "x" * 1000},
             _component("Comment"), "a reply")
    validate({"liked": False, "like_count": 0}, _component("LikeState"), "a like answer")
    validate({"items": [POST], "next_cursor": "c"}, _component("PostList"), "a page of posts")
    validate({"items": [COMMENT], "next_cursor": None}, _component("CommentList"), "a page of comments")
    validate({"items": [AUTHOR], "next_cursor": None}, _component("AuthorList"), "a page of likers")
    bad = [
        ("Post", {**POST, "score": 1}), ("Post", {**POST, "id": "p1"}), ("Post", {**POST, "id": OBJECT_ID.upper()}),
        ("Post", {**POST, "caption": "c" * 2201}), ("Post", {**POST, "caption": None}), ("Post", {**POST, "media": []}),
        ("Post", {**POST, "media": [post_media_sample()] * 11}), ("Post", {**POST, "tags": ["#café"]}),
        ("Post", {**POST, "tags": ["Café"]}), ("Post", {**POST, "tags": ["a", "a"]}), ("Post", {**POST, "tags": [""]}),
        ("Post", {**POST, "tags": ["t" * 101]}), ("Post", {**POST, "tags": [f"t{i}" for i in range(31)]}),
        ("Post", {**POST, "mentions": [{"id": "u2"}]}), ("Post", {**POST, "mentions": ["bob"]}),
        ("Post", {**POST, "mentions": [{"id": "u2", "username": "Bob"}]}),
        ("Post", {**POST, "mentions": [{"id": f"u{i}", "username": f"user{i}"} for i in range(21)]}),
        ("Post", {**POST, "like_count": -1}), ("Post", {**POST, "comment_count": "3"}),
        ("Post", {**POST, "liked_by_me": None}), ("Post", {**POST, "edited_at": "yesterday"}),
        ("Post", {**POST, "created_at": "2026-11-21T18:40:03+01:00"}),
        ("Post", {**POST, "author": {**AUTHOR, "avatar_media_id": MEDIA_ID}}),
        ("Post", {**POST, "author": {k: v for k, v in AUTHOR.items() if k != "avatar"}}),
        ("Post", {**POST, "author": {**AUTHOR, "avatar": f"/media/m/{MEDIA_ID}/small.jpg"}}),
        ("Post", {**POST, "author": {**AUTHOR, "avatar": f"/media/m/{MEDIA_ID}/thumb.webp"}}),
        ("Post", {**POST, "media": [media_sample()]}),
        ("Post", {**POST, "media": [{**post_media_sample(), "variants": {}}]}),
        ("Comment", {**COMMENT, "text": ""}), ("Comment", {**COMMENT, "text": " \n\t "}),
        ("Comment", {**COMMENT, "text": "x" * 1001}), ("Comment", {**COMMENT, "reply_to": ""}),
        ("Comment", {**COMMENT, "post_id": "p1"}), ("Comment", {**COMMENT, "comment_count": 0}),
        ("Comment", {**COMMENT, "replies": []}),
        ("LikeState", {"liked": True}), ("LikeState", {"liked": "yes", "like_count": 1}),
        ("LikeState", {"liked": True, "like_count": 1, "liked_by_me": True}),
        ("PostList", {"items": [{**POST, "x": 1}], "next_cursor": None}), ("PostList", {"items": [POST]}),
        ("CommentList", {"items": [POST], "next_cursor": None}),
        ("AuthorList", {"items": [{**AUTHOR, "email": "a@example.com"}], "next_cursor": None}),
        ("CreatePostRequest", {"caption": "x"}), ("CreatePostRequest", {"media_ids": []}),
        ("CreatePostRequest", {"media_ids": [MEDIA_ID] * 2}),
        ("CreatePostRequest", {"media_ids": [f"{i:032x}" for i in range(11)]}),
        ("CreatePostRequest", {"media_ids": ["m1"]}), ("CreatePostRequest", {"media_ids": MEDIA_ID}),
        ("CreatePostRequest", {"media_ids": [MEDIA_ID], "caption": "c" * 2201}),
        ("CreatePostRequest", {"media_ids": [MEDIA_ID], "caption": None}),
        ("CreatePostRequest", {"media_ids": [MEDIA_ID], "location": "x"}),
        ("UpdatePostRequest", {}), ("UpdatePostRequest", {"caption": "x", "media_ids": [MEDIA_ID]}),
        ("CreateCommentRequest", {}), ("CreateCommentRequest", {"text": "  "}),
        ("CreateCommentRequest", {"text": "x" * 1001}), ("CreateCommentRequest", {"text": "x", "reply_to": "c1"}),
        ("CreateCommentRequest", {"text": "x", "post_id": OBJECT_ID}),
        ("UpdateCommentRequest", {"text": ""}), ("UpdateCommentRequest", {"text": "x", "reply_to": OBJECT_ID}),
    ]
    for name, instance in bad:
        with pytest.raises(AssertionError):
            validate(instance, _component(name), f"a bad {name}")
    validate({"media_ids": [MEDIA_ID]}, _component("CreatePostRequest"), "a post without a caption")
    validate({"media_ids": [f"{i:032x}" for i in range(10)], "caption": "c" * 2200}, _component("CreatePostRequest"),
             "ten media and the longest caption")
    validate({"text": "x", "reply_to": OBJECT_ID}, _component("CreateCommentRequest"), "a reply")
    validate({"caption": ""}, _component("UpdatePostRequest"), "an emptied caption")

    # A post's media: openapi's PostMedia and post.created's accept and refuse the same documents.
    event_media = schema_uri("events/post.created", "/$defs/media")
    good = [post_media_sample(), post_media_sample(blurhash=False), post_media_sample(width=1080, height=1440)]
    near = [{**post_media_sample(), "owner_id": "u1"}, {**post_media_sample(), "created_at": T0},
            {k: v for k, v in post_media_sample().items() if k != "variants"}, {**post_media_sample(), "id": "m1"},
            {**post_media_sample(), "blurhash": None}, {**post_media_sample(), "width": 0}]
    for uri in (_component("PostMedia"), event_media):
        for instance in good:
            validate(instance, uri, "a post's media")
        for instance in near:
            with pytest.raises(AssertionError):
                validate(instance, uri, "a bad post media")


@pytest.mark.parametrize("key", sorted(PUBLICATION_EVENTS))
def test_publication_event_schema_is_the_readme_payload(key):
    uri = schema_uri(f"events/{key}")
    doc = DOCS[uri]
    assert doc["$id"] == f"https://schemas.photo.invalid/events/{key}.json"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert doc["required"] == PUBLICATION_EVENTS[key] == list(doc["properties"])
    assert "app_id publication" in doc["description"]
    assert doc["examples"], key
    for ex in doc["examples"]:
        validate(ex, uri, f"{key} example")
    ex = doc["examples"][0]
    near_misses = [{**ex, "extra": 1}] + [{k: v for k, v in ex.items() if k != m} for m in ex]
    near_misses += [{**ex, m: 123} for m in ex if m.endswith("_id")]
    near_misses += [{**ex, m: "2026-11-21 18:40:03"} for m in ex if m.endswith("_at")]
    near_misses += [{**ex, m: ex[m].upper() + "X"} for m in ("post_id", "comment_id", "target_id") if m in ex]
    near_misses += [{**ex, m: "Alice"} for m in ("author_username", "username") if m in ex]
    for bad in near_misses:
        with pytest.raises(AssertionError):
            validate(bad, uri, f"a bad {key}")


def test_publication_event_samples():
    """What the README says of the payloads beyond their members."""
    def bad(key, instance):
        with pytest.raises(AssertionError):
            validate(instance, schema_uri(f"events/{key}"), f"a bad {key}")

    created = DOCS[schema_uri("events/post.created")]["examples"][0]
    validate({**created, "caption": "", "tags": [], "mentions": []}, schema_uri("events/post.created"), "bare post")
    bad("post.created", {**created, "media": []})
    bad("post.created", {**created, "media": [media_sample()]})  # owner_id and created_at are not a post's
    bad("post.created", {**created, "tags": ["Sunset"]})
    bad("post.created", {**created, "mentions": [{"id": "u2"}]})
    updated = DOCS[schema_uri("events/post.updated")]["examples"][0]
    bad("post.updated", {**updated, "media": created["media"]})
    top, reply = DOCS[schema_uri("events/comment.created")]["examples"][1], \
        DOCS[schema_uri("events/comment.created")]["examples"][0]
    assert top["reply_to"] is None and reply["reply_to"] is not None
    bad("comment.created", {**top, "reply_to_author_id": "u2"})  # both null for a top-level comment
    bad("comment.created", {**reply, "reply_to_author_id": None})
    bad("comment.created", {**top, "text": "   "})
    deleted = DOCS[schema_uri("events/comment.deleted")]["examples"][0]
    validate({**deleted, "reply_ids": []}, schema_uri("events/comment.deleted"), "a reply deleted")
    bad("comment.deleted", {**deleted, "reply_ids": ["r1"]})
    for key in ("like.created", "like.deleted"):
        ex = DOCS[schema_uri(f"events/{key}")]["examples"][0]
        for t in ("post", "comment"):
            validate({**ex, "target_type": t}, schema_uri(f"events/{key}"), key)
        bad(key, {**ex, "target_type": "story"})


def test_asyncapi_has_the_publication_events_and_queues():
    """publication sends its seven events (app_id publication) on `events`, receives auth's user, follow and
    block events on publication.events, serves publication.rpc, and calls media.get and auth.users_get (whose
    request and reply auth.rpc's operation describes)."""
    channels = ASYNCAPI["channels"]
    by_address = check_event_channels(PUBLICATION_EVENTS, lambda key: "publication", "auth")
    sends = event_senders()
    for key in PUBLICATION_EVENTS:
        name = by_address[key]
        ch = channels[name]
        assert f"#/channels/{name}" in sends, f"no operation sends {key}"
        assert "publication" in ch["description"]
        assert f"`{key}`" in ASYNCAPI["info"]["description"], key

    queue = channels[by_address["publication.events"]]
    assert queue["bindings"]["amqp"]["is"] == "queue"
    assert queue["bindings"]["amqp"]["queue"]["name"] == "publication.events"
    assert queue["bindings"]["amqp"]["queue"]["durable"] is True
    assert [(b["exchange"], b["routingKey"]) for b in queue["x-bindings"]] == \
        [("events", k) for k in PUBLICATION_CONSUMES]
    assert queue["x-arguments"] == {"x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": "publication.events.dlq"}
    receivers = [op for op in ASYNCAPI["operations"].values()
                 if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{by_address['publication.events']}"]
    assert len(receivers) == 1
    got = []
    for m in receivers[0]["messages"]:
        msg, _ = follow(urllib.parse.urljoin(ASYNCAPI_URI, m["$ref"]))
        got.append(msg["title"])
        assert msg == follow(_message_schema(msg["title"]))[0]  # the very message auth's channel carries
    assert got == PUBLICATION_CONSUMES

    rpc = channels[by_address["publication.rpc"]]
    spec_q = rpc["bindings"]["amqp"]["queue"]
    generic = channels["rpcQueue"]["bindings"]["amqp"]["queue"]
    assert spec_q["name"] == generic["name"].replace("{service}", "publication")
    assert {k: v for k, v in spec_q.items() if k != "name"} == {k: v for k, v in generic.items() if k != "name"}
    assert rpc["x-bindings"] == [{"exchange": "rpc", "routingKey": "publication"}]
    for method in [r[0] for r in PUBLICATION_ROUTES.values()] + ["publication.ping"]:
        assert f"`{method}`" in rpc["description"], method
    servers = [op for op in ASYNCAPI["operations"].values()
               if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{by_address['publication.rpc']}"]
    assert len(servers) == 1 and servers[0]["reply"]["channel"]["$ref"] == "#/channels/rpcReply"

    # The calls publication makes: media.get to resize-image, auth.users_get to auth.
    calls = {}
    for op in ASYNCAPI["operations"].values():
        if op["action"] == "send" and op["channel"]["$ref"] == "#/channels/rpcExchange":
            for m in op["messages"]:
                calls[m["$ref"].rsplit("/", 1)[1]] = {r["$ref"].rsplit("/", 1)[1] for r in op["reply"]["messages"]}
    assert calls.get("mediaGetRequest") == {"mediaGetReply"} and calls.get("usersGetRequest") == {"usersGetReply"}, calls
    for method in ("media.get", "auth.users_get"):
        assert f"`{method}`" in ASYNCAPI["info"]["description"], method

    auth_rpc = channels[by_address["auth.rpc"]]
    assert auth_rpc["x-bindings"] == [{"exchange": "rpc", "routingKey": "auth"}]
    assert "`auth.users_get`" in auth_rpc["description"]
    servers = [op for op in ASYNCAPI["operations"].values()
               if op["action"] == "receive" and op["channel"]["$ref"] == f"#/channels/{by_address['auth.rpc']}"]
    assert len(servers) == 1
    assert "#/channels/authRpc/messages/usersGetRequest" in [m["$ref"] for m in servers[0]["messages"]]
    assert "#/channels/rpcReply/messages/usersGetReply" in [m["$ref"] for m in servers[0]["reply"]["messages"]]
    request = child(ASYNCAPI_URI, "components", "messages", "usersGetRequest")
    props = {"type": "auth.users_get", "reply_to": "amq.rabbitmq.reply-to", "correlation_id": "1",
             "expiration": "5000", "headers": {"x-request-id": "r1"}}
    validate(props, child(request, "headers", "schema"), "an auth.users_get request")
    with pytest.raises(AssertionError):
        validate({**props, "type": "auth.user_get"}, child(request, "headers", "schema"), "not auth.users_get")
    body = child(request, "payload", "schema")
    validate({"ids": ["u1"]}, body, "auth.users_get body")
    validate({"ids": [f"u{i}" for i in range(100)]}, body, "100 ids")
    for bad in ({}, {"ids": []}, {"ids": ["u"] * 101}, {"ids": [1]}, {"ids": "u1"}):
        with pytest.raises(AssertionError):
            validate(bad, body, "an auth.users_get body auth answers 422")
    reply = child(ASYNCAPI_URI, "components", "messages", "usersGetReply", "payload", "schema")
    item = {"id": "u1", "username": "alice", "name": "", "avatar_media_id": None}
    validate({"items": [item], "missing": ["u2"]}, reply, "an auth.users_get reply")
    for bad in ({"items": []}, {"items": [{**item, "email": "a@example.com"}], "missing": []},
                {"items": [{k: v for k, v in item.items() if k != "avatar_media_id"}], "missing": []},
                {"items": [{**item, "username": "Alice"}], "missing": []}):
        with pytest.raises(AssertionError):
            validate(bad, reply, "a bad auth.users_get reply")
    # The items are the UserListItem of openapi.yaml.
    assert set(follow(child(reply, "properties", "items", "items"))[0]["properties"]) == \
        set(OPENAPI["components"]["schemas"]["UserListItem"]["properties"])


# ------------------------------------------------------------------ publication: live, over HTTP/2

@pytest.fixture
def publication_up():
    with h2_client() as c:
        ready = c.get("/readyz").json()
    assert ready.get("services", {}).get("publication") == "up", f"publication is not up behind the gateway: {ready}"


def _as_post_media(media):
    """What a post carries of an upload's answer (README: copied from resize-image when the post was made)."""
    return {k: media[k] for k in ("id", "width", "height", "blurhash", "variants") if k in media}


def _author(user, name=None, avatar=None):
    return {"id": user["id"], "username": user["username"], "name": user["name"] if name is None else name,
            "avatar": avatar}


def _ids(page):
    return [item["id"] for item in page["items"]]


def _poll(method, url, tok=None):
    """One request from a fresh client address (polling must not spend a test client's rate-limit burst)."""
    with h2_client() as c:
        return c.request(method, url, headers=bearer(tok) if tok else {})


def _known_to_publication(username, timeout=30):
    """Waits until publication's projection has the user (their post list stops being 404)."""
    wait_until(lambda: _poll("GET", f"/v1/users/{urllib.parse.quote(username)}/posts").status_code == 200,
               timeout=timeout, interval=0.5, what=f"publication to know {username}")


def _upload(c, tok, width=96, height=64):
    _, media = media_call(c, "POST", "/v1/media", 201, tok=tok, **_upload_kw(medialib.jpeg(width, height, comment=False)))
    return media


def _all_pages(call, c, template, path, tok=None, limit=1):
    """Every item of a list, page by page (limit items a page), following next_cursor."""
    items, cursor = [], None
    for _ in range(100):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = call(c, "GET", template, 200, tok=tok, path=path, params=params)
        assert len(page["items"]) <= limit, page
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{template}: more than 100 pages")


def test_publication_routes_match_spec(publication_up, media_up):
    """A representative call of every publication route through the gateway over HTTP/2, and the errors the
    README names, each answer checked against openapi.yaml, with the values the README promises: shapes,
    hashtags and mentions, thread order, exact counts, idempotent likes, who may edit and delete."""
    call = AuthCalls()
    ca, cb, cc = _auth_client(), _auth_client(), _auth_client()
    try:
        ta, tb, tc = call.register(ca, "pa", name="Post A"), call.register(cb, "pb", name="Post B"), \
            call.register(cc, "pc")
        a, b, cu = ta["user"], tb["user"], tc["user"]
        tok_a, tok_b, tok_c = ta["access_token"], tb["access_token"], tc["access_token"]
        m1, m2 = _upload(ca, tok_a, 320, 240), _upload(ca, tok_a, 200, 300)
        mb = _upload(cb, tok_b, 64, 64)
        _known_to_publication(b["username"])

        # ---- create: media copied in the order given; tags and mentions parsed from the caption
        tag = f"ct{uuid.uuid4().hex[:10]}"
        caption = (f"Hello #{tag.upper()} and #{tag} #Café #CAFÉ #123 #x_1, hi @{b['username'].upper()} "
                   f"mail@{b['username']} @nobody_{uuid.uuid4().hex[:8]}")
        post = call(ca, "POST", "/v1/posts", 201, tok=tok_a, json={"caption": caption, "media_ids": [m2["id"], m1["id"]]})
        assert call.last.headers["location"] == f"/v1/posts/{post['id']}", call.last.headers["location"]
        assert post["author"] == _author(a), post["author"]
        assert post["caption"] == caption
        assert post["media"] == [_as_post_media(m2), _as_post_media(m1)], post["media"]
        assert post["tags"] == [tag, "café", "x_1"], post["tags"]
        assert post["mentions"] == [{"id": b["id"], "username": b["username"]}], post["mentions"]
        assert (post["like_count"], post["comment_count"], post["liked_by_me"], post["edited_at"]) == (0, 0, False, None)
        assert abs(time.time() - _epoch(post["created_at"])) < 300, post["created_at"]
        # the same media again, no caption
        bare = call(ca, "POST", "/v1/posts", 201, tok=tok_a, json={"media_ids": [m1["id"]]})
        assert (bare["caption"], bare["tags"], bare["mentions"]) == ("", [], []), bare
        assert bare["id"] > post["id"]  # ObjectIds: time-ordered

        # ---- create: bad input, someone else's media, no token
        call(ca, "POST", "/v1/posts", 401, json={"media_ids": [m1["id"]]})
        call(ca, "POST", "/v1/posts", 400, tok=tok_a, content=b"{not json", headers=JSON_CT)
        call(ca, "POST", "/v1/posts", 400, tok=tok_a, content=b'["an array"]', headers=JSON_CT)
        for body, field in (({"media_ids": []}, "media_ids"), ({"caption": "no media"}, "media_ids"),
                            ({"media_ids": [m1["id"], m1["id"]]}, "media_ids"), ({"media_ids": ["f" * 32]}, "media_ids"),
                            ({"media_ids": ["not-a-media-id"]}, "media_ids"), ({"media_ids": m1["id"]}, "media_ids"),
                            ({"media_ids": [m1["id"]] + [f"{i:032x}" for i in range(10)]}, "media_ids"),
                            ({"media_ids": [m1["id"]], "caption": "c" * 2201}, "caption"),
                            ({"media_ids": [m1["id"]], "caption": 5}, "caption"),
                            ({"media_ids": [m1["id"]], "location": "Paris"}, "location")):
            problem = call(ca, "POST", "/v1/posts", 422, tok=tok_a, json=body)
            assert field in problem.get("errors", {}), (body, problem)
        problem = call(ca, "POST", "/v1/posts", 403, tok=tok_a, json={"media_ids": [m1["id"], mb["id"]]})
        assert problem["type"] == PROBLEM_BASE + "forbidden", problem

        # ---- read: anonymous or signed in; malformed and unknown ids are 404
        assert call(ca, "GET", "/v1/posts/{id}", 200, path={"id": post["id"]}) == post
        assert call(cb, "GET", "/v1/posts/{id}", 200, tok=tok_b, path={"id": post["id"]}) == post
        for bad_id in ("0" * 24, post["id"].upper(), post["id"][:-1], "zzz", post["id"] + "0"):
            call(ca, "GET", "/v1/posts/{id}", 404, path={"id": bad_id})
        call(ca, "GET", "/v1/posts/{id}", 401, tok="not.a.token", path={"id": post["id"]})
        page = call(ca, "GET", "/v1/tags/{tag}/posts", 200, path={"tag": "café"}, params={"limit": 100})
        assert post["id"] in _ids(page), page

        # ---- edit: author only; tags and mentions parsed again, edited_at set
        call(cb, "PATCH", "/v1/posts/{id}", 403, tok=tok_b, path={"id": post["id"]}, json={"caption": "mine now"})
        call(ca, "PATCH", "/v1/posts/{id}", 404, tok=tok_a, path={"id": "0" * 24}, json={"caption": "x"})
        problem = call(ca, "PATCH", "/v1/posts/{id}", 422, tok=tok_a, path={"id": post["id"]}, json={"caption": 1})
        assert "caption" in problem.get("errors", {}), problem
        problem = call(ca, "PATCH", "/v1/posts/{id}", 422, tok=tok_a, path={"id": post["id"]},
                       json={"caption": "x", "media_ids": [m1["id"]]})
        assert "media_ids" in problem.get("errors", {}), problem
        call(ca, "PATCH", "/v1/posts/{id}", 400, tok=tok_a, path={"id": post["id"]}, content=b"nope", headers=JSON_CT)
        assert call(ca, "GET", "/v1/posts/{id}", 200, path={"id": post["id"]}) == post  # nothing changed on a 4xx
        edited = call(ca, "PATCH", "/v1/posts/{id}", 200, tok=tok_a, path={"id": post["id"]},
                      json={"caption": f"edited #{tag}"})
        assert (edited["caption"], edited["tags"], edited["mentions"]) == (f"edited #{tag}", [tag], []), edited
        assert edited["edited_at"] is not None and _epoch(edited["edited_at"]) >= _epoch(post["created_at"]), edited
        assert {k: v for k, v in edited.items() if k not in ("caption", "tags", "mentions", "edited_at")} == \
               {k: v for k, v in post.items() if k not in ("caption", "tags", "mentions", "edited_at")}
        post = edited

        # ---- a user's posts and a tag's posts: newest first, paginated
        page = call(ca, "GET", "/v1/users/{username}/posts", 200, path={"username": a["username"]})
        assert page == {"items": [bare, post], "next_cursor": None}, page
        assert _all_pages(call, cb, "/v1/users/{username}/posts", {"username": a["username"]}, tok=tok_b) == [bare, post]
        call(ca, "GET", "/v1/users/{username}/posts", 404, path={"username": _new_username("nobody")})
        page = call(ca, "GET", "/v1/tags/{tag}/posts", 200, path={"tag": tag})
        assert page == {"items": [post], "next_cursor": None}, page
        page = call(ca, "GET", "/v1/tags/{tag}/posts", 200, path={"tag": "café"}, params={"limit": 100})
        assert post["id"] not in _ids(page), "the edit removed #café"
        for unknown in (f"no_such_tag_{uuid.uuid4().hex[:8]}", "#!", "123"):
            page = call(ca, "GET", "/v1/tags/{tag}/posts", 200, path={"tag": unknown})
            assert page == {"items": [], "next_cursor": None}, (unknown, page)
        for template, path in (("/v1/users/{username}/posts", {"username": a["username"]}),
                               ("/v1/tags/{tag}/posts", {"tag": tag})):
            for limit in ("0", "101"):
                problem = call(ca, "GET", template, 422, path=path, params={"limit": limit})
                assert "limit" in problem.get("errors", {}), problem
            call(ca, "GET", template, 400, path=path, params={"cursor": "not-a-cursor"})

        # ---- comments: thread order, one level of replies
        c1 = call(cb, "POST", "/v1/posts/{id}/comments", 201, tok=tok_b, path={"id": post["id"]}, json={"text": "first!"})
        assert call.last.headers["location"] == f"/v1/comments/{c1['id']}", call.last.headers["location"]
        assert (c1["post_id"], c1["author"], c1["text"], c1["reply_to"]) == (post["id"], _author(b), "first!", None), c1
        assert (c1["like_count"], c1["liked_by_me"], c1["edited_at"]) == (0, False, None), c1
        c2 = call(ca, "POST", "/v1/posts/{id}/comments", 201, tok=tok_a, path={"id": post["id"]}, json={"text": "second"})
        r1 = call(ca, "POST", "/v1/posts/{id}/comments", 201, tok=tok_a, path={"id": post["id"]},
                  json={"text": "a reply", "reply_to": c1["id"]})
        assert r1["reply_to"] == c1["id"], r1
        r2 = call(cc, "POST", "/v1/posts/{id}/comments", 201, tok=tok_c, path={"id": post["id"]},
                  json={"text": "a reply to a reply", "reply_to": r1["id"]})
        assert r2["reply_to"] == c1["id"], r2  # joins the thread of its top-level comment
        other = call(ca, "POST", "/v1/posts/{id}/comments", 201, tok=tok_a, path={"id": bare["id"]}, json={"text": "x"})
        page = call(ca, "GET", "/v1/posts/{id}/comments", 200, path={"id": post["id"]})
        assert _ids(page) == [c1["id"], r1["id"], r2["id"], c2["id"]] and page["next_cursor"] is None, page
        assert _all_pages(call, cb, "/v1/posts/{id}/comments", {"id": post["id"]}, tok=tok_b) == page["items"]
        assert call(ca, "GET", "/v1/posts/{id}", 200, path={"id": post["id"]})["comment_count"] == 4
        assert call(ca, "GET", "/v1/comments/{id}", 200, path={"id": c1["id"]}) == c1
        assert call(cb, "GET", "/v1/comments/{id}", 200, tok=tok_b, path={"id": r2["id"]}) == r2
        for body, field in (({"text": ""}, "text"), ({"text": " \n\t "}, "text"), ({"text": "x" * 1001}, "text"),
                            ({"text": 7}, "text"), ({}, "text"), ({"text": "ok", "reply_to": "0" * 24}, "reply_to"),
                            ({"text": "ok", "reply_to": "junk"}, "reply_to"),
                            ({"text": "ok", "reply_to": other["id"]}, "reply_to"),  # a comment of another post
                            ({"text": "ok", "mood": "happy"}, "mood")):
            problem = call(cb, "POST", "/v1/posts/{id}/comments", 422, tok=tok_b, path={"id": post["id"]}, json=body)
            assert field in problem.get("errors", {}), (body, problem)
        call(cb, "POST", "/v1/posts/{id}/comments", 400, tok=tok_b, path={"id": post["id"]}, content=b"{", headers=JSON_CT)
        call(cb, "POST", "/v1/posts/{id}/comments", 404, tok=tok_b, path={"id": "0" * 24}, json={"text": "x"})
        call(cb, "POST", "/v1/posts/{id}/comments", 401, path={"id": post["id"]}, json={"text": "x"})
        call(ca, "GET", "/v1/posts/{id}/comments", 404, path={"id": "0" * 24})
        call(ca, "GET", "/v1/posts/{id}/comments", 422, path={"id": post["id"]}, params={"limit": 0})
        call(ca, "GET", "/v1/posts/{id}/comments", 400, path={"id": post["id"]}, params={"cursor": "x"})
        call(ca, "GET", "/v1/comments/{id}", 404, path={"id": "0" * 24})
        call(ca, "GET", "/v1/comments/{id}", 404, path={"id": "c1"})

        # ---- edit a comment: its author only
        call(ca, "PATCH", "/v1/comments/{id}", 403, tok=tok_a, path={"id": c1["id"]}, json={"text": "post author"})
        problem = call(cb, "PATCH", "/v1/comments/{id}", 422, tok=tok_b, path={"id": c1["id"]}, json={"text": ""})
        assert "text" in problem.get("errors", {}), problem
        call(cb, "PATCH", "/v1/comments/{id}", 404, tok=tok_b, path={"id": "0" * 24}, json={"text": "x"})
        e1 = call(cb, "PATCH", "/v1/comments/{id}", 200, tok=tok_b, path={"id": c1["id"]}, json={"text": "first, edited"})
        assert e1["text"] == "first, edited" and e1["edited_at"] is not None, e1
        assert {k: v for k, v in e1.items() if k not in ("text", "edited_at")} == \
               {k: v for k, v in c1.items() if k not in ("text", "edited_at")}
        c1 = e1

        # ---- likes: idempotent, the state after the call, exact counts; likers newest first
        like = call(cb, "POST", "/v1/posts/{id}/like", 200, tok=tok_b, path={"id": post["id"]})
        assert like == {"liked": True, "like_count": 1}, like
        assert call(cb, "POST", "/v1/posts/{id}/like", 200, tok=tok_b, path={"id": post["id"]}) == like
        assert call(ca, "DELETE", "/v1/posts/{id}/like", 200, tok=tok_a, path={"id": post["id"]}) == \
               {"liked": False, "like_count": 1}
        seen_by_b = call(cb, "GET", "/v1/posts/{id}", 200, tok=tok_b, path={"id": post["id"]})
        assert (seen_by_b["liked_by_me"], seen_by_b["like_count"]) == (True, 1), seen_by_b
        anon = call(ca, "GET", "/v1/posts/{id}", 200, path={"id": post["id"]})
        assert (anon["liked_by_me"], anon["like_count"]) == (False, 1), anon
        assert call(cc, "POST", "/v1/posts/{id}/like", 200, tok=tok_c, path={"id": post["id"]}) == \
               {"liked": True, "like_count": 2}
        page = call(ca, "GET", "/v1/posts/{id}/likes", 200, path={"id": post["id"]})
        assert page == {"items": [_author(cu), _author(b)], "next_cursor": None}, page
        assert _all_pages(call, cb, "/v1/posts/{id}/likes", {"id": post["id"]}, tok=tok_b) == page["items"]
        call(ca, "GET", "/v1/posts/{id}/likes", 404, path={"id": "0" * 24})
        call(ca, "GET", "/v1/posts/{id}/likes", 422, path={"id": post["id"]}, params={"limit": 101})
        call(ca, "GET", "/v1/posts/{id}/likes", 400, path={"id": post["id"]}, params={"cursor": "x"})
        assert call(cb, "POST", "/v1/comments/{id}/like", 200, tok=tok_b, path={"id": c2["id"]}) == \
               {"liked": True, "like_count": 1}
        assert call(ca, "POST", "/v1/comments/{id}/like", 200, tok=tok_a, path={"id": c2["id"]}) == \
               {"liked": True, "like_count": 2}
        assert call(cb, "DELETE", "/v1/comments/{id}/like", 200, tok=tok_b, path={"id": c2["id"]}) == \
               {"liked": False, "like_count": 1}
        assert call(cb, "DELETE", "/v1/comments/{id}/like", 200, tok=tok_b, path={"id": c2["id"]}) == \
               {"liked": False, "like_count": 1}
        got = call(ca, "GET", "/v1/comments/{id}", 200, tok=tok_a, path={"id": c2["id"]})
        assert (got["liked_by_me"], got["like_count"]) == (True, 1), got
        for template in ("/v1/posts/{id}/like", "/v1/comments/{id}/like"):
            for method in ("POST", "DELETE"):
                call(cb, method, template, 404, tok=tok_b, path={"id": "0" * 24})
                call(cb, method, template, 401, path={"id": c2["id"] if "comments" in template else post["id"]})

        # ---- delete a comment: its author or the post's author; a top-level comment takes its replies
        call(cb, "DELETE", "/v1/comments/{id}", 403, tok=tok_b, path={"id": r2["id"]})  # C's, on A's post
        call(ca, "DELETE", "/v1/comments/{id}", 404, tok=tok_a, path={"id": "0" * 24})
        call(ca, "DELETE", "/v1/comments/{id}", 204, tok=tok_a, path={"id": c1["id"]})  # B's, on A's post
        for gone in (c1, r1, r2):
            call(ca, "GET", "/v1/comments/{id}", 404, path={"id": gone["id"]})
        page = call(ca, "GET", "/v1/posts/{id}/comments", 200, path={"id": post["id"]})
        assert _ids(page) == [c2["id"]], page
        assert call(ca, "GET", "/v1/posts/{id}", 200, path={"id": post["id"]})["comment_count"] == 1
        call(ca, "DELETE", "/v1/comments/{id}", 204, tok=tok_a, path={"id": other["id"]})  # its own author

        # ---- delete a post: author only; gone with its comments
        call(cb, "DELETE", "/v1/posts/{id}", 403, tok=tok_b, path={"id": bare["id"]})
        call(ca, "DELETE", "/v1/posts/{id}", 204, tok=tok_a, path={"id": bare["id"]})
        call(ca, "GET", "/v1/posts/{id}", 404, path={"id": bare["id"]})
        call(ca, "DELETE", "/v1/posts/{id}", 404, tok=tok_a, path={"id": bare["id"]})
        call(ca, "DELETE", "/v1/posts/{id}", 401, path={"id": post["id"]})

        # ---- blocks hide both ways (once publication has the block.created)
        call(cb, "POST", "/v1/users/{username}/block", 200, tok=tok_b, path={"username": a["username"]})
        wait_until(lambda: _poll("GET", f"/v1/posts/{post['id']}", tok_b).status_code == 404, timeout=30, interval=0.5,
                   what="the post hidden from the blocker")
        call(cb, "GET", "/v1/posts/{id}", 404, tok=tok_b, path={"id": post["id"]})
        call(ca, "GET", "/v1/users/{username}/posts", 404, tok=tok_a, path={"username": b["username"]})
        call(cb, "GET", "/v1/users/{username}/posts", 404, tok=tok_b, path={"username": a["username"]})
        call(cb, "GET", "/v1/posts/{id}/comments", 404, tok=tok_b, path={"id": post["id"]})
        call(cb, "GET", "/v1/posts/{id}/likes", 404, tok=tok_b, path={"id": post["id"]})
        call(cb, "POST", "/v1/posts/{id}/like", 404, tok=tok_b, path={"id": post["id"]})
        page = call(ca, "GET", "/v1/posts/{id}/likes", 200, tok=tok_a, path={"id": post["id"]})
        assert page["items"] == [_author(cu)], page  # B left out for A
        assert call(cc, "GET", "/v1/posts/{id}", 200, tok=tok_c, path={"id": post["id"]})["like_count"] == 2

        # ---- a deleted account: 401 account-gone on writes; its likes and comments go, counts recounted
        call(cc, "DELETE", "/v1/me", 204, tok=tok_c)

        def gone():
            r = _poll("POST", f"/v1/posts/{post['id']}/like", tok_c)
            return r if r.status_code == 401 else None

        r = wait_until(gone, timeout=30, interval=0.5, what="401 for a deleted account's token")
        check_operation(r, "/v1/posts/{id}/like", "post")
        assert is_problem(r, 401)["type"] == PROBLEM_BASE + "account-gone", r.text
        wait_until(lambda: _poll("GET", f"/v1/posts/{post['id']}").json()["like_count"] == 1, timeout=30, interval=0.5,
                   what="the deleted account's like gone from the count")

        # ---- methods the routes do not take: 405 with Allow
        check_not_allowed(ca, tok_a, (("GET", "/v1/posts", {"POST"}),
                                      ("PUT", f"/v1/posts/{post['id']}", {"GET", "PATCH", "DELETE"}),
                                      ("PUT", f"/v1/posts/{post['id']}/like", {"POST", "DELETE"}),
                                      ("DELETE", f"/v1/posts/{post['id']}/likes", {"GET"}),
                                      ("POST", f"/v1/tags/{tag}/posts", {"GET"})))
    finally:
        for c in (ca, cb, cc):
            c.close()
    missing = {op for op in set(PUBLICATION_ROUTES) - FEED_ROUTES - STORY_ROUTES  # (tests of their own below)
               if not any(s[:2] == op and s[2] < 300 for s in call.seen)}
    assert not missing, f"publication operations never called successfully: {sorted(missing)}"


def test_publication_author_avatar_is_the_thumb(publication_up, media_up):
    """Author.avatar is the thumb variant's URL of the user's avatar_media_id (once publication has the
    user.updated), null without one."""
    call = AuthCalls()
    with _auth_client() as c:
        t = call.register(c, "pv", name="Avatar")
        tok, user = t["access_token"], t["user"]
        avatar, photo = _upload(c, tok, 200, 200), _upload(c, tok)
        post = call(c, "POST", "/v1/posts", 201, tok=tok, json={"media_ids": [photo["id"]]})
        assert post["author"] == _author(user, avatar=None), post["author"]
        call(c, "PATCH", "/v1/me", 200, tok=tok, json={"avatar_media_id": avatar["id"], "name": "Avatar 2"})
        want = _author(user, name="Avatar 2", avatar=avatar["variants"]["thumb"]["url"])

        def author():
            r = _poll("GET", f"/v1/posts/{post['id']}")
            return r.status_code == 200 and r.json()["author"] == want

        wait_until(author, timeout=30, interval=0.5, what=f"the post's author to be {want}")
        call(c, "GET", "/v1/posts/{id}", 200, path={"id": post["id"]})


# ------------------------------------------------------------------ publication: events, queues and the RPCs it calls

@pytest.fixture
def publication_event_queue(rabbit, temp_queue):
    """temp_queue bound to `events` with every key publication publishes."""
    for key in PUBLICATION_EVENTS:
        _bind(rabbit, temp_queue, key, exchange="events")
    return temp_queue


_PUB_EVENT_USERS = ("author_id", "user_id", "post_author_id", "recipient_id")


def _pub_event_users(msg):
    body = json.loads(_payload(msg))
    return {body[k] for k in _PUB_EVENT_USERS if isinstance(body, dict) and isinstance(body.get(k), str)}


def test_publication_events_match_schemas(publication_up, media_up, rabbit, publication_event_queue):
    """Real events publication publishes for posts, edits, comments, replies, likes and unlikes (once each, none
    for a no-op), deletions, and the posts of a deleted account: each with the envelope of asyncapi.yaml and the
    payload of proto/schemas/events/<key>.json, carrying what the answers said."""
    rid_prefix = f"pev-{uuid.uuid4().hex[:8]}-"
    call = AuthCalls(rid_prefix=rid_prefix)
    ca, cb, cc = _auth_client(), _auth_client(), _auth_client()
    try:
        ta, tb, tc = call.register(ca, "qa"), call.register(cb, "qb"), call.register(cc, "qc")
        a, b, cu = ta["user"], tb["user"], tc["user"]
        tok_a, tok_b, tok_c = ta["access_token"], tb["access_token"], tc["access_token"]
        m, mc = _upload(ca, tok_a), _upload(cc, tok_c)
        _known_to_publication(b["username"])
        tag = f"ev{uuid.uuid4().hex[:8]}"
        p1 = call(ca, "POST", "/v1/posts", 201, tok=tok_a,
                  json={"caption": f"#{tag} with @{b['username']}", "media_ids": [m["id"]]})
        p2 = call(ca, "POST", "/v1/posts", 201, tok=tok_a, json={"media_ids": [m["id"]]})
        e1 = call(ca, "PATCH", "/v1/posts/{id}", 200, tok=tok_a, path={"id": p1["id"]}, json={"caption": "#Edited"})
        c1 = call(cb, "POST", "/v1/posts/{id}/comments", 201, tok=tok_b, path={"id": p1["id"]}, json={"text": "hi"})
        r1 = call(ca, "POST", "/v1/posts/{id}/comments", 201, tok=tok_a, path={"id": p1["id"]},
                  json={"text": "hello", "reply_to": c1["id"]})
        r2 = call(cb, "POST", "/v1/posts/{id}/comments", 201, tok=tok_b, path={"id": p1["id"]},
                  json={"text": "hello to you", "reply_to": r1["id"]})  # a reply to a reply: joins c1's thread
        call(ca, "PATCH", "/v1/comments/{id}", 200, tok=tok_a, path={"id": r1["id"]}, json={"text": "hello!"})  # no event
        for method in ("POST", "POST", "DELETE", "DELETE"):  # a no-op each second time
            call(cb, method, "/v1/posts/{id}/like", 200, tok=tok_b, path={"id": p1["id"]})
        call(ca, "POST", "/v1/comments/{id}/like", 200, tok=tok_a, path={"id": c1["id"]})
        call(ca, "DELETE", "/v1/comments/{id}", 204, tok=tok_a, path={"id": c1["id"]})  # B's, with both replies
        call(ca, "DELETE", "/v1/posts/{id}", 204, tok=tok_a, path={"id": p2["id"]})
        p3 = call(cc, "POST", "/v1/posts", 201, tok=tok_c, json={"media_ids": [mc["id"]]})
        call(cc, "DELETE", "/v1/me", 204, tok=tok_c)  # user.deleted: publication deletes p3
    finally:
        for c in (ca, cb, cc):
            c.close()

    ours = {a["id"], b["id"], cu["id"]}
    expected = {"post.created": 3, "post.updated": 1, "post.deleted": 2, "comment.created": 3, "comment.deleted": 1,
                "like.created": 2, "like.deleted": 1}

    got = collect_events(rabbit, publication_event_queue, _pub_event_users, ours, expected, timeout=45)

    by_key, message_ids = {}, set()
    for msg in got:
        if not _pub_event_users(msg) & ours:
            continue
        key = msg["routing_key"]
        body = _check_event(msg, key, "publication")
        props = msg["properties"]
        assert props["message_id"] not in message_ids, f"{key}: message_id used twice"
        message_ids.add(props["message_id"])
        rid = props.get("headers", {}).get("x-request-id")
        if not (key == "post.deleted" and body["post_id"] == p3["id"]):  # that one comes from user.deleted
            assert rid is not None and rid.startswith(rid_prefix), f"{key}: x-request-id {rid}"
        by_key.setdefault(key, []).append(body)

    created = {e["post_id"]: e for e in by_key["post.created"]}
    assert set(created) == {p1["id"], p2["id"], p3["id"]}, created
    for post, user in ((p1, a), (p2, a), (p3, cu)):
        e = created[post["id"]]
        assert (e["author_id"], e["author_username"], e["caption"], e["tags"], e["mentions"], e["media"],
                e["created_at"]) == (user["id"], user["username"], post["caption"], post["tags"], post["mentions"],
                                     post["media"], post["created_at"]), (e, post)
    assert created[p1["id"]]["tags"] == [tag] and created[p1["id"]]["mentions"] == [{"id": b["id"], "username": b["username"]}]
    assert by_key["post.updated"] == [{"post_id": p1["id"], "author_id": a["id"], "caption": "#Edited",
                                       "tags": ["edited"], "mentions": [], "edited_at": e1["edited_at"]}], by_key["post.updated"]
    deleted = sorted((e["post_id"], e["author_id"]) for e in by_key["post.deleted"])
    assert deleted == sorted([(p2["id"], a["id"]), (p3["id"], cu["id"])]), deleted
    comments = {e["comment_id"]: e for e in by_key["comment.created"]}
    assert comments[c1["id"]] == {"comment_id": c1["id"], "post_id": p1["id"], "post_author_id": a["id"],
                                  "author_id": b["id"], "author_username": b["username"], "text": "hi", "reply_to": None,
                                  "reply_to_author_id": None, "created_at": c1["created_at"]}, comments
    assert comments[r1["id"]] == {"comment_id": r1["id"], "post_id": p1["id"], "post_author_id": a["id"],
                                  "author_id": a["id"], "author_username": a["username"], "text": "hello",
                                  "reply_to": c1["id"], "reply_to_author_id": b["id"], "created_at": r1["created_at"]}
    # reply_to is the thread's top-level comment; reply_to_author_id the author of the comment answered
    assert comments[r2["id"]] == {"comment_id": r2["id"], "post_id": p1["id"], "post_author_id": a["id"],
                                  "author_id": b["id"], "author_username": b["username"], "text": "hello to you",
                                  "reply_to": c1["id"], "reply_to_author_id": a["id"], "created_at": r2["created_at"]}
    cd = by_key["comment.deleted"][0]
    assert {k: (sorted(v) if k == "reply_ids" else v) for k, v in cd.items() if k != "deleted_at"} == \
           {"comment_id": c1["id"], "post_id": p1["id"], "post_author_id": a["id"], "author_id": b["id"],
            "reply_ids": sorted([r1["id"], r2["id"]])}, cd
    likes = sorted(({k: v for k, v in e.items() if k != "created_at"} for e in by_key["like.created"]),
                   key=lambda e: e["target_type"])
    assert likes == [
        {"target_type": "comment", "target_id": c1["id"], "post_id": p1["id"], "recipient_id": b["id"],
         "user_id": a["id"], "username": a["username"]},
        {"target_type": "post", "target_id": p1["id"], "post_id": p1["id"], "recipient_id": a["id"],
         "user_id": b["id"], "username": b["username"]}], likes
    ld = by_key["like.deleted"][0]
    assert {k: v for k, v in ld.items() if k != "deleted_at"} == \
           {"target_type": "post", "target_id": p1["id"], "post_id": p1["id"], "recipient_id": a["id"],
            "user_id": b["id"]}, ld
    for e in (*by_key["comment.deleted"], *by_key["like.deleted"], *by_key["post.deleted"]):
        assert abs(time.time() - _epoch(e["deleted_at"])) < 300, e


def test_users_get_rpc_matches_asyncapi(auth_up, rabbit, temp_queue):
    """auth.users_get through the broker, as publication calls it: request and reply as usersGetRequest and
    usersGetReply say; the users found and the ids not found, each in the order asked; a bad body is 422
    errors.ids."""
    call = AuthCalls()
    with _auth_client() as c:
        ta, tb = call.register(c, "ua", name="Users A"), call.register(c, "ub")
    a, b = ta["user"], tb["user"]
    request = child(ASYNCAPI_URI, "components", "messages", "usersGetRequest")
    reply_msg = child(ASYNCAPI_URI, "components", "messages", "usersGetReply")
    unknown = "u" + uuid.uuid4().hex[:16]
    payload = json.dumps({"ids": [b["id"], unknown, a["id"]]})
    validate(json.loads(payload), child(request, "payload", "schema"), "our auth.users_get body")
    rid = f"contract-ug-{uuid.uuid4().hex[:8]}"
    props, reply = call_rpc(rabbit, temp_queue, "auth", "auth.users_get", {"x-request-id": rid}, payload)
    props["content_type"] = "application/json"
    validate(props, child(request, "headers", "schema"), "our auth.users_get request")
    p = reply["properties"]
    validate(p, child(reply_msg, "headers", "schema"), "auth.users_get reply properties")
    assert p["headers"]["x-status"] == 200 and p["content_type"].startswith("application/json"), (p, _payload(reply))
    assert p["headers"].get("x-request-id") == rid and p.get("app_id") == "auth", p
    body = json.loads(_payload(reply))
    validate(body, child(reply_msg, "payload", "schema"), "auth.users_get reply body")
    want = [{k: u[k] for k in ("id", "username", "name", "avatar_media_id")} for u in (b, a)]
    assert body == {"items": want, "missing": [unknown]}, body  # in the order asked
    for bad in ({}, {"ids": []}, {"ids": ["u"] * 101}, {"ids": [1]}):
        _, reply = call_rpc(rabbit, temp_queue, "auth", "auth.users_get", {}, json.dumps(bad))
        p = reply["properties"]
        validate(p, schema_uri("rpc-reply-headers"), f"auth.users_get {bad} reply properties")
        assert p["headers"]["x-status"] == 422, (bad, p)
        problem = json.loads(_payload(reply))
        validate(problem, schema_uri("problem"), f"auth.users_get {bad} reply body")
        assert problem["type"] == PROBLEM_BASE + "invalid-field" and "ids" in problem.get("errors", {}), problem


def test_publication_queues_match_asyncapi(publication_up, rabbit):
    """publication.events, publication.rpc and publication.fanout exist as asyncapi.yaml declares them, bound as
    it says, and consumed with manual acks (publication.fanout with prefetch 1); publication.fanout.dlq too."""
    check_service_queues(rabbit, "publication", ("publicationEvents", "publicationRpc", "publicationFanout"))
    dlq = rabbit.get(f"/queues/%2F/{_q('publication.fanout.dlq')}")
    assert dlq.status_code == 200 and dlq.json()["durable"] is True, dlq.text
    assert dlq.json()["arguments"] == {}


# ------------------------------------------------------------------ feed, stories and highlights: the documents

STORY = {"id": "6740b1c3e4b0c1d2e3f40601", "author": {**AUTHOR, "avatar": None}, "media": post_media_sample(),
         "created_at": T0, "expires_at": "2026-11-22T18:40:03Z", "seen": False}
HIGHLIGHT = {"id": "6740c0c3e4b0c1d2e3f40701", "owner": AUTHOR, "title": "Summer",
             "stories": [{k: STORY[k] for k in ("id", "media", "created_at")}], "created_at": T0}


def test_feed_story_highlight_schemas_are_exactly_the_readme_shapes():
    """Story, StoriesFeedItem, Highlight and HighlightStory have exactly the README's members (all required,
    nothing more); the feed is a PostList; requests refuse unknown members and what the README answers 422 for."""
    members = {
        "Story": ["id", "author", "media", "created_at", "expires_at", "seen"],
        "StoriesFeedItem": ["user", "has_unseen", "stories"],
        "Highlight": ["id", "owner", "title", "stories", "created_at"],
        "HighlightStory": ["id", "media", "created_at"],
        "CreateStoryRequest": ["media_id"],
        "CreateHighlightRequest": ["title", "story_ids"],
    }
    schemas = OPENAPI["components"]["schemas"]
    for name, want in members.items():
        s = schemas[name]
        assert s["type"] == "object" and s["additionalProperties"] is False, name
        assert s["required"] == want == list(s["properties"]), name
    for name in ("StoryList", "StoriesFeed", "HighlightList"):
        assert schemas[name]["unevaluatedProperties"] is False, name
    assert _schema_ref(child(_component("Story"), "properties", "media")) == "PostMedia"
    assert _schema_ref(child(_component("HighlightStory"), "properties", "media")) == "PostMedia"
    feed = follow(child(operation_uri("/v1/feed", "get"), "responses", "200"))[0]
    assert feed["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PostList"}

    validate(STORY, _component("Story"), "a story")
    validate({**STORY, "seen": True, "media": post_media_sample(blurhash=False)}, _component("Story"), "a seen story")
    validate({"items": [STORY], "next_cursor": None}, _component("StoryList"), "a user's stories")
    item = {"user": AUTHOR, "has_unseen": True, "stories": [STORY, {**STORY, "id": "6740b1c3e4b0c1d2e3f40602"}]}
    validate({"items": [item], "next_cursor": "c"}, _component("StoriesFeed"), "a page of the stories feed")
    validate(HIGHLIGHT, _component("Highlight"), "a highlight")
    validate({**HIGHLIGHT, "title": "t" * 100, "stories": HIGHLIGHT["stories"] * 100}, _component("Highlight"),
             "the longest title and 100 stories")
    validate({"items": [HIGHLIGHT], "next_cursor": None}, _component("HighlightList"), "a page of highlights")
    validate({"media_id": MEDIA_ID}, _component("CreateStoryRequest"), "a story request")
    validate({"title": "Summer", "story_ids": [OBJECT_ID]}, _component("CreateHighlightRequest"), "a highlight request")
    bad = [
        ("Story", {**STORY, "x": 1}), ("Story", {k: v for k, v in STORY.items() if k != "seen"}),
        ("Story", {**STORY, "media": [post_media_sample()]}), ("Story", {**STORY, "media": media_sample()}),
        ("Story", {**STORY, "id": "s1"}), ("Story", {**STORY, "expires_at": None}), ("Story", {**STORY, "seen": None}),
        ("Story", {**STORY, "author": {**AUTHOR, "email": "a@example.com"}}),
        ("StoryList", {"items": [STORY], "next_cursor": "more"}), ("StoryList", {"items": [STORY]}),
        ("StoriesFeedItem", {**item, "stories": []}), ("StoriesFeedItem", {**item, "has_unseen": "yes"}),
        ("StoriesFeedItem", {k: v for k, v in item.items() if k != "user"}), ("StoriesFeedItem", {**item, "seen": 1}),
        ("StoriesFeed", {"items": [STORY], "next_cursor": None}),
        ("Highlight", {**HIGHLIGHT, "title": ""}), ("Highlight", {**HIGHLIGHT, "title": "  "}),
        ("Highlight", {**HIGHLIGHT, "title": "t" * 101}), ("Highlight", {**HIGHLIGHT, "stories": []}),
        ("Highlight", {**HIGHLIGHT, "stories": [STORY]}), ("Highlight", {**HIGHLIGHT, "author": AUTHOR}),
        ("Highlight", {**HIGHLIGHT, "stories": HIGHLIGHT["stories"] * 101}),
        ("HighlightList", {"items": [STORY], "next_cursor": None}),
        ("CreateStoryRequest", {}), ("CreateStoryRequest", {"media_id": "m1"}),
        ("CreateStoryRequest", {"media_id": MEDIA_ID, "caption": "x"}),
        ("CreateStoryRequest", {"media_ids": [MEDIA_ID]}),
        ("CreateHighlightRequest", {"title": "x"}), ("CreateHighlightRequest", {"story_ids": [OBJECT_ID]}),
        ("CreateHighlightRequest", {"title": "", "story_ids": [OBJECT_ID]}),
        ("CreateHighlightRequest", {"title": " \t", "story_ids": [OBJECT_ID]}),
        ("CreateHighlightRequest", {"title": "t" * 101, "story_ids": [OBJECT_ID]}),
        ("CreateHighlightRequest", {"title": "x", "story_ids": []}),
        ("CreateHighlightRequest", {"title": "x", "story_ids": [OBJECT_ID, OBJECT_ID]}),
        ("CreateHighlightRequest", {"title": "x", "story_ids": ["s1"]}),
        ("CreateHighlightRequest", {"title": "x", "story_ids": [f"{i:024x}" for i in range(101)]}),
        ("CreateHighlightRequest", {"title": "x", "story_ids": [OBJECT_ID], "cover": MEDIA_ID}),
    ]
    for name, instance in bad:
        with pytest.raises(AssertionError):
            validate(instance, _component(name), f"a bad {name}")


FANOUT_BATCH = ["op", "post_id", "author_id", "users"]


def test_asyncapi_has_the_fanout_queue():
    """publication.fanout: durable, bound to `events` with post.created and post.deleted, dead-lettering into
    publication.fanout.dlq, prefetch 1; it carries post.created, post.deleted (the very messages of their
    channels) and fanout.batch, whose body is proto/schemas/publication.fanout.json {op, post_id, author_id,
    users}; publication receives all three and sends fanout.batch to itself."""
    channels = ASYNCAPI["channels"]
    ch = channels["publicationFanout"]
    assert ch["address"] == "publication.fanout"
    queue = ch["bindings"]["amqp"]
    assert queue["is"] == "queue"
    assert queue["queue"] == {"name": "publication.fanout", "durable": True, "exclusive": False, "autoDelete": False,
                              "vhost": "/"}
    assert ch["x-arguments"] == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "publication.fanout.dlq"}
    assert [(b["exchange"], b["routingKey"]) for b in ch["x-bindings"]] == [("events", "post.created"),
                                                                            ("events", "post.deleted")]
    assert ch["x-prefetch"] == 1
    for word in ("FEED_FANOUT_BATCH", "FEED_FANOUT_MAX_FOLLOWERS", "FEED_FANOUT_WORKERS", "`fanout.batch`"):
        assert word in ch["description"], word
    titles = {}
    for key in ch["messages"]:
        msg, _ = follow(child(ASYNCAPI_URI, "channels", "publicationFanout", "messages", key))
        titles[msg["title"]] = msg
    assert set(titles) == {"post.created", "post.deleted", "fanout.batch"}, titles
    for key in ("post.created", "post.deleted"):
        assert titles[key] == follow(_message_schema(key))[0]

    # fanout.batch: the envelope narrowed to its type and app_id; the body exactly {op, post_id, author_id, users}.
    msg_uri = child(ASYNCAPI_URI, "components", "messages", "fanoutBatch")
    assert follow(child(msg_uri, "payload", "schema"))[0] == DOCS[schema_uri("publication.fanout")]
    doc = DOCS[schema_uri("publication.fanout")]
    assert doc["$id"] == "https://schemas.photo.invalid/publication.fanout.json"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert doc["required"] == FANOUT_BATCH == list(doc["properties"])
    headers = child(msg_uri, "headers", "schema")
    envelope = {"message_id": str(uuid.uuid4()), "timestamp": int(time.time()), "content_type": "application/json",
                "delivery_mode": 2, "type": "fanout.batch", "app_id": "publication"}
    validate(envelope, headers, "a fanout.batch envelope")
    for change in ({"type": "post.created"}, {"app_id": "auth"}, {"delivery_mode": 1}):
        with pytest.raises(AssertionError):
            validate({**envelope, **change}, headers, "a bad fanout.batch envelope")
    body = schema_uri("publication.fanout")
    for ex in doc["examples"]:
        validate(ex, body, "a fanout.batch example")
    assert {ex["op"] for ex in doc["examples"]} == {"add", "remove"}
    ex = doc["examples"][0]
    near = [{**ex, "extra": 1}, {**ex, "op": "merge"}, {**ex, "op": None}, {**ex, "users": []},
            {**ex, "users": ["u1", "u1"]}, {**ex, "users": "u1"}, {**ex, "users": [1]}, {**ex, "post_id": "p1"},
            {**ex, "post_id": ex["post_id"].upper()}, {**ex, "author_id": ""}]
    near += [{k: v for k, v in ex.items() if k != m} for m in ex]
    for bad in near:
        with pytest.raises(AssertionError):
            validate(bad, body, "a bad fanout.batch")

    ops = ASYNCAPI["operations"]
    receive = [op for op in ops.values() if op["action"] == "receive" and op["channel"]["$ref"] == "#/channels/publicationFanout"]
    assert len(receive) == 1
    assert sorted(m["$ref"].rsplit("/", 1)[1] for m in receive[0]["messages"]) == ["fanoutBatch", "postCreated",
                                                                                   "postDeleted"]
    send = [op for op in ops.values() if op["action"] == "send" and op["channel"]["$ref"] == "#/channels/publicationFanout"]
    assert len(send) == 1 and [m["$ref"] for m in send[0]["messages"]] == \
        ["#/channels/publicationFanout/messages/fanoutBatch"]
    assert "`publication.fanout`" in ASYNCAPI["info"]["description"]


# ------------------------------------------------------------------ feed, stories and highlights: live, over HTTP/2

def _feed_ids(tok):
    r = _poll("GET", "/v1/feed?limit=100", tok)
    return _ids(r.json()) if r.status_code == 200 else r.status_code


def test_feed_routes_match_spec(publication_up, media_up):
    """GET /v1/feed through the gateway: the caller's own post at once, a followed account's post once fanned out,
    newest first, full Posts; pages of one; 401 without a token, 422 for a limit out of range, 400 for a cursor it
    did not give; 405 with Allow for other methods."""
    call = AuthCalls()
    ca, cb = _auth_client(), _auth_client()
    try:
        ta, tb = call.register(ca, "fa", name="Feed A"), call.register(cb, "fb")
        a, b = ta["user"], tb["user"]
        tok_a, tok_b = ta["access_token"], tb["access_token"]
        m = _upload(ca, tok_a)
        page = call(cb, "GET", "/v1/feed", 200, tok=tok_b)
        assert page == {"items": [], "next_cursor": None}, page
        call(cb, "POST", "/v1/users/{username}/follow", 200, tok=tok_b, path={"username": a["username"]})
        _known_to_publication(a["username"])
        p1 = call(ca, "POST", "/v1/posts", 201, tok=tok_a, json={"caption": "feed one", "media_ids": [m["id"]]})
        page = call(ca, "GET", "/v1/feed", 200, tok=tok_a)  # one's own post: before the 201
        assert page == {"items": [p1], "next_cursor": None}, page
        p2 = call(ca, "POST", "/v1/posts", 201, tok=tok_a, json={"caption": "feed two", "media_ids": [m["id"]]})
        wait_until(lambda: _feed_ids(tok_b) == [p2["id"], p1["id"]], timeout=15, interval=0.2,
                   what="both posts in the follower's feed")
        page = call(cb, "GET", "/v1/feed", 200, tok=tok_b)
        assert page == {"items": [p2, p1], "next_cursor": None}, page
        assert _all_pages(call, cb, "/v1/feed", {}, tok=tok_b) == [p2, p1]
        call(cb, "POST", "/v1/posts/{id}/like", 200, tok=tok_b, path={"id": p1["id"]})
        page = call(cb, "GET", "/v1/feed", 200, tok=tok_b, params={"limit": 1, "cursor": _first_cursor(call, cb, tok_b)})
        assert page["items"] == [{**p1, "like_count": 1, "liked_by_me": True}], page

        call(cb, "GET", "/v1/feed", 401)
        call(cb, "GET", "/v1/feed", 401, tok="not.a.token")
        for limit in ("0", "101", "abc"):
            problem = call(cb, "GET", "/v1/feed", 422, tok=tok_b, params={"limit": limit})
            assert "limit" in problem.get("errors", {}), problem
        call(cb, "GET", "/v1/feed", 400, tok=tok_b, params={"cursor": "not-a-cursor"})
        other = call(ca, "GET", "/v1/users/{username}/posts", 200, path={"username": a["username"]}, params={"limit": 1})
        assert other["next_cursor"], other
        call(cb, "GET", "/v1/feed", 400, tok=tok_b, params={"cursor": other["next_cursor"]})  # another list's
        check_not_allowed(cb, tok_b, [(method, "/v1/feed", {"GET"}) for method in ("POST", "DELETE", "PUT")])
    finally:
        for c in (ca, cb):
            c.close()
    missing = {op for op in FEED_ROUTES if not any(s[:2] == op and s[2] < 300 for s in call.seen)}
    assert not missing, missing


def _first_cursor(call, c, tok):
    return call(c, "GET", "/v1/feed", 200, tok=tok, params={"limit": 1})["next_cursor"]


def _fanout_publish(rabbit, body, raw=None):
    props = {"message_id": str(uuid.uuid4()), "type": "fanout.batch", "timestamp": int(time.time()),
             "app_id": "publication", "content_type": "application/json", "delivery_mode": 2}
    msg = child(ASYNCAPI_URI, "components", "messages", "fanoutBatch")
    validate(props, child(msg, "headers", "schema"), "our fanout.batch properties")
    if raw is None:
        validate(body, child(msg, "payload", "schema"), "our fanout.batch body")
    assert publish(rabbit, "amq.default", "publication.fanout", props, raw if raw is not None else json.dumps(body))["routed"]


def test_publication_applies_fanout_batch_as_its_schema_says(publication_up, media_up, rabbit):
    """A fanout.batch as proto/schemas/publication.fanout.json describes it, published to publication.fanout:
    remove takes the post out of the listed timelines only, add puts it back (twice: once); a malformed one is
    dead-lettered into publication.fanout.dlq."""
    call = AuthCalls()
    ca, cb, cc = _auth_client(), _auth_client(), _auth_client()
    try:
        ta, tb, tc = call.register(ca, "ba"), call.register(cb, "bb"), call.register(cc, "bc")
        a, b, cu = ta["user"], tb["user"], tc["user"]
        tok_a, tok_b, tok_c = ta["access_token"], tb["access_token"], tc["access_token"]
        m = _upload(ca, tok_a)
        for c, tok in ((cb, tok_b), (cc, tok_c)):
            call(c, "POST", "/v1/users/{username}/follow", 200, tok=tok, path={"username": a["username"]})
        _known_to_publication(a["username"])
        p = call(ca, "POST", "/v1/posts", 201, tok=tok_a, json={"media_ids": [m["id"]]})
        for tok in (tok_b, tok_c):
            wait_until(lambda: _feed_ids(tok) == [p["id"]], timeout=15, what="the post fanned out")
        _fanout_publish(rabbit, {"op": "remove", "post_id": p["id"], "author_id": a["id"], "users": [b["id"]]})
        wait_until(lambda: _feed_ids(tok_b) == [], timeout=15, what="the post removed from b's timeline")
        assert _feed_ids(tok_c) == [p["id"]] and _feed_ids(tok_a) == [p["id"]]
        for _ in range(2):
            _fanout_publish(rabbit, {"op": "add", "post_id": p["id"], "author_id": a["id"], "users": [b["id"]]})
        wait_until(lambda: _feed_ids(tok_b) == [p["id"]], timeout=15, what="the post back in b's timeline")
        time.sleep(0.5)
        assert call(cb, "GET", "/v1/feed", 200, tok=tok_b) == {"items": [p], "next_cursor": None}

        marker = uuid.uuid4().hex
        _fanout_publish(rabbit, None, raw=json.dumps({"op": "explode", "post_id": p["id"], "author_id": a["id"],
                                                      "users": [b["id"]], "marker": marker}))

        def dead_lettered():
            r = rabbit.post(f"/queues/%2F/{_q('publication.fanout.dlq')}/get",
                            json={"count": 1000, "ackmode": "reject_requeue_true", "encoding": "auto"})
            r.raise_for_status()
            return any(marker in _payload(x) for x in r.json())

        wait_until(dead_lettered, timeout=20, interval=0.5, what="the malformed batch in publication.fanout.dlq")
        assert _feed_ids(tok_b) == [p["id"]]
    finally:
        for c in (ca, cb, cc):
            c.close()


def test_story_and_highlight_routes_match_spec(publication_up, media_up):
    """A representative call of every story and highlight route through the gateway over HTTP/2, and the errors
    the README names, each answer checked against openapi.yaml, with the values the README promises."""
    call = AuthCalls()
    ca, cb, cc = _auth_client(), _auth_client(), _auth_client()
    try:
        ta, tb, tc = call.register(ca, "sa", name="Story A"), call.register(cb, "sb"), call.register(cc, "sc")
        a, b, cu = ta["user"], tb["user"], tc["user"]
        tok_a, tok_b, tok_c = ta["access_token"], tb["access_token"], tc["access_token"]
        m1, m2, mb = _upload(ca, tok_a, 320, 240), _upload(ca, tok_a), _upload(cb, tok_b)
        call(cb, "POST", "/v1/users/{username}/follow", 200, tok=tok_b, path={"username": a["username"]})

        # ---- create: the caller's media copied in; active for 24 h
        s1 = call(ca, "POST", "/v1/stories", 201, tok=tok_a, json={"media_id": m1["id"]})
        assert (s1["author"], s1["media"], s1["seen"]) == (_author(a, name="Story A"), _as_post_media(m1), False), s1
        assert _epoch(s1["expires_at"]) - _epoch(s1["created_at"]) == 24 * 3600, s1
        assert abs(time.time() - _epoch(s1["created_at"])) < 300, s1
        s2 = call(ca, "POST", "/v1/stories", 201, tok=tok_a, json={"media_id": m2["id"]})
        assert s2["id"] > s1["id"]
        call(ca, "POST", "/v1/stories", 401, json={"media_id": m1["id"]})
        call(ca, "POST", "/v1/stories", 400, tok=tok_a, content=b"{", headers=JSON_CT)
        for body, field in (({}, "media_id"), ({"media_id": "f" * 32}, "media_id"), ({"media_id": "junk"}, "media_id"),
                            ({"media_id": [m1["id"]]}, "media_id"), ({"media_id": m1["id"], "caption": "x"}, "caption")):
            problem = call(ca, "POST", "/v1/stories", 422, tok=tok_a, json=body)
            assert field in problem.get("errors", {}), (body, problem)
        assert call(ca, "POST", "/v1/stories", 403, tok=tok_a, json={"media_id": mb["id"]})["type"] == \
            PROBLEM_BASE + "forbidden"

        # ---- a user's stories: the author and followers see them, oldest first; others an empty list
        def stories_of(tok):
            r = _poll("GET", f"/v1/users/{a['username']}/stories", tok)
            return _ids(r.json()) if r.status_code == 200 else r.status_code

        wait_until(lambda: stories_of(tok_b) == [s1["id"], s2["id"]], timeout=30, interval=0.3,
                   what="the follower seeing the stories")
        page = call(cb, "GET", "/v1/users/{username}/stories", 200, tok=tok_b, path={"username": a["username"]})
        assert page == {"items": [s1, s2], "next_cursor": None}, page
        page = call(ca, "GET", "/v1/users/{username}/stories", 200, tok=tok_a, path={"username": a["username"]})
        assert page == {"items": [s1, s2], "next_cursor": None}, page
        for c, tok in ((ca, None), (cc, tok_c)):
            page = call(c, "GET", "/v1/users/{username}/stories", 200, tok=tok, path={"username": a["username"]})
            assert page == {"items": [], "next_cursor": None}, page
        call(ca, "GET", "/v1/users/{username}/stories", 404, path={"username": _new_username("nobody")})

        # ---- the stories feed and seen marks
        page = call(cb, "GET", "/v1/stories/feed", 200, tok=tok_b)
        assert page == {"items": [{"user": _author(a, name="Story A"), "has_unseen": True, "stories": [s1, s2]}],
                        "next_cursor": None}, page
        assert call(cc, "GET", "/v1/stories/feed", 200, tok=tok_c) == {"items": [], "next_cursor": None}
        call(cb, "GET", "/v1/stories/feed", 401)
        call(cb, "GET", "/v1/stories/feed", 422, tok=tok_b, params={"limit": 0})
        call(cb, "GET", "/v1/stories/feed", 400, tok=tok_b, params={"cursor": "x"})
        for _ in range(2):
            call(cb, "POST", "/v1/stories/{id}/seen", 204, tok=tok_b, path={"id": s1["id"]})
        page = call(cb, "GET", "/v1/stories/feed", 200, tok=tok_b)
        assert page["items"][0]["has_unseen"] is True and [s["seen"] for s in page["items"][0]["stories"]] == [True, False]
        call(cb, "POST", "/v1/stories/{id}/seen", 204, tok=tok_b, path={"id": s2["id"]})
        page = call(cb, "GET", "/v1/stories/feed", 200, tok=tok_b)
        assert page["items"] == [{"user": _author(a, name="Story A"), "has_unseen": False,
                                  "stories": [{**s1, "seen": True}, {**s2, "seen": True}]}], page
        call(cc, "POST", "/v1/stories/{id}/seen", 404, tok=tok_c, path={"id": s1["id"]})  # not a follower
        call(cb, "POST", "/v1/stories/{id}/seen", 404, tok=tok_b, path={"id": "0" * 24})
        call(cb, "POST", "/v1/stories/{id}/seen", 404, tok=tok_b, path={"id": "junk"})
        call(cb, "POST", "/v1/stories/{id}/seen", 401, path={"id": s1["id"]})

        # ---- highlights: copies of the caller's active stories, in the order given
        h = call(ca, "POST", "/v1/highlights", 201, tok=tok_a, json={"title": "Best of", "story_ids": [s2["id"], s1["id"]]})
        assert (h["owner"], h["title"]) == (_author(a, name="Story A"), "Best of"), h
        assert h["stories"] == [{k: s[k] for k in ("id", "media", "created_at")} for s in (s2, s1)], h
        for body, field in (({"title": "", "story_ids": [s1["id"]]}, "title"),
                            ({"title": "  ", "story_ids": [s1["id"]]}, "title"),
                            ({"title": "t" * 101, "story_ids": [s1["id"]]}, "title"),
                            ({"title": "x", "story_ids": []}, "story_ids"),
                            ({"title": "x", "story_ids": [s1["id"], s1["id"]]}, "story_ids"),
                            ({"title": "x", "story_ids": ["0" * 24]}, "story_ids"),
                            ({"title": "x", "story_ids": ["junk"]}, "story_ids"),
                            ({"title": "x"}, "story_ids"), ({"story_ids": [s1["id"]]}, "title"),
                            ({"title": "x", "story_ids": [s1["id"]], "cover": "x"}, "cover")):
            problem = call(ca, "POST", "/v1/highlights", 422, tok=tok_a, json=body)
            assert field in problem.get("errors", {}), (body, problem)
        call(cb, "POST", "/v1/highlights", 403, tok=tok_b, json={"title": "mine", "story_ids": [s1["id"]]})
        call(cb, "POST", "/v1/highlights", 401, json={"title": "mine", "story_ids": [s1["id"]]})
        h2 = call(ca, "POST", "/v1/highlights", 201, tok=tok_a, json={"title": "Second", "story_ids": [s1["id"]]})
        page = call(cc, "GET", "/v1/users/{username}/highlights", 200, path={"username": a["username"]})
        assert page == {"items": [h2, h], "next_cursor": None}, page  # anyone, newest first
        assert _all_pages(call, cc, "/v1/users/{username}/highlights", {"username": a["username"]}, tok=tok_c) == [h2, h]
        call(cc, "GET", "/v1/users/{username}/highlights", 422, path={"username": a["username"]}, params={"limit": 101})
        call(cc, "GET", "/v1/users/{username}/highlights", 400, path={"username": a["username"]}, params={"cursor": "x"})
        call(cc, "GET", "/v1/users/{username}/highlights", 404, path={"username": _new_username("nobody")})

        # ---- deletions: owner only; a story leaves its highlights, an emptied highlight goes
        call(cb, "DELETE", "/v1/highlights/{id}", 403, tok=tok_b, path={"id": h["id"]})
        call(cb, "DELETE", "/v1/stories/{id}", 403, tok=tok_b, path={"id": s1["id"]})
        call(ca, "DELETE", "/v1/stories/{id}", 204, tok=tok_a, path={"id": s1["id"]})
        call(ca, "DELETE", "/v1/stories/{id}", 404, tok=tok_a, path={"id": s1["id"]})
        call(ca, "DELETE", "/v1/stories/{id}", 401, path={"id": s2["id"]})
        page = call(cc, "GET", "/v1/users/{username}/highlights", 200, path={"username": a["username"]})
        assert page == {"items": [{**h, "stories": h["stories"][:1]}], "next_cursor": None}, page
        page = call(cb, "GET", "/v1/users/{username}/stories", 200, tok=tok_b, path={"username": a["username"]})
        assert _ids(page) == [s2["id"]], page
        call(ca, "DELETE", "/v1/highlights/{id}", 204, tok=tok_a, path={"id": h["id"]})
        call(ca, "DELETE", "/v1/highlights/{id}", 404, tok=tok_a, path={"id": h["id"]})
        call(ca, "DELETE", "/v1/highlights/{id}", 404, tok=tok_a, path={"id": h2["id"]})  # went with s1
        call(ca, "DELETE", "/v1/highlights/{id}", 401, path={"id": h["id"]})
        assert call(cc, "GET", "/v1/users/{username}/highlights", 200, path={"username": a["username"]}) == \
            {"items": [], "next_cursor": None}

        # ---- blocks: a user's stories and highlights are 404 both ways
        call(cb, "POST", "/v1/users/{username}/block", 200, tok=tok_b, path={"username": a["username"]})
        wait_until(lambda: stories_of(tok_b) == 404, timeout=30, interval=0.3, what="the stories hidden by the block")
        call(ca, "GET", "/v1/users/{username}/highlights", 404, tok=tok_a, path={"username": b["username"]})
        call(cb, "GET", "/v1/users/{username}/highlights", 404, tok=tok_b, path={"username": a["username"]})
        assert call(cb, "GET", "/v1/stories/feed", 200, tok=tok_b) == {"items": [], "next_cursor": None}

        check_not_allowed(ca, tok_a, (("GET", "/v1/stories", {"POST"}), ("GET", f"/v1/stories/{s2['id']}", {"DELETE"}),
                                      ("GET", f"/v1/stories/{s2['id']}/seen", {"POST"}),
                                      ("POST", "/v1/stories/feed", {"GET"}), ("GET", "/v1/highlights", {"POST"}),
                                      ("POST", f"/v1/users/{a['username']}/stories", {"GET"})))
    finally:
        for c in (ca, cb, cc):
            c.close()
    missing = {op for op in STORY_ROUTES if not any(s[:2] == op and s[2] < 300 for s in call.seen)}
    assert not missing, f"story and highlight operations never called successfully: {sorted(missing)}"
