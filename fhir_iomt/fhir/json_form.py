"""Checks of the FHIR JSON representation that the pydantic models coerce away.

R4 JSON (json.html): no nulls, no empty arrays or objects, decimals and integers
as JSON numbers, booleans as true/false, every other primitive as a string.
"""

import datetime
import decimal
import functools
import types
import typing

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import FhirBase

_NUMBERS = (decimal.Decimal, int, float)
_STRINGS = (str, datetime.datetime, datetime.date, datetime.time)


def _unwrap(annotation):
    """(is_list, base type) of a model field annotation."""
    is_list = False
    while True:
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            is_list, annotation = True, args[0]
        elif origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
        else:
            return is_list, annotation


@functools.cache
def _fields(model):
    """JSON name -> (is_list, base type) of every field of a model class."""
    return {field.alias or name: _unwrap(field.annotation) for name, field in model.model_fields.items()}


def _primitive_error(base, value):
    if base is bool:
        return None if isinstance(value, bool) else "must be a JSON boolean (true or false)"
    if isinstance(base, type) and issubclass(base, _NUMBERS):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a JSON number"
    if isinstance(base, type) and issubclass(base, _STRINGS):
        if not isinstance(value, str):
            return "must be a JSON string"
        return "must not be empty" if value == "" else None
    return None


@functools.cache
def _element_model(base):
    return base.get_model_klass()


def _child_model(base, value):
    if isinstance(base, type) and issubclass(base, FhirBase):
        if base.__name__ == "ResourceType" and isinstance(value, dict):
            return get_fhir_model_class(value.get("resourceType", ""))
        return _element_model(base)
    return None


def _check_value(base, value, path, errors):
    if value is None:
        errors.append((path, "null is not allowed in FHIR JSON"))
    elif value in ([], {}):
        errors.append((path, "empty arrays and objects are not allowed in FHIR JSON"))
    elif isinstance(value, dict):
        model = _try(_child_model, base, value)
        if model is not None:
            _check_object(model, value, path, errors)
    elif not isinstance(value, list):
        message = _primitive_error(base, value)
        if message:
            errors.append((path, message))


def _check_object(model, data, path, errors):
    fields = _fields(model)
    for key, value in data.items():
        if key not in fields:
            continue  # unknown elements are reported by the model itself
        is_list, base = fields[key]
        where = f"{path}.{key}"
        if is_list and isinstance(value, list):
            if not value:
                errors.append((where, "empty arrays are not allowed in FHIR JSON"))
            for index, item in enumerate(value):
                _check_value(base, item, f"{where}[{index}]", errors)
        else:
            _check_value(base, value, where, errors)


def _try(function, *args):
    try:
        return function(*args)
    except (ValueError, LookupError, AttributeError):
        return None


def json_form_errors(resource_type, resource):
    """(path, message) for each violation of the FHIR JSON representation rules."""
    errors = []
    _check_object(get_fhir_model_class(resource_type), resource, resource_type, errors)
    return errors
