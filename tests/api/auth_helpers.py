"""SMART on FHIR flows driven like a browser and an app, with the Flask test client.

The authorization code flow: GET /auth/authorize -> 302 /auth/login (binding cookie) -> POST the
login form -> 302 /auth/consent -> POST the consent form -> 302 to the app's redirect URI with a
code -> POST /auth/token. Every step is a helper here, so a test can stop at any of them and
send something wrong instead.
"""

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.oauth import new_key, register_backend, token_form

from .helpers import BASE, FHIR_JSON, create, observation, patient

ROOT = "http://localhost"
TOKEN_URL = f"{ROOT}/auth/token"
REDIRECT_URI = "http://localhost:8765/callback"
OTHER_REDIRECT_URI = "http://localhost:8765/elsewhere"
PASSWORD = "correct horse battery"
NO_STORE = "no-store"


class Clock:
    """A CLOCK for create_app: fixed until a test moves it forward."""

    def __init__(self, start=None):
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)

    def timestamp(self):
        return int(self.now.timestamp())


# Services, stored state ----------


def auth_service(app):
    return app.extensions["fhir_iomt"].auth


def stored_count(app, collection):
    """How many documents an auth collection (auth_tokens, auth_codes...) holds."""
    return auth_service(app).store.collection(collection).count_documents({})


def token_count(app):
    return stored_count(app, "auth_tokens")


# Clients and users ----------


@dataclass(frozen=True)
class AppClient:
    """A registered app (authorization code client)."""

    client_id: str
    secret: str | None
    redirect_uris: tuple

    @property
    def redirect_uri(self):
        return self.redirect_uris[0]

    def credentials(self):
        """(form fields, headers) that authenticate this client at the token endpoint."""
        if self.secret is None:
            return {"client_id": self.client_id}, {}
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return {}, {"Authorization": f"Basic {basic}"}


def register_app(app, scope, *, public=True, redirect_uris=(REDIRECT_URI,), name="test app"):
    """Register an app client (public, or confidential with a secret)."""
    created = auth_service(app).register_client(name, scope, redirect_uris=list(redirect_uris), public=public)
    return AppClient(created["client_id"], created.get("client_secret"), tuple(redirect_uris))


def add_user(app, username, role="patient", patient_id=None, password=PASSWORD):
    auth_service(app).add_user(username, password, role, patient_id)
    return username


@dataclass(frozen=True)
class Backend:
    """A registered backend (private_key_jwt) client and its key."""

    client_id: str
    key: object


def register_key_backend(app, scope, key=None, name="backend"):
    key = key or new_key("ES384")
    return Backend(register_backend(app, key, scope, name), key)


def backend_request(test_client, backend, scope, **changes):
    """POST a client_credentials request (assertion claims/header changed by `changes`)."""
    return test_client.post("/auth/token", data=token_form(backend.client_id, backend.key, TOKEN_URL, scope,
                                                           **changes))


def backend_access(test_client, backend, scope, **changes):
    response = backend_request(test_client, backend, scope, **changes)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


# PKCE ----------


def pkce_pair():
    """(code_verifier, S256 code_challenge), computed here independently of the server."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


# The browser side ----------


@dataclass
class Flow:
    """One authorization in progress: the browser (cookies), the PKCE verifier, state and request id."""

    browser: object
    client: AppClient
    verifier: str
    challenge: str
    state: str
    request_id: str | None = None
    nonce: str | None = None
    responses: list = field(default_factory=list)


def authorize_params(app_client, scope, challenge, state, **changes):
    """The query of an authorization request; `changes` override (None removes a parameter)."""
    params = {"response_type": "code", "client_id": app_client.client_id, "redirect_uri": app_client.redirect_uri,
              "scope": scope, "state": state, "aud": BASE, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def authorize(app, app_client, scope, browser=None, **changes):
    """GET /auth/authorize; returns (Flow, response) without judging the response."""
    verifier, challenge = pkce_pair()
    flow = Flow(browser or app.test_client(), app_client, verifier, challenge, secrets.token_urlsafe(12),
                nonce=changes.get("nonce"))
    params = authorize_params(app_client, scope, challenge, flow.state, **changes)
    response = flow.browser.get(f"/auth/authorize?{urlencode(params)}")
    flow.responses.append(response)
    if response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/auth/login":
        flow.request_id = parse_qs(urlsplit(response.headers["Location"]).query)["request"][0]
    return flow, response


def start(app, app_client, scope, browser=None, **changes):
    """An authorization request that must be accepted (302 to the login page with the binding cookie)."""
    flow, response = authorize(app, app_client, scope, browser, **changes)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert flow.request_id, response.headers["Location"]
    assert flow.browser.get_cookie("fhir_iomt_authz", path="/auth") is not None
    return flow


def login(flow, username, password=PASSWORD):
    """GET the login form (must show it), then POST username and password; returns the POST response."""
    page = flow.browser.get("/auth/login", query_string={"request": flow.request_id})
    assert page.status_code == 200, page.get_data(as_text=True)
    assert 'name="password"' in page.get_data(as_text=True)
    return post_login(flow, username, password)


def post_login(flow, username, password=PASSWORD):
    response = flow.browser.post("/auth/login", data={"request": flow.request_id, "username": username,
                                                      "password": password})
    flow.responses.append(response)
    return response


def consent_page(flow, q=None):
    query = {"request": flow.request_id, **({"q": q} if q is not None else {})}
    return flow.browser.get("/auth/consent", query_string=query)


def decide(flow, decision="allow", patient=None):
    """POST the consent form; returns the response (302 to the app when accepted)."""
    data = {"request": flow.request_id, "decision": decision}
    if patient is not None:
        data["patient"] = patient
    response = flow.browser.post("/auth/consent", data=data)
    flow.responses.append(response)
    return response


def redirect_params(response, expected_uri=None):
    """The query parameters (single values) of a redirect back to the app."""
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    if expected_uri is not None:
        assert f"{location.scheme}://{location.netloc}{location.path}" == expected_uri
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def code_of(flow, response):
    """The authorization code of the redirect to the app (state checked)."""
    params = redirect_params(response, flow.client.redirect_uri)
    assert "error" not in params, params
    assert params["state"] == flow.state
    return params["code"]


def signed_in(app, app_client, username, scope, password=PASSWORD, patient=None, **changes):
    """Authorize, log in, consent: a Flow whose code is ready (flow.responses[-1] is the redirect)."""
    flow = start(app, app_client, scope, **changes)
    response = login(flow, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert urlsplit(response.headers["Location"]).path == "/auth/consent"
    page = consent_page(flow)
    assert page.status_code == 200, page.get_data(as_text=True)
    decide(flow, "allow", patient)
    return flow


def authorization_code(app, app_client, username, scope, **kwargs):
    """(code, flow) after the whole browser part of the flow."""
    flow = signed_in(app, app_client, username, scope, **kwargs)
    return code_of(flow, flow.responses[-1]), flow


# The app side: token endpoint ----------


def token_request(app, app_client, form, headers=None):
    """POST /auth/token with this client's credentials added."""
    fields, auth_headers = app_client.credentials()
    return app.test_client().post("/auth/token", data={**fields, **form}, headers={**auth_headers,
                                                                                    **(headers or {})})


def exchange(app, app_client, code, verifier, redirect_uri=None, **extra):
    """Exchange an authorization code (the response, not judged)."""
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect_uri or app_client.redirect_uri, **extra}
    return token_request(app, app_client, {k: v for k, v in form.items() if v is not None})


def tokens(app, app_client, username, scope, **kwargs):
    """The token response of a whole, successful authorization code flow."""
    code, flow = authorization_code(app, app_client, username, scope, **kwargs)
    response = exchange(app, app_client, code, flow.verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refresh(app, app_client, refresh_token, **extra):
    return token_request(app, app_client, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def revoke(app, app_client, token):
    fields, headers = app_client.credentials()
    return app.test_client().post("/auth/revoke", data={**fields, "token": token}, headers=headers)


def introspect(app, app_client, token):
    fields, headers = app_client.credentials()
    return app.test_client().post("/auth/introspect", data={**fields, "token": token}, headers=headers)


def oauth_error(response, status, error):
    """Assert an RFC 6749 JSON error response; returns its description."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error, body
    assert response.headers["Cache-Control"] == NO_STORE
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    return body.get("error_description", "")


# Resource server answers ----------


def bearer_refusal(response, status, error=None):
    """Assert a 401/403 OperationOutcome with its Bearer challenge; returns the challenge."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    assert body["issue"][0]["code"] == {401: "login", 403: "forbidden"}[status]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="fhir-iomt"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
    return challenge


def as_bearer(app, token):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


# Data: two patients with their users, observations and devices ----------

VITAL = "vital-signs"
LAB = "laboratory"
GLUCOSE = ("http://loinc.org", "2339-0", "mg/dL")


@dataclass
class World:
    """Alice and Bob (patients and patient users), a clinician, and what is stored about them."""

    alice: str
    bob: str
    alice_obs: str
    alice_lab: str
    bob_obs: str
    alice_device: str
    bob_device: str
    names: dict


def build_world(app, admin):
    """Store two patients with a vital-sign Observation each, a laboratory one for Alice, a device each."""
    alice = create(admin, patient("Alicewright", ["Alice"], birth_date="1970-01-01"))["id"]
    bob = create(admin, patient("Bobsworth", ["Bob"], birth_date="1980-02-02"))["id"]
    alice_obs = create(admin, observation(alice, when="2026-11-20T10:00:00Z"))["id"]
    alice_lab = create(admin, observation(alice, GLUCOSE, "2026-11-20T11:00:00Z", 95, category=LAB))["id"]
    bob_obs = create(admin, observation(bob, when="2026-11-20T12:00:00Z", value=88))["id"]
    devices = []
    for serial, owner in (("DEV-A", alice), ("DEV-B", bob)):
        devices.append(create(admin, {"resourceType": "Device", "status": "active",
                                      "identifier": [{"system": "urn:ietf:rfc:3986", "value": serial}],
                                      "patient": {"reference": f"Patient/{owner}"}})["id"])
    add_user(app, "alice", "patient", alice)
    add_user(app, "bob", "patient", bob)
    add_user(app, "dr.who", "clinician")
    return World(alice, bob, alice_obs, alice_lab, bob_obs, devices[0], devices[1],
                 {"alice": "Alicewright", "bob": "Bobsworth"})
