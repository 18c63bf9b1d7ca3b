"""Bearer tokens at the resource server, and client authentication at the token endpoint.

Every refusal is checked exactly (status, OAuth error or OperationOutcome issue code, challenge)
and, at the token endpoint, that no token was stored.
"""

import base64
import hashlib
import hmac
import time
import uuid

import orjson
import pytest
from werkzeug.datastructures import MultiDict

from tests.support.oauth import ASSERTION_TYPE, assertion, new_key, public_jwks, system_client

from .auth_helpers import (
    TOKEN_URL,
    AppClient,
    Backend,
    Clock,
    as_bearer,
    auth_service,
    authorization_code,
    backend_access,
    backend_request,
    bearer_refusal,
    build_world,
    exchange,
    introspect,
    oauth_error,
    refresh,
    register_app,
    register_key_backend,
    revoke,
    token_count,
    token_request,
    tokens,
)
from .helpers import app_with, patient

READ = "system/Patient.rs"


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def timed_app(mongo_server, clock):
    """An app whose auth service tells time by `clock`."""
    with app_with(mongo_server, CLOCK=clock) as application:
        yield application


@pytest.fixture()
def backend(app, backend_key):
    return Backend(auth_service(app).register_client("reader", READ, jwks=public_jwks(backend_key))["client_id"],
                   backend_key)


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(client_id, **changes):
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": int(time.time()) + 240,
              "jti": uuid.uuid4().hex}
    return {**claims, **changes}


def _assertion_form(compact, scope=READ):
    return {"grant_type": "client_credentials", "scope": scope, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": compact}


def _refused_assertion(app, response, words):
    """invalid_client (401, Basic challenge), a description naming the problem, and no token stored."""
    description = oauth_error(response, 401, "invalid_client")
    assert words in description
    assert token_count(app) == 0


# Resource server: the bearer token ----------


def test_no_token_is_401_with_a_bare_bearer_challenge(app, anonymous):
    response = anonymous.get("/fhir/Patient")
    challenge = bearer_refusal(response, 401)
    assert challenge == 'Bearer realm="fhir-iomt"'


def test_no_token_on_a_write_is_401_and_nothing_is_stored(app, client, anonymous):
    response = anonymous.post("/fhir/Patient", json=patient("Nobody"))
    bearer_refusal(response, 401)
    assert client.get("/fhir/Patient").get_json()["total"] == 0


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc", "Bearertoken"])
def test_malformed_authorization_header_is_401_invalid_request(app, client, header):
    response = app.test_client().get("/fhir/Patient", headers={"Authorization": header})
    bearer_refusal(response, 401, "invalid_request")


def test_unknown_token_is_401_invalid_token(app):
    response = as_bearer(app, "a" * 43).get("/fhir/Patient")
    challenge = bearer_refusal(response, 401, "invalid_token")
    assert "not valid" in challenge


def test_a_token_is_matched_exactly_not_by_prefix_or_case(app, backend):
    token = backend_access(app.test_client(), backend, READ)
    assert as_bearer(app, token).get("/fhir/Patient").status_code == 200
    for wrong in (token[:-1], token + "x", token.swapcase()):
        bearer_refusal(as_bearer(app, wrong).get("/fhir/Patient"), 401, "invalid_token")


def test_a_refresh_token_is_not_an_access_token(app, client):
    build_world(app, client)
    scope = "patient/*.rs offline_access"
    body = tokens(app, register_app(app, scope), "alice", scope)
    bearer_refusal(as_bearer(app, body["refresh_token"]).get("/fhir/Patient"), 401, "invalid_token")


def test_backend_token_expires_after_its_lifetime(timed_app, clock, backend_key):
    backend = register_key_backend(timed_app, READ, backend_key)
    token = backend_access(timed_app.test_client(), backend, READ)
    reader = as_bearer(timed_app, token)
    clock.advance(timed_app.config["BACKEND_TOKEN_SECONDS"] - 1)
    assert reader.get("/fhir/Patient").status_code == 200
    clock.advance(1)
    challenge = bearer_refusal(reader.get("/fhir/Patient"), 401, "invalid_token")
    assert "expired" in challenge


def test_app_token_expires_after_its_lifetime(timed_app, clock, backend_key):
    admin = system_client(timed_app, backend_key)
    build_world(timed_app, admin)
    body = tokens(timed_app, register_app(timed_app, "patient/*.rs"), "alice", "patient/*.rs")
    assert body["expires_in"] == timed_app.config["ACCESS_TOKEN_SECONDS"]
    reader = as_bearer(timed_app, body["access_token"])
    clock.advance(body["expires_in"] - 1)
    assert reader.get("/fhir/Patient").status_code == 200
    clock.advance(1)
    assert "expired" in bearer_refusal(reader.get("/fhir/Patient"), 401, "invalid_token")


def test_revoked_backend_token_is_refused_at_once(app, backend):
    token = backend_access(app.test_client(), backend, READ)
    reader = as_bearer(app, token)
    assert reader.get("/fhir/Patient").status_code == 200
    form = {"token": token, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(backend.client_id, backend.key, TOKEN_URL)}
    response = app.test_client().post("/auth/revoke", data=form)
    assert response.status_code == 200 and response.get_json() == {}
    challenge = bearer_refusal(reader.get("/fhir/Patient"), 401, "invalid_token")
    assert "revoked" in challenge


def test_revoking_the_refresh_token_revokes_the_access_token_of_the_grant(app, client):
    build_world(app, client)
    scope = "patient/*.rs offline_access"
    app_client = register_app(app, scope)
    body = tokens(app, app_client, "alice", scope)
    reader = as_bearer(app, body["access_token"])
    assert reader.get("/fhir/Patient").status_code == 200
    assert revoke(app, app_client, body["refresh_token"]).status_code == 200
    assert "revoked" in bearer_refusal(reader.get("/fhir/Patient"), 401, "invalid_token")
    oauth_error(refresh(app, app_client, body["refresh_token"]), 400, "invalid_grant")


def test_a_client_cannot_revoke_another_clients_token(app, client):
    build_world(app, client)
    scope = "patient/*.rs"
    owner, other = register_app(app, scope), register_app(app, scope, name="other")
    body = tokens(app, owner, "alice", scope)
    assert revoke(app, other, body["access_token"]).status_code == 200
    assert as_bearer(app, body["access_token"]).get("/fhir/Patient").status_code == 200


# Token endpoint: client assertions (private_key_jwt) ----------


def test_a_good_assertion_gets_a_backend_token(app, backend):
    response = backend_request(app.test_client(), backend, READ)
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == READ
    assert body["expires_in"] == app.config["BACKEND_TOKEN_SECONDS"]
    assert "refresh_token" not in body and "id_token" not in body
    assert response.headers["Cache-Control"] == "no-store"


def test_an_rs384_assertion_is_accepted(app):
    backend = register_key_backend(app, READ, new_key("RS384"))
    response = backend_request(app.test_client(), backend, READ, alg="RS384")
    assert response.status_code == 200, response.get_json()


def test_wrong_audience_in_the_assertion_is_refused(app, backend):
    for audience in ("https://other.example/auth/token", "http://localhost/fhir", ["https://other.example/t"]):
        response = backend_request(app.test_client(), backend, READ, aud=audience)
        _refused_assertion(app, response, "aud")


def test_alg_none_is_refused(app, backend):
    header = {"alg": "none", "typ": "JWT", "kid": backend.key.kid}
    compact = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(_claims(backend.client_id)))}."
    response = app.test_client().post("/auth/token", data=_assertion_form(compact))
    _refused_assertion(app, response, "alg")


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_hs256_signed_with_the_clients_public_key_is_refused(app, alg):
    """The key-confusion attack: an HMAC keyed with the public key bytes anybody can read."""
    key = new_key(alg)
    backend = register_key_backend(app, READ, key)
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(_claims(backend.client_id)))}"
    for secret in (key.as_pem(private=False), orjson.dumps(key.as_dict(private=False))):
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        response = app.test_client().post("/auth/token", data=_assertion_form(f"{signing_input}.{_b64(signature)}"))
        _refused_assertion(app, response, "alg")


def test_assertion_exp_more_than_five_minutes_ahead_is_refused(timed_app, clock, backend_key):
    backend = register_key_backend(timed_app, READ, backend_key)
    limit = timed_app.config["CLIENT_ASSERTION_MAX_SECONDS"]
    assert limit == 300
    response = backend_request(timed_app.test_client(), backend, READ, exp=clock.timestamp() + limit + 1)
    _refused_assertion(timed_app, response, "more than 300 seconds ahead")
    assert backend_request(timed_app.test_client(), backend, READ, exp=clock.timestamp() + limit).status_code == 200


def test_expired_assertion_is_refused(timed_app, clock, backend_key):
    backend = register_key_backend(timed_app, READ, backend_key)
    for exp in (clock.timestamp(), clock.timestamp() - 60):
        response = backend_request(timed_app.test_client(), backend, READ, exp=exp)
        _refused_assertion(timed_app, response, "expired")


def test_an_assertion_expires_by_the_servers_clock(timed_app, clock, backend_key):
    backend = register_key_backend(timed_app, READ, backend_key)
    form = {"grant_type": "client_credentials", "scope": READ, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(backend.client_id, backend.key, TOKEN_URL, exp=clock.timestamp() + 60)}
    clock.advance(60)
    _refused_assertion(timed_app, timed_app.test_client().post("/auth/token", data=form), "expired")


@pytest.mark.parametrize("claim", ["jti", "exp", "iss", "sub", "aud"])
def test_assertion_without_a_required_claim_is_refused(app, backend, claim):
    response = backend_request(app.test_client(), backend, READ, **{claim: None})
    description = oauth_error(response, 401, "invalid_client")
    assert token_count(app) == 0
    if claim == "jti":
        assert "jti" in description


def test_empty_jti_is_refused(app, backend):
    _refused_assertion(app, backend_request(app.test_client(), backend, READ, jti=""), "jti")


def test_iss_different_from_sub_is_refused(app, backend):
    other = auth_service(app).register_client("other", READ, jwks=public_jwks(new_key()))["client_id"]
    for changes in ({"iss": other}, {"iss": "someone"}):
        response = backend_request(app.test_client(), backend, READ, **changes)
        _refused_assertion(app, response, "iss and sub")


def test_assertion_signed_by_another_key_is_refused(app, backend):
    intruder = new_key()
    compact = assertion(backend.client_id, intruder, TOKEN_URL, header_kid=backend.key.kid)
    response = app.test_client().post("/auth/token", data=_assertion_form(compact))
    _refused_assertion(app, response, "signature")
    compact = assertion(backend.client_id, intruder, TOKEN_URL)
    response = app.test_client().post("/auth/token", data=_assertion_form(compact))
    oauth_error(response, 401, "invalid_client")
    assert token_count(app) == 0


def test_assertion_without_kid_is_refused(app, backend):
    _refused_assertion(app, backend_request(app.test_client(), backend, READ, header_kid=None), "kid")


def test_assertion_with_a_wrong_typ_is_refused(app, backend):
    _refused_assertion(app, backend_request(app.test_client(), backend, READ, header_typ="at+jwt"), "typ")


def test_jku_header_not_matching_an_inline_jwks_client_is_refused(app, backend):
    response = backend_request(app.test_client(), backend, READ, header_jku="https://attacker.example/jwks.json")
    _refused_assertion(app, response, "jku")


def test_jku_header_must_equal_the_registered_jwks_url(app, backend_key):
    registered = "https://vendor.example/.well-known/jwks.json"
    client_id = auth_service(app).register_client("keyed by url", READ, jwks_url=registered)["client_id"]
    fetched = []

    def fetch(url):
        fetched.append(url)
        return public_jwks(backend_key) if url == registered else public_jwks(new_key())

    auth_service(app).jwks.fetch = fetch
    backend = Backend(client_id, backend_key)
    response = backend_request(app.test_client(), backend, READ, header_jku="https://attacker.example/jwks.json")
    _refused_assertion(app, response, "jku")
    assert fetched == []
    response = backend_request(app.test_client(), backend, READ, header_jku=registered)
    assert response.status_code == 200, response.get_json()
    assert fetched == [registered]


def test_replayed_assertion_jti_is_refused(app, backend):
    form = {"grant_type": "client_credentials", "scope": READ, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(backend.client_id, backend.key, TOKEN_URL)}
    assert app.test_client().post("/auth/token", data=form).status_code == 200
    before = token_count(app)
    response = app.test_client().post("/auth/token", data=form)
    assert "replay" in oauth_error(response, 401, "invalid_client")
    assert token_count(app) == before


def test_a_jti_reused_in_a_new_assertion_is_refused(app, backend):
    assert backend_request(app.test_client(), backend, READ, jti="fixed-jti").status_code == 200
    response = backend_request(app.test_client(), backend, READ, jti="fixed-jti")
    assert "replay" in oauth_error(response, 401, "invalid_client")
    assert token_count(app) == 1


def test_assertion_for_an_unknown_client_is_refused(app, backend_key):
    backend = Backend("no-such-client", backend_key)
    response = backend_request(app.test_client(), backend, READ)
    _refused_assertion(app, response, "Unknown client")


def test_client_id_that_contradicts_the_assertion_is_refused(app, backend):
    other = auth_service(app).register_client("other", READ, jwks=public_jwks(new_key()))["client_id"]
    form = {**_assertion_form(assertion(backend.client_id, backend.key, TOKEN_URL)), "client_id": other}
    _refused_assertion(app, app.test_client().post("/auth/token", data=form), "client_id")


def test_wrong_assertion_type_is_refused(app, backend):
    form = {**_assertion_form(assertion(backend.client_id, backend.key, TOKEN_URL)),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}
    _refused_assertion(app, app.test_client().post("/auth/token", data=form), "client_assertion_type")


def test_garbage_assertion_is_refused(app):
    for garbage in ("not-a-jwt", "a.b.c", ""):
        response = app.test_client().post("/auth/token", data=_assertion_form(garbage))
        oauth_error(response, 401, "invalid_client")
    assert token_count(app) == 0


def test_backend_gets_only_registered_scopes(app, backend):
    response = backend_request(app.test_client(), backend, "system/Patient.rs system/Observation.rs")
    assert response.get_json()["scope"] == "system/Patient.rs"
    response = backend_request(app.test_client(), backend, "system/Observation.rs ingest:admin")
    oauth_error(response, 400, "invalid_scope")
    assert token_count(app) == 1


def test_backend_cannot_use_the_authorization_code_grant(app, backend):
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://localhost:8765/callback",
            "code_verifier": "v" * 43, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(backend.client_id, backend.key, TOKEN_URL)}
    oauth_error(app.test_client().post("/auth/token", data=form), 400, "unauthorized_client")


def test_unsupported_grant_type(app, backend):
    form = {**_assertion_form(assertion(backend.client_id, backend.key, TOKEN_URL)), "grant_type": "password"}
    oauth_error(app.test_client().post("/auth/token", data=form), 400, "unsupported_grant_type")


def test_token_endpoint_refuses_json_and_repeated_parameters(app, backend):
    form = _assertion_form(assertion(backend.client_id, backend.key, TOKEN_URL))
    oauth_error(app.test_client().post("/auth/token", json=form), 400, "invalid_request")
    repeated = MultiDict([*form.items(), ("scope", "system/*.cruds")])
    response = app.test_client().post("/auth/token", data=repeated)
    assert "scope" in oauth_error(response, 400, "invalid_request")
    assert token_count(app) == 0


# Token endpoint: app clients ----------


def test_unknown_client_at_the_token_endpoint_is_401_invalid_client(app):
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://localhost:8765/callback",
            "code_verifier": "v" * 43}
    response = app.test_client().post("/auth/token", data={**form, "client_id": "no-such-client"})
    assert "Unknown client" in oauth_error(response, 401, "invalid_client")
    response = app.test_client().post("/auth/token", data=form, headers={
        "Authorization": "Basic " + base64.b64encode(b"no-such-client:secret").decode()})
    oauth_error(response, 401, "invalid_client")
    oauth_error(app.test_client().post("/auth/token", data=form), 401, "invalid_client")


def test_confidential_client_with_a_wrong_secret_is_refused(app, client):
    build_world(app, client)
    confidential = register_app(app, "patient/*.rs", public=False)
    code, flow = _code(app, confidential)
    before = token_count(app)
    wrong = AppClient(confidential.client_id, confidential.secret + "x", confidential.redirect_uris)
    response = exchange(app, wrong, code, flow.verifier)
    assert "authentication failed" in oauth_error(response, 401, "invalid_client")
    assert token_count(app) == before
    assert exchange(app, confidential, code, flow.verifier).status_code == 200, "the code was not burnt"


def test_confidential_client_must_send_its_secret(app, client):
    build_world(app, client)
    confidential = register_app(app, "patient/*.rs", public=False)
    code, flow = _code(app, confidential)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": flow.verifier,
            "redirect_uri": confidential.redirect_uri, "client_id": confidential.client_id}
    before = token_count(app)
    response = app.test_client().post("/auth/token", data=form)
    assert "must authenticate" in oauth_error(response, 401, "invalid_client")
    assert token_count(app) == before


def test_confidential_client_may_send_its_secret_in_the_form(app, client):
    build_world(app, client)
    confidential = register_app(app, "patient/*.rs", public=False)
    code, flow = _code(app, confidential)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": flow.verifier,
            "redirect_uri": confidential.redirect_uri, "client_id": confidential.client_id,
            "client_secret": confidential.secret}
    assert app.test_client().post("/auth/token", data=form).status_code == 200


def test_public_client_cannot_use_client_credentials(app):
    public = register_app(app, "patient/*.rs")
    response = token_request(app, public, {"grant_type": "client_credentials", "scope": "patient/*.rs"})
    oauth_error(response, 400, "unauthorized_client")
    assert token_count(app) == 0


def test_public_client_with_a_secret_is_refused(app):
    public = register_app(app, "patient/*.rs")
    form = {"grant_type": "client_credentials", "client_id": public.client_id, "client_secret": "guess"}
    oauth_error(app.test_client().post("/auth/token", data=form), 401, "invalid_client")


def test_confidential_app_cannot_use_client_credentials(app):
    confidential = register_app(app, "patient/*.rs", public=False)
    response = token_request(app, confidential, {"grant_type": "client_credentials", "scope": "patient/*.rs"})
    oauth_error(response, 400, "unauthorized_client")
    assert token_count(app) == 0


def _code(app, app_client, username="alice", scope="patient/*.rs"):
    return authorization_code(app, app_client, username, scope)


# Introspection ----------


def test_introspection_of_a_live_revoked_and_foreign_token(app, client):
    build_world(app, client)
    scope = "patient/*.rs openid fhirUser"
    owner = register_app(app, scope, public=False)
    stranger = register_app(app, scope, public=False, name="stranger")
    body = tokens(app, owner, "alice", scope)
    response = introspect(app, owner, body["access_token"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    found = response.get_json()
    assert found["active"] is True
    assert found["scope"] == scope and found["client_id"] == owner.client_id
    assert found["username"] == "alice" and found["sub"] == "alice" and found["patient"] == body["patient"]
    assert found["token_type"] == "Bearer" and found["iss"] == "http://localhost/fhir"
    assert found["exp"] - found["iat"] == app.config["ACCESS_TOKEN_SECONDS"]
    assert introspect(app, stranger, body["access_token"]).get_json() == {"active": False}
    assert revoke(app, owner, body["access_token"]).status_code == 200
    assert introspect(app, owner, body["access_token"]).get_json() == {"active": False}


def test_introspection_of_unknown_and_expired_tokens(timed_app, clock, backend_key):
    backend = register_key_backend(timed_app, "system/Patient.rs introspect", backend_key)
    token = backend_access(timed_app.test_client(), backend, "system/Patient.rs")

    def state(value):
        signed = assertion(backend.client_id, backend.key, TOKEN_URL, exp=clock.timestamp() + 60)
        form = {"token": value, "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}
        response = timed_app.test_client().post("/auth/introspect", data=form)
        assert response.status_code == 200
        return response.get_json()

    assert state(token)["active"] is True
    assert state("no-such-token") == {"active": False}
    clock.advance(timed_app.config["BACKEND_TOKEN_SECONDS"])
    assert state(token) == {"active": False}


def test_an_introspect_client_sees_other_clients_tokens(app, client):
    build_world(app, client)
    owner = register_app(app, "patient/*.rs")
    body = tokens(app, owner, "alice", "patient/*.rs")
    backend = register_key_backend(app, "introspect")
    form = {"token": body["access_token"], "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(backend.client_id, backend.key, TOKEN_URL)}
    found = app.test_client().post("/auth/introspect", data=form).get_json()
    assert found["active"] is True and found["client_id"] == owner.client_id


def test_public_client_cannot_introspect(app, client):
    build_world(app, client)
    public = register_app(app, "patient/*.rs")
    body = tokens(app, public, "alice", "patient/*.rs")
    oauth_error(introspect(app, public, body["access_token"]), 401, "invalid_client")


def test_introspection_needs_client_authentication(app, client):
    response = app.test_client().post("/auth/introspect", data={"token": "x"})
    oauth_error(response, 401, "invalid_client")


def test_revocation_needs_client_authentication_and_a_token(app, client):
    build_world(app, client)
    owner = register_app(app, "patient/*.rs", public=False)
    body = tokens(app, owner, "alice", "patient/*.rs")
    response = app.test_client().post("/auth/revoke", data={"token": body["access_token"]})
    oauth_error(response, 401, "invalid_client")
    assert as_bearer(app, body["access_token"]).get("/fhir/Patient").status_code == 200
    fields, headers = owner.credentials()
    oauth_error(app.test_client().post("/auth/revoke", data=fields, headers=headers), 400, "invalid_request")



@pytest.mark.parametrize("asked", ["system/Patient.rs?category", "system/Patient.sr", "system/Patient.rs?=x"])
def test_a_malformed_scope_in_a_token_request_is_invalid_scope(app, backend, asked):
    response = backend_request(app.test_client(), backend, asked)
    oauth_error(response, 400, "invalid_scope")
    assert token_count(app) == 0


def test_a_token_in_the_query_string_is_not_accepted(app, backend):
    token = backend_access(app.test_client(), backend, READ)
    response = app.test_client().get("/fhir/Patient", query_string={"access_token": token})
    bearer_refusal(response, 401)
