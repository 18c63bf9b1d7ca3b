"""FHIR R4 REST endpoints: thin views that parse, call a service and respond."""

from datetime import datetime
from urllib.parse import parse_qsl

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.http import http_date

from ..auth.discovery import capability_security
from ..fhir import bundle
from ..fhir.audit import AUDIT_TYPE
from ..fhir.capability import capability_statement
from ..fhir.outcome import information
from ..services.resources import check_writable
from .http import (
    UnsupportedMediaType,
    base_url,
    fhir_response,
    negotiate,
    prefer,
    read_body,
    root_url,
)

blp = Blueprint(
    "fhir", __name__, url_prefix="/fhir",
    description="FHIR R4 REST API (application/fhir+json) for Patient, Device and Observation.",
)

CONTROL_PARAMETERS = {"_format", "_pretty"}
TYPE_PATH = {"name": "resource_type", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["Patient", "Device", "Observation", "Practitioner", "AuditEvent"]}}
RESOURCE_BODY = {"required": True, "content": {"application/fhir+json": {"schema": {"type": "object"}}}}
FHIR_OK = {"description": "FHIR resource or Bundle",
           "content": {"application/fhir+json": {"schema": {"type": "object"}}}}


def _services():
    return current_app.extensions["fhir_iomt"]


def _etag(resource):
    return f'W/"{resource["meta"]["versionId"]}"'


def _resource_headers(resource):
    url = f"{base_url()}/{resource['resourceType']}/{resource['id']}"
    return {
        "ETag": _etag(resource),
        "Last-Modified": http_date(datetime.fromisoformat(resource["meta"]["lastUpdated"])),
        "Location": f"{url}/_history/{resource['meta']['versionId']}",
        "Content-Location": f"{url}/_history/{resource['meta']['versionId']}",
    }


def _write_response(resource, status):
    headers = _resource_headers(resource)
    wanted = prefer("return")
    if wanted == "minimal":
        return fhir_response(None, status, headers)
    if wanted == "operationoutcome":
        return fhir_response(information(f"{resource['resourceType']}/{resource['id']} stored"),
                             status, headers)
    return fhir_response(resource, status, headers)


def _search_items(extra=()):
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in CONTROL_PARAMETERS]
    return args + [(k, v) for k, v in extra if k not in CONTROL_PARAMETERS]


def _authorize(resource_type, interaction):
    """403 unless the token's scopes grant the interaction on the type at all (before any lookup)."""
    g.guard.constraints(resource_type, interaction)
    if resource_type == AUDIT_TYPE:
        # Events are written in the background: this process's own are stored before it reads the trail.
        _services().audit.flush()
    return g.guard


def _search(resource_type, items):
    services = _services()
    guard = _authorize(resource_type, "search-type")
    items = items + guard.search_items(resource_type)
    parsed = services.search.parse(
        resource_type, items, strict=prefer("handling") == "strict", base=base_url()
    )
    page = services.search.search(parsed, include_filter=guard.include_filter)
    return fhir_response(bundle.searchset(base_url(), page, f"{base_url()}/{resource_type}"))


@blp.before_request
def _check_format():
    negotiate()


@blp.route("/metadata")
class Metadata(MethodView):
    @blp.doc(security=[], responses={"200": FHIR_OK})
    def get(self):
        """CapabilityStatement of this server (fhirVersion 4.0.1)."""
        config = current_app.config
        statement = capability_statement(
            base_url(), config["SOFTWARE_VERSION"], config["STARTED_AT"],
            config["SEARCH_MAX_COUNT"], config["SEARCH_DEFAULT_COUNT"], config["MAX_CONTENT_LENGTH"],
        )
        statement["rest"][0]["security"] = capability_security(root_url())
        return fhir_response(statement)


@blp.route("/<resource_type>")
class TypeEndpoint(MethodView):
    @blp.doc(parameters=[TYPE_PATH], responses={"200": FHIR_OK})
    def get(self, resource_type):
        """Search resources of a type (searchset Bundle, keyset paging via the next link)."""
        return _search(resource_type, _search_items())

    @blp.doc(parameters=[TYPE_PATH], requestBody=RESOURCE_BODY, responses={"201": FHIR_OK})
    def post(self, resource_type):
        """Create a resource (conditional with If-None-Exist)."""
        check_writable(resource_type)
        guard = _authorize(resource_type, "create")
        body = read_body()
        condition = request.headers.get("If-None-Exist")
        items = _parse_query_string(condition) if condition is not None else None
        result = _services().resources.create(resource_type, body, items, base=base_url(),
                                              permit=guard.permit(resource_type, "create"))
        return _write_response(result.resource, 201 if result.created else 200)


def _parse_query_string(text):
    return parse_qsl(text.split("?", 1)[-1], keep_blank_values=True)


@blp.route("/<resource_type>/_search")
class SearchEndpoint(MethodView):
    @blp.doc(parameters=[TYPE_PATH], responses={"200": FHIR_OK},
             requestBody={"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}})
    def post(self, resource_type):
        """Search with parameters in a form body (and the query string)."""
        if request.mimetype != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType("POST _search takes application/x-www-form-urlencoded")
        return _search(resource_type, _search_items(request.form.items(multi=True)))


@blp.route("/<resource_type>/_history")
class TypeHistory(MethodView):
    @blp.doc(parameters=[TYPE_PATH], responses={"200": FHIR_OK})
    def get(self, resource_type):
        """History of every resource of a type, newest first (_since, _count)."""
        return _history(resource_type, None)


@blp.route("/<resource_type>/<resource_id>")
class InstanceEndpoint(MethodView):
    @blp.doc(parameters=[TYPE_PATH], responses={"200": FHIR_OK})
    def get(self, resource_type, resource_id):
        """Read the current version of a resource."""
        guard = _authorize(resource_type, "read")
        resource = _services().resources.read(resource_type, resource_id)
        guard.check(resource_type, "read", resource)
        return fhir_response(resource, 200, _resource_headers(resource))

    @blp.doc(parameters=[TYPE_PATH], requestBody=RESOURCE_BODY, responses={"200": FHIR_OK})
    def put(self, resource_type, resource_id):
        """Update a resource (If-Match for optimistic locking) or create it with this id."""
        check_writable(resource_type)
        guard = _authorize(resource_type, "update")
        body = read_body()
        result = _services().resources.update(
            resource_type, resource_id, body, request.headers.get("If-Match"), base=base_url(),
            permit=guard.permit(resource_type, "update"),
        )
        return _write_response(result.resource, 201 if result.created else 200)

    @blp.doc(parameters=[TYPE_PATH], responses={"204": {"description": "Deleted"}})
    def delete(self, resource_type, resource_id):
        """Delete a resource; its history stays and a read then answers 410."""
        check_writable(resource_type)
        guard = _authorize(resource_type, "delete")
        _services().resources.delete(resource_type, resource_id, permit=guard.permit(resource_type, "delete"))
        return fhir_response(None, 204)


@blp.route("/<resource_type>/<resource_id>/_history")
class InstanceHistory(MethodView):
    @blp.doc(parameters=[TYPE_PATH], responses={"200": FHIR_OK})
    def get(self, resource_type, resource_id):
        """History of one resource, newest version first."""
        return _history(resource_type, resource_id)


@blp.route("/<resource_type>/<resource_id>/_history/<version_id>")
class VersionRead(MethodView):
    @blp.doc(parameters=[TYPE_PATH], responses={"200": FHIR_OK})
    def get(self, resource_type, resource_id, version_id):
        """Read one version of a resource (vread)."""
        guard = _authorize(resource_type, "vread")
        resource = _services().resources.vread(resource_type, resource_id, version_id)
        guard.check(resource_type, "vread", resource)
        return fhir_response(resource, 200, _resource_headers(resource))


def _history(resource_type, resource_id):
    interaction = "history-instance" if resource_id else "history-type"
    guard = _authorize(resource_type, interaction)
    items = _search_items()
    page = _services().search.history(resource_type, resource_id, items)
    _confine_history(guard, resource_type, interaction, page)
    path = f"{resource_type}/{resource_id}/_history" if resource_id else f"{resource_type}/_history"
    params = [(k, v) for k, v in items if k in ("_count", "_since")]
    return fhir_response(
        bundle.history(base_url(), resource_type, page, f"{base_url()}/{path}", params,
                       request.args.get("_page"))
    )


def _confine_history(guard, resource_type, interaction, page):
    """Keep only the history entries the token may see; 403 when it may see none of one resource's versions."""
    if guard.constraints(resource_type, interaction) is None:
        return
    versions = [e for e in page.entries if e["resource"] is not None]
    allowed = [e for e in versions if guard.allows(resource_type, interaction, e["resource"])]
    if interaction == "history-instance":
        if versions and not allowed:
            guard.check(resource_type, interaction, versions[0]["resource"])
        page.entries = [e for e in page.entries if e["resource"] is None or e in allowed]
    else:
        # A deletion entry has no content to check, so a confined token does not see it; nor the total.
        page.entries = allowed
        page.total = None
