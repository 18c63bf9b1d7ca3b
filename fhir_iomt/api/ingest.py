"""Device ingestion over HTTP: messages, templates, dead letters (names integrators script against)."""

from urllib.parse import urlencode

import orjson
from flask import current_app, g, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from ..domain.errors import Forbidden, InvalidRequest, NotFound
from ..domain.scopes import INGEST_ADMIN, INGEST_WRITE
from ..fhir.dates import parse_range
from ..services.ingest import RawMessage
from .http import UnsupportedMediaType

blp = Blueprint(
    "ingest", __name__, url_prefix="/ingest",
    description="Device messages in the vendors' own JSON, mapped by MedTech-compatible templates.",
)

JSON_TYPES = {"application/json", "text/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
MESSAGES_BODY = {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {}}]}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}}
JSON_OK = {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}


def _services():
    return current_app.extensions["fhir_iomt"]


def _require(*scopes):
    """Forbidden unless the token holds one of the ingest scopes."""
    if not any(g.access.scopes.has(s) for s in scopes):
        raise Forbidden(f"This needs the scope {' or '.join(scopes)}", scope=scopes[0])


def _owner():
    """The client whose dead letters this request may see: None (all) for ingest:admin."""
    _require(INGEST_WRITE, INGEST_ADMIN)
    return None if g.access.scopes.has(INGEST_ADMIN) else g.access.client_id


def parse_message(text):
    """One message's text as a RawMessage (with the parse error when it is not JSON)."""
    try:
        return RawMessage(text, orjson.loads(text))
    except orjson.JSONDecodeError as error:
        return RawMessage(text, None, f"not valid JSON: {error}")


def _decode(raw):
    return raw.decode("utf-8", errors="replace")


def _messages_from_body():
    mime = (request.mimetype or "").lower()
    if mime not in JSON_TYPES | NDJSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type '{request.content_type}' is not supported; send application/json "
            "(a message or an array of messages) or application/x-ndjson"
        )
    request.max_content_length = current_app.config["INGEST_MAX_CONTENT_LENGTH"]
    raw = request.get_data(cache=False)
    if mime in NDJSON_TYPES:
        # Split on LF only: U+2028 and friends are legal inside JSON strings (str.splitlines splits on them).
        lines = (line.rstrip(b"\r") for line in raw.split(b"\n"))
        return [parse_message(_decode(line)) for line in lines if line.strip()]
    message = parse_message(_decode(raw))
    if isinstance(message.value, list):
        return [RawMessage(orjson.dumps(v).decode(), v) for v in message.value]
    return [message]


@blp.route("/messages")
class Messages(MethodView):
    @blp.doc(requestBody=MESSAGES_BODY, responses={"200": JSON_OK})
    def post(self):
        """Ingest device messages; says per message whether it was accepted or dead-lettered."""
        _require(INGEST_WRITE)
        messages = _messages_from_body()
        if not messages:
            raise InvalidRequest("The body holds no message")
        results = _services().ingest.ingest(messages, source="http", content_type=request.mimetype,
                                            owner=g.access.client_id)
        accepted = sum(r.accepted for r in results)
        return jsonify(accepted=accepted, rejected=len(results) - accepted,
                       results=[r.as_dict() for r in results])


@blp.route("/templates")
class Templates(MethodView):
    @blp.doc(responses={"200": JSON_OK, "404": {"description": "No templates loaded"}})
    def get(self):
        """The active device and FHIR templates, identity mode and limits, with their version."""
        _require(INGEST_WRITE, INGEST_ADMIN)
        current = _services().templates.current_document()
        if current is None:
            raise NotFound("No templates are loaded yet (PUT /ingest/templates)")
        return jsonify(current)

    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
             responses={"200": JSON_OK, "422": {"description": "Invalid templates (nothing applied)"}})
    def put(self):
        """Replace the templates: {deviceTemplate, fhirTemplate, identityMode, limits}; a new version."""
        _require(INGEST_ADMIN)
        if (request.mimetype or "").lower() not in JSON_TYPES:
            raise UnsupportedMediaType("Send the templates as application/json")
        try:
            document = orjson.loads(request.get_data(cache=False))
        except orjson.JSONDecodeError as error:
            raise InvalidRequest(f"The body is not valid JSON: {error}") from error
        return jsonify(_services().templates.put(document))


def _time_arg(name):
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        found = parse_range(raw)
    except ValueError as error:
        raise InvalidRequest(f"{name} '{raw}' is not a date or instant: {error}") from error
    return found.start if name == "since" else found.end



@blp.route("/dead-letters")
class DeadLetters(MethodView):
    @blp.doc(parameters=[{"name": n, "in": "query", "schema": {"type": "string"}}
                         for n in ("reason", "since", "until", "_count", "_page")],
             responses={"200": JSON_OK})
    def get(self):
        """Dead letters newest first, filterable by reason and time; follow `next` to page."""
        letters, following = _services().dead_letters.page(
            request.args.get("reason"), _time_arg("since"), _time_arg("until"), request.args.get("_count"),
            request.args.get("_page"), _owner(),
        )
        body = {"items": letters}
        if following:
            args = {k: v for k, v in request.args.items() if k != "_page"}
            args["_page"] = following
            body["next"] = f"{request.base_url}?{urlencode(args)}"
        return jsonify(body)


@blp.route("/dead-letters/<letter_id>")
class DeadLetter(MethodView):
    @blp.doc(responses={"200": JSON_OK})
    def get(self, letter_id):
        """One dead letter with its payload and reason."""
        return jsonify(_services().dead_letters.get(letter_id, _owner()))

    @blp.doc(responses={"204": {"description": "Deleted"}})
    def delete(self, letter_id):
        """Delete a dead letter (for example once handled by hand)."""
        _services().dead_letters.delete(letter_id, _owner())
        return "", 204


@blp.route("/dead-letters/<letter_id>/$replay")
class Replay(MethodView):
    @blp.doc(responses={"200": JSON_OK})
    def post(self, letter_id):
        """Map a dead letter again with the current templates."""
        result = _services().ingest.replay(letter_id, parse_message, _owner())
        return jsonify(result.as_dict())
