"""Real SMART on FHIR access to a running `fhir-iomt serve`: registrations and real tokens.

Clients and users are registered the way an administrator does, through the auth service over
the server's own (embedded) database; tokens come from the server's real /auth/token endpoint.
The HTML login and consent pages are driven over HTTP like a browser: forms are read from the
page and submitted, and the final redirect to the app is not followed (its Location is the
callback URL the app would receive).
"""

import http.server
import json
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests

from fhir_iomt import create_app
from fhir_iomt.config import load_config
from tests.support.oauth import ALL_SYSTEM_SCOPES, new_key, public_jwks, token_form

from .conftest import DB_URI_PATTERN

REDIRECT_URI = "http://127.0.0.1:9/callback"  # nothing listens: the app's callback is read from Location
PASSWORD = "correct horse battery"
TIMEOUT = 30


def database_uri(server):
    """The embedded database URI the server printed in its banner."""
    match = DB_URI_PATTERN.search(server.log_path.read_text())
    if match is None:
        pytest.fail(f"no database URI in the server banner:\n{server.output()}")
    host, port = match.groups()
    return f"mongodb://{host}:{port}/"


class ServerAuth:
    """Administration of one running server's authorization data, and real tokens from it."""

    def __init__(self, server):
        self.server = server
        # The same database the server uses: its URI from the banner, its name from the same settings.
        self.app = create_app({"MONGODB_URI": database_uri(server), "MONGODB_DB": load_config()["MONGODB_DB"]})
        self.auth = self.app.extensions["fhir_iomt"].auth
        self._backend = None

    @property
    def token_url(self):
        return f"{self.server.root}/auth/token"

    def close(self):
        self.app.extensions["fhir_iomt"].close()

    # Registration ----------

    def register_backend(self, *keys, scope=ALL_SYSTEM_SCOPES, jwks_url=None, name="e2e backend"):
        """A private_key_jwt backend client (public JWKS of `keys`, or a JWKS URL); returns its client_id."""
        jwks = None if jwks_url else public_jwks(*keys)
        return self.auth.register_client(name, scope, jwks=jwks, jwks_url=jwks_url)["client_id"]

    def register_app(self, scope, public=False, name="e2e SMART app", redirect_uri=REDIRECT_URI):
        """An authorization code client: {client_id, client_secret (confidential only), ...}."""
        return self.auth.register_client(name, scope, redirect_uris=[redirect_uri], public=public)

    def add_user(self, username, role, patient_id=None, password=PASSWORD):
        return self.auth.add_user(username, password, role, patient_id)

    # Tokens ----------

    def backend(self):
        """(client_id, key) of this helper's own backend client with every system scope (registered once)."""
        if self._backend is None:
            key = new_key("ES384")
            self._backend = (self.register_backend(key), key)
        return self._backend

    def assertion_form(self, scope=ALL_SYSTEM_SCOPES):
        """A client_credentials form with a freshly signed assertion of this helper's backend client."""
        client_id, key = self.backend()
        return token_form(client_id, key, self.token_url, scope)

    def backend_token(self, scope=ALL_SYSTEM_SCOPES):
        """A fresh access token from the server's token endpoint (client_credentials, private_key_jwt)."""
        response = requests.post(self.token_url, data=self.assertion_form(scope), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def headers(self, scope=ALL_SYSTEM_SCOPES):
        """{"Authorization": "Bearer <fresh token>"}."""
        return {"Authorization": f"Bearer {self.backend_token(scope)}"}


# HTML forms ----------


@dataclass
class Form:
    """One <form> of a page: where it goes, its fields and its choices."""

    method: str
    action: str
    hidden: dict = field(default_factory=dict)
    fields: list = field(default_factory=list)  # names of text/password/search inputs
    radios: dict = field(default_factory=dict)  # name -> [values]
    buttons: list = field(default_factory=list)  # [(name, value)]


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(Form((attrs.get("method") or "get").lower(), attrs.get("action") or ""))
            return
        if not self.forms or not attrs.get("name"):
            return
        form, name = self.forms[-1], attrs["name"]
        kind = (attrs.get("type") or "text").lower()
        if tag == "input" and kind == "hidden":
            form.hidden[name] = attrs.get("value", "")
        elif tag == "input" and kind == "radio":
            form.radios.setdefault(name, []).append(attrs.get("value", ""))
        elif tag == "input":
            form.fields.append(name)
        elif tag == "button":
            form.buttons.append((name, attrs.get("value", "")))


def forms(html):
    """The forms of an HTML page, in order."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def only_form(html, method):
    """The single form of the page with this method."""
    found = [f for f in forms(html) if f.method == method]
    assert len(found) == 1, f"expected one {method} form, found {len(found)}:\n{html}"
    return found[0]


class Browser:
    """A user's browser (cookies kept) going through the server's login and consent pages."""

    def __init__(self):
        self.session = requests.Session()

    def get(self, url, **params):
        response = self.session.get(url, params=params or None, allow_redirects=False, timeout=TIMEOUT)
        assert response.status_code in (200, 302, 303), f"{response.status_code} for {url}: {response.text}"
        return response

    def follow(self, response):
        """GET the Location of a redirect (relative Locations are resolved against the request URL)."""
        assert response.status_code in (302, 303), f"{response.status_code}: {response.text}"
        return self.get(urljoin(response.url, response.headers["Location"]))

    def submit(self, page, form, values):
        """Submit a form of `page` with its hidden fields plus `values`; the redirect is not followed."""
        target = urljoin(page.url, form.action)
        data = {**form.hidden, **values}
        if form.method == "post":
            return self.session.post(target, data=data, allow_redirects=False, timeout=TIMEOUT)
        return self.session.get(target, params=data, allow_redirects=False, timeout=TIMEOUT)

    def log_in(self, authorize_url, username, password=PASSWORD):
        """Open the app's authorize URL and sign in; returns the consent page."""
        login = self.follow(self.get(authorize_url))
        form = only_form(login.text, "post")
        assert {"username", "password"} <= set(form.fields), form
        response = self.submit(login, form, {"username": username, "password": password})
        assert response.status_code == 302, f"login refused ({response.status_code}): {response.text}"
        consent = self.follow(response)
        assert consent.status_code == 200, consent.text
        return consent

    def pick_patient(self, consent, name, patient_id):
        """Search the consent page's patient picker by name; the page now listing `patient_id`."""
        search = only_form(consent.text, "get")
        query = next(f for f in search.fields if f not in search.hidden)
        page = self.submit(consent, search, {query: name})
        assert page.status_code == 200, page.text
        choices = only_form(page.text, "post").radios.get("patient", [])
        assert patient_id in choices, f"{patient_id} not offered: {choices}"
        return page

    def allow(self, consent, patient_id=None):
        """Press Allow (with the patient radio chosen when given); returns the app's callback URL."""
        form = only_form(consent.text, "post")
        decision = dict(form.buttons)
        assert decision.get("decision") in ("allow", "deny"), form.buttons
        values = {"decision": "allow"}
        if patient_id is not None:
            assert patient_id in form.radios.get("patient", []), form.radios
            values["patient"] = patient_id
        response = self.submit(consent, form, values)
        assert response.status_code == 302, f"consent refused ({response.status_code}): {response.text}"
        return response.headers["Location"]


# A JWKS URL ----------


class JwksServer:
    """A tiny HTTP server on a free loopback port serving one JWKS document (and counting its fetches)."""

    def __init__(self, jwks, path="/jwks.json"):
        self.jwks, self.path, self.fetches = jwks, path, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                owner.fetches.append(self.path)
                if self.path != owner.path:
                    self.send_error(404)
                    return
                body = json.dumps(owner.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
