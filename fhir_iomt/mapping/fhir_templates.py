"""FHIR mapping templates (MedTech's CollectionFhir / CodeValueFhir), loaded and checked in one go.

A document is validated whole: every problem is reported as a (path, message)
pair in one TemplateError and nothing is returned unless the whole document is
valid. Names of template types, value types and properties are matched without
regard to case, as MedTech does; unknown properties are refused, as MedTech does.
"""

import json
import math
from dataclasses import dataclass

from ..domain.measurement import TemplateError
from . import vital_signs as vs

SINGLE, HOURLY, DAILY, CORRELATION = 0, 60, 1440, -1
PERIOD_INTERVALS = {SINGLE, HOURLY, DAILY, CORRELATION}
PERIOD_NAMES = {"single": SINGLE, "hourly": HOURLY, "daily": DAILY, "correlationid": CORRELATION}
QUANTITY, SAMPLED_DATA, STRING, CODEABLE_CONCEPT = "Quantity", "SampledData", "String", "CodeableConcept"
VALUE_TYPES = (QUANTITY, SAMPLED_DATA, STRING, CODEABLE_CONCEPT)
NUMERIC_TYPES = (QUANTITY, SAMPLED_DATA)

_VALUE_FIELDS = {
    QUANTITY: ("valueName", "valueType", "unit", "system", "code"),
    SAMPLED_DATA: ("valueName", "valueType", "unit", "defaultPeriod"),
    STRING: ("valueName", "valueType"),
    CODEABLE_CONCEPT: ("valueName", "valueType", "text", "codes"),
}
_ALL_VALUE_FIELDS = tuple(dict.fromkeys(name for names in _VALUE_FIELDS.values() for name in names))
_TEMPLATE_FIELDS = ("typeName", "periodInterval", "codes", "category", "value", "components")


@dataclass(frozen=True)
class FhirCode:
    """A coding of a template (code, system, display)."""

    code: str
    system: str | None = None
    display: str | None = None

    def to_fhir(self):
        """The FHIR Coding."""
        coding = {"system": self.system, "code": self.code, "display": self.display}
        return {key: value for key, value in coding.items() if value}


@dataclass(frozen=True)
class Concept:
    """A CodeableConcept of a template (category)."""

    codes: tuple = ()
    text: str | None = None

    def to_fhir(self):
        """The FHIR CodeableConcept."""
        concept = {}
        if self.codes:
            concept["coding"] = [code.to_fhir() for code in self.codes]
        if self.text:
            concept["text"] = self.text
        return concept


@dataclass(frozen=True)
class ValueTemplate:
    """How a measurement value becomes an Observation value: one of VALUE_TYPES."""

    value_name: str
    value_type: str
    unit: str | None = None
    system: str | None = None
    code: str | None = None
    default_period: float | None = None  # SampledData: milliseconds between samples
    text: str | None = None  # CodeableConcept
    codes: tuple = ()  # CodeableConcept


@dataclass(frozen=True)
class ComponentTemplate:
    """An Observation.component: its codes and value."""

    codes: tuple
    value: ValueTemplate


@dataclass(frozen=True)
class CodeValueTemplate:
    """A CodeValueFhir template: the Observation made for one measurement type."""

    type_name: str
    codes: tuple
    period_interval: int = SINGLE
    category: tuple = ()
    value: ValueTemplate | None = None
    components: tuple = ()

    @property
    def value_names(self):
        """The valueNames this template reads, value first then components."""
        names = [self.value.value_name] if self.value else []
        return names + [component.value.value_name for component in self.components]


class FhirTemplates:
    """A validated CollectionFhir: the CodeValueTemplate of each type name."""

    def __init__(self, templates=()):
        self.templates = tuple(templates)
        self._by_type = {template.type_name.lower(): template for template in self.templates}

    @property
    def type_names(self):
        """The type names that have a template."""
        return {template.type_name for template in self.templates}

    def for_type(self, type_name):
        """The template of a measurement type (matched without regard to case), or None."""
        return self._by_type.get((type_name or "").lower())

    def __len__(self):
        return len(self.templates)

    def __iter__(self):
        return iter(self.templates)


class _Problems(list):
    """Collected (path, message) pairs."""

    def add(self, path, message):
        if (path, message) not in self:
            self.append((path, message))


def _join(path, key):
    return f"{path}.{key}" if path else key


def _fields(obj, allowed, path, problems):
    """The properties of a JSON object by canonical name; unknown properties are problems."""
    canonical = {name.lower(): name for name in allowed}
    found = {}
    for key, value in obj.items():
        name = canonical.get(key.lower()) if isinstance(key, str) else None
        if name is None:
            expected = ", ".join(allowed)
            problems.add(_join(path, str(key)), f"unknown property (expected one of: {expected})")
        else:
            found[name] = value
    return found


def _text(fields, name, path, problems, required=False):
    """An optional (or required) non-empty string property; an optional "" counts as absent."""
    value = fields.get(name)
    if value is None or (value == "" and not required):  # MedTech writes "" for "no unit"
        if required:
            problems.add(_join(path, name), "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(_join(path, name), "must be a non-empty string")
        return None
    return value


def _object(value, path, problems):
    if not isinstance(value, dict):
        problems.add(path, "must be a JSON object")
        return None
    return value


def _parse_code(obj, path, problems):
    if _object(obj, path, problems) is None:
        return None
    fields = _fields(obj, ("code", "system", "display"), path, problems)
    code = _text(fields, "code", path, problems, required=True)
    system = _text(fields, "system", path, problems)
    display = _text(fields, "display", path, problems)
    return FhirCode(code, system, display) if code else None


def _parse_codes(value, path, problems, required=True):
    """A list of codings; required ones must have at least one."""
    if value is None:
        if required:
            problems.add(path, "is required (at least one code)")
        return ()
    if not isinstance(value, list) or (required and not value):
        problems.add(path, "must be a non-empty array of codes" if required else "must be an array of codes")
        return ()
    codes = [_parse_code(item, f"{path}[{index}]", problems) for index, item in enumerate(value)]
    return tuple(code for code in codes if code)


def _object_items(value, path, problems, what, names):
    """(item path, known fields) of each object of an optional array; problems for the rest."""
    if value is None:
        return
    if not isinstance(value, list):
        problems.add(path, f"must be an array of {what}")
        return
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if _object(item, item_path, problems) is not None:
            yield item_path, _fields(item, names, item_path, problems)


def _parse_category(value, path, problems):
    concepts = []
    for item_path, fields in _object_items(value, path, problems, "concepts", ("text", "codes")):
        text = _text(fields, "text", item_path, problems)
        codes = _parse_codes(fields.get("codes"), _join(item_path, "codes"), problems, required=False)
        if not codes and not text:
            problems.add(item_path, "a category needs codes or text")
        concepts.append(Concept(codes, text))
    return tuple(concepts)


def _parse_period_interval(value, path, problems):
    if value is None:
        return SINGLE
    if isinstance(value, str) and value.lower() in PERIOD_NAMES:
        return PERIOD_NAMES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in PERIOD_INTERVALS:
        return value
    expected = "0 (single), 60 (hourly), 1440 (daily), -1 (correlation id)"
    problems.add(path, f"{json.dumps(value)} is not one of {expected}")
    return SINGLE


def _value_type(raw, path, problems):
    if raw is None:
        problems.add(_join(path, "valueType"), "is required")
        return None
    by_name = {name.lower(): name for name in VALUE_TYPES}
    value_type = by_name.get(raw.lower()) if isinstance(raw, str) else None
    if value_type is None:
        expected = ", ".join(VALUE_TYPES)
        message = f"unknown valueType {json.dumps(raw)} (expected one of: {expected})"
        problems.add(_join(path, "valueType"), message)
    return value_type


def _default_period(fields, path, problems):
    value = fields.get("defaultPeriod")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value > 0):
        message = "a SampledData value needs defaultPeriod > 0 (milliseconds)"
        problems.add(_join(path, "defaultPeriod"), message)
        return None
    return value


def _parse_value(obj, path, problems):
    if _object(obj, path, problems) is None:
        return None
    raw_type = next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == "valuetype"), None)
    value_type = _value_type(raw_type, path, problems)
    fields = _fields(obj, _VALUE_FIELDS.get(value_type, _ALL_VALUE_FIELDS), path, problems)
    value_name = _text(fields, "valueName", path, problems, required=True)
    if value_type is None or value_name is None:
        return None
    return ValueTemplate(
        value_name,
        value_type,
        unit=_text(fields, "unit", path, problems),
        system=_text(fields, "system", path, problems),
        code=_text(fields, "code", path, problems),
        default_period=_default_period(fields, path, problems) if value_type == SAMPLED_DATA else None,
        text=_text(fields, "text", path, problems),
        codes=_codeable_codes(fields, value_type, path, problems),
    )


def _codeable_codes(fields, value_type, path, problems):
    if value_type != CODEABLE_CONCEPT:
        return ()
    return _parse_codes(fields.get("codes"), _join(path, "codes"), problems)


def _parse_components(value, path, problems):
    components = []
    for item_path, fields in _object_items(value, path, problems, "components", ("codes", "value")):
        codes = _parse_codes(fields.get("codes"), _join(item_path, "codes"), problems)
        if fields.get("value") is None:
            problems.add(_join(item_path, "value"), "is required")
            continue
        component_value = _parse_value(fields["value"], _join(item_path, "value"), problems)
        if codes and component_value:
            components.append(ComponentTemplate(codes, component_value))
    return tuple(components)


def _parse_code_value(obj, path, problems):
    """A CodeValueFhir template body, or None when it has structural problems."""
    if _object(obj, path, problems) is None:
        return None
    before = len(problems)
    fields = _fields(obj, _TEMPLATE_FIELDS, path, problems)
    template = CodeValueTemplate(
        type_name=_text(fields, "typeName", path, problems, required=True),
        codes=_parse_codes(fields.get("codes"), _join(path, "codes"), problems),
        period_interval=_parse_period_interval(
            fields.get("periodInterval"), _join(path, "periodInterval"), problems
        ),
        category=_parse_category(fields.get("category"), _join(path, "category"), problems),
        value=_parse_value(fields["value"], _join(path, "value"), problems) if "value" in fields else None,
        components=_parse_components(fields.get("components"), _join(path, "components"), problems),
    )
    if "value" not in fields and "components" not in fields:
        problems.add(path, "a template needs a value or components")
    return template if len(problems) == before else None


def _matches(type_name, expected):
    name = (type_name or "").lower() if isinstance(type_name, str) else ""
    return name in (expected.lower(), expected.lower() + "template")


def _parse_entry(entry, path, problems):
    if _object(entry, path, problems) is None:
        return None
    fields = _fields(entry, ("templateType", "template"), path, problems)
    template_type = fields.get("templateType")
    if not _matches(template_type, "CodeValueFhir"):
        problems.add(_join(path, "templateType"), f"unknown templateType {json.dumps(template_type)} "
                                                  "(expected CodeValueFhir)")
        return None
    return _parse_code_value(fields.get("template"), _join(path, "template"), problems)


# --- Checks across a template: codes, units, panels -------------------------------------------------

_HEART_RATE_AS_DIASTOLIC = f"{vs.HEART_RATE} is heart rate: diastolic blood pressure is {vs.DIASTOLIC}"


def _loinc_system_problems(codes, path, problems):
    for index, code in enumerate(codes):
        if code.code in vs.VITAL_SIGNS and code.system is None:
            message = f"{code.code} looks like LOINC: system must be {vs.LOINC}"
            problems.add(f"{path}[{index}].system", message)


def _unit_problems(codes, value, path, problems):
    """A value on a table code must be numeric, in an allowed UCUM unit, with system UCUM and code = unit."""
    for entry in vs.table_entries(codes):
        allowed = ", ".join(entry.units)
        if not entry.units:
            problems.add(path, f"{entry.loinc} ({entry.display}) is a panel and carries no value of its own")
        elif value.value_type not in NUMERIC_TYPES:
            problems.add(_join(path, "valueType"), f"{entry.loinc} ({entry.display}) needs a Quantity or "
                                                   f"SampledData value, not {value.value_type}")
        elif entry.in_profile and value.value_type != QUANTITY:
            # The R4 vital-signs profiles of these codes (heart rate, SpO2, BP components...) allow
            # valueQuantity only; a waveform belongs under its own (e.g. MDC) code.
            problems.add(_join(path, "valueType"), f"{entry.loinc} ({entry.display}) is a vital sign: its R4 "
                                                   f"profile requires a Quantity value, not {value.value_type}")
        else:
            _ucum_problems(entry, allowed, value, path, problems)


def _ucum_problems(entry, allowed, value, path, problems):
    unit, code = value.unit, value.code
    if unit is None and code is None:
        problems.add(_join(path, "unit"), f"{entry.loinc} ({entry.display}) needs a UCUM unit: {allowed}")
    for name, text in (("unit", unit), ("code", code)):
        if text is not None and text not in entry.units:
            problems.add(_join(path, name), f"'{text}' is not an allowed UCUM unit of {entry.loinc} "
                                            f"({entry.display}): {allowed}")
    if unit is not None and code is not None and unit != code and unit in entry.units and code in entry.units:
        problems.add(_join(path, "code"), f"code '{code}' must equal unit '{unit}'")
    if value.value_type == QUANTITY and value.system != vs.UCUM:
        problems.add(_join(path, "system"), f"{entry.loinc} ({entry.display}) needs system {vs.UCUM}, "
                                            f"not {json.dumps(value.system)}")


def _panel_problems(template, path, problems):
    loinc = set(vs.loinc_codes(template.codes))
    if "59408-5" in loinc and "2708-6" not in loinc:
        problems.add(_join(path, "codes"), "59408-5 (pulse oximetry) needs the 2708-6 (Oxygen saturation) "
                                           "coding too: the R4 oxygen-saturation profile requires it")
    component_loinc = [set(vs.loinc_codes(component.codes)) for component in template.components]
    for entry in vs.table_entries(template.codes):
        for required in entry.components:
            if not any(required in codes for codes in component_loinc):
                name = vs.VITAL_SIGNS[required].display
                problems.add(_join(path, "components"), f"{entry.loinc} ({entry.display}) needs a {name} "
                                                        f"component ({required})")
    for index, codes in enumerate(component_loinc):
        component_path = f"{path}.components[{index}].codes"
        if vs.BP_PANEL in loinc and vs.HEART_RATE in codes:
            problems.add(component_path, _HEART_RATE_AS_DIASTOLIC)
        if codes & loinc:
            problems.add(component_path, "a component code must differ from the Observation code")


def _diastolic_named_problems(codes, value, path, problems):
    """Diastolic pressure coded as heart rate (MedTech's sample), by display or valueName."""
    names = [code.display or "" for code in codes] + [value.value_name if value else ""]
    is_heart_rate = vs.HEART_RATE in vs.loinc_codes(codes)
    if is_heart_rate and any("diastolic" in name.lower() for name in names):
        problems.add(path, _HEART_RATE_AS_DIASTOLIC)


def _coded_problems(codes, value, path, problems):
    _loinc_system_problems(codes, _join(path, "codes"), problems)
    _diastolic_named_problems(codes, value, _join(path, "codes"), problems)
    if value is not None:
        _unit_problems(codes, value, _join(path, "value"), problems)


def _semantic_problems(template, path, problems):
    """Problems of a structurally valid template: vital-sign codes, units and panels."""
    _coded_problems(template.codes, template.value, path, problems)
    if template.value is not None and template.value.value_type == CODEABLE_CONCEPT:
        _loinc_system_problems(template.value.codes, _join(path, "value.codes"), problems)
    for index, component in enumerate(template.components):
        _coded_problems(component.codes, component.value, f"{path}.components[{index}]", problems)
    _panel_problems(template, path, problems)
    if len(set(template.value_names)) != len(template.value_names):
        problems.add(path, "a valueName is used more than once")


def _device_problems(template, device_templates, path, problems):
    """The type and valueNames must be produced by the device templates."""
    produced = {name.lower(): name for name in device_templates.type_names}
    device_type = produced.get(template.type_name.lower())
    if device_type is None:
        problems.add(_join(path, "typeName"), f"no device template produces type '{template.type_name}'")
        return
    names = set(device_templates.value_names(device_type))
    value_paths = [("value", template.value)] if template.value else []
    value_paths += [(f"components[{i}].value", c.value) for i, c in enumerate(template.components)]
    for value_path, value in value_paths:
        if value.value_name not in names:
            known = ", ".join(sorted(names)) or "none"
            problems.add(_join(path, f"{value_path}.valueName"), f"'{value.value_name}' is not a value of "
                                                                 f"type '{device_type}' (it has: {known})")


def _document(document, problems):
    """The root object of a document given as a dict, or as JSON text."""
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document)
        except ValueError as error:
            problems.add("$", f"not JSON: {error}")
            return None
    if not isinstance(document, dict):
        problems.add("$", "a FHIR mapping template must be a JSON object")
        return None
    return document


def _entries(document, problems):
    fields = _fields(document, ("templateType", "template"), "", problems)
    if not _matches(fields.get("templateType"), "CollectionFhir"):
        found = json.dumps(fields.get("templateType"))
        problems.add("templateType", f"expected CollectionFhir, found {found}")
        return []
    entries = fields.get("template")
    if not isinstance(entries, list):
        problems.add("template", "must be an array of CodeValueFhir templates")
        return []
    return entries


def _check(template, path, device_templates, seen, problems):
    _semantic_problems(template, path, problems)
    key = template.type_name.lower()
    if key in seen:
        problems.add(_join(path, "typeName"), f"duplicate typeName '{template.type_name}' (also {seen[key]})")
    seen.setdefault(key, path)
    if device_templates is not None:
        _device_problems(template, device_templates, path, problems)


def load_fhir_templates(document, device_templates=None):
    """Validate a CollectionFhir document (dict or JSON text) whole; TemplateError lists every problem."""
    problems = _Problems()
    root = _document(document, problems)
    templates, seen = [], {}
    for index, entry in enumerate(_entries(root, problems) if root is not None else ()):
        path = f"template[{index}].template"
        template = _parse_entry(entry, f"template[{index}]", problems)
        if template is not None:
            _check(template, path, device_templates, seen, problems)
            templates.append(template)
    if problems:
        raise TemplateError(problems)
    return FhirTemplates(templates)
