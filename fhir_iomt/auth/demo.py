"""Demo access for `make run`: a backend client whose key is on disk, demo users, and a token helper."""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from .jwt import ASSERTION_TYPE

DEMO_SCOPE = "system/*.cruds system/AuditEvent.rs ingest:write ingest:admin launch:create introspect"
DEMO_USERS = (
    {"username": "clinician", "password": "clinician-demo", "role": "clinician", "patient": None},
    {"username": "patient1", "password": "patient1-demo", "role": "patient", "patient": "demo-patient-1"},
)


def _write_private(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)


def ensure_demo_access(auth, folder, server_url):
    """Register the demo backend client (key kept in `folder`) and demo users, once."""
    folder = Path(folder)
    client_file = folder / "demo-backend.json"
    known = json.loads(client_file.read_text()) if client_file.exists() else None
    if known is None or auth.store.client(known["client_id"]) is None:
        key = ECKey.generate_key("P-384", auto_kid=True)
        created = auth.register_client("Demo backend (make run)", DEMO_SCOPE,
                                       jwks={"keys": [key.as_dict(private=False)]})
        key_file = folder / "demo-backend-key.jwk.json"
        _write_private(key_file, key.as_dict(private=True))
        known = {"client_id": created["client_id"], "key_file": str(key_file.resolve()), "scope": DEMO_SCOPE}
    known["token_url"] = f"{server_url}/auth/token"
    _write_private(client_file, known)
    for user in DEMO_USERS:
        if auth.store.user(user["username"]) is None:
            auth.add_user(user["username"], user["password"], user["role"], user["patient"])
    return known


def request_backend_token(client, scope=None):
    """An access token from the token endpoint, authenticating with a freshly signed ES384 assertion."""
    key = ECKey.import_key(json.loads(Path(client["key_file"]).read_text()))
    now = int(time.time())
    claims = {"iss": client["client_id"], "sub": client["client_id"], "aud": client["token_url"],
              "exp": now + 240, "jti": uuid.uuid4().hex}
    assertion = jwt.encode({"alg": "ES384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["ES384"])
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope or client["scope"],
                                   "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}).encode()
    request = urllib.request.Request(client["token_url"], data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the configured server)
            return json.loads(response.read())["access_token"]
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"token request refused ({error.code}): {error.read().decode(errors='replace')}") from error
    except urllib.error.URLError as error:
        raise RuntimeError(f"cannot reach {client['token_url']}: {error.reason}") from error
