"""Third-party OAuth 2 / SMART clients against the real server process.

- fhirclient (SMART on FHIR's official Python client) through the whole authorization code + PKCE
  flow, the login and consent pages driven over HTTP like a browser, for a patient, a clinician
  (who picks the patient) and a public client; then a refresh with rotation.
- authlib's OAuth2Session with private_key_jwt (RFC 7523) as a SMART backend service, with RS384
  and ES384 keys registered as a JWKS, and with a JWKS URL.
- Refusals: a replayed client assertion, a request without a token.
"""

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRPermissionDeniedException, FHIRUnauthorizedException
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oauth import new_key, public_jwks

from .builders import HEART_RATE, hours_after_start, patient, vital_sign
from .oauth_helpers import REDIRECT_URI, Browser, JwksServer, only_form

pytestmark = pytest.mark.e2e

FHIR_JSON = {"Accept": "application/fhir+json"}
APP_SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
BACKEND_SCOPE = "system/Observation.rs system/Patient.rs"


@dataclass(frozen=True)
class People:
    """A patient with readings, a neighbour with one, and the users who sign in."""

    family: str
    patient_id: str
    observation_ids: tuple
    other_id: str
    users: dict  # role -> username


@pytest.fixture(scope="module")
def people(server_auth, fhir_base):
    tag = uuid.uuid4().hex[:10]
    headers = {**FHIR_JSON, **server_auth.headers(), "Content-Type": "application/fhir+json"}

    def create(resource):
        response = requests.post(f"{fhir_base}/{resource['resourceType']}", json=resource, headers=headers,
                                 timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    patient_id, other_id = create(patient(tag)), create(patient(f"{tag}x", given="Bob"))
    observations = tuple(create(vital_sign(HEART_RATE, patient_id, hours_after_start(h), 60 + h)) for h in range(3))
    create(vital_sign(HEART_RATE, other_id, hours_after_start(0), 90))
    users = {"patient": f"patient-{tag}", "clinician": f"clinician-{tag}"}
    server_auth.add_user(users["patient"], "patient", patient_id)
    server_auth.add_user(users["clinician"], "clinician")
    return People(f"E2e{tag}", patient_id, observations, other_id, users)


def _id_token_claims(id_token, fhir_base):
    """The claims of an id_token, verified with the keys named by the server's OpenID configuration."""
    configuration = requests.get(f"{fhir_base}/.well-known/openid-configuration", timeout=30).json()
    jwks = requests.get(configuration["jwks_uri"], timeout=30).json()
    return jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"]).claims


# fhirclient: authorization code + PKCE ----------


@pytest.mark.parametrize(("role", "public"), [("patient", False), ("clinician", False), ("patient", True)],
                         ids=["patient-confidential", "clinician-confidential", "patient-public"])
def test_fhirclient_authorization_code_flow_and_refresh(server_auth, fhir_base, people, role, public):
    registered = server_auth.register_app(APP_SCOPE, public=public)
    client_id, secret = registered["client_id"], registered.get("client_secret")
    assert (secret is None) == public
    settings = {"app_id": client_id, "api_base": fhir_base, "redirect_uri": REDIRECT_URI, "scope": APP_SCOPE}
    if secret:
        settings["app_secret"] = secret
    smart = smart_client.FHIRClient(settings=settings)

    # fhirclient finds the endpoints in the CapabilityStatement's oauth-uris extension.
    authorize_url = smart.authorize_url
    assert authorize_url.startswith(f"{server_auth.server.root}/auth/authorize?")
    asked = parse_qs(urlsplit(authorize_url).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["aud"] == [fhir_base]
    assert not smart.ready

    browser = Browser()
    consent = browser.log_in(authorize_url, people.users[role])
    if role == "clinician":
        consent = browser.pick_patient(consent, people.family, people.patient_id)
        callback = browser.allow(consent, patient_id=people.patient_id)
    else:
        assert "patient" not in only_form(consent.text, "post").radios  # the patient is the user
        callback = browser.allow(consent)
    assert callback.startswith(f"{REDIRECT_URI}?")
    assert parse_qs(urlsplit(callback).query)["state"] == [smart.server.auth.auth_state]

    smart.handle_callback(callback)
    assert smart.ready
    assert smart.patient_id == people.patient_id
    assert smart.patient.id == people.patient_id
    assert smart.patient.name[0].family == people.family
    found = Observation.where(struct={"patient": smart.patient_id}).perform_resources(smart.server)
    assert sorted(o.id for o in found) == sorted(people.observation_ids)
    assert {o.subject.reference for o in found} == {f"Patient/{people.patient_id}"}
    # patient/*.rs confines the token to the patient in context.
    assert Observation.where(struct={"patient": people.other_id}).perform_resources(smart.server) == []
    with pytest.raises(FHIRPermissionDeniedException):
        Patient.read(people.other_id, smart.server)

    claims = _id_token_claims(smart.launch_context["id_token"], fhir_base)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (fhir_base, client_id, people.users[role])
    if role == "patient":
        assert claims["fhirUser"] == f"{fhir_base}/Patient/{people.patient_id}"
    else:
        # A clinician user is a Practitioner (made by `users add`); its id derives from the username.
        assert claims["fhirUser"].startswith(f"{fhir_base}/Practitioner/")

    auth = smart.server.auth
    old_access, old_refresh = auth.access_token, auth.refresh_token
    assert old_refresh
    assert smart.reauthorize()
    assert auth.access_token not in (None, old_access)
    assert auth.refresh_token not in (None, old_refresh)
    assert smart.patient_id == people.patient_id
    assert Patient.read(people.patient_id, smart.server).id == people.patient_id  # the new token works

    form = {"grant_type": "refresh_token", "refresh_token": old_refresh, "client_id": client_id}
    reused = requests.post(server_auth.token_url, data=form, auth=(client_id, secret) if secret else None,
                           timeout=30)
    assert reused.status_code == 400, reused.text
    assert reused.json()["error"] == "invalid_grant"
    # Reuse of a rotated refresh token revokes the whole grant, the new access token included.
    with pytest.raises(FHIRUnauthorizedException):
        Patient.read(people.patient_id, smart.server)


# authlib: SMART Backend Services (client_credentials + private_key_jwt) ----------


class SmartPrivateKeyJWT(PrivateKeyJWT):
    """authlib's private_key_jwt signed as SMART Backend Services requires.

    authlib's PrivateKeyJWT puts no kid in the header and sets exp an hour ahead (its default
    expires_in=3600); SMART needs a kid and exp at most 5 minutes ahead. `claims={"exp": ...}` is
    no way out: authlib stores the jti it generates in that shared dict, so every later assertion
    would repeat the same jti (a replay) and the same exp. Hence a fresh header and lifetime per call.
    """

    def __init__(self, token_endpoint, kid, alg, lifetime=240):
        super().__init__(token_endpoint, headers={"kid": kid}, alg=alg)
        self.lifetime = lifetime

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                                    alg=self.alg, header=dict(self.headers), expires_in=self.lifetime)


def _backend_session(server_auth, client_id, key, alg):
    session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt")
    session.register_client_auth_method(SmartPrivateKeyJWT(server_auth.token_url, key.kid, alg))
    return session


def _observations(fhir_base, token, patient_id):
    response = requests.get(f"{fhir_base}/Observation", params={"patient": patient_id},
                            headers={**FHIR_JSON, "Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []))


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_authlib_backend_service_with_a_registered_jwks(server_auth, fhir_base, people, alg):
    key = new_key(alg)
    client_id = server_auth.register_backend(key, scope=BACKEND_SCOPE)
    session = _backend_session(server_auth, client_id, key, alg)

    token = session.fetch_token(server_auth.token_url, grant_type="client_credentials",
                                scope="system/Observation.rs")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "system/Observation.rs"
    assert "refresh_token" not in token
    assert _observations(fhir_base, token["access_token"], people.patient_id) == sorted(people.observation_ids)

    # The session sends its token itself; it holds only the scope it asked for.
    assert session.get(f"{fhir_base}/Observation/{people.observation_ids[0]}", headers=FHIR_JSON,
                       timeout=30).status_code == 200
    narrower = session.get(f"{fhir_base}/Patient/{people.patient_id}", headers=FHIR_JSON, timeout=30)
    assert narrower.status_code == 403, narrower.text
    assert 'error="insufficient_scope"' in narrower.headers["WWW-Authenticate"]

    # Every token request carries a new assertion (a fresh jti), so asking again works.
    again = session.fetch_token(server_auth.token_url, grant_type="client_credentials", scope=BACKEND_SCOPE)
    assert again["access_token"] != token["access_token"]
    assert set(again["scope"].split()) == set(BACKEND_SCOPE.split())


def test_authlib_backend_service_with_a_jwks_url(server_auth, fhir_base, people):
    rsa, ec = new_key("RS384"), new_key("ES384")
    with JwksServer(public_jwks(rsa, ec)) as jwks:
        client_id = server_auth.register_backend(scope=BACKEND_SCOPE, jwks_url=jwks.url)
        for key, alg in ((ec, "ES384"), (rsa, "RS384")):
            session = _backend_session(server_auth, client_id, key, alg)
            token = session.fetch_token(server_auth.token_url, grant_type="client_credentials",
                                        scope="system/Observation.rs")
            assert _observations(fhir_base, token["access_token"], people.patient_id) == sorted(
                people.observation_ids)
    assert jwks.fetches and set(jwks.fetches) == {"/jwks.json"}  # the server read the keys from the URL


def test_authlib_default_private_key_jwt_is_refused(server_auth):
    """authlib's defaults do not meet SMART: no kid, then exp an hour ahead; the server says why."""
    key = new_key("ES384")
    client_id = server_auth.register_backend(key, scope=BACKEND_SCOPE)
    session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt")
    for method, reason in ((PrivateKeyJWT(server_auth.token_url, alg="ES384"), "kid"),
                           (PrivateKeyJWT(server_auth.token_url, headers={"kid": key.kid}, alg="ES384"), "exp")):
        session.register_client_auth_method(method)
        with pytest.raises(OAuthError) as refused:
            session.fetch_token(server_auth.token_url, grant_type="client_credentials", scope=BACKEND_SCOPE)
        assert refused.value.error == "invalid_client"
        assert reason in refused.value.description


# Refusals ----------


def test_a_replayed_client_assertion_is_refused(server_auth):
    form = server_auth.assertion_form("system/Patient.rs")
    first = requests.post(server_auth.token_url, data=form, timeout=30)
    assert first.status_code == 200, first.text
    replayed = requests.post(server_auth.token_url, data=form, timeout=30)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_client"
    assert "access_token" not in replayed.json()


def test_a_request_without_a_token_is_refused(fhir_base):
    response = requests.get(f"{fhir_base}/Patient", headers=FHIR_JSON, timeout=30)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'realm="fhir-iomt"' in response.headers["WWW-Authenticate"]
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"

    wrong = requests.get(f"{fhir_base}/Patient", headers={**FHIR_JSON, "Authorization": "Bearer not-a-token"},
                         timeout=30)
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert requests.get(f"{fhir_base}/metadata", headers=FHIR_JSON, timeout=30).status_code == 200
