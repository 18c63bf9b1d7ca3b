"""Secrets of the authorization server: random values, their digests, and password hashes."""

import base64
import hashlib
import hmac
import secrets

# scrypt is memory-hard: n=2**14, r=8 uses 16 MiB per hash, so guessing in bulk is costly.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024


def new_secret(size=32):
    """A URL-safe random secret (codes, tokens, client secrets)."""
    return secrets.token_urlsafe(size)


def digest(secret):
    """SHA-256 hex digest under which a high-entropy secret is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(data):
    return base64.b64encode(data).decode()


def hash_password(password, n=SCRYPT_N):
    """A salted scrypt hash, 'scrypt$n$r$p$salt$hash'."""
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(derived)}"


def verify_password(password, stored):
    """True when the password matches a hash made by hash_password (constant-time compare)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                 maxmem=SCRYPT_MAXMEM)
    except (ValueError, AttributeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


def same_digest(secret, stored_digest):
    """Constant-time check of a secret against its stored digest."""
    return bool(stored_digest) and hmac.compare_digest(digest(secret), stored_digest)


def s256_challenge(verifier):
    """PKCE S256 challenge of a code verifier (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")
