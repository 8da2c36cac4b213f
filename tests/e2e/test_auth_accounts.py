"""test_auth_accounts.py -- auth over the gateway: register, login, access-token claims, refresh rotation
and reuse detection, logout, GET/PATCH/DELETE /v1/me (services/auth/README.md)."""
import calendar
import time

import jwt
import pytest

from authlib import (PASSWORD, check_account, check_tokens, counts, email_of, h2, list_all, logout, problem_errors,
                     problem_type, refresh, register, run_together, uniq)
from authlib import anon, users  # noqa: F401 (fixtures)
from conftest import AUDIENCE, ISSUER, bearer, is_problem, public_key, wait_until


# ------------------------------------------------------------------ register

def test_register_returns_account_and_tokens(anon):
    name = uniq("reg")
    r = register(anon, username=name, name="Ada Lovelace")
    assert r.headers["content-type"].startswith("application/json")
    body = check_tokens(r.json(), username=name)
    u = body["user"]
    assert u["email"] == email_of(name)
    assert u["name"] == "Ada Lovelace" and u["bio"] == ""
    assert u["avatar_media_id"] is None
    assert (u["posts_count"], u["followers_count"], u["following_count"]) == (0, 0, 0)
    created = calendar.timegm(time.strptime(u["created_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(created - time.time()) < 120
    # The account is there: the token reads it back, and its public profile exists.
    me = anon.get("/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == u


def test_register_without_name_gives_empty_strings(anon):
    body = register(anon).json()
    assert body["user"]["name"] == "" and body["user"]["bio"] == ""


def test_register_taken_username_is_409(users):
    a = users()
    with h2() as c:
        r = c.post("/v1/auth/register", json={"username": a.username, "email": email_of(uniq()), "password": PASSWORD})
        errs = problem_errors(r, 409, "username")
        assert errs["username"] == "taken"
    assert a.login().status_code == 200  # the first account is untouched (its password still works)


def test_register_taken_email_is_409(users):
    a = users()
    other = uniq()
    with h2() as c:
        r = c.post("/v1/auth/register", json={"username": other, "email": a.email, "password": PASSWORD})
        errs = problem_errors(r, 409, "email")
        assert errs["email"] == "taken"
        assert c.get(f"/v1/users/{other}").status_code == 404  # nothing written


# ------------------------------------------------------------------ access tokens

def test_access_token_claims_and_signature(users):
    u = users()
    token = u.access
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER == "photo-auth"
    aud = claims["aud"]
    assert aud == AUDIENCE or aud == [AUDIENCE], aud
    assert claims["sub"] == u.id
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 60
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    # The signature verifies with the stack's public key (and the claims pass a strict check).
    verified = jwt.decode(token, public_key(), algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER,
                          options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]})
    assert verified == claims
    # A token with its payload swapped for another subject does not verify.
    other = jwt.encode({**claims, "sub": "someone-else"}, "k" * 32, algorithm="HS256").split(".")[1]
    h, _, s = token.split(".")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{h}.{other}.{s}", public_key(), algorithms=["RS256"], audience=AUDIENCE)


def test_each_token_has_its_own_jti(users):
    u = users()
    r1 = u.login()
    r2 = u.login()
    assert r1.status_code == 200 and r2.status_code == 200
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"]
            for t in (u.access, r1.json()["access_token"], r2.json()["access_token"])}
    assert len(jtis) == 3
    assert len({u.refresh, r1.json()["refresh_token"], r2.json()["refresh_token"]}) == 3


def test_me_needs_a_token(anon):
    r = anon.get("/v1/me")
    is_problem(r, 401)
    is_problem(anon.patch("/v1/me", json={"name": "x"}), 401)
    is_problem(anon.delete("/v1/me"), 401)


# ------------------------------------------------------------------ login

def test_login_by_username_and_by_email(users):
    u = users(name="Login Test")
    for name in (u.username, u.email, u.username.upper(), u.email.upper()):
        r = u.login(login_name=name)
        assert r.status_code == 200, (name, r.text)
        body = check_tokens(r.json(), username=u.username)
        assert body["user"]["id"] == u.id and body["user"]["email"] == u.email
        assert body["user"]["name"] == "Login Test"
        claims = jwt.decode(body["access_token"], public_key(), algorithms=["RS256"], audience=AUDIENCE)
        assert claims["sub"] == u.id


def test_login_wrong_password_is_401(users):
    u = users()
    r = u.login(password=PASSWORD + "x")
    problem_type(r, 401, "invalid-credentials")
    assert "access_token" not in r.text


# ------------------------------------------------------------------ refresh

def test_refresh_rotates(users):
    u = users()
    r = refresh(u.client, u.refresh)
    assert r.status_code == 200, r.text
    body = check_tokens(r.json(), username=u.username)
    assert body["user"]["id"] == u.id
    assert body["refresh_token"] != u.refresh
    assert body["access_token"] != u.access
    claims = jwt.decode(body["access_token"], public_key(), algorithms=["RS256"], audience=AUDIENCE)
    assert claims["sub"] == u.id and claims["exp"] - claims["iat"] == 900
    assert u.client.get("/v1/me", headers=bearer(body["access_token"])).status_code == 200
    # The new one rotates again.
    r2 = refresh(u.client, body["refresh_token"])
    assert r2.status_code == 200, r2.text
    assert r2.json()["refresh_token"] not in (u.refresh, body["refresh_token"])


def test_refresh_token_is_single_use_and_reuse_revokes_the_family(users):
    u = users()
    other_session = u.login()
    assert other_session.status_code == 200
    t1 = u.refresh
    t2 = refresh(u.client, t1).json()["refresh_token"]
    t3 = refresh(u.client, t2).json()["refresh_token"]
    # t1 is spent: presenting it again is refused and revokes every token of its family.
    is_problem(refresh(u.client, t1), 401)
    is_problem(refresh(u.client, t3), 401)
    is_problem(refresh(u.client, t2), 401)
    # Another login is another family: untouched.
    r = refresh(u.client, other_session.json()["refresh_token"])
    assert r.status_code == 200, r.text


def test_refresh_same_token_concurrently_is_single_use(users):
    """Six refreshes of one token at once: at most one answers a pair (single use), the others present
    a spent token, which revokes the family -- so no token of it works afterwards."""
    u = users()
    token = u.refresh
    clients = [h2() for _ in range(6)]
    try:
        results = run_together([lambda c=c: refresh(c, token) for c in clients])
    finally:
        for c in clients:
            c.close()
    statuses = sorted(r.status_code for r in results)
    assert statuses in ([200] + [401] * 5, [401] * 6), statuses
    for r in results:
        if r.status_code == 401:
            is_problem(r, 401)
        else:
            is_problem(refresh(u.client, r.json()["refresh_token"]), 401)
    is_problem(refresh(u.client, token), 401)


@pytest.mark.parametrize("token", ["garbage", "A" * 43, "a.b.c", "B" * 200])
def test_refresh_unknown_token_is_401(anon, token):
    problem_type(refresh(anon, token), 401, "")


def test_refresh_with_an_access_token_is_refused(users):
    """An access token (a JWT of several hundred characters) is no refresh token: 401, or 422 where
    the daemon caps the length of refresh tokens; never new tokens."""
    u = users()
    for t in (u.access, "x" * 3000):
        r = refresh(u.client, t)
        assert r.status_code in (401, 422), r.text
        is_problem(r, r.status_code)
        assert "access_token" not in r.text
    assert refresh(u.client, u.refresh).status_code == 200


# ------------------------------------------------------------------ logout

def test_logout_revokes_the_family(users):
    u = users()
    other = u.login().json()["refresh_token"]
    t2 = refresh(u.client, u.refresh).json()["refresh_token"]
    r = logout(u.client, t2)
    assert r.status_code == 204, r.text
    assert r.content == b""
    is_problem(refresh(u.client, t2), 401)
    is_problem(refresh(u.client, u.refresh), 401)
    assert refresh(u.client, other).status_code == 200  # the other session lives on


def test_logout_of_an_ancestor_token_revokes_its_descendants(users):
    u = users()
    t2 = refresh(u.client, u.refresh).json()["refresh_token"]
    assert logout(u.client, u.refresh).status_code == 204  # the spent first token of the family
    is_problem(refresh(u.client, t2), 401)


def test_logout_unknown_token_is_204(anon):
    r = logout(anon, "A" * 43)
    assert r.status_code == 204, r.text


# ------------------------------------------------------------------ GET /v1/me

def test_me_returns_own_account_with_email(users):
    u = users(name="Grace")
    me = u.me()
    check_account(me, u.username)
    assert me["id"] == u.id and me["email"] == u.email and me["name"] == "Grace"
    assert me == u.account


# ------------------------------------------------------------------ PATCH /v1/me

def test_patch_me_name_bio_avatar(users):
    u = users()
    r = u.patch("/v1/me", json={"name": "Neue Name ✓", "bio": "línea uno\nline two"})
    assert r.status_code == 200, r.text
    body = r.json()
    check_account(body, u.username)
    assert body["name"] == "Neue Name ✓" and body["bio"] == "línea uno\nline two"
    assert body["email"] == u.email and body["id"] == u.id
    assert u.me() == body
    prof = u.profile(u.username).json()
    assert prof["name"] == "Neue Name ✓" and prof["bio"] == "línea uno\nline two"
    # Only what is sent changes; "" clears; avatar_media_id null is accepted.
    r = u.patch("/v1/me", json={"bio": ""})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Neue Name ✓" and r.json()["bio"] == ""
    r = u.patch("/v1/me", json={"avatar_media_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["avatar_media_id"] is None
    r = u.patch("/v1/me", json={})
    assert r.status_code == 200 and r.json() == u.me()


def test_patch_me_email_lowercases_and_moves_login(users):
    u = users()
    new = uniq("mail")
    r = u.patch("/v1/me", json={"email": f"{new.upper()}@Example.ORG"})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == f"{new}@example.org"
    assert u.me()["email"] == f"{new}@example.org"
    assert u.login(login_name=f"{new}@example.org").status_code == 200
    problem_type(u.login(login_name=u.email), 401, "invalid-credentials")
    # The old address is free again.
    with h2() as c:
        register(c, email=u.email)


def test_patch_me_taken_email_is_409_and_changes_nothing(users):
    a, b = users(2)
    before = b.me()
    r = b.patch("/v1/me", json={"name": "should not stick", "email": a.email.upper()})
    errs = problem_errors(r, 409, "email")
    assert errs["email"] == "taken"
    assert b.me() == before
    assert a.me()["email"] == a.email


# ------------------------------------------------------------------ DELETE /v1/me

def test_delete_me(users):
    u, friend, fan = users(3)
    assert u.follow(friend).status_code == 200
    assert friend.follow(u).status_code == 200
    assert fan.follow(u).status_code == 200
    assert counts(friend) == (1, 1) and counts(fan) == (0, 1)
    other_session = u.login().json()["refresh_token"]
    r = u.delete("/v1/me")
    assert r.status_code == 204, r.text
    assert r.content == b""
    # Every family is revoked; the credentials are gone; so is the profile.
    is_problem(refresh(u.client, u.refresh), 401)
    is_problem(refresh(u.client, other_session), 401)
    problem_type(u.login(), 401, "invalid-credentials")
    with h2() as c:
        is_problem(c.get(f"/v1/users/{u.username}"), 404)
    # Its follows vanish everywhere, counters included.
    wait_until(lambda: counts(friend) == (0, 0) and counts(fan) == (0, 0), timeout=10, what="counters after delete")
    assert list_all(friend, friend.username, "followers")[0] == []
    assert list_all(friend, friend.username, "following")[0] == []
    assert list_all(fan, fan.username, "following")[0] == []
    # The still-unexpired access token of a deleted account reads nothing.
    r = u.get("/v1/me")
    assert r.status_code in (401, 404), r.text
    is_problem(r, r.status_code)
    r = u.delete("/v1/me")
    assert r.status_code in (401, 404), r.text


def test_delete_me_frees_nothing_of_others(users):
    a, b = users(2)
    assert a.delete("/v1/me").status_code == 204
    assert b.login().status_code == 200
    assert b.me()["username"] == b.username
