"""Validate resources against the R4 models (fhir.resources R4B) plus the required bindings they skip."""

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ..domain.errors import InvalidResource
from .dates import parse_range
from .json_form import json_form_errors

# Required value-set bindings the models do not enforce (code -> allowed values).
REQUIRED_CODES = {
    "Observation": {
        "status": {
            "registered", "preliminary", "final", "amended", "corrected",
            "cancelled", "entered-in-error", "unknown",
        },
    },
    "Patient": {"gender": {"male", "female", "other", "unknown"}},
    "Device": {"status": {"active", "inactive", "entered-in-error", "unknown"}},
}

# Date elements whose calendar validity (e.g. no February 30) the model regexes miss.
DATE_ELEMENTS = {
    "Observation": ("effectiveDateTime", "effectiveInstant", "issued"),
    "Patient": ("birthDate",),
    "Device": ("manufactureDate", "expirationDate"),
}


def _path(resource_type, location):
    path = resource_type
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _model_errors(resource_type, resource):
    try:
        get_fhir_model_class(resource_type).model_validate(resource)
        return []
    except ValidationError as error:
        return [(_path(resource_type, e["loc"]), e["msg"]) for e in error.errors()]


def _binding_errors(resource_type, resource):
    errors = []
    for element, allowed in REQUIRED_CODES.get(resource_type, {}).items():
        value = resource.get(element)
        if value is not None and value not in allowed:
            expected = ", ".join(sorted(allowed))
            errors.append((f"{resource_type}.{element}", f"'{value}' is not one of: {expected}"))
    return errors


def _date_errors(resource_type, resource):
    errors = []
    elements = [(e, resource.get(e)) for e in DATE_ELEMENTS.get(resource_type, ())]
    period = resource.get("effectivePeriod") or {}
    elements += [(f"effectivePeriod.{k}", period.get(k)) for k in ("start", "end")]
    for element, value in elements:
        if isinstance(value, str):
            try:
                parse_range(value)
            except ValueError as error:
                errors.append((f"{resource_type}.{element}", str(error)))
    return errors


def validate_resource(resource_type, resource):
    """Raise InvalidResource listing every problem (with its element path) of a resource."""
    if not isinstance(resource, dict):
        raise InvalidResource("The body must be a JSON object (a FHIR resource)")
    if resource.get("resourceType") != resource_type:
        found = resource.get("resourceType")
        raise InvalidResource(
            f"resourceType is '{found}', expected '{resource_type}'", [f"{resource_type}.resourceType"]
        )
    try:
        errors = json_form_errors(resource_type, resource) + _model_errors(resource_type, resource)
    except RecursionError as error:
        raise InvalidResource("The resource is nested too deeply to be a FHIR resource") from error
    errors += _binding_errors(resource_type, resource) + _date_errors(resource_type, resource)
    if errors:
        raise InvalidResourceList(errors)


class InvalidResourceList(InvalidResource):
    """Several validation failures, each reported as its own issue."""

    def __init__(self, errors):
        message = "; ".join(f"{path}: {msg}" for path, msg in errors)
        super().__init__(message, [path for path, _ in errors])
        self.issues = errors
