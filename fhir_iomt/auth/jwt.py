"""JSON Web Tokens: client assertions (private_key_jwt) checked, id_tokens signed, JWKS fetched and cached."""

import threading
import time
import urllib.request

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from .errors import OAuthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
ID_TOKEN_ALGORITHM = "RS256"
MAX_JWKS_BYTES = 256 * 1024


def _invalid(description):
    return OAuthError("invalid_client", description, 401)


def fetch_jwks(url, timeout=5.0):
    """Download a JWKS document (HTTPS in production; size-capped)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (registered by an administrator)
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return orjson.loads(body)


class JwksCache:
    """JWKS documents by URL, kept `ttl` seconds; a key id not in the cached set triggers one refetch."""

    def __init__(self, ttl, fetch=fetch_jwks, min_refetch=10.0):
        self.ttl = ttl
        self.fetch = fetch
        self.min_refetch = min_refetch
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, url, kid=None):
        """The JWKS of a URL; refetched when stale or (at most every min_refetch s) when `kid` is unknown."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(url)
        if entry is not None:
            fetched_at, document = entry
            fresh = now - fetched_at < self.ttl
            known = kid is None or any(k.get("kid") == kid for k in document.get("keys", []))
            if fresh and (known or now - fetched_at < self.min_refetch):
                return document
        try:
            document = self.fetch(url)
        except (OSError, ValueError) as error:
            raise _invalid(f"The client's JWKS URL could not be read: {type(error).__name__}") from error
        with self._lock:
            self._entries[url] = (now, document)
        return document


def unverified_header(assertion):
    """The protected header of a compact JWS, before any signature check."""
    try:
        return jws.extract_compact(assertion.encode()).protected
    except (JoseError, ValueError, UnicodeError) as error:
        raise _invalid("client_assertion is not a compact JWT") from error


def unverified_claims(assertion):
    """The claims of a compact JWS, before any signature check (only to find the client)."""
    try:
        claims = orjson.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError, UnicodeError) as error:
        raise _invalid("client_assertion is not a compact JWT") from error
    if not isinstance(claims, dict):
        raise _invalid("client_assertion claims are not a JSON object")
    return claims


def _client_keys(client, kid, jwks_cache):
    if client.get("jwks"):
        return client["jwks"]
    if client.get("jwks_url"):
        return jwks_cache.get(client["jwks_url"], kid)
    raise _invalid("This client has no registered keys")


def _check_header(header, client):
    alg = header.get("alg")
    if alg not in ASSERTION_ALGORITHMS:
        raise _invalid(f"client_assertion alg must be one of {', '.join(ASSERTION_ALGORITHMS)}, not {alg!r}")
    if header.get("typ") not in (None, "JWT"):
        raise _invalid("client_assertion typ must be JWT")
    if not header.get("kid"):
        raise _invalid("client_assertion header needs a kid")
    if "jku" in header and header["jku"] != client.get("jwks_url"):
        raise _invalid("client_assertion jku does not match the registered JWKS URL")
    return alg


def _check_claims(claims, client_id, audiences, now, max_lifetime):
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _invalid("client_assertion iss and sub must both be the client_id")
    aud = claims.get("aud")
    if not any(a in audiences for a in (aud if isinstance(aud, list) else [aud])):
        raise _invalid("client_assertion aud must be this server's token endpoint URL")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise _invalid("client_assertion needs a numeric exp")
    if exp <= now:
        raise _invalid("client_assertion has expired")
    if exp > now + max_lifetime:
        raise _invalid(f"client_assertion exp is more than {max_lifetime} seconds ahead")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise _invalid("client_assertion needs a jti")


def verify_assertion(assertion, client, audiences, now, max_lifetime, jwks_cache):
    """The verified claims of a private_key_jwt client assertion, or OAuthError invalid_client.

    Only RS384 and ES384 are accepted, so `alg: none` and HMAC signed with a public key fail
    before any key is used. Replay (jti) is the caller's check: it needs storage.
    """
    header = unverified_header(assertion)
    alg = _check_header(header, client)
    try:
        keys = KeySet.import_key_set(_client_keys(client, header["kid"], jwks_cache))
        claims = jwt.decode(assertion, keys, algorithms=[alg]).claims
    except OAuthError:
        raise
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise _invalid(f"client_assertion signature check failed: {type(error).__name__}") from error
    _check_claims(claims, client["_id"], audiences, now, max_lifetime)
    return claims


def new_signing_key():
    """A new RSA private key for id_tokens, as a JWK dict with its kid."""
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ID_TOKEN_ALGORITHM}, auto_kid=True)
    return {"jwk": key.as_dict(private=True)}


class SigningKey:
    """The server's id_token key (loaded from the store on first use, shared by every process)."""

    def __init__(self, load):
        self._load = load
        self._key = None

    def _get(self):
        if self._key is None:
            self._key = RSAKey.import_key(self._load()["jwk"])
        return self._key

    def sign(self, claims):
        """A signed compact JWT of the claims."""
        key = self._get()
        header = {"alg": ID_TOKEN_ALGORITHM, "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, key, algorithms=[ID_TOKEN_ALGORITHM])

    def public_jwks(self):
        """The public JWKS clients verify id_tokens with."""
        return {"keys": [self._get().as_dict(private=False)]}
