"""FHIR R4 REST endpoints: thin views that parse, call a service and respond."""

from datetime import datetime
from urllib.parse import parse_qsl

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.http import http_date

from ..fhir import bundle
from ..fhir.capability import capability_statement
from ..fhir.outcome import information
from .http import (
    UnsupportedMediaType,
    base_url,
    fhir_response,
    negotiate,
    prefer,
    read_body,
)

blp = Blueprint(
    "fhir", __name__, url_prefix="/fhir",
    description="FHIR R4 REST API (application/fhir+json) for Patient, Device and Observation.",
)

CONTROL_PARAMETERS = {"_format", "_pretty"}
TYPE_PATH = {"name": "resource_type", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["Patient", "Device", "Observation"]}}
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


def _search(resource_type, items):
    services = _services()
    parsed = services.search.parse(
        resource_type, items, strict=prefer("handling") == "strict", base=base_url()
    )
    page = services.search.search(parsed)
    return fhir_response(bundle.searchset(base_url(), page, f"{base_url()}/{resource_type}"))


@blp.before_request
def _check_format():
    negotiate()


@blp.route("/metadata")
class Metadata(MethodView):
    @blp.doc(responses={"200": FHIR_OK})
    def get(self):
        """CapabilityStatement of this server (fhirVersion 4.0.1)."""
        config = current_app.config
        statement = capability_statement(
            base_url(), config["SOFTWARE_VERSION"], config["STARTED_AT"],
            config["SEARCH_MAX_COUNT"], config["SEARCH_DEFAULT_COUNT"], config["MAX_CONTENT_LENGTH"],
        )
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
        body = read_body()
        condition = request.headers.get("If-None-Exist")
        items = _parse_query_string(condition) if condition is not None else None
        result = _services().resources.create(resource_type, body, items, base=base_url())
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
        resource = _services().resources.read(resource_type, resource_id)
        return fhir_response(resource, 200, _resource_headers(resource))

    @blp.doc(parameters=[TYPE_PATH], requestBody=RESOURCE_BODY, responses={"200": FHIR_OK})
    def put(self, resource_type, resource_id):
        """Update a resource (If-Match for optimistic locking) or create it with this id."""
        body = read_body()
        result = _services().resources.update(
            resource_type, resource_id, body, request.headers.get("If-Match"), base=base_url()
        )
        return _write_response(result.resource, 201 if result.created else 200)

    @blp.doc(parameters=[TYPE_PATH], responses={"204": {"description": "Deleted"}})
    def delete(self, resource_type, resource_id):
        """Delete a resource; its history stays and a read then answers 410."""
        _services().resources.delete(resource_type, resource_id)
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
        resource = _services().resources.vread(resource_type, resource_id, version_id)
        return fhir_response(resource, 200, _resource_headers(resource))


def _history(resource_type, resource_id):
    items = _search_items()
    page = _services().search.history(resource_type, resource_id, items)
    path = f"{resource_type}/{resource_id}/_history" if resource_id else f"{resource_type}/_history"
    params = [(k, v) for k, v in items if k in ("_count", "_since")]
    return fhir_response(
        bundle.history(base_url(), resource_type, page, f"{base_url()}/{path}", params,
                       request.args.get("_page"))
    )
