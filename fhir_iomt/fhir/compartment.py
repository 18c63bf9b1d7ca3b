"""Patient compartment and scope query restrictions, checked against a resource's search fields."""

from .params import extract_search_fields, params_of

# Search parameter that puts a resource of each type in a patient's compartment.
COMPARTMENT_PARAM = {"Patient": "_id", "Observation": "patient", "Device": "patient"}
RESTRICTABLE_TYPES = ("token", "reference")


def restriction_supported(resource_type, restriction):
    """True when every restriction parameter is a plain token or reference parameter of the type."""
    if resource_type not in COMPARTMENT_PARAM:
        return False
    params = params_of(resource_type)
    return all(name in params and params[name].type in RESTRICTABLE_TYPES for name, _ in restriction)


def _field(fields, resource_type, name):
    key = params_of(resource_type)[name].key
    value = fields.get(key)
    return value if isinstance(value, list) else ([] if value is None else [value])


def _reference_value(value, param):
    return value if "/" in value or len(param.targets) != 1 else f"{param.targets[0]}/{value}"


def _satisfies(fields, resource_type, name, value):
    param = params_of(resource_type)[name]
    present = _field(fields, resource_type, name)
    wanted = value.split(",")
    if param.type == "reference":
        wanted = [_reference_value(v, param) for v in wanted]
    return any(v in present for v in wanted)


def _search_fields(resource_type, resource, local_bases):
    # A resource being created has no id yet: the checks must not fail on it (they do not depend on it).
    return extract_search_fields(resource_type, {"id": None, **resource}, 0, local_bases)


def in_compartment(resource_type, resource, patient_id, local_bases=()):
    """True when the resource belongs to the patient's compartment."""
    if resource_type == "Patient":
        return resource.get("id") == patient_id
    name = COMPARTMENT_PARAM.get(resource_type)
    if name is None:
        return False
    fields = _search_fields(resource_type, resource, local_bases)
    return f"Patient/{patient_id}" in _field(fields, resource_type, name)


def matches_restriction(resource_type, resource, restriction, local_bases=()):
    """True when the resource satisfies every (parameter, value) of a scope's query restriction."""
    if not restriction:
        return True
    fields = _search_fields(resource_type, resource, local_bases)
    return all(_satisfies(fields, resource_type, name, value) for name, value in restriction)
