"""The SMART authorization code flow, driven like a browser: authorize, login, consent, code, token.

Refusals are checked exactly (where the browser is sent, the OAuth error, the page status) and
that nothing was issued or stored when a step was refused.
"""

import re
from urllib.parse import urlsplit

import orjson
import pytest
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from tests.support.oauth import system_client

from .auth_helpers import (
    OTHER_REDIRECT_URI,
    PASSWORD,
    REDIRECT_URI,
    AppClient,
    Clock,
    as_bearer,
    authorization_code,
    authorize,
    authorize_params,
    bearer_refusal,
    build_world,
    code_of,
    consent_page,
    decide,
    exchange,
    login,
    oauth_error,
    pkce_pair,
    post_login,
    redirect_params,
    refresh,
    register_app,
    register_key_backend,
    start,
    stored_count,
    token_count,
    token_request,
    tokens,
)
from .helpers import BASE, app_with

PATIENT_SCOPE = "patient/*.rs"


@pytest.fixture()
def world(app, client):
    return build_world(app, client)


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def timed_app(mongo_server, clock):
    """An app whose auth service tells time by `clock` (login throttling at 3 free failures)."""
    with app_with(mongo_server, CLOCK=clock, LOGIN_FREE_FAILURES=3) as application:
        yield application


@pytest.fixture()
def timed_world(timed_app, backend_key):
    return build_world(timed_app, system_client(timed_app, backend_key))


def _radio_patients(page):
    return re.findall(r'<input type="radio" name="patient" value="([^"]+)"', page.get_data(as_text=True))


def _shown_error(response, status, error):
    """The HTML error page of the authorization server (no redirect anywhere)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert f"<code>{error}</code>" in response.get_data(as_text=True)


def _app_error(flow, response, error):
    """The error sent back to the app's redirect URI, with the state; returns the description."""
    params = redirect_params(response, flow.client.redirect_uri)
    assert params["error"] == error and params["state"] == flow.state
    assert "code" not in params
    return params.get("error_description", "")


# The happy path ----------


def test_patient_standalone_launch_gets_a_token_for_their_own_compartment(app, world):
    scope = "launch/patient patient/*.rs openid fhirUser offline_access"
    app_client = register_app(app, scope)
    code, flow = authorization_code(app, app_client, "alice", scope)
    response = exchange(app, app_client, code, flow.verifier)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == scope and body["patient"] == world.alice
    assert body["expires_in"] == app.config["ACCESS_TOKEN_SECONDS"]
    assert body["refresh_token"] and body["id_token"]
    reader = as_bearer(app, body["access_token"])
    assert reader.get(f"/fhir/Patient/{world.alice}").status_code == 200
    assert reader.get(f"/fhir/Patient/{world.bob}").status_code == 403


def test_the_binding_cookie_is_http_only_and_limited_to_auth(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, PATIENT_SCOPE)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("fhir_iomt_authz=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/auth" in cookie
    assert urlsplit(response.headers["Location"]).path == "/auth/login"


def test_without_refresh_scope_there_is_no_refresh_token(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    body = tokens(app, app_client, "alice", PATIENT_SCOPE)
    assert "refresh_token" not in body and "id_token" not in body


# Authorization request refusals ----------


def test_redirect_uri_mismatch_at_authorize_is_a_400_page_without_redirect(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    for wrong in ("http://localhost:8765/evil", f"{REDIRECT_URI}?extra=1", f"{REDIRECT_URI}/", None):
        flow, response = authorize(app, app_client, PATIENT_SCOPE, redirect_uri=wrong)
        _shown_error(response, 400, "invalid_request")
        assert "Set-Cookie" not in response.headers
    assert stored_count(app, "auth_requests") == 0


def test_unknown_client_at_authorize_is_a_400_page(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, PATIENT_SCOPE, client_id="no-such-client")
    _shown_error(response, 400, "unauthorized_client")
    assert stored_count(app, "auth_requests") == 0


def test_a_backend_client_cannot_start_an_authorization(app, world, backend_key):
    backend = register_key_backend(app, "system/*.rs", backend_key)
    flow, response = authorize(app, AppClient(backend.client_id, None, (REDIRECT_URI,)), PATIENT_SCOPE)
    _shown_error(response, 400, "unauthorized_client")


def test_pkce_plain_is_refused_at_authorize(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, PATIENT_SCOPE, code_challenge_method="plain",
                               code_challenge="a" * 43)
    assert "plain" in _app_error(flow, response, "invalid_request")
    assert "Set-Cookie" not in response.headers
    assert stored_count(app, "auth_requests") == 0


@pytest.mark.parametrize("changes", [
    {"code_challenge": None},
    {"code_challenge_method": None},
    {"code_challenge": None, "code_challenge_method": None},
    {"code_challenge": "too-short"},
    {"code_challenge": "a" * 42 + "="},
])
def test_missing_or_malformed_code_challenge_is_refused(app, world, changes):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, PATIENT_SCOPE, **changes)
    _app_error(flow, response, "invalid_request")
    assert stored_count(app, "auth_requests") == 0


@pytest.mark.parametrize("aud", [None, "https://other.example/fhir", "http://localhost/"])
def test_aud_must_be_this_fhir_server(app, world, aud):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, PATIENT_SCOPE, aud=aud)
    assert "aud" in _app_error(flow, response, "invalid_request")
    assert stored_count(app, "auth_requests") == 0


def test_response_type_must_be_code(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, PATIENT_SCOPE, response_type="token")
    _app_error(flow, response, "unsupported_response_type")


def test_scope_is_required(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    flow, response = authorize(app, app_client, "")
    _app_error(flow, response, "invalid_scope")


def test_authorize_by_post_works_like_get(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    _, challenge = pkce_pair()
    response = app.test_client().post("/auth/authorize", data=authorize_params(app_client, PATIENT_SCOPE,
                                                                               challenge, "s1"))
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/auth/login"


# Login ----------


def test_wrong_password_is_a_403_login_page(app, world):
    flow = start(app, register_app(app, PATIENT_SCOPE), PATIENT_SCOPE)
    for username, password in (("alice", "not the password"), ("nobody", PASSWORD), ("alice", "")):
        response = post_login(flow, username, password)
        assert response.status_code == 403 and "Location" not in response.headers
        assert "Unknown username or wrong password" in response.get_data(as_text=True)
    consent = consent_page(flow)
    assert consent.status_code == 302 and urlsplit(consent.headers["Location"]).path == "/auth/login"


def test_login_failures_are_throttled_then_allowed_after_the_wait(timed_app, timed_world, clock):
    app_client = register_app(timed_app, PATIENT_SCOPE)
    flow = start(timed_app, app_client, PATIENT_SCOPE)
    free = timed_app.config["LOGIN_FREE_FAILURES"]
    for _ in range(free):
        response = post_login(flow, "alice", "not the password")
        assert response.status_code == 403 and "Retry-After" not in response.headers
    throttled = post_login(flow, "alice", PASSWORD)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert "Location" not in throttled.headers
    assert consent_page(flow).status_code == 302, "a throttled correct password must not sign in"
    assert post_login(flow, "alice", "not the password").status_code == 429
    # Other users are not slowed down by Alice's failures.
    other = start(timed_app, app_client, PATIENT_SCOPE)
    assert post_login(other, "bob").status_code == 302
    clock.advance(1)
    # The next failure doubles the wait.
    assert post_login(flow, "alice", "not the password").status_code == 403
    throttled = post_login(flow, "alice", PASSWORD)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    clock.advance(1)
    assert post_login(flow, "alice", PASSWORD).status_code == 429
    clock.advance(1)
    response = post_login(flow, "alice", PASSWORD)
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/auth/consent"
    # A success forgets the failures.
    again = start(timed_app, app_client, PATIENT_SCOPE)
    assert post_login(again, "alice", "not the password").status_code == 403
    assert post_login(again, "alice", PASSWORD).status_code == 302


def test_login_page_of_another_browser_is_refused(app, world):
    flow = start(app, register_app(app, PATIENT_SCOPE), PATIENT_SCOPE)
    stranger = app.test_client()
    _shown_error(stranger.get("/auth/login", query_string={"request": flow.request_id}), 400, "invalid_request")
    response = stranger.post("/auth/login", data={"request": flow.request_id, "username": "alice",
                                                  "password": PASSWORD})
    _shown_error(response, 400, "invalid_request")
    consent = consent_page(flow)
    assert consent.status_code == 302 and urlsplit(consent.headers["Location"]).path == "/auth/login"


def test_unknown_request_id_is_refused(app, world):
    flow = start(app, register_app(app, PATIENT_SCOPE), PATIENT_SCOPE)
    flow.request_id = "no-such-request"
    _shown_error(flow.browser.get("/auth/login", query_string={"request": "x"}), 400, "invalid_request")
    _shown_error(post_login(flow, "alice"), 400, "invalid_request")


# Consent ----------


def test_deny_sends_access_denied_and_no_code(app, world):
    flow = start(app, register_app(app, PATIENT_SCOPE), PATIENT_SCOPE)
    assert login(flow, "alice").status_code == 302
    _app_error(flow, decide(flow, "deny"), "access_denied")
    assert stored_count(app, "auth_codes") == 0


def test_consent_from_another_browser_is_refused(app, world):
    flow = start(app, register_app(app, PATIENT_SCOPE), PATIENT_SCOPE)
    assert login(flow, "alice").status_code == 302
    stranger = app.test_client()
    response = stranger.post("/auth/consent", data={"request": flow.request_id, "decision": "allow"})
    _shown_error(response, 400, "invalid_request")
    assert stored_count(app, "auth_codes") == 0
    assert code_of(flow, decide(flow)), "the real browser can still answer"


def test_consent_cannot_be_answered_twice(app, world):
    flow = start(app, register_app(app, PATIENT_SCOPE), PATIENT_SCOPE)
    login(flow, "alice")
    code_of(flow, decide(flow))
    _shown_error(decide(flow), 400, "invalid_request")
    assert stored_count(app, "auth_codes") == 1


def test_a_patient_asking_for_user_scopes_gets_no_user_scopes(app, world):
    scope = "user/*.read patient/*.read"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope)
    login(flow, "alice")
    page = consent_page(flow).get_data(as_text=True)
    assert "<code>patient/*.read</code>" in page and "user/" not in page
    decide(flow)
    body = exchange(app, app_client, code_of(flow, flow.responses[-1]), flow.verifier).get_json()
    assert body["scope"] == "patient/*.read" and body["patient"] == world.alice
    reader = as_bearer(app, body["access_token"])
    assert reader.get(f"/fhir/Observation/{world.bob_obs}").status_code == 403


def test_a_patient_asking_only_for_user_scopes_gets_nothing(app, world):
    scope = "user/*.cruds"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope)
    login(flow, "alice")
    assert "None of the permissions" in consent_page(flow).get_data(as_text=True)
    body = tokens(app, app_client, "alice", scope)
    assert body["scope"] == ""
    reader = as_bearer(app, body["access_token"])
    for path in (f"/fhir/Patient/{world.bob}", f"/fhir/Patient/{world.alice}", "/fhir/Observation"):
        bearer_refusal(reader.get(path), 403, "insufficient_scope")


def test_a_patient_gets_read_and_search_only(app, world):
    scope = "patient/*.cruds"
    body = tokens(app, register_app(app, scope), "alice", scope)
    assert body["scope"] == "patient/*.rs"


def test_scopes_are_limited_to_what_the_client_registered(app, world):
    app_client = register_app(app, "patient/Observation.rs")
    body = tokens(app, app_client, "alice", "patient/*.rs patient/Observation.rs openid offline_access")
    assert body["scope"] == "patient/Observation.rs"
    assert "refresh_token" not in body and "id_token" not in body


# Clinician: standalone launch with a patient picker, EHR launch ----------


def test_clinician_standalone_launch_must_pick_a_patient(app, world):
    scope = "launch/patient patient/*.rs openid fhirUser"
    app_client = register_app(app, scope, public=False)
    flow = start(app, app_client, scope)
    assert login(flow, "dr.who").status_code == 302
    page = consent_page(flow)
    assert page.status_code == 200
    assert sorted(_radio_patients(page)) == sorted([world.alice, world.bob])
    assert _radio_patients(consent_page(flow, q="Alicewright")) == [world.alice]
    for picked in (None, "no-such-patient", "../x"):
        response = decide(flow, "allow", picked)
        assert response.status_code == 400 and "Location" not in response.headers
        assert "Pick an existing patient" in response.get_data(as_text=True)
    assert stored_count(app, "auth_codes") == 0
    code = code_of(flow, decide(flow, "allow", world.bob))
    body = exchange(app, app_client, code, flow.verifier).get_json()
    assert body["patient"] == world.bob
    assert body["scope"] == scope
    reader = as_bearer(app, body["access_token"])
    assert reader.get(f"/fhir/Observation/{world.bob_obs}").status_code == 200
    assert reader.get(f"/fhir/Observation/{world.alice_obs}").status_code == 403


def test_clinician_with_user_scopes_only_is_not_asked_for_a_patient(app, world):
    scope = "user/*.rs"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope)
    login(flow, "dr.who")
    assert _radio_patients(consent_page(flow)) == []
    body = exchange(app, app_client, code_of(flow, decide(flow)), flow.verifier).get_json()
    assert "patient" not in body and body["scope"] == scope
    reader = as_bearer(app, body["access_token"])
    assert reader.get(f"/fhir/Observation/{world.bob_obs}").status_code == 200


def _launch(client, patient_id):
    response = client.post("/auth/launch", json={"patient": patient_id})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["patient"] == patient_id and body["expires_in"] > 0
    return body["launch"]


def test_ehr_launch_puts_the_launch_patient_in_context(app, world, backend_key):
    launch = _launch(system_client(app, backend_key, "launch:create"), world.alice)
    scope = "launch patient/*.rs openid fhirUser"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope, launch=launch)
    login(flow, "dr.who")
    page = consent_page(flow)
    assert _radio_patients(page) == [] and world.alice in page.get_data(as_text=True)
    body = exchange(app, app_client, code_of(flow, decide(flow)), flow.verifier).get_json()
    assert body["patient"] == world.alice and "launch" in body["scope"].split()
    reader = as_bearer(app, body["access_token"])
    assert reader.get(f"/fhir/Patient/{world.alice}").status_code == 200
    assert reader.get(f"/fhir/Patient/{world.bob}").status_code == 403


def test_ehr_launch_with_an_unknown_or_missing_launch_is_refused(app, world, client):
    _launch(client, world.alice)
    app_client = register_app(app, "launch patient/*.rs")
    for launch in ("no-such-launch", None):
        flow, response = authorize(app, app_client, "launch patient/*.rs", launch=launch)
        assert "launch" in _app_error(flow, response, "invalid_request")
    assert stored_count(app, "auth_requests") == 0


def test_an_expired_launch_is_refused(timed_app, timed_world, clock, backend_key):
    launcher = system_client(timed_app, backend_key, "launch:create")
    launch = _launch(launcher, timed_world.alice)
    clock.advance(timed_app.config["LAUNCH_SECONDS"])
    app_client = register_app(timed_app, "launch patient/*.rs")
    flow, response = authorize(timed_app, app_client, "launch patient/*.rs", launch=launch)
    _app_error(flow, response, "invalid_request")


def test_a_patient_cannot_use_a_launch_for_another_patient(app, world, client):
    launch = _launch(client, world.bob)
    scope = "launch patient/*.rs"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope, launch=launch)
    login(flow, "alice")
    _app_error(flow, consent_page(flow), "access_denied")
    assert stored_count(app, "auth_codes") == 0


def test_creating_a_launch_needs_launch_create(app, world, backend_key, anonymous):
    reader = system_client(app, backend_key, "system/*.rs")
    response = reader.post("/auth/launch", json={"patient": world.alice})
    assert "launch:create" in bearer_refusal(response, 403, "insufficient_scope")
    bearer_refusal(anonymous.post("/auth/launch", json={"patient": world.alice}), 401)
    bearer_refusal(as_bearer(app, "nope").post("/auth/launch", json={"patient": world.alice}), 401,
                   "invalid_token")
    assert stored_count(app, "auth_launches") == 0


def test_a_launch_needs_an_existing_patient(app, world, client):
    for body in ({"patient": "no-such-patient"}, {}, {"patient": 5}):
        response = client.post("/auth/launch", json=body)
        assert response.status_code == 400 and response.get_json()["issue"][0]["code"] == "invalid"
    assert stored_count(app, "auth_launches") == 0


# The token endpoint: authorization codes ----------


def test_pkce_verifier_mismatch_is_refused(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    code, flow = authorization_code(app, app_client, "alice", PATIENT_SCOPE)
    before = token_count(app)
    response = exchange(app, app_client, code, pkce_pair()[0])
    assert "PKCE" in oauth_error(response, 400, "invalid_grant")
    assert token_count(app) == before


@pytest.mark.parametrize("verifier", ["challenge", None, "short"])
def test_pkce_verifier_missing_or_not_the_challenges_is_refused(app, world, verifier):
    app_client = register_app(app, PATIENT_SCOPE)
    code, flow = authorization_code(app, app_client, "alice", PATIENT_SCOPE)
    sent = {"challenge": flow.challenge, "short": flow.verifier[:42]}.get(verifier)
    assert "PKCE" in oauth_error(exchange(app, app_client, code, sent), 400, "invalid_grant")
    assert token_count(app) == 1


def test_redirect_uri_mismatch_at_the_token_endpoint_is_refused(app, world):
    app_client = register_app(app, PATIENT_SCOPE, redirect_uris=(REDIRECT_URI, OTHER_REDIRECT_URI))
    code, flow = authorization_code(app, app_client, "alice", PATIENT_SCOPE)
    before = token_count(app)
    response = exchange(app, app_client, code, flow.verifier, redirect_uri=OTHER_REDIRECT_URI)
    assert "redirect_uri" in oauth_error(response, 400, "invalid_grant")
    assert token_count(app) == before


def test_missing_redirect_uri_at_the_token_endpoint_is_refused(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    code, flow = authorization_code(app, app_client, "alice", PATIENT_SCOPE)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": flow.verifier}
    assert "redirect_uri" in oauth_error(token_request(app, app_client, form), 400, "invalid_grant")


def test_authorization_code_used_twice_is_refused_and_its_tokens_revoked(app, world):
    scope = "patient/*.rs offline_access"
    app_client = register_app(app, scope)
    code, flow = authorization_code(app, app_client, "alice", scope)
    first = exchange(app, app_client, code, flow.verifier)
    assert first.status_code == 200
    reader = as_bearer(app, first.get_json()["access_token"])
    assert reader.get(f"/fhir/Patient/{world.alice}").status_code == 200
    before = token_count(app)
    second = exchange(app, app_client, code, flow.verifier)
    assert "used before" in oauth_error(second, 400, "invalid_grant")
    assert token_count(app) == before
    assert "revoked" in bearer_refusal(reader.get(f"/fhir/Patient/{world.alice}"), 401, "invalid_token")
    oauth_error(refresh(app, app_client, first.get_json()["refresh_token"]), 400, "invalid_grant")


def test_unknown_code_is_refused(app, world):
    app_client = register_app(app, PATIENT_SCOPE)
    _, flow = authorization_code(app, app_client, "alice", PATIENT_SCOPE)
    assert "Unknown" in oauth_error(exchange(app, app_client, "no-such-code", flow.verifier), 400, "invalid_grant")


def test_code_of_another_client_is_refused(app, world):
    owner = register_app(app, PATIENT_SCOPE)
    thief = register_app(app, PATIENT_SCOPE, name="thief")
    code, flow = authorization_code(app, owner, "alice", PATIENT_SCOPE)
    response = exchange(app, thief, code, flow.verifier)
    assert "another client" in oauth_error(response, 400, "invalid_grant")
    assert token_count(app) == 1


def test_expired_code_is_refused(timed_app, timed_world, clock):
    app_client = register_app(timed_app, PATIENT_SCOPE)
    code, flow = authorization_code(timed_app, app_client, "alice", PATIENT_SCOPE)
    clock.advance(timed_app.config["AUTH_CODE_SECONDS"])
    before = token_count(timed_app)
    assert "expired" in oauth_error(exchange(timed_app, app_client, code, flow.verifier), 400, "invalid_grant")
    assert token_count(timed_app) == before


def test_an_expired_sign_in_cannot_continue(timed_app, timed_world, clock):
    flow = start(timed_app, register_app(timed_app, PATIENT_SCOPE), PATIENT_SCOPE)
    clock.advance(timed_app.config["AUTH_REQUEST_SECONDS"])
    _shown_error(post_login(flow, "alice"), 400, "invalid_request")


# Refresh tokens ----------


def test_refresh_token_rotation_and_reuse_detection(app, world):
    scope = "patient/*.rs offline_access"
    app_client = register_app(app, scope)
    first = tokens(app, app_client, "alice", scope)
    second = refresh(app, app_client, first["refresh_token"])
    assert second.status_code == 200, second.get_json()
    second = second.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == scope and second["patient"] == world.alice
    third = refresh(app, app_client, second["refresh_token"])
    assert third.status_code == 200, "the new refresh token works"
    third = third.get_json()
    assert as_bearer(app, third["access_token"]).get(f"/fhir/Patient/{world.alice}").status_code == 200
    # The old refresh token is refused, and its reuse revokes everything of the grant.
    reused = refresh(app, app_client, first["refresh_token"])
    assert "used before" in oauth_error(reused, 400, "invalid_grant")
    oauth_error(refresh(app, app_client, third["refresh_token"]), 400, "invalid_grant")
    for body in (first, second, third):
        reader = as_bearer(app, body["access_token"])
        assert "revoked" in bearer_refusal(reader.get(f"/fhir/Patient/{world.alice}"), 401, "invalid_token")


def test_refresh_may_narrow_but_not_widen_the_scope(app, world):
    scope = "patient/Patient.rs patient/Observation.rs offline_access"
    app_client = register_app(app, "patient/*.rs offline_access")
    first = tokens(app, app_client, "alice", scope)
    widened = refresh(app, app_client, first["refresh_token"], scope="patient/*.rs offline_access")
    oauth_error(widened, 400, "invalid_scope")
    # A refused request leaves the refresh token as it was: the app can retry without losing the grant.
    narrowed = refresh(app, app_client, first["refresh_token"], scope="patient/Patient.rs offline_access")
    assert narrowed.status_code == 200, narrowed.get_json()
    assert narrowed.get_json()["scope"] == "patient/Patient.rs offline_access"
    assert as_bearer(app, first["access_token"]).get(f"/fhir/Patient/{world.alice}").status_code == 200


def test_an_old_refresh_token_with_a_wider_scope_still_revokes_the_grant(app, world):
    scope = "patient/Patient.rs offline_access"
    app_client = register_app(app, "patient/*.rs offline_access")
    first = tokens(app, app_client, "alice", scope)
    second = refresh(app, app_client, first["refresh_token"]).get_json()
    reused = refresh(app, app_client, first["refresh_token"], scope="patient/*.rs offline_access")
    assert "used before" in oauth_error(reused, 400, "invalid_grant")
    oauth_error(refresh(app, app_client, second["refresh_token"]), 400, "invalid_grant")
    bearer_refusal(as_bearer(app, second["access_token"]).get(f"/fhir/Patient/{world.alice}"), 401, "invalid_token")


def test_refresh_narrowing(app, world):
    scope = "patient/Patient.rs patient/Observation.rs offline_access"
    app_client = register_app(app, scope)
    first = tokens(app, app_client, "alice", scope)
    narrowed = refresh(app, app_client, first["refresh_token"], scope="patient/Patient.rs offline_access")
    assert narrowed.get_json()["scope"] == "patient/Patient.rs offline_access"
    reader = as_bearer(app, narrowed.get_json()["access_token"])
    assert reader.get(f"/fhir/Patient/{world.alice}").status_code == 200
    bearer_refusal(reader.get(f"/fhir/Observation/{world.alice_obs}"), 403, "insufficient_scope")


def test_refresh_token_of_another_client_is_refused(app, world):
    scope = "patient/*.rs offline_access"
    owner, thief = register_app(app, scope), register_app(app, scope, name="thief")
    first = tokens(app, owner, "alice", scope)
    before = token_count(app)
    oauth_error(refresh(app, thief, first["refresh_token"]), 400, "invalid_grant")
    assert token_count(app) == before


def test_expired_refresh_token_is_refused(timed_app, timed_world, clock):
    scope = "patient/*.rs offline_access"
    app_client = register_app(timed_app, scope)
    first = tokens(timed_app, app_client, "alice", scope)
    clock.advance(timed_app.config["REFRESH_TOKEN_SECONDS"])
    assert "expired" in oauth_error(refresh(timed_app, app_client, first["refresh_token"]), 400, "invalid_grant")


# id_token ----------


def test_id_token_is_signed_and_carries_the_user(app, world, anonymous):
    scope = "openid fhirUser profile patient/*.rs"
    app_client = register_app(app, scope)
    body = tokens(app, app_client, "alice", scope, nonce="nonce-123")
    configuration = anonymous.get("/fhir/.well-known/openid-configuration").get_json()
    assert configuration["issuer"] == BASE and configuration["jwks_uri"] == "http://localhost/auth/jwks"
    jwks = anonymous.get("/auth/jwks").get_json()
    assert all("d" not in key for key in jwks["keys"])
    token = jwt.decode(body["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header["kid"] == jwks["keys"][0]["kid"]
    claims = token.claims
    JWTClaimsRegistry(iss={"essential": True, "value": BASE}, aud={"essential": True, "value": app_client.client_id},
                      sub={"essential": True, "value": "alice"}, nonce={"essential": True, "value": "nonce-123"},
                      exp={"essential": True}).validate(claims)
    assert claims["fhirUser"] == f"{BASE}/Patient/{world.alice}"
    assert claims["preferred_username"] == "alice"
    assert claims["exp"] - claims["iat"] == app.config["ACCESS_TOKEN_SECONDS"]
    assert claims["auth_time"] <= claims["iat"]


def _id_claims(id_token):
    return orjson.loads(jws.extract_compact(id_token.encode()).payload)


def test_id_token_signed_by_another_key_does_not_verify(app, world, anonymous):
    scope = "openid patient/*.rs"
    body = tokens(app, register_app(app, scope), "alice", scope)
    kid = jws.extract_compact(body["id_token"].encode()).protected["kid"]
    forged = jwt.encode({"alg": "RS256", "kid": kid}, {**_id_claims(body["id_token"]), "sub": "bob"},
                        RSAKey.generate_key(2048), algorithms=["RS256"])
    keys = KeySet.import_key_set(anonymous.get("/auth/jwks").get_json())
    assert jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims["sub"] == "alice"
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, keys, algorithms=["RS256"])


def test_id_token_fhir_user_needs_the_scope_and_never_names_the_patient_for_a_clinician(app, world):
    scope = "openid fhirUser patient/*.rs"
    app_client = register_app(app, "openid fhirUser patient/*.rs user/*.rs")
    claims = _id_claims(tokens(app, app_client, "alice", "openid patient/*.rs")["id_token"])
    assert claims["sub"] == "alice" and "fhirUser" not in claims and "nonce" not in claims
    claims = _id_claims(tokens(app, app_client, "dr.who", scope, patient=world.alice)["id_token"])
    # The clinician is not the patient in context: fhirUser (if the clinician has one) never names a Patient.
    assert claims["sub"] == "dr.who" and "/Patient/" not in claims.get("fhirUser", "")


def test_a_malformed_scope_in_an_authorization_is_dropped_at_consent(app, world):
    scope = "patient/Observation.rs?category patient/Patient.rs"
    app_client = register_app(app, "patient/*.rs")
    flow = start(app, app_client, scope)
    login(flow, "alice")
    page = consent_page(flow)
    assert page.status_code == 200
    assert "<code>patient/Patient.rs</code>" in page.get_data(as_text=True)
    assert "category" not in page.get_data(as_text=True)
    body = exchange(app, app_client, code_of(flow, decide(flow)), flow.verifier).get_json()
    assert body["scope"] == "patient/Patient.rs"


def test_a_patient_cannot_pick_another_patient_at_consent(app, world):
    scope = "launch/patient patient/*.rs"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope)
    login(flow, "alice")
    assert _radio_patients(consent_page(flow)) == []
    body = exchange(app, app_client, code_of(flow, decide(flow, "allow", world.bob)), flow.verifier).get_json()
    assert body["patient"] == world.alice
    bearer_refusal(as_bearer(app, body["access_token"]).get(f"/fhir/Patient/{world.bob}"), 403, "insufficient_scope")


def test_a_clinician_cannot_change_the_patient_of_an_ehr_launch(app, world, backend_key):
    launch = _launch(system_client(app, backend_key, "launch:create"), world.alice)
    scope = "launch patient/*.rs"
    app_client = register_app(app, scope)
    flow = start(app, app_client, scope, launch=launch)
    login(flow, "dr.who")
    body = exchange(app, app_client, code_of(flow, decide(flow, "allow", world.bob)), flow.verifier).get_json()
    assert body["patient"] == world.alice
