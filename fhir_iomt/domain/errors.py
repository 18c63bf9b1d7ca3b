"""Errors raised by the domain and services, each mapped to an HTTP status and an issue code."""


class FhirError(Exception):
    """A failure reported to the client as an OperationOutcome."""

    status = 400
    code = "processing"
    headers = {}

    def __init__(self, diagnostics, expression=None, status=None, code=None):
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = list(expression or [])
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class InvalidResource(FhirError):
    """The resource does not conform to FHIR R4."""

    status = 400
    code = "invalid"


class InvalidRequest(FhirError):
    """The request is malformed (bad JSON, bad parameter)."""

    status = 400
    code = "invalid"


class UnsupportedParameter(FhirError):
    """A search parameter or modifier is not supported."""

    status = 400
    code = "not-supported"


class NotFound(FhirError):
    """Unknown resource type, id or version."""

    status = 404
    code = "not-found"


class MethodNotAllowed(FhirError):
    """The interaction is not offered on this resource type (e.g. writing the audit trail)."""

    status = 405
    code = "not-supported"

    def __init__(self, diagnostics, allow="GET, HEAD"):
        super().__init__(diagnostics)
        self.headers = {"Allow": allow}


class Gone(FhirError):
    """The resource was deleted."""

    status = 410
    code = "deleted"


class VersionConflict(FhirError):
    """The If-Match version is not the current one."""

    status = 412
    code = "conflict"


class Conflict(FhirError):
    """A concurrent write won; retry."""

    status = 409
    code = "conflict"


class PreconditionFailed(FhirError):
    """A conditional interaction matched more than one resource."""

    status = 412
    code = "duplicate"


def _bearer_challenge(error, description, scope=None):
    text = description.replace("\\", "").replace('"', "'")
    challenge = f'Bearer realm="fhir-iomt", error="{error}", error_description="{text}"'
    return challenge + (f', scope="{scope}"' if scope else "")


class Unauthorized(FhirError):
    """No bearer token, or one that is unknown, expired or revoked (RFC 6750 invalid_token)."""

    status = 401
    code = "login"

    def __init__(self, diagnostics, error="invalid_token"):
        super().__init__(diagnostics)
        self.headers = {
            "WWW-Authenticate": _bearer_challenge(error, diagnostics) if error else 'Bearer realm="fhir-iomt"'
        }


class Forbidden(FhirError):
    """The token is valid but its scopes or patient context do not allow this (RFC 6750 insufficient_scope)."""

    status = 403
    code = "forbidden"

    def __init__(self, diagnostics, scope=None):
        super().__init__(diagnostics)
        self.headers = {"WWW-Authenticate": _bearer_challenge("insufficient_scope", diagnostics, scope)}
