"""Resource protection and audit: every /fhir and /ingest request needs a bearer token, every access is recorded."""

from datetime import UTC, datetime

from flask import current_app, g, request

from ..api.http import base_url
from ..fhir.audit import AuditRecord
from ..services.access import Guard

PROTECTED_BLUEPRINTS = {"fhir", "ingest"}
PUBLIC_ENDPOINTS = {"fhir.Metadata"}
AUDITED_BLUEPRINTS = PROTECTED_BLUEPRINTS | {"auth"}
# (endpoint, method) -> FHIR restful interaction; the rest of /fhir and /ingest are "operation".
INTERACTIONS = {
    ("fhir.TypeEndpoint", "GET"): "search-type", ("fhir.TypeEndpoint", "POST"): "create",
    ("fhir.SearchEndpoint", "POST"): "search-type", ("fhir.TypeHistory", "GET"): "history-type",
    ("fhir.InstanceEndpoint", "GET"): "read", ("fhir.InstanceEndpoint", "PUT"): "update",
    ("fhir.InstanceEndpoint", "DELETE"): "delete", ("fhir.InstanceHistory", "GET"): "history-instance",
    ("fhir.VersionRead", "GET"): "vread",
}
ACTIONS = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "DELETE": "D"}
AUTH_AUDITED = {"auth.Authorize", "auth.Login", "auth.ConsentPage", "auth.Token", "auth.Introspect",
                "auth.Revoke", "auth.Launch"}


def _utc_now():
    return datetime.now(UTC)


def _services():
    return current_app.extensions["fhir_iomt"]


def authenticate():
    """before_request: establish g.access and g.guard from the bearer token (401 without a valid one)."""
    if request.blueprint not in PROTECTED_BLUEPRINTS or request.endpoint in PUBLIC_ENDPOINTS:
        return
    access = _services().auth.authenticate_bearer(request.headers.get("Authorization"))
    g.access = access
    # As in search: absolute references on the configured base or the request's own base are local.
    g.guard = Guard(access, _services().search.local_bases + (base_url(),))


def _interaction():
    endpoint = request.endpoint or ""
    if endpoint.startswith("auth."):
        return endpoint.split(".", 1)[1].lower()
    return INTERACTIONS.get((endpoint, request.method), "operation")


def _should_audit():
    if request.blueprint not in AUDITED_BLUEPRINTS or request.endpoint in PUBLIC_ENDPOINTS:
        return False
    return request.blueprint != "auth" or (request.endpoint in AUTH_AUDITED and request.method == "POST")


def _record(response):
    access = g.get("access")
    noted = g.get("audit_auth", {})
    view_args = request.view_args or {}
    guard = g.get("guard")
    patients = guard.patients_seen if guard else []
    return AuditRecord(
        interaction=_interaction(), action=ACTIONS.get(request.method, "E"), method=request.method,
        path=request.path, status=response.status_code, recorded=(current_app.config.get("CLOCK") or _utc_now)(),
        resource_type=view_args.get("resource_type"),
        resource_id=view_args.get("resource_id") or _created_id(response),
        query=request.query_string.decode("latin-1") or None,
        client_id=access.client_id if access else noted.get("client"),
        client_name=access.client_name if access else None,
        username=access.username if access else noted.get("username"),
        fhir_user=access.fhir_user if access else None,
        patient_id=(access.patient if access and access.patient else (patients[0] if patients else None)),
        address=request.remote_addr,
        outcome_desc=g.get("audit_reason") or noted.get("outcome"),
    )


def _created_id(response):
    """The id a create assigned, from its Location header (…/Type/id/_history/n)."""
    if request.method != "POST" or response.status_code != 201 or "Location" not in response.headers:
        return None
    parts = response.headers["Location"].split("/")
    return parts[-3] if len(parts) >= 3 and parts[-2] == "_history" else None


def audit(response):
    """after_request: record an AuditEvent for every protected access and every refusal."""
    if not _should_audit():
        return response
    try:
        _services().audit.record(_record(response))
    except Exception:  # noqa: BLE001 - a failed audit write is logged, the answer already exists
        current_app.logger.exception("audit write failed")
    return response


def init_app(app):
    """Install authentication and audit on the app."""
    app.before_request(authenticate)
    app.after_request(audit)

