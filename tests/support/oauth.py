"""Real OAuth 2 tokens for tests: backend clients registered with keys, assertions signed, tokens requested."""

import time
import uuid

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Everything a system client can hold: what the suite's default client is registered for.
ALL_SYSTEM_SCOPES = "system/*.cruds system/AuditEvent.rs ingest:write ingest:admin launch:create introspect"


def new_key(alg="ES384"):
    """A private signing key for a client (ES384 on P-384, or RS384 on RSA 2048)."""
    if alg == "ES384":
        return ECKey.generate_key("P-384", auto_kid=True)
    return RSAKey.generate_key(2048, auto_kid=True)


def public_jwks(*keys):
    """The public JWKS of keys."""
    return {"keys": [k.as_dict(private=False) for k in keys]}


def register_backend(app, key, scope=ALL_SYSTEM_SCOPES, name="test backend"):
    """Register a backend (private_key_jwt) client through the service; returns its client_id."""
    auth = app.extensions["fhir_iomt"].auth
    return auth.register_client(name, scope, jwks=public_jwks(key))["client_id"]


def assertion(client_id, key, audience, alg="ES384", lifetime=240, **changes):
    """A signed client assertion; `changes` override claims (None removes one) and `header_*` the header."""
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": int(time.time()) + lifetime,
              "jti": uuid.uuid4().hex}
    for name, value in changes.items():
        target, name = (header, name[len("header_"):]) if name.startswith("header_") else (claims, name)
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def token_form(client_id, key, audience, scope, alg="ES384", **changes):
    """The client_credentials form of a backend token request."""
    return {"grant_type": "client_credentials", "scope": scope, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, key, audience, alg, **changes)}


def backend_token(test_client, client_id, key, scope=ALL_SYSTEM_SCOPES, alg="ES384"):
    """An access token for a backend client, from the real token endpoint of a Flask test client."""
    response = test_client.post("/auth/token", data=token_form(client_id, key, "http://localhost/auth/token",
                                                               scope, alg))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def bearer_client(app, token):
    """A Flask test client that sends this bearer token on every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def system_client(app, key, scope=ALL_SYSTEM_SCOPES):
    """A test client authorized as a freshly registered backend with `scope`."""
    client_id = register_backend(app, key, scope)
    return bearer_client(app, backend_token(app.test_client(), client_id, key, scope))
