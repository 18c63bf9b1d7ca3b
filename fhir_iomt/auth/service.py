"""The SMART on FHIR authorization server: clients, users, authorization code + PKCE, tokens.

No Flask here: the views in auth/views.py parse requests and call this service.
"""

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..domain.access import Access
from ..domain.errors import InvalidRequest, Unauthorized
from ..domain.scopes import (
    IDENTITY_SCOPES,
    LAUNCH_SCOPES,
    NAMED_SCOPES,
    REFRESH_SCOPES,
    SERVICE_SCOPES,
    ScopeError,
    ScopeSet,
    check_registration,
    grant,
    split_scopes,
)
from ..fhir.compartment import restriction_supported
from .errors import AuthorizeError, OAuthError
from .jwt import ASSERTION_TYPE, JwksCache, SigningKey, new_signing_key, unverified_claims, verify_assertion
from .secrets import digest, hash_password, new_secret, s256_challenge, same_digest, verify_password

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
ROLES = ("clinician", "patient")
MIN_PASSWORD = 8
APP_NAMED = LAUNCH_SCOPES | IDENTITY_SCOPES | REFRESH_SCOPES


@functools.cache
def _dummy_hash():
    """A hash checked when the username is unknown, so both failures take the same time (made on first use)."""
    return hash_password("not a password")


@dataclass(frozen=True)
class Endpoints:
    """The public URLs the checks depend on (from PUBLIC_BASE_URL or the request)."""

    fhir_base: str
    token_url: str


@dataclass(frozen=True)
class Consent:
    """What the consent page shows for a pending authorization."""

    client_name: str
    username: str
    role: str
    scopes: list
    patient: str | None
    needs_patient: bool


class LoginFailed(Exception):
    """Wrong username or password, or too many recent failures (retry_after seconds)."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


def _restriction_ok(scope):
    return scope.resource_type != "*" and restriction_supported(scope.resource_type, scope.restriction)


def _valid_redirect_uri(uri):
    parts = urlsplit(uri)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    return (parts.scheme == "https" or (parts.scheme == "http" and loopback)) and not parts.fragment


def _public_jwks(jwks):
    """The JWKS as given, if it holds only public RSA/EC keys with a kid."""
    try:
        keys = jwks["keys"]
        KeySet.import_key_set(jwks)
    except (KeyError, TypeError, ValueError, JoseError) as error:
        raise ValueError(f"not a valid JWKS: {error}") from error
    for key in keys:
        if key.get("kty") not in ("RSA", "EC") or not key.get("kid"):
            raise ValueError("every key needs kty RSA or EC and a kid")
        if "d" in key:
            raise ValueError("the JWKS holds a private key; register only the public keys")
    return jwks


def _with_query(uri, params):
    separator = "&" if urlsplit(uri).query else "?"
    return f"{uri}{separator}{urlencode({k: v for k, v in params.items() if v is not None})}"


class AuthService:
    """Registration, authorization, tokens, introspection, revocation and bearer checks."""

    def __init__(self, store, config, people, clock=None, jwks_cache=None):
        self.store = store
        self.config = config
        self.people = people
        self.now = clock or (lambda: datetime.now(UTC))
        self.jwks = jwks_cache or JwksCache(config["JWKS_CACHE_SECONDS"])
        self.id_key = SigningKey(lambda: store.signing_key("id-token", new_signing_key))

    def _seconds(self):
        return int(self.now().timestamp())

    def _ms(self):
        return int(self.now().timestamp() * 1000)

    # Registration -----------------------------------------------------------

    def register_client(self, name, scope, redirect_uris=(), jwks=None, jwks_url=None, public=False):
        """Register an app (redirect URIs) or a backend (keys); returns its id and, if confidential, secret."""
        if not name or not name.strip():
            raise InvalidRequest("A client needs a name")
        if jwks is not None and jwks_url:
            raise InvalidRequest("Give either a JWKS or a JWKS URL, not both")
        keyed = jwks is not None or bool(jwks_url)
        if not redirect_uris and not keyed:
            raise InvalidRequest("An app client needs redirect URIs; a backend client needs a JWKS or JWKS URL")
        if public and keyed:
            raise InvalidRequest("A public client has no credentials: do not give it keys")
        for uri in redirect_uris:
            if not _valid_redirect_uri(uri):
                raise InvalidRequest(f"Redirect URI '{uri}' must be https (or http on localhost), without fragment")
        if jwks_url and not _valid_redirect_uri(jwks_url):
            raise InvalidRequest("The JWKS URL must be https (or http on localhost)")
        try:
            jwks = _public_jwks(jwks) if jwks is not None else None
            contexts = ("patient", "user") if redirect_uris else ("system",)
            check_registration(scope, contexts)
        except (ValueError, ScopeError) as error:
            raise InvalidRequest(str(error)) from error
        names = set(split_scopes(scope)) & NAMED_SCOPES
        allowed = APP_NAMED if redirect_uris else SERVICE_SCOPES
        if names - allowed:
            kind = "an app" if redirect_uris else "a backend"
            raise InvalidRequest(f"Scopes {sorted(names - allowed)} cannot be held by {kind} client")
        secret = None if public or keyed else new_secret(32)
        document = {
            "_id": uuid.uuid4().hex, "name": name.strip(), "scope": " ".join(split_scopes(scope)),
            "redirect_uris": list(redirect_uris), "jwks": jwks, "jwks_url": jwks_url or None,
            "public": bool(public), "secret": digest(secret) if secret else None,
            "auth_method": "private_key_jwt" if keyed else ("none" if public else "client_secret_basic"),
            "grant_types": ["authorization_code", "refresh_token"] if redirect_uris else ["client_credentials"],
            "created": self.now().isoformat(),
        }
        self.store.add_client(document)
        shown = public_client(document)
        if secret:
            shown["client_secret"] = secret
        return shown

    def add_user(self, username, password, role, patient_id=None, display_name=None):
        """Create a user: a patient linked to their Patient, or a clinician (given a Practitioner); scrypt-hashed."""
        if not USERNAME.match(username or ""):
            raise InvalidRequest("Usernames are 1-64 letters, digits or . _ @ -")
        if role not in ROLES:
            raise InvalidRequest(f"Role must be one of {', '.join(ROLES)}")
        if len(password or "") < MIN_PASSWORD:
            raise InvalidRequest(f"Passwords need at least {MIN_PASSWORD} characters")
        if role == "patient":
            if not self._existing_patient(patient_id):
                raise InvalidRequest("A patient user needs --patient with the id of an existing Patient")
        elif patient_id:
            raise InvalidRequest("Only patient users are linked to a Patient")
        if self.store.user(username) is not None:
            raise InvalidRequest(f"User '{username}' exists already")
        if role == "patient":
            fhir_user = f"Patient/{patient_id}"
        else:
            fhir_user = self.people.practitioner_for(username, display_name)
        document = {"_id": username, "password": hash_password(password), "role": role,
                    "patient": patient_id, "fhir_user": fhir_user, "created": self.now().isoformat()}
        if not self.store.add_user(document):
            raise InvalidRequest(f"User '{username}' exists already")
        return {"username": username, "role": role, "patient": patient_id, "fhirUser": fhir_user}

    def _existing_patient(self, patient_id):
        return isinstance(patient_id, str) and PATIENT_ID.match(patient_id) and self.people.patient_exists(patient_id)

    def create_launch(self, patient_id, created_by):
        """An EHR launch context for a patient; its id is the `launch` parameter of the app launch."""
        if not self._existing_patient(patient_id):
            raise InvalidRequest("The launch needs the id of an existing Patient")
        launch_id = new_secret(24)
        lifetime = self.config["LAUNCH_SECONDS"]
        self.store.add_launch({"_id": launch_id, "patient": patient_id, "by": created_by,
                               "expires": self._ms() + lifetime * 1000})
        return {"launch": launch_id, "patient": patient_id, "expires_in": lifetime}

    # Authorization endpoint ---------------------------------------------------

    def begin(self, params, endpoints):
        """Check an authorization request; returns (request id, browser binding secret) to log in against."""
        client = self.store.client(params.get("client_id") or "")
        if client is None or "authorization_code" not in client["grant_types"]:
            raise AuthorizeError("unauthorized_client", "Unknown client, or not an app client")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri not in client["redirect_uris"]:
            raise AuthorizeError("invalid_request", "redirect_uri is not one this client registered")
        state = params.get("state")

        def refuse(error, description):
            return AuthorizeError(error, description, redirect_uri, state)

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "PKCE is required with code_challenge_method=S256 (plain is refused)")
        if not CHALLENGE.match(params.get("code_challenge") or ""):
            raise refuse("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)")
        if (params.get("aud") or "").rstrip("/") != endpoints.fhir_base.rstrip("/"):
            raise refuse("invalid_request", "aud must be this server's FHIR base URL")
        requested = split_scopes(params.get("scope"))
        if not requested:
            raise refuse("invalid_scope", "scope is required")
        launch_patient = None
        if "launch" in requested:
            launch = self.store.launch(params.get("launch") or "")
            if launch is None or launch["expires"] <= self._ms():
                raise refuse("invalid_request", "The launch parameter is unknown or expired")
            launch_patient = launch["patient"]
        request_id, binding = new_secret(24), new_secret(24)
        self.store.add_request({
            "_id": request_id, "client": client["_id"], "redirect_uri": redirect_uri, "state": state,
            "challenge": params["code_challenge"], "scope": " ".join(requested), "nonce": params.get("nonce"),
            "launch_patient": launch_patient, "binding": digest(binding), "user": None,
            "expires": self._ms() + self.config["AUTH_REQUEST_SECONDS"] * 1000,
        })
        return request_id, binding

    def pending(self, request_id, binding):
        """A pending authorization bound to this browser, or AuthorizeError (shown, not redirected)."""
        found = self.store.request(request_id or "")
        if found is None or found["expires"] <= self._ms() or not same_digest(binding or "", found["binding"]):
            raise AuthorizeError("invalid_request", "This sign-in has expired or belongs to another browser; "
                                                    "start again from the app")
        return found

    def login(self, request_id, binding, username, password):
        """Check a user's password for a pending authorization (failed attempts are slowed down)."""
        self.pending(request_id, binding)
        failures = self.store.login_failures(username or "")
        if failures and failures.get("until", 0) > self._ms():
            raise LoginFailed("Too many failed attempts; wait and retry",
                              retry_after=max(1, -(-(failures["until"] - self._ms()) // 1000)))
        user = self.store.user(username or "")
        if not verify_password(password or "", user["password"] if user else _dummy_hash()) or user is None:
            self.store.record_login_failure(username or "", self._ms(), self._delay_after)
            raise LoginFailed("Unknown username or wrong password")
        self.store.clear_login_failures(username)
        self.store.update_request(request_id, {"user": username})
        return user

    def _delay_after(self, failures):
        free = self.config["LOGIN_FREE_FAILURES"]
        return 0 if failures < free else min(2 ** (failures - free), self.config["LOGIN_MAX_DELAY_SECONDS"])

    def consent(self, request_id, binding):
        """What the user is asked to approve; None when nobody has logged in yet."""
        pending = self.pending(request_id, binding)
        if not pending["user"]:
            return None
        user, client = self._user_and_client(pending)
        scope = grant(pending["scope"], client["scope"], user["role"], _restriction_ok)
        patient = self._fixed_patient(pending, user)
        needs = patient is None and user["role"] == "clinician" and self._wants_patient(scope, pending)
        return Consent(client["name"], user["_id"], user["role"], split_scopes(scope), patient, needs)

    def _user_and_client(self, pending):
        user, client = self.store.user(pending["user"]), self.store.client(pending["client"])
        if user is None or client is None:
            raise AuthorizeError("access_denied", "The user or the client was removed", pending["redirect_uri"],
                                 pending["state"])
        return user, client

    @staticmethod
    def _wants_patient(scope, pending):
        names = split_scopes(scope)
        return "launch/patient" in split_scopes(pending["scope"]) or any(n.startswith("patient/") for n in names)

    @staticmethod
    def _fixed_patient(pending, user):
        if user["role"] == "patient":
            if pending["launch_patient"] not in (None, user["patient"]):
                raise AuthorizeError("access_denied", "This launch is for another patient",
                                     pending["redirect_uri"], pending["state"])
            return user["patient"]
        return pending["launch_patient"]

    def decide(self, request_id, binding, approved, picked_patient=None):
        """The app's redirect URL after the user approves (with a code) or denies (with an error)."""
        pending = self.pending(request_id, binding)
        info = self.consent(request_id, binding)
        if info is None:
            raise AuthorizeError("invalid_request", "Sign in first")
        patient = info.patient
        if approved and info.needs_patient:
            if not self._existing_patient(picked_patient):
                raise InvalidRequest("Pick an existing patient")
            patient = picked_patient
        if self.store.finish_request(request_id) is None:
            raise AuthorizeError("invalid_request", "This authorization was already answered")
        if not approved:
            return _with_query(pending["redirect_uri"], {"error": "access_denied", "state": pending["state"]})
        # Without a patient in context, patient-level permissions and launch/patient mean nothing.
        scope = [s for s in info.scopes if patient or not (s == "launch/patient" or s.startswith("patient/"))]
        code = new_secret(32)
        user = self.store.user(pending["user"])
        self.store.add_code({
            "_id": digest(code), "grant": new_secret(16), "client": pending["client"],
            "redirect_uri": pending["redirect_uri"], "challenge": pending["challenge"], "scope": " ".join(scope),
            "user": user["_id"], "fhir_user": user.get("fhir_user"), "patient": patient,
            "nonce": pending.get("nonce"), "auth_time": self._seconds(),
            "expires": self._ms() + self.config["AUTH_CODE_SECONDS"] * 1000, "used": False,
        })
        return _with_query(pending["redirect_uri"], {"code": code, "state": pending["state"]})

    # Token endpoint -----------------------------------------------------------

    def authenticate_client(self, form, basic, endpoints, allow_public=True):
        """The client a token-endpoint request comes from (private_key_jwt, secret, or public client_id)."""
        if form.get("client_assertion_type") is not None or form.get("client_assertion") is not None:
            return self._assertion_client(form, endpoints)
        if basic is not None:
            client_id, secret = basic
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        client = self.store.client(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "Unknown client", 401)
        if secret is None:
            if client["auth_method"] == "none" and allow_public:
                return client
            raise OAuthError("invalid_client", "This client must authenticate", 401)
        if client["auth_method"] != "client_secret_basic" or not same_digest(secret, client["secret"]):
            raise OAuthError("invalid_client", "Client authentication failed", 401)
        return client

    def _assertion_client(self, form, endpoints):
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}", 401)
        assertion = form.get("client_assertion") or ""
        client_id = unverified_claims(assertion).get("sub")
        if form.get("client_id") not in (None, client_id):
            raise OAuthError("invalid_client", "client_id does not match the assertion", 401)
        client = self.store.client(client_id if isinstance(client_id, str) else "")
        if client is None:
            raise OAuthError("invalid_client", "Unknown client", 401)
        if client["auth_method"] != "private_key_jwt":
            raise OAuthError("invalid_client", "This client does not authenticate with private_key_jwt", 401)
        now = self._seconds()
        claims = verify_assertion(assertion, client, {endpoints.token_url}, now,
                                  self.config["CLIENT_ASSERTION_MAX_SECONDS"], self.jwks)
        if not self.store.remember_assertion(f"{client['_id']}|{claims['jti']}", int(claims["exp"]) * 1000):
            raise OAuthError("invalid_client", "client_assertion jti was used before (replay)", 401)
        return client

    def token(self, form, basic, endpoints, on_client=None):
        """The token response for a grant_type (authorization_code, refresh_token, client_credentials).

        `on_client(client_id)` is told who authenticated (for the audit trail), even if the grant then fails.
        """
        handlers = {"authorization_code": self._code_grant, "refresh_token": self._refresh_grant,
                    "client_credentials": self._client_credentials_grant}
        handler = handlers.get(form.get("grant_type"))
        if handler is None:
            raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code, refresh_token "
                                                       "or client_credentials")
        client = self.authenticate_client(form, basic, endpoints)
        if on_client:
            on_client(client["_id"])
        if form.get("grant_type") not in client["grant_types"]:
            raise OAuthError("unauthorized_client", "This client may not use this grant_type")
        return handler(client, form, endpoints)

    def _code_grant(self, client, form, endpoints):
        code = self.store.redeem_code(digest(form.get("code") or ""))
        if code is None:
            raise OAuthError("invalid_grant", "Unknown authorization code")
        if code["used"]:
            self.store.revoke_grant(code["grant"])
            raise OAuthError("invalid_grant", "Authorization code used before; its tokens are revoked")
        if code["client"] != client["_id"] or code["expires"] <= self._ms():
            raise OAuthError("invalid_grant", "Authorization code expired or issued to another client")
        if form.get("redirect_uri") != code["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier") or ""
        if not VERIFIER.match(verifier) or s256_challenge(verifier) != code["challenge"]:
            raise OAuthError("invalid_grant", "PKCE code_verifier does not match the code_challenge")
        return self._issue(client, code["grant"], code["scope"], endpoints, code)

    def _refresh_grant(self, client, form, endpoints):
        key = digest(form.get("refresh_token") or "")
        current = self.store.token(key) if form.get("scope") else None
        if (current is not None and current["kind"] == "refresh" and not current["used"]
                and current["client"] == client["_id"]
                and not set(split_scopes(form["scope"])) <= set(split_scopes(current["scope"]))):
            # Refused before rotation: a bad request must not use the token up (a retry would revoke the grant).
            raise OAuthError("invalid_scope", "A refresh may only narrow the granted scopes")
        found = self.store.rotate_refresh(key)
        if found is None or found["client"] != client["_id"]:
            raise OAuthError("invalid_grant", "Unknown refresh token")
        if found["used"] or found["revoked"]:
            self.store.revoke_grant(found["grant"])
            raise OAuthError("invalid_grant", "Refresh token used before or revoked; the grant is revoked")
        if found["expires"] <= self._ms():
            raise OAuthError("invalid_grant", "Refresh token expired")
        scope = found["scope"]
        if form.get("scope"):
            narrower = split_scopes(form["scope"])
            if not set(narrower) <= set(split_scopes(scope)):
                raise OAuthError("invalid_scope", "A refresh may only narrow the granted scopes")
            scope = " ".join(narrower)
        return self._issue(client, found["grant"], scope, endpoints, found)

    def _client_credentials_grant(self, client, form, endpoints):
        scope = grant(form.get("scope") or "", client["scope"], "system", _restriction_ok)
        if not scope:
            raise OAuthError("invalid_scope", "None of the requested scopes is granted to this client")
        return self._issue(client, new_secret(16), scope, endpoints, None)

    def _issue(self, client, grant_id, scope, endpoints, source):
        """Store and return a new access token (and refresh token, id_token when granted)."""
        source = source or {}
        names = split_scopes(scope)
        backend = "client_credentials" in client["grant_types"]
        lifetime = self.config["BACKEND_TOKEN_SECONDS" if backend else "ACCESS_TOKEN_SECONDS"]
        now_ms = self._ms()
        common = {"grant": grant_id, "client": client["_id"], "client_name": client["name"], "scope": scope,
                  "user": source.get("user"), "fhir_user": source.get("fhir_user"), "patient": source.get("patient"),
                  "nonce": source.get("nonce"), "auth_time": source.get("auth_time"), "issued": now_ms,
                  "revoked": False}
        access = new_secret(32)
        documents = [{**common, "_id": digest(access), "kind": "access", "expires": now_ms + lifetime * 1000}]
        body = {"access_token": access, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}
        if common["patient"]:
            body["patient"] = common["patient"]
        if REFRESH_SCOPES & set(names) and not backend:
            refresh = new_secret(32)
            documents.append({**common, "_id": digest(refresh), "kind": "refresh", "used": False,
                              "expires": now_ms + self.config["REFRESH_TOKEN_SECONDS"] * 1000})
            body["refresh_token"] = refresh
        if "openid" in names and common["user"]:
            body["id_token"] = self._id_token(client, common, names, endpoints)
        self.store.add_tokens(documents)
        return body

    def _id_token(self, client, common, names, endpoints):
        now = self._seconds()
        claims = {"iss": endpoints.fhir_base, "sub": common["user"], "aud": client["_id"], "iat": now,
                  "exp": now + self.config["ACCESS_TOKEN_SECONDS"], "auth_time": common["auth_time"] or now}
        if common["nonce"]:
            claims["nonce"] = common["nonce"]
        if "fhirUser" in names and common["fhir_user"]:
            claims["fhirUser"] = f"{endpoints.fhir_base}/{common['fhir_user']}"
        if "profile" in names:
            claims["preferred_username"] = common["user"]
        return self.id_key.sign(claims)

    def jwks_document(self):
        """The public keys id_tokens are signed with."""
        return self.id_key.public_jwks()

    # Introspection, revocation, bearer checks --------------------------------

    def _live(self, document):
        return (document is not None and not document["revoked"] and not document.get("used")
                and document["expires"] > self._ms())

    def introspect(self, form, basic, endpoints):
        """RFC 7662: the token's state, for the client it was issued to (or an `introspect` client)."""
        client = self.authenticate_client(form, basic, endpoints, allow_public=False)
        if not form.get("token"):
            raise OAuthError("invalid_request", "token is required")
        found = self.store.token(digest(form["token"]))
        allowed = found is not None and (found["client"] == client["_id"] or "introspect" in client["scope"].split())
        if not allowed or not self._live(found):
            return {"active": False}
        result = {"active": True, "scope": found["scope"], "client_id": found["client"],
                  "token_type": "Bearer" if found["kind"] == "access" else "refresh_token",
                  "exp": found["expires"] // 1000, "iat": found["issued"] // 1000,
                  "sub": found["user"] or found["client"], "iss": endpoints.fhir_base}
        for key, name in (("user", "username"), ("patient", "patient"), ("fhir_user", "fhirUser")):
            if found.get(key):
                result[name] = found[key]
        return result

    def revoke(self, form, basic, endpoints):
        """RFC 7009: revoke a token of this client and every token of the same grant (unknown tokens: no-op)."""
        client = self.authenticate_client(form, basic, endpoints)
        if not form.get("token"):
            raise OAuthError("invalid_request", "token is required")
        found = self.store.token(digest(form["token"]))
        if found is not None and found["client"] == client["_id"]:
            self.store.revoke_grant(found["grant"])

    def authenticate_bearer(self, header):
        """The Access of a request's `Authorization: Bearer` header, or Unauthorized."""
        scheme, _, value = (header or "").partition(" ")
        if not header:
            raise Unauthorized("This endpoint needs an OAuth 2 bearer token (SMART on FHIR)", error=None)
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("The Authorization header must be 'Bearer <token>'", error="invalid_request")
        found = self.store.token(digest(value.strip()))
        if found is None or found["kind"] != "access":
            raise Unauthorized("The access token is not valid")
        if found["revoked"]:
            raise Unauthorized("The access token was revoked")
        if found["expires"] <= self._ms():
            raise Unauthorized("The access token has expired")
        return Access(found["client"], found["client_name"], ScopeSet.parse(found["scope"]), found["user"],
                      found["fhir_user"], found["patient"])


def public_client(document):
    """A client registration as shown to administrators (never the secret's digest or private data)."""
    return {
        "client_id": document["_id"], "name": document["name"], "scope": document["scope"],
        "redirect_uris": document["redirect_uris"], "jwks_url": document["jwks_url"],
        "jwks": bool(document["jwks"]), "public": document["public"],
        "token_endpoint_auth_method": document["auth_method"], "grant_types": document["grant_types"],
    }
