"""HTTP endpoints of the authorization server: authorize (login, consent), token, introspect, revoke, JWKS."""

from urllib.parse import unquote_plus, urlencode

from flask import current_app, g, jsonify, redirect, render_template, request
from flask.views import MethodView
from flask_smorest import Blueprint

from ..api.http import base_url, root_url
from ..domain.errors import Forbidden, InvalidRequest
from .discovery import endpoint_urls, openid_configuration, smart_configuration
from .errors import AuthorizeError, OAuthError
from .service import Endpoints, LoginFailed

blp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="templates",
                description="SMART on FHIR authorization server (OAuth 2: authorization code + PKCE, "
                            "client_credentials with private_key_jwt, introspection, revocation).")
wellknown = Blueprint("wellknown", __name__, description="SMART and OpenID discovery documents.")

BINDING_COOKIE = "fhir_iomt_authz"
FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}
JSON_OK = {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SECURITY_SCHEME = {
    "type": "oauth2",
    "description": "SMART on FHIR: apps use the authorization code flow with PKCE S256; backend services use "
                   "client_credentials with a private_key_jwt assertion (RS384 or ES384). Discovery: "
                   "/fhir/.well-known/smart-configuration.",
    "flows": {
        "authorizationCode": {"authorizationUrl": "/auth/authorize", "tokenUrl": "/auth/token",
                              "refreshUrl": "/auth/token", "scopes": {
                                  "patient/*.rs": "Read and search the patient in context",
                                  "user/*.cruds": "What the signed-in clinician may do",
                                  "launch/patient": "Pick a patient at launch", "openid": "id_token",
                                  "fhirUser": "The user's FHIR resource", "offline_access": "Refresh tokens"}},
        "clientCredentials": {"tokenUrl": "/auth/token", "scopes": {
            "system/*.cruds": "Backend access to every resource type", "system/AuditEvent.rs": "The audit trail",
            "ingest:write": "Send device messages, see own dead letters",
            "ingest:admin": "Manage templates and every dead letter", "launch:create": "Create EHR launch contexts",
            "introspect": "Introspect any token"}},
    },
}


def _auth():
    return current_app.extensions["fhir_iomt"].auth


def _endpoints():
    return Endpoints(base_url(), endpoint_urls(root_url())["token"])


def _basic_credentials():
    """(client_id, secret) from HTTP Basic (form-urlencoded per RFC 6749 2.3.1), or None."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return None
    return unquote_plus(credentials.username or ""), unquote_plus(credentials.password or "")


def _oauth_json(body, status=200):
    response = jsonify(body)
    response.status_code = status
    response.headers.update(NO_STORE)
    return response


def _form():
    if request.mimetype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send the parameters as application/x-www-form-urlencoded")
    form = request.form.to_dict(flat=False)
    repeated = [k for k, v in form.items() if len(v) > 1]
    if repeated:
        raise OAuthError("invalid_request", f"Parameters must not repeat: {', '.join(repeated)}")
    return {k: v[0] for k, v in form.items()}


def _note(**fields):
    """Who and what the audit record of this auth request names."""
    g.audit_auth = {**g.get("audit_auth", {}), **fields}


def handle_oauth_error(error):
    """RFC 6749 JSON error; invalid_client also challenges for Basic credentials."""
    _note(outcome=error.error)
    response = _oauth_json(error.body(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="fhir-iomt"'
    return response


def handle_authorize_error(error):
    """Send the error back to the app when its redirect URI is trusted, else show it."""
    _note(outcome=error.error)
    if error.redirect_uri:
        query = {"error": error.error, "error_description": error.description}
        if error.state is not None:
            query["state"] = error.state
        separator = "&" if "?" in error.redirect_uri else "?"
        return redirect(f"{error.redirect_uri}{separator}{urlencode(query)}", 302)
    return render_template("auth_error.html", error=error.error, description=error.description), 400


@blp.route("/authorize")
class Authorize(MethodView):
    @blp.doc(security=[], responses={"302": {"description": "To the login page, or back to the app with an error"}})
    def get(self):
        """Start an authorization (response_type=code, PKCE S256, aud, scope, state, launch)."""
        return _begin(request.args.to_dict())

    @blp.doc(security=[], requestBody=FORM, responses={"302": {"description": "As GET"}})
    def post(self):
        """Start an authorization with the parameters in a form body."""
        return _begin(request.form.to_dict())


def _begin(params):
    _note(client=params.get("client_id"))
    request_id, binding = _auth().begin(params, _endpoints())
    response = redirect(f"{request.script_root}/auth/login?{urlencode({'request': request_id})}", 302)
    response.set_cookie(BINDING_COOKIE, binding, httponly=True, samesite="Lax", secure=request.is_secure,
                        path="/auth", max_age=current_app.config["AUTH_REQUEST_SECONDS"])
    return response


def _binding():
    return request.cookies.get(BINDING_COOKIE)


@blp.route("/login")
class Login(MethodView):
    @blp.doc(security=[], responses={"200": {"description": "HTML login form"}})
    def get(self):
        """The login form of a pending authorization."""
        request_id = request.args.get("request")
        _auth().pending(request_id, _binding())
        return render_template("auth_login.html", request_id=request_id, error=None)

    @blp.doc(security=[], requestBody=FORM, responses={"302": {"description": "To the consent page"}})
    def post(self):
        """Check the username and password."""
        request_id, username = request.form.get("request"), request.form.get("username", "")
        _note(username=username)
        try:
            _auth().login(request_id, _binding(), username, request.form.get("password", ""))
        except LoginFailed as failed:
            _note(outcome="login-failed")
            status = 429 if failed.retry_after else 403
            page = render_template("auth_login.html", request_id=request_id, error=str(failed))
            headers = {"Retry-After": str(failed.retry_after)} if failed.retry_after else {}
            return page, status, headers
        return redirect(f"{request.script_root}/auth/consent?{urlencode({'request': request_id})}", 302)


@blp.route("/consent")
class ConsentPage(MethodView):
    @blp.doc(security=[], responses={"200": {"description": "HTML consent form"}})
    def get(self):
        """The consent form: the app, the permissions it gets, and a patient picker when one is needed."""
        return _consent_page(request.args.get("request"), None)

    @blp.doc(security=[], requestBody=FORM,
             responses={"302": {"description": "Back to the app with a code or an error"}})
    def post(self):
        """Approve or deny; the app gets a code (or access_denied) at its redirect URI."""
        request_id = request.form.get("request")
        approved = request.form.get("decision") == "allow"
        try:
            target = _auth().decide(request_id, _binding(), approved, request.form.get("patient"))
        except InvalidRequest as error:
            return _consent_page(request_id, error.diagnostics, 400)
        _note(outcome="approved" if approved else "denied")
        return redirect(target, 302)


def _consent_page(request_id, error, status=200):
    consent = _auth().consent(request_id, _binding())
    if consent is None:
        return redirect(f"{request.script_root}/auth/login?{urlencode({'request': request_id})}", 302)
    patients = _patient_choices(request.args.get("q", "")) if consent.needs_patient else []
    page = render_template("auth_consent.html", request_id=request_id, consent=consent, patients=patients,
                           query=request.args.get("q", ""), error=error)
    return page, status


def _patient_choices(text):
    """Up to 50 patients for the picker, filtered by name when the clinician typed one."""
    search = current_app.extensions["fhir_iomt"].search
    items = [("name", text.strip()), ("_count", "50")] if text.strip() else [("_count", "50")]
    page = search.search(search.parse("Patient", items))
    return [_patient_label(p) for p in page.resources]


def _patient_label(patient):
    name = (patient.get("name") or [{}])[0]
    text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
    return {"id": patient["id"], "name": text or patient["id"], "birthDate": patient.get("birthDate", "")}


@blp.route("/token")
class Token(MethodView):
    @blp.doc(security=[], requestBody=FORM, responses={"200": JSON_OK, "400": JSON_OK, "401": JSON_OK})
    def post(self):
        """Token endpoint: authorization_code (+PKCE), refresh_token (rotated), client_credentials."""
        form = _form()
        _note(client=form.get("client_id"), grant_type=form.get("grant_type"))
        body = _auth().token(form, _basic_credentials(), _endpoints(), on_client=lambda cid: _note(client=cid))
        _note(outcome="issued")
        return _oauth_json(body)


@blp.route("/introspect")
class Introspect(MethodView):
    @blp.doc(security=[], requestBody=FORM, responses={"200": JSON_OK})
    def post(self):
        """RFC 7662 token introspection (the calling client authenticates)."""
        return _oauth_json(_auth().introspect(_form(), _basic_credentials(), _endpoints()))


@blp.route("/revoke")
class Revoke(MethodView):
    @blp.doc(security=[], requestBody=FORM, responses={"200": {"description": "Revoked (also for unknown tokens)"}})
    def post(self):
        """RFC 7009 revocation: the token and every token of its grant stop working at once."""
        _auth().revoke(_form(), _basic_credentials(), _endpoints())
        return _oauth_json({})


@blp.route("/jwks")
class Jwks(MethodView):
    @blp.doc(security=[], responses={"200": JSON_OK})
    def get(self):
        """Public keys of the id_tokens."""
        return jsonify(_auth().jwks_document())


@blp.route("/launch")
class Launch(MethodView):
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
             responses={"201": JSON_OK})
    def post(self):
        """Create an EHR launch context {patient}; needs a bearer token with scope launch:create."""
        access = _auth().authenticate_bearer(request.headers.get("Authorization"))
        g.access = access
        if not access.scopes.has("launch:create"):
            raise Forbidden("Creating a launch needs the scope launch:create", scope="launch:create")
        body = request.get_json(silent=True) or {}
        if not isinstance(body, dict):
            raise InvalidRequest("Send {\"patient\": \"<id>\"}")
        created = _auth().create_launch(body.get("patient"), access.client_id)
        return jsonify(created), 201


@wellknown.route("/.well-known/smart-configuration")
@wellknown.route("/fhir/.well-known/smart-configuration")
class SmartConfiguration(MethodView):
    @wellknown.doc(security=[], responses={"200": JSON_OK})
    def get(self):
        """SMART App Launch configuration (endpoints, capabilities, scopes)."""
        return jsonify(smart_configuration(root_url(), base_url()))


@wellknown.route("/fhir/.well-known/openid-configuration")
class OpenIdConfiguration(MethodView):
    @wellknown.doc(security=[], responses={"200": JSON_OK})
    def get(self):
        """OpenID Connect discovery for id_tokens."""
        return jsonify(openid_configuration(root_url(), base_url()))


def register(api, app):
    """Register the auth and discovery blueprints and their error handlers."""
    api.register_blueprint(blp)
    api.register_blueprint(wellknown)
    app.register_error_handler(OAuthError, handle_oauth_error)
    app.register_error_handler(AuthorizeError, handle_authorize_error)
