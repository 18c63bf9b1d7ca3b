"""A MeasurementGroup and its CodeValueFhir template into an R4 Observation (created or merged).

The Observation id is a hash of what identifies its window, so the same message
processed twice lands on the same Observation; the same value is written as an
identifier (OBSERVATION_ID_SYSTEM) so it can be searched for and upserted.
"""

import copy
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ..domain.measurement import INVALID_OBSERVATION, MISSING_REQUIRED_VALUE, MappingError
from ..fhir.dates import format_instant
from . import vital_signs as vs
from .fhir_templates import CODEABLE_CONCEPT, CORRELATION, QUANTITY, SAMPLED_DATA, SINGLE, STRING

OBSERVATION_ID_SYSTEM = "urn:fhir-iomt:observation"
TYPE_SYSTEM = "urn:fhir-iomt:measurement-type"  # Observation.code coding: the measurement type
VALUE_NAME_SYSTEM = "urn:fhir-iomt:value-name"  # component.code coding: the valueName it carries
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
MAX_SAMPLES = 100_000  # SampledData slots in one Observation
_MICROSECOND = timedelta(microseconds=1)


# --- Ids and times ----------------------------------------------------------------------------------


def _utc_key(moment):
    return moment.astimezone(UTC).isoformat()


def observation_id(group):
    """The deterministic id (64 hex characters) of a group's Observation."""
    if group.correlation_id:
        segment = ["correlation", group.correlation_id]
    else:
        segment = ["window", _utc_key(group.start), _utc_key(group.end)]
    identity = [group.device_id, group.patient_id or "", group.encounter_id or "", group.type_name, *segment]
    return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()


def format_datetime(moment):
    """A FHIR dateTime of an aware datetime in its own offset ('Z' for UTC), to the precision it has."""
    offset = moment.utcoffset()
    if offset is None or offset % timedelta(minutes=1):
        moment = moment.astimezone(UTC)
    if moment.microsecond == 0:
        timespec = "seconds"
    else:
        timespec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    text = moment.isoformat(timespec=timespec)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _parse_datetime(text):
    """An aware datetime of a FHIR dateTime this module wrote, or None."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _span(group, template, existing):
    """(start, last) of the Observation: its first instant and its last one, both included."""
    if template.period_interval not in (SINGLE, CORRELATION):
        return group.start, group.end - _MICROSECOND
    start, last = group.start, group.end
    if existing is not None and template.period_interval == CORRELATION:
        old_start, old_last = _existing_span(existing)
        if old_start is not None and old_start < start:
            start = old_start
        if old_last is not None and old_last > last:
            last = old_last
    return start, last


def _existing_span(observation):
    if "effectiveDateTime" in observation:
        moment = _parse_datetime(observation["effectiveDateTime"])
        return moment, moment
    period = observation.get("effectivePeriod") or {}
    return _parse_datetime(period.get("start")), _parse_datetime(period.get("end"))


def _effective(template, start, last):
    if template.period_interval == SINGLE:
        return {"effectiveDateTime": format_datetime(start)}
    if template.period_interval == CORRELATION:
        return {"effectivePeriod": {"start": format_datetime(start), "end": format_datetime(last)}}
    return {"effectivePeriod": {"start": format_instant(start), "end": format_instant(last)}}


# --- Values ------------------------------------------------------------------------------------------


def _number(name, value):
    """A measurement value as a finite int or float; MappingError otherwise."""
    number = value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = None
    valid = isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number)
    if not valid:
        raise MappingError(INVALID_OBSERVATION, f"value '{name}' is not a number: {value!r}")
    return number


def _decimal_text(number):
    """A number written as a FHIR decimal (no exponent)."""
    return format(Decimal(repr(number)), "f")


def _values(group, name):
    """[(occurrence, value)] of a valueName in the group, in time order, skipping missing values."""
    found = []
    for measurement in group.measurements:
        value = measurement.value(name)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            found.append((measurement.occurrence, value))
    return found


def _is_table_code(codes):
    return bool(vs.table_entries(codes))


def _quantity(spec, codes, values):
    number = _number(spec.value_name, values[-1][1])
    ucum = spec.system == vs.UCUM or _is_table_code(codes)
    quantity = {
        "value": number,
        "unit": spec.unit or spec.code,
        "system": spec.system or (vs.UCUM if ucum and (spec.unit or spec.code) else None),
        "code": spec.code or (spec.unit if ucum else None),
    }
    return {"valueQuantity": {key: value for key, value in quantity.items() if value is not None}}


def _origin(spec, codes):
    origin = {"value": 0}
    if spec.unit:
        origin["unit"] = spec.unit
        if _is_table_code(codes):
            origin.update({"system": vs.UCUM, "code": spec.unit})
    return origin


def _slot_index(moment, start, period_ms):
    return math.floor((moment - start) / _MICROSECOND / (period_ms * 1000))


def _existing_samples(sampled, existing_start):
    """[(time, token)] of a stored SampledData, skipping gaps; each time is the middle of its slot."""
    period = sampled.get("period")
    if existing_start is None or not isinstance(period, int | float) or period <= 0:
        return []
    tokens = (sampled.get("data") or "").split()
    return [
        (existing_start + timedelta(milliseconds=(index + 0.5) * period), token)
        for index, token in enumerate(tokens)
        if token != "E"
    ]


def _sampled_data(spec, codes, values, span, prior):
    start, last = span
    count = _slot_index(last, start, spec.default_period) + 1
    if count > MAX_SAMPLES:
        raise MappingError(INVALID_OBSERVATION, f"'{spec.value_name}' would need {count} samples "
                                                f"(more than {MAX_SAMPLES}); raise defaultPeriod")
    slots = {}
    new = [(moment, _decimal_text(_number(spec.value_name, value))) for moment, value in values]
    for moment, token in prior + new:  # existing first, so new samples win; within each, later wins
        index = _slot_index(moment, start, spec.default_period)
        if 0 <= index < count:
            slots[index] = token
    sampled = {
        "origin": _origin(spec, codes),
        "period": spec.default_period,
        "dimensions": 1,
        "data": " ".join(slots.get(index, "E") for index in range(count)),
    }
    return {"valueSampledData": sampled}


def _concept(spec):
    concept = {}
    if spec.codes:
        concept["coding"] = [code.to_fhir() for code in spec.codes]
    if spec.text:
        concept["text"] = spec.text
    return {"valueCodeableConcept": concept}


# When the single value of a window was measured: a later message only replaces it with a newer reading,
# so that arrival order never decides the value and a retried older message changes nothing.
OBSERVED_AT = "urn:fhir-iomt:extension:observed-at"


def _single_value(spec, codes, values):
    if spec.value_type == QUANTITY:
        return _quantity(spec, codes, values)
    if spec.value_type == STRING:
        return {"valueString": str(values[-1][1]).strip()}
    if spec.value_type == CODEABLE_CONCEPT:
        return _concept(spec)
    raise MappingError(INVALID_OBSERVATION, f"unsupported valueType {spec.value_type}")


def _observed_at(element):
    """When the value of a stored element was measured (see OBSERVED_AT), or None."""
    element = element or {}
    holders = (element.get("valueQuantity"), element.get("valueCodeableConcept"), element.get("_valueString"))
    for holder in holders:
        for extension in (holder or {}).get("extension") or ():
            if extension.get("url") == OBSERVED_AT:
                return _parse_datetime(extension.get("valueDateTime"))
    return None


def _stamped(value, moment):
    stamp = {"url": OBSERVED_AT, "valueDateTime": format_datetime(moment)}
    if "valueString" in value:
        return {**value, "_valueString": {"extension": [stamp]}}
    key = next(iter(value))
    return {key: {**value[key], "extension": [stamp]}}


def _windowed_value(spec, codes, values, prior_element):
    """The latest value by measurement time among the group's and the stored one."""
    moment = values[-1][0]
    prior_moment = _observed_at(prior_element)
    if prior_moment is not None and prior_moment > moment:
        return {k: v for k, v in prior_element.items() if k.startswith(("value", "_value"))}
    return _stamped(_single_value(spec, codes, values), moment)


def _value(spec, codes, group, span, prior_element, prior_start, windowed=False):
    """The value[x] of a spec from the group's values, merged with a prior element's; None without values."""
    values = _values(group, spec.value_name)
    if not values:
        return None
    if spec.value_type == SAMPLED_DATA:
        stored = (prior_element or {}).get("valueSampledData")
        prior = _existing_samples(stored, prior_start) if isinstance(stored, dict) else []
        return _sampled_data(spec, codes, values, span, prior)
    if windowed:
        return _windowed_value(spec, codes, values, prior_element)
    return _single_value(spec, codes, values)


def _without_values(element):
    return {key: value for key, value in element.items() if not key.startswith(("value", "_value"))}


# --- Codes and components ----------------------------------------------------------------------------


def _text_of(codes, fallback):
    """The first display of the codes, else the reference table's name, else `fallback`."""
    displays = [code.display for code in codes if code.display]
    displays += [entry.display for entry in vs.table_entries(codes)]
    return displays[0] if displays else fallback


def _code(template):
    coding = [code.to_fhir() for code in template.codes]
    coding.append({"system": TYPE_SYSTEM, "code": template.type_name})
    return {"coding": coding, "text": _text_of(template.codes, template.type_name)}


def _component_code(component):
    coding = [code.to_fhir() for code in component.codes]
    coding.append({"system": VALUE_NAME_SYSTEM, "code": component.value.value_name})
    return {"coding": coding, "text": _text_of(component.codes, component.value.value_name)}


def _codings(element):
    return {(c.get("system"), c.get("code")) for c in (element.get("code") or {}).get("coding") or ()}


def _find_component(components, component):
    """Index of the stored component of a template component (by valueName, else by code), or None."""
    wanted = {(VALUE_NAME_SYSTEM, component.value.value_name)}
    for keys in (wanted, {(code.system, code.code) for code in component.codes}):
        for index, stored in enumerate(components):
            if _codings(stored) & keys:
                return index
    return None


def _absent(component):
    unknown = {"system": DATA_ABSENT_SYSTEM, "code": "unknown", "display": "Unknown"}
    return {"code": _component_code(component), "dataAbsentReason": {"coding": [unknown]}}


def _required_absent(template, components):
    """Components a panel must carry that have no value: written with dataAbsentReason unknown."""
    present = set()
    for stored in components:
        present.update(code for system, code in _codings(stored) if system == vs.LOINC)
    absent = []
    for entry in vs.table_entries(template.codes):
        for required in entry.components:
            match = next((c for c in template.components if required in vs.loinc_codes(c.codes)), None)
            if required not in present and match is not None:
                absent.append(_absent(match))
    return absent


def _components(template, group, span, existing, prior_start):
    components = [copy.deepcopy(c) for c in (existing or {}).get("component") or ()]
    for component in template.components:
        index = _find_component(components, component)
        prior = components[index] if index is not None else None
        value = _value(component.value, component.codes, group, span, prior, prior_start,
                       template.period_interval != SINGLE)
        if value is None:
            continue
        built = {"code": _component_code(component), **value}
        if index is None:
            components.append(built)
        else:
            components[index] = {**_without_values(prior), **built}
            components[index].pop("dataAbsentReason", None)
    return components + _required_absent(template, components)


def _category(template):
    categories = [concept.to_fhir() for concept in template.category]
    has_vital = any(
        coding.get("code") == vs.VITAL_SIGNS_CODE and coding.get("system") == vs.CATEGORY_SYSTEM
        for concept in categories for coding in concept.get("coding") or ()
    )
    if vs.is_vital_sign(template.codes) and not has_vital:
        categories.insert(0, vs.vital_sign_category())
    return categories


def _reference(ref):
    return {"reference": ref} if isinstance(ref, str) else dict(ref)


def _has_value(observation):
    if any(key.startswith("value") for key in observation):
        return True
    return any(any(key.startswith("value") for key in c) for c in observation.get("component") or ())


# --- The Observation -----------------------------------------------------------------------------------


def _base(existing, obs_id):
    """A copy of the stored Observation without what is rebuilt, or a new one."""
    if existing is None:
        return {"resourceType": "Observation", "id": obs_id}
    rebuilt = ("text", "effectiveDateTime", "effectivePeriod", "effectiveInstant", "component")
    base = {k: copy.deepcopy(v) for k, v in existing.items() if k not in rebuilt}
    base["id"] = existing.get("id") or obs_id
    return base


def _prior_value_start(existing):
    """Where the stored SampledData grid starts: the stored effective start."""
    return None if existing is None else _existing_span(existing)[0]


def build_observation(group, template, patient_ref, device_ref, issued, existing=None, encounter_ref=None):
    """The R4 Observation of a group; with `existing` (same window) the stored one merged with the group."""
    obs_id = observation_id(group)
    span = _span(group, template, existing)
    prior_start = _prior_value_start(existing)
    observation = _base(existing, obs_id)
    observation.pop("category", None)
    categories = _category(template)
    observation.update({
        "identifier": [{"system": OBSERVATION_ID_SYSTEM, "value": obs_id}],
        "status": "final",
        **({"category": categories} if categories else {}),
        "code": _code(template),
        "subject": _reference(patient_ref),
        **({"encounter": _reference(encounter_ref)} if encounter_ref is not None else {}),
        **_effective(template, *span),
        "issued": format_instant(issued) if isinstance(issued, datetime) else issued,
        "device": _reference(device_ref),
    })
    if template.value is not None:
        value = _value(template.value, template.codes, group, span, existing, prior_start,
                       template.period_interval != SINGLE)
        if value is not None:
            observation = {**_without_values(observation), **value}
    components = _components(template, group, span, existing, prior_start)
    if components:
        observation["component"] = components
    if not _has_value(observation):
        count = len(group.measurements)
        detail = f"no value named by the template of '{template.type_name}' in {count} measurement(s)"
        raise MappingError(MISSING_REQUIRED_VALUE, detail)
    return observation
