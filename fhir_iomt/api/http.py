"""HTTP details of the FHIR API: formats, bodies, preferences, responses and errors."""

import orjson
from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..domain.errors import FhirError, InvalidRequest
from ..fhir.outcome import issue, operation_outcome, outcome_for_error

FHIR_JSON = "application/fhir+json"
JSON_FORMATS = {"json", FHIR_JSON, "application/json", "application/json+fhir"}
BODY_TYPES = {FHIR_JSON, "application/json", "application/json+fhir"}
HTTP_ISSUE_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported",
                    413: "too-long", 415: "not-supported"}


class NotAcceptable(FhirError):
    """The client asked for a format other than JSON."""

    status = 406
    code = "not-supported"


class UnsupportedMediaType(FhirError):
    """The request body is not FHIR JSON."""

    status = 415
    code = "not-supported"


# Accept entries this server satisfies, and the type it answers each with.
ANSWERS = {FHIR_JSON: FHIR_JSON, "application/json+fhir": FHIR_JSON, "*/*": FHIR_JSON,
           "application/*": FHIR_JSON, "application/json": "application/json"}


def _response_mime():
    wanted = request.args.get("_format")
    if wanted is not None:
        if wanted.split(";")[0].strip() not in JSON_FORMATS:
            raise NotAcceptable(f"_format '{wanted}' is not supported; this server speaks JSON")
        return "application/json" if wanted == "application/json" else FHIR_JSON
    header = request.headers.get("Accept")
    if not header:
        return FHIR_JSON
    offers = [
        (quality, ANSWERS[mime] == FHIR_JSON, ANSWERS[mime])
        for value, quality in request.accept_mimetypes
        if quality > 0 and (mime := value.split(";")[0].strip().lower()) in ANSWERS
    ]
    if offers:
        return max(offers)[2]
    raise NotAcceptable(f"Cannot produce any of: {header}; this server speaks JSON")


def negotiate():
    """Decide the response format once per request, so a bad one fails before any work."""
    g.response_mime = _response_mime()


def fhir_response(body=None, status=200, headers=None):
    """A FHIR JSON response honouring _format, Accept and _pretty."""
    mime = g.get("response_mime")
    if mime is None:
        try:
            mime = _response_mime()
        except NotAcceptable:
            mime = FHIR_JSON
    pretty = request.args.get("_pretty") == "true"
    payload = b"" if body is None else orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)
    response = Response(payload, status=status, headers=headers or {})
    if body is None:
        del response.headers["Content-Type"]
    else:
        response.content_type = f"{mime}; charset=utf-8"
    return response


def read_body():
    """The request's JSON body as a dict; 415 for another media type, 400 for bad JSON."""
    mime = (request.mimetype or "").lower()
    if mime not in BODY_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type '{request.content_type}' is not supported; send application/fhir+json"
        )
    raw = request.get_data(cache=False)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"The body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object (a FHIR resource)")
    return body


def prefer(name):
    """Value of one Prefer header token (e.g. return, handling), or None."""
    for part in request.headers.get("Prefer", "").split(";"):
        for token in part.split(","):
            key, _, value = token.strip().partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"').lower()
    return None


def base_url():
    """The public base URL of the FHIR endpoint (computed once per request)."""
    found = g.get("base_url")
    if found is None:
        found = g.base_url = root_url() + current_app.config["FHIR_BASE_PATH"]
    return found


def root_url():
    """The public root URL of the server (the FHIR base without its path)."""
    configured = current_app.config.get("PUBLIC_BASE_URL")
    return configured.rstrip("/") if configured else request.host_url.rstrip("/")


def _outcome_response(outcome, status, headers=None):
    response = fhir_response(outcome, status, headers)
    response.content_type = f"{FHIR_JSON}; charset=utf-8"
    return response


def handle_fhir_error(error):
    """OperationOutcome for a domain error (a 401/403's reason is kept for the audit record)."""
    if error.status in (401, 403):
        g.audit_reason = error.diagnostics
    return _outcome_response(outcome_for_error(error), error.status, error.headers)


def handle_http_exception(error):
    """OperationOutcome for a routing or protocol error (404, 405, 413...), keeping its headers."""
    code = HTTP_ISSUE_CODES.get(error.code, "processing")
    severity = "error" if error.code >= 400 else "information"
    outcome = operation_outcome([issue(severity, code, error.description or error.name)])
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return _outcome_response(outcome, error.code, headers)


def handle_database_error(error):
    """503 with an OperationOutcome when the database fails; details stay in the server log."""
    current_app.logger.error("database error: %s", type(error).__name__)
    outcome = operation_outcome([issue("error", "transient", "The database is unavailable; retry")])
    return _outcome_response(outcome, 503, {"Retry-After": "5"})


def handle_unexpected(error):
    """500 with an OperationOutcome; the traceback goes to the server log, not the client."""
    current_app.logger.exception("unhandled error")
    outcome = operation_outcome([issue("fatal", "exception", "Internal server error")])
    return _outcome_response(outcome, 500)


def register_error_handlers(app, database_errors):
    """Make every error an OperationOutcome (after flask-smorest's own handler, to replace it)."""
    app.register_error_handler(FhirError, handle_fhir_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(database_errors, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
