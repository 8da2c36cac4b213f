"""test_auth_input.py -- auth over the gateway against bad and hostile input: malformed and non-object
bodies (400), wrong types, MongoDB operator objects, missing and unknown members (422 naming the
member, nothing written), username and e-mail rules, length limits counted in characters, and the
limits on failed logins and registrations (429 with Retry-After). services/auth/README.md, "Rules"."""
import statistics
import time
import uuid

import pytest

from authlib import (OPERATORS, PASSWORD, User, email_of, h2, login, new_address, problem_errors, problem_type,
                     refresh, register, register_body, uniq)
from authlib import users  # noqa: F401 (fixture)
from conftest import is_problem


def fcm_token():
    return f"tok-{uuid.uuid4().hex}"


# ------------------------------------------------------------------ every route with a body

# route -> (method, path, needs a user, members)
ROUTES = {
    "register": ("POST", "/v1/auth/register", False, ["username", "email", "password", "name"]),
    "login": ("POST", "/v1/auth/login", False, ["login", "password"]),
    "refresh": ("POST", "/v1/auth/refresh", False, ["refresh_token"]),
    "logout": ("POST", "/v1/auth/logout", False, ["refresh_token"]),
    "me_update": ("PATCH", "/v1/me", True, ["name", "bio", "avatar_media_id", "email"]),
    "device_add": ("POST", "/v1/me/devices", True, ["token", "platform"]),
}
REQUIRED = {"register": {"username", "email", "password"}, "login": {"login", "password"},
            "refresh": {"refresh_token"}, "logout": {"refresh_token"}, "me_update": set(),
            "device_add": {"token", "platform"}}
ROUTE_FIELDS = [(r, f) for r, spec in ROUTES.items() for f in spec[3]]


def valid_body(route):
    """A body of route that is valid in every member (and writes nothing that matters to other tests)."""
    if route == "register":
        return register_body(name="Valid Name")
    if route == "login":
        return {"login": uniq("nobody"), "password": PASSWORD}
    if route in ("refresh", "logout"):
        return {"refresh_token": "A" * 43}
    if route == "me_update":
        return {"name": "Changed Name", "bio": "changed bio", "avatar_media_id": None,
                "email": email_of(uniq("changed"))}
    if route == "device_add":
        return {"token": fcm_token(), "platform": "web"}
    raise AssertionError(route)


def send(route, user=None, client=None, body=None, raw=None):
    method, path, needs_user, _ = ROUTES[route]
    headers = {"content-type": "application/json"}
    kw = {"content": raw} if raw is not None else {"json": body}
    if needs_user:
        assert user is not None
        return user.client.request(method, path, headers={**headers, "authorization": f"Bearer {user.access}"}, **kw)
    if client is not None:
        return client.request(method, path, headers=headers, **kw)
    with h2() as c:
        return c.request(method, path, headers=headers, **kw)


def _anon_status(path):
    with h2() as c:
        return c.get(path).status_code


def each(cases, check):
    """Runs check(case) for every case and reports every case that failed, not just the first."""
    failed = []
    for case in cases:
        try:
            check(case)
        except AssertionError as e:
            failed.append(f"{case!r}: {str(e)[:300]}")
    assert not failed, f"{len(failed)} of {len(cases)} cases failed:\n" + "\n".join(failed)


@pytest.fixture(scope="module")
def patcher():
    """One account for the me_update cases that change nothing (each case checks that)."""
    u = User(name="Unchanged")
    yield u
    u.close()


@pytest.fixture(scope="module")
def device_owner():
    u = User()
    yield u
    u.close()


def user_for(route, patcher, device_owner):
    return {"me_update": patcher, "device_add": device_owner}.get(route)


MALFORMED = [b"{", b'{"username": ', b"not json", b"", b"{'login': 'x'}", b'{"login": "a"} trailing',
             b'{"login": "a",}', b"\xff\xfe{}"]
NOT_OBJECTS = [b"[]", b'"a string"', b"42", b"null", b"true", b'[{"login": "a", "password": "b"}]']


@pytest.mark.parametrize("route", list(ROUTES))
def test_body_not_a_json_object_is_400(route, patcher, device_owner):
    user = user_for(route, patcher, device_owner)
    with h2() as c:
        each(MALFORMED + NOT_OBJECTS, lambda raw: is_problem(send(route, user=user, client=c, raw=raw), 400))
    if route == "me_update":
        me = patcher.me()
        assert me["name"] == "Unchanged" and me["bio"] == "" and me["email"] == patcher.email


WRONG_TYPES = [5, 1.5, True, ["x"], {"k": "v"}]


@pytest.mark.parametrize("route,field", ROUTE_FIELDS)
def test_wrong_type_is_422_naming_the_field(route, field, patcher, device_owner):
    # null for an optional member may mean "not sent" (avatar_media_id: null clears it)
    values = WRONG_TYPES + ([None] if field in REQUIRED[route] else [])
    user = user_for(route, patcher, device_owner)
    before = user.me() if route == "me_update" else None

    def check(value):
        body = valid_body(route)
        body[field] = value
        problem_errors(send(route, user=user, client=c, body=body), 422, field)
        if route == "register":
            assert c.get(f"/v1/users/{body['username']}").status_code == 404

    with h2() as c:
        each(values, check)
    if route == "me_update":
        assert user.me() == before  # none of the valid members sent beside it was written either


@pytest.mark.parametrize("route,field", ROUTE_FIELDS)
def test_operator_object_is_422_and_changes_nothing(route, field, device_owner):
    """{"$ne": null} and friends, in every member of every body: a 422 naming the member, and the
    store is as it was (checked through the API)."""
    if route == "register":
        body = register_body(name="Op Test")

        def check(op):
            problem_errors(c.post("/v1/auth/register", json={**body, field: op}), 422, field)

        with h2() as c:
            each(OPERATORS, check)
            if field != "username":
                assert c.get(f"/v1/users/{body['username']}").status_code == 404
        # Neither the username nor the e-mail was taken: the same registration, valid, succeeds.
        with h2() as c:
            r = c.post("/v1/auth/register", json=body)
            assert r.status_code == 201, r.text
        return
    if route == "device_add":
        each(OPERATORS, lambda op: problem_errors(send(route, user=device_owner, body={**valid_body(route), field: op}),
                                                  422, field))
        return
    u = User()
    try:
        if route == "login":
            def check(op):
                r = u.client.post("/v1/auth/login", json={"login": u.username, "password": u.password, field: op})
                problem_errors(r, 422, field)
                assert "access_token" not in r.text and "refresh_token" not in r.text
            each(OPERATORS, check)
            assert u.login().status_code == 200
        elif route in ("refresh", "logout"):
            def check(op):
                r = u.client.post(ROUTES[route][1], json={"refresh_token": op})
                problem_errors(r, 422, "refresh_token")
                assert "access_token" not in r.text
            each(OPERATORS, check)
            # Nothing was spent nor revoked: the real token still rotates.
            assert refresh(u.client, u.refresh).status_code == 200
        elif route == "me_update":
            before = u.me()
            each(OPERATORS, lambda op: problem_errors(u.patch("/v1/me", json={**valid_body(route), field: op}),
                                                      422, field))
            assert u.me() == before
            if field == "email":
                assert u.login(login_name=u.email).status_code == 200
        else:
            raise AssertionError(route)
    finally:
        u.close()


LOGIN_INJECTIONS = [
    {"login": {"$ne": None}, "password": {"$ne": None}},
    {"login": {"$gt": ""}, "password": {"$gt": ""}},
    {"login": {"$regex": ".*"}, "password": {"$exists": True}},
    {"login": {"$in": ["a", "b"]}, "password": PASSWORD},
    {"login": ["a"], "password": [PASSWORD]},
]


def test_login_with_operator_objects_never_logs_in(users):
    users(name="Someone", password=PASSWORD)  # an account any operator would match

    def check(body):
        r = c.post("/v1/auth/login", json=body)
        errs = problem_errors(r, 422)
        assert set(errs) <= {"login", "password"}, errs
        assert "access_token" not in r.text

    with h2() as c:
        each(LOGIN_INJECTIONS, check)


@pytest.mark.parametrize("route,field", [(r, f) for r, fs in REQUIRED.items() for f in sorted(fs)])
def test_missing_required_member_is_422(route, field, patcher, device_owner):
    body = valid_body(route)
    del body[field]
    r = send(route, user=user_for(route, patcher, device_owner), body=body)
    problem_errors(r, 422, field)
    if route == "register" and field != "username":
        assert _anon_status(f"/v1/users/{body['username']}") == 404


@pytest.mark.parametrize("route", list(ROUTES))
def test_unknown_member_is_422(route, patcher, device_owner):
    user = user_for(route, patcher, device_owner)
    before = user.me() if route == "me_update" else None

    def check(extra):
        body = valid_body(route)
        body[extra] = True if extra != "followers_count" else 1000
        problem_errors(send(route, user=user, client=c, body=body), 422, extra)
        if route == "register":
            assert c.get(f"/v1/users/{body['username']}").status_code == 404

    with h2() as c:
        each(["admin", "$where", "id", "followers_count"], check)
    if route == "me_update":
        assert user.me() == before


def test_login_with_an_unknown_member_does_not_log_in(users):
    u = users()
    r = u.client.post("/v1/auth/login", json={"login": u.username, "password": u.password, "remember": True})
    problem_errors(r, 422, "remember")
    assert "access_token" not in r.text


@pytest.mark.parametrize("field,value", [("username", "someone_else"), ("password", "another-password-1"),
                                         ("created_at", "2020-01-01T00:00:00Z")])
def test_patch_me_cannot_touch_other_members(users, field, value):
    u = users()
    before = u.me()
    problem_errors(u.patch("/v1/me", json={"name": "x", field: value}), 422, field)
    assert u.me() == before
    assert u.login().status_code == 200  # the password is the old one


# ------------------------------------------------------------------ usernames

def test_username_is_case_folded(users):
    base = uniq("al")
    with h2() as c:
        body = register(c, username=base.capitalize(), email=email_of(base)).json()
    assert body["user"]["username"] == base
    with h2() as c:
        r = c.post("/v1/auth/register", json=register_body(username=base.upper(), email=email_of(uniq())))
        assert problem_errors(r, 409, "username")["username"] == "taken"
    with h2() as c:
        assert c.get(f"/v1/users/{base}").json()["username"] == base
    with h2() as c:
        r = login(c, base.upper())
        assert r.status_code == 200 and r.json()["user"]["username"] == base


@pytest.mark.parametrize("username", ["ab", "a" * 31, "has-dash", "has space", "ünïcode", "semi;colon", "",
                                      "x" * 5000, "tab\tname", "emoji😀x", "dot/slash", "a\nb"])
def test_bad_username_is_422(username):
    with h2() as c:
        r = c.post("/v1/auth/register", json=register_body(username=username, email=email_of(uniq())))
        problem_errors(r, 422, "username")


def test_username_boundaries_are_accepted():
    import random
    rnd = random.Random()
    three = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3))
    for name in (three, ("x" + uuid.uuid4().hex + "a" * 30)[:30], f"a.b_{uuid.uuid4().hex[:10]}"):
        with h2() as c:
            r = c.post("/v1/auth/register", json=register_body(username=name, email=email_of(uniq())))
            if r.status_code == 409 and name == three:
                continue  # a three-letter name left by an earlier run
            assert r.status_code == 201, (name, r.text)
            assert r.json()["user"]["username"] == name


# ------------------------------------------------------------------ e-mails

def test_email_is_lowercased_and_unique_case_insensitively():
    local = uniq("Mail").capitalize()
    with h2() as c:
        body = register(c, email=f"{local}@Example.COM").json()
    assert body["user"]["email"] == f"{local.lower()}@example.com"
    with h2() as c:
        second = register_body(email=f"{local.upper()}@EXAMPLE.com")
        r = c.post("/v1/auth/register", json=second)
        assert problem_errors(r, 409, "email")["email"] == "taken"
        assert c.get(f"/v1/users/{second['username']}").status_code == 404
    # Logging in by the address works in any case.
    with h2() as c:
        r = login(c, f"{local.upper()}@example.COM")
        assert r.status_code == 200 and r.json()["user"]["id"] == body["user"]["id"]


@pytest.mark.parametrize("email", ["plainaddress", "@example.com", "user@", "user@localhost", "",
                                   "a" * 250 + "@example.com", "x" * 5000])
def test_bad_email_is_422(email):
    with h2() as c:
        body = register_body(email=email)
        problem_errors(c.post("/v1/auth/register", json=body), 422, "email")
        assert c.get(f"/v1/users/{body['username']}").status_code == 404


def test_email_of_254_bytes_is_accepted():
    domain = ".".join(["d" * 63, "e" * 63, "f" * 63]) + ".com"  # labels of at most 63
    local = (uniq("m") + "x" * 80)[:254 - 1 - len(domain)]  # 58 bytes (at most 64)
    email = f"{local}@{domain}"
    assert len(email) == 254
    with h2() as c:
        r = c.post("/v1/auth/register", json=register_body(email=email))
        assert r.status_code == 201, r.text
    with h2() as c:
        problem_errors(c.post("/v1/auth/register", json=register_body(email="z" + email)), 422, "email")


def test_patch_me_bad_email_is_422(users):
    u = users()
    for bad in ("nope", "a@b", "@example.com", "", "x" * 250 + "@example.com"):
        problem_errors(u.patch("/v1/me", json={"email": bad}), 422, "email")
    assert u.me()["email"] == u.email


# ------------------------------------------------------------------ lengths, in characters

@pytest.mark.parametrize("password", ["é" * 8, "😀" * 8, "€" * 128, "a" * 128, "p" * 8])
def test_password_lengths_accepted_and_usable(password):
    name = uniq()
    with h2() as c:
        r = c.post("/v1/auth/register", json=register_body(username=name, password=password))
        assert r.status_code == 201, r.text
        r = login(c, name, password)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("password", ["é" * 7, "a" * 7, "a" * 129, "é" * 129, "", "a" * 100000])
def test_password_length_refused(password):
    with h2() as c:
        body = register_body(password=password)
        r = c.post("/v1/auth/register", json=body)
        if r.status_code == 413:  # the 100000-character one may stop at the gateway's body cap
            is_problem(r, 413)
            return
        problem_errors(r, 422, "password")
        assert c.get(f"/v1/users/{body['username']}").status_code == 404


def test_name_length_in_characters():
    with h2() as c:
        r = c.post("/v1/auth/register", json=register_body(name="é" * 64))
        assert r.status_code == 201, r.text
        assert r.json()["user"]["name"] == "é" * 64
    with h2() as c:
        problem_errors(c.post("/v1/auth/register", json=register_body(name="é" * 65)), 422, "name")
        problem_errors(c.post("/v1/auth/register", json=register_body(name="a" * 65)), 422, "name")


def test_patch_name_and_bio_lengths(users):
    u = users()
    r = u.patch("/v1/me", json={"name": "ü" * 64, "bio": "😀" * 300})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "ü" * 64 and r.json()["bio"] == "😀" * 300
    before = u.me()
    problem_errors(u.patch("/v1/me", json={"name": "ü" * 65}), 422, "name")
    problem_errors(u.patch("/v1/me", json={"bio": "😀" * 301}), 422, "bio")
    problem_errors(u.patch("/v1/me", json={"bio": "b" * 301}), 422, "bio")
    problem_errors(u.patch("/v1/me", json={"name": "ok", "bio": "b" * 301}), 422, "bio")
    assert u.me() == before


@pytest.mark.parametrize("raw", [
    b'{"username": "ab\xc3", "email": "x@example.com", "password": "longenough"}',
    b'{"username": "abc", "email": "x@example.com", "password": "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"}',
    b'{"username": "abcd", "email": "x@example.com", "password": "longenough", "name": "\\ud800"}',
    b'{"username": "abcd\\u0000x", "email": "x@example.com", "password": "longenough"}',
], ids=["truncated-utf8", "invalid-utf8", "lone-surrogate", "escaped-nul"])
def test_bad_text_is_refused_not_a_500(raw):
    with h2() as c:
        r = c.post("/v1/auth/register", content=raw, headers={"content-type": "application/json"})
        assert r.status_code in (400, 422), (r.status_code, r.text)
        is_problem(r, r.status_code)


# ------------------------------------------------------------------ failed logins and registrations

def _retry_after(r, most):
    ra = r.headers.get("retry-after")
    assert ra is not None and ra.isdigit(), r.headers
    assert 1 <= int(ra) <= most, ra
    return int(ra)


def test_login_failure_answer_is_the_same_for_unknown_and_known_accounts(users):
    u = users()
    with h2() as c:
        wrong = login(c, u.username, "wrong-password-1")
        unknown = login(c, uniq("ghost"), "wrong-password-1")
        unknown_mail = login(c, email_of(uniq("ghost")), "wrong-password-1")
    bodies = []
    for r in (wrong, unknown, unknown_mail):
        body = problem_type(r, 401, "invalid-credentials")
        body.pop("instance", None)
        bodies.append(body)
    assert bodies[0] == bodies[1] == bodies[2]


def test_unknown_accounts_cost_a_password_check_too(users):
    """The password is checked against a dummy hash when the account does not exist, so the time
    an answer takes does not tell whether it does (loosely: same order of magnitude)."""
    u = users()

    def timed(c, name):
        t0 = time.perf_counter()
        r = login(c, name, "wrong-password-2")
        assert r.status_code == 401, r.text
        return time.perf_counter() - t0

    with h2() as c:
        c.get("/healthz")  # connection set up outside the timings
        known = statistics.median(timed(c, u.username) for _ in range(3))
        unknown = statistics.median(timed(c, uniq("ghost")) for _ in range(3))
    assert known > 0.005, known  # argon2id: tens of milliseconds
    assert unknown > 0.35 * known, (unknown, known)


def test_failed_logins_are_limited_per_account(users):
    u = users()
    for _ in range(5):  # the test stack allows 5 failures per account, each from another address
        with h2() as c:
            problem_type(login(c, u.username, "wrong-password-3"), 401, "invalid-credentials")
    with h2() as c:
        r = login(c, u.username, "wrong-password-3")
        problem_type(r, 429, "rate-limited")
        _retry_after(r, 15 * 60)
    # The account is locked for every address and every name of it, even with the right password.
    with h2() as c:
        r = login(c, u.username, u.password)
        problem_type(r, 429, "rate-limited")
        assert "access_token" not in r.text
        _retry_after(r, 15 * 60)
    with h2() as c:
        problem_type(login(c, u.email, u.password), 429, "rate-limited")
    # Other accounts are not affected.
    v = users()
    assert v.login().status_code == 200


def test_failed_logins_are_limited_per_unknown_name():
    ghost = uniq("ghost")
    for _ in range(5):
        with h2() as c:
            problem_type(login(c, ghost, "wrong-password-4"), 401, "invalid-credentials")
    with h2() as c:
        r = login(c, ghost, "wrong-password-4")
        problem_type(r, 429, "rate-limited")
        _retry_after(r, 15 * 60)


def test_failed_logins_are_limited_per_address(users):
    v = users()
    addr = new_address()
    with h2(address=addr) as c:
        for _ in range(12):  # the test stack allows 12 failures per address; distinct names
            problem_type(login(c, uniq("ghost"), "wrong-password-5"), 401, "invalid-credentials")
        r = login(c, uniq("ghost"), "wrong-password-5")
        problem_type(r, 429, "rate-limited")
        _retry_after(r, 15 * 60)
        # From that address even a right password is refused...
        r = login(c, v.username, v.password)
        problem_type(r, 429, "rate-limited")
        assert "access_token" not in r.text
    # ...but not from another one.
    with h2() as c:
        assert login(c, v.username, v.password).status_code == 200


def test_registrations_are_limited_per_address():
    addr = new_address()
    with h2(address=addr) as c:
        for _ in range(10):  # the test stack allows 10 registrations per address
            register(c)
        body = register_body()
        r = c.post("/v1/auth/register", json=body)
        problem_type(r, 429, "rate-limited")
        _retry_after(r, 60 * 60)
        assert c.get(f"/v1/users/{body['username']}").status_code == 404
    with h2() as c:  # another address still registers, the same name included
        r = c.post("/v1/auth/register", json=body)
        assert r.status_code == 201, r.text
