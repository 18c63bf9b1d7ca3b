"""Device mapping templates (MedTech's template language): load, validate, normalize messages.

A document is ``{"templateType": "CollectionContent", "template": [...]}`` whose items
are ``JsonPathContent``, ``CalculatedContent``, ``IotJsonPathContent`` or
``IotCentralJsonPathContent`` templates, read as MedTech reads them: template types
and field names are case-insensitive, a type may end in ``Template``, ``required``
may be a boolean or the string "true"/"false", and a template's unknown fields are errors.

Messages are evaluated as MedTech evaluates Event Hubs events: the root of every
expression is the event ``{"Body": <message>, "Properties": {}, "SystemProperties": {}}``
(a message that already has that shape, such as an IoT Hub event, is used as it is).
So ``$..[?(@heartRate)]`` finds the readings anywhere in the message, a
CalculatedContent template reads ``$.Body.deviceId`` or ``$.matchedToken.endDate``,
and an IotJsonPathContent template reads ``$.Body.heartRate``.

- The ``typeMatchExpression`` selects tokens in the event; each token is one measurement.
- JsonPathContent, IotJsonPathContent and IotCentralJsonPathContent evaluate their
  other expressions against the matched token.
- CalculatedContent evaluates them (JsonPath or JmesPath) against the event with the
  token added as ``matchedToken``.

A message whose tokens cannot all become measurements fails as a whole (MedTech
stops processing it); the MappingError names the template and the field.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from ..domain.measurement import (
    BAD_TIMESTAMP,
    MISSING_DEVICE_ID,
    MISSING_REQUIRED_VALUE,
    NO_TEMPLATE_MATCH,
    MappingError,
    Measurement,
    TemplateError,
)
from .expressions import JMESPATH, JSONPATH, ExpressionError, compile_expression, language_name

JSONPATH_CONTENT = "JsonPathContent"
CALCULATED_CONTENT = "CalculatedContent"
IOT_JSONPATH_CONTENT = "IotJsonPathContent"
IOT_CENTRAL_JSONPATH_CONTENT = "IotCentralJsonPathContent"
COLLECTION_CONTENT = "CollectionContent"
TEMPLATE_TYPES = (JSONPATH_CONTENT, CALCULATED_CONTENT, IOT_JSONPATH_CONTENT, IOT_CENTRAL_JSONPATH_CONTENT)

# What IoT Hub and IoT Central put in every message (MedTech's fixed expressions).
IOT_HUB_DEVICE_ID = "$.SystemProperties.iothub-connection-device-id"
IOT_HUB_TIMESTAMPS = ("$.Properties.iothub-creation-time-utc", "$.SystemProperties.iothub-enqueuedtime")
IOT_CENTRAL_DEVICE_ID = "$.deviceId"
IOT_CENTRAL_TIMESTAMP = "$.enqueuedTime"

MATCHED_TOKEN = "matchedToken"
_ENVELOPE_KEYS = ("Properties", "SystemProperties")

_ID_FIELDS = ("deviceIdExpression", "patientIdExpression", "encounterIdExpression", "correlationIdExpression")
_FIELDS = ("typeName", "typeMatchExpression", *_ID_FIELDS, "timestampExpression", "values")
_VALUE_FIELDS = ("valueName", "valueExpression", "required")
_MAX_SHOWN = 64
_VALUES_SHAPE = "an array of {valueName, valueExpression, required}"
_EXPRESSION_SHAPE = '{"value": ..., "language": "JsonPath" or "JmesPath"}'


def _kind_name(template_type):
    """The canonical template type for `template_type` (case-insensitive, optional Template suffix)."""
    if not isinstance(template_type, str):
        return None
    key = template_type.strip().lower()
    for name in (*TEMPLATE_TYPES, COLLECTION_CONTENT):
        if key in (name.lower(), name.lower() + "template"):
            return name
    return None


def to_event(message):
    """The MedTech event a message is evaluated as: {"Body": message, "Properties", "SystemProperties"}."""
    if isinstance(message, dict) and "Body" in message and any(key in message for key in _ENVELOPE_KEYS):
        return message
    return {"Body": message, "Properties": {}, "SystemProperties": {}}


# Reading measurement fields ------------------------------------------------------------------------------


def _shown(value):
    text = str(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _kind_of(value):
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def parse_timestamp(value):
    """An aware datetime from an ISO 8601 date-time (offset kept; no zone means UTC); ValueError if not."""
    if not isinstance(value, str):
        if value is None:
            raise ValueError("is missing")
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"is a number ({_shown(value)}); convert epoch times with a JmesPath function "
                             "such as fromUnixTimestamp or fromUnixTimestampMs")
        raise ValueError(f"is {_kind_of(value)}, not an ISO 8601 date-time")
    text = value.strip()
    if len(text) < 13 or ("T" not in text and text[10:11] != " "):
        raise ValueError(f"'{_shown(value)}' is not an ISO 8601 date-time with a time of day")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{_shown(value)}' is not an ISO 8601 date-time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _identifier(value):
    """A string identifier from a selected value, or None (missing, blank, object, array, boolean)."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _measured(value):
    """(value, None) for a usable measured value, else (None, why it is not usable)."""
    if isinstance(value, str):
        return (value, None) if value.strip() else (None, "is empty")
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return value, None
    if isinstance(value, float):
        return (value, None) if math.isfinite(value) else (None, "is not a finite number")
    if value is None:
        return None, "is missing"
    return None, f"is {_kind_of(value)}, not a single value"


@dataclass(frozen=True, slots=True)
class ValueTemplate:
    """One `values` entry: the value's name, its expression and whether it is required."""

    name: str
    expression: object
    required: bool


@dataclass(frozen=True, slots=True)
class ContentTemplate:
    """One compiled content template; `measure` turns one matched token into a Measurement."""

    kind: str
    type_name: str
    type_match: object
    device_id: tuple
    timestamp: tuple
    patient_id: object
    encounter_id: object
    correlation_id: object
    values: tuple
    calculated: bool

    def match(self, event):
        """The tokens the typeMatchExpression selects in `event` (nulls dropped)."""
        return [token for token in self.type_match.select(event) if token is not None]

    def measure(self, event, token):
        """The Measurement of one matched token; MappingError if it cannot be made."""
        scope = {**event, MATCHED_TOKEN: token} if self.calculated else token
        device_id = self._device_id(scope)
        occurrence = self._occurrence(scope)
        return Measurement(
            type_name=self.type_name,
            occurrence=occurrence,
            device_id=device_id,
            values=self._values(scope),
            patient_id=self._optional_id(self.patient_id, scope, "patientIdExpression"),
            encounter_id=self._optional_id(self.encounter_id, scope, "encounterIdExpression"),
            correlation_id=self._correlation_id(scope),
        )

    def _fail(self, reason, detail):
        raise MappingError(reason, f"{self.type_name}: {detail}")

    def _select(self, expression, scope, reason, field):
        try:
            return expression.select_one(scope)
        except ExpressionError as error:
            self._fail(reason, f"{field} {expression.source} failed: {error}")

    def _device_id(self, scope):
        for expression in self.device_id:
            device_id = _identifier(self._select(expression, scope, MISSING_DEVICE_ID, "deviceIdExpression"))
            if device_id is not None:
                return device_id
        sources = " or ".join(expression.source for expression in self.device_id)
        self._fail(MISSING_DEVICE_ID, f"no device id (a non-empty string or number) at {sources}")

    def _occurrence(self, scope):
        problems = []
        for expression in self.timestamp:
            value = self._select(expression, scope, BAD_TIMESTAMP, "timestampExpression")
            try:
                return parse_timestamp(value)
            except ValueError as error:
                problems.append(f"the timestamp at {expression.source} {error}")
        self._fail(BAD_TIMESTAMP, "; ".join(problems))

    def _optional_id(self, expression, scope, field):
        if expression is None:
            return None
        return _identifier(self._select(expression, scope, MISSING_REQUIRED_VALUE, field))

    def _correlation_id(self, scope):
        if self.correlation_id is None:
            return None
        value = self._optional_id(self.correlation_id, scope, "correlationIdExpression")
        if value is None:
            self._fail(MISSING_REQUIRED_VALUE, f"no correlation id at {self.correlation_id.source}")
        return value

    def _values(self, scope):
        values = []
        for spec in self.values:
            raw = self._select(spec.expression, scope, MISSING_REQUIRED_VALUE, f"value '{spec.name}'")
            value, problem = _measured(raw)
            if problem is None:
                values.append((spec.name, value))
            elif spec.required:
                self._fail(MISSING_REQUIRED_VALUE,
                           f"required value '{spec.name}' at {spec.expression.source} {problem}")
        return tuple(values)


class DeviceTemplates:
    """A validated device mapping (CollectionContent) that normalizes messages into Measurements."""

    def __init__(self, templates):
        self.templates = tuple(templates)
        names = {}
        for template in self.templates:
            names.setdefault(template.type_name, set()).update(spec.name for spec in template.values)
        self._value_names = names
        self.type_names = frozenset(names)

    def value_names(self, type_name):
        """The value names the templates of `type_name` can produce (empty for an unknown type)."""
        return set(self._value_names.get(type_name, ()))

    def normalize(self, message):
        """Every Measurement of `message` (all templates, every matched token); MappingError if none."""
        event = to_event(message)
        measurements, failures = [], []
        for template in self.templates:
            try:
                tokens = template.match(event)
            except ExpressionError as error:
                failures.append(f"{template.type_name}: typeMatchExpression failed: {error}")
                continue
            for token in tokens:
                measurements.append(template.measure(event, token))
        if not measurements:
            detail = "no template's typeMatchExpression matches the message"
            raise MappingError(NO_TEMPLATE_MATCH, "; ".join([detail, *failures]))
        return measurements

    def __len__(self):
        return len(self.templates)


# Loading and validation ----------------------------------------------------------------------------------


class _Loader:
    """Reads a template document, collecting every problem as (path, message)."""

    def __init__(self):
        self.problems = []

    def problem(self, path, message):
        self.problems.append((path, message))

    def fields(self, node, path, allowed, strict=True):
        """The node's fields by canonical name (case-insensitive); reports repeated and unknown ones."""
        canonical = {name.lower(): name for name in allowed}
        found = {}
        for key, value in node.items():
            name = canonical.get(key.lower()) if isinstance(key, str) else None
            if name is None:
                if strict:
                    self.problem(_join(path, key), f"unknown field; expected one of {', '.join(allowed)}")
            elif name in found:
                self.problem(_join(path, key), f"{name} is given twice")
            else:
                found[name] = (key, value)
        return found

    def collection(self, document):
        if not isinstance(document, dict):
            self.problem("", "a device mapping must be a JSON object "
                             '{"templateType": "CollectionContent", "template": [...]}')
            return []
        fields = self.fields(document, "", ("templateType", "template"), strict=False)
        kind = fields.get("templateType", (None, None))[1]
        if _kind_name(kind) != COLLECTION_CONTENT:
            self.problem("templateType", f"must be CollectionContent, not '{_shown(kind)}'"
                         if kind is not None else "is required and must be CollectionContent")
        items = fields.get("template", (None, None))[1]
        if not isinstance(items, list) or not items:
            self.problem("template", "must be a non-empty array of templates")
            return []
        loaded = [self.content(item, f"template[{index}]") for index, item in enumerate(items)]
        return [template for template in loaded if template is not None]

    def content(self, node, path):
        if not isinstance(node, dict):
            self.problem(path, 'must be an object {"templateType": ..., "template": {...}}')
            return None
        fields = self.fields(node, path, ("templateType", "template"), strict=False)
        raw_kind = fields.get("templateType", (None, None))[1]
        kind = _kind_name(raw_kind)
        if kind is None or kind == COLLECTION_CONTENT:
            expected = f"expected one of {', '.join(TEMPLATE_TYPES)}"
            given = f"unknown template type '{_shown(raw_kind)}'" if raw_kind is not None else "is required"
            self.problem(_join(path, "templateType"), f"{given}; {expected}")
            return None
        body = fields.get("template", (None, None))[1]
        if not isinstance(body, dict):
            self.problem(_join(path, "template"), f"must be an object (the {kind} template)")
            return None
        return self.template(kind, body, _join(path, "template"))

    def template(self, kind, body, path):
        calculated = kind == CALCULATED_CONTENT
        allowed = (*_FIELDS, "defaultExpressionLanguage") if calculated else _FIELDS
        fields = self.fields(body, path, allowed)
        count = len(self.problems)
        language = self.default_language(fields, path) if calculated else JSONPATH
        type_name = self.type_name(fields, path)
        read = _ExpressionReader(self, fields, path, language, calculated)
        type_match = read("typeMatchExpression", required=True)
        device_id, timestamp = self.iot_defaults(kind, read)
        patient_id, encounter_id = read("patientIdExpression"), read("encounterIdExpression")
        correlation_id = read("correlationIdExpression")
        values = self.values(fields, path, language, calculated)
        if len(self.problems) > count:
            return None
        return ContentTemplate(kind, type_name, type_match, device_id, timestamp, patient_id, encounter_id,
                               correlation_id, values, calculated)

    def iot_defaults(self, kind, read):
        """(device id expressions, timestamp expressions): the template's own, else the kind's fixed ones."""
        defaults = {
            IOT_JSONPATH_CONTENT: ((IOT_HUB_DEVICE_ID,), IOT_HUB_TIMESTAMPS),
            IOT_CENTRAL_JSONPATH_CONTENT: ((IOT_CENTRAL_DEVICE_ID,), (IOT_CENTRAL_TIMESTAMP,)),
        }.get(kind)
        device_id = read("deviceIdExpression", required=defaults is None)
        timestamp = read("timestampExpression", required=defaults is None)
        if defaults is None:
            return (device_id,), (timestamp,)
        fixed_device, fixed_times = (tuple(map(compile_expression, group)) for group in defaults)
        return (device_id,) if device_id else fixed_device, (timestamp,) if timestamp else fixed_times

    def default_language(self, fields, path):
        if "defaultExpressionLanguage" not in fields:
            return JSONPATH
        key, raw = fields["defaultExpressionLanguage"]
        language = language_name(raw)
        if language is None:
            self.problem(_join(path, key), f"must be {JSONPATH} or {JMESPATH}, not {_shown(raw)}")
            return JSONPATH
        return language

    def type_name(self, fields, path):
        key, raw = fields.get("typeName", ("typeName", None))
        if not isinstance(raw, str) or not raw.strip():
            self.problem(_join(path, key), "is required and must be a non-empty string")
            return None
        return raw

    def values(self, fields, path, language, calculated):
        if "values" not in fields:
            self.problem(_join(path, "values"), f"is required: {_VALUES_SHAPE}")
            return ()
        key, raw = fields["values"]
        if not isinstance(raw, list):
            self.problem(_join(path, key), f"must be {_VALUES_SHAPE}")
            return ()
        specs, seen = [], set()
        for index, item in enumerate(raw):
            spec = self.value(item, f"{_join(path, key)}[{index}]", language, calculated)
            if spec is None:
                continue
            if spec.name in seen:
                self.problem(f"{_join(path, key)}[{index}].valueName", f"'{spec.name}' is used twice")
            seen.add(spec.name)
            specs.append(spec)
        return tuple(specs)

    def value(self, item, path, language, calculated):
        if not isinstance(item, dict):
            self.problem(path, "must be an object {valueName, valueExpression, required}")
            return None
        fields = self.fields(item, path, _VALUE_FIELDS)
        key, name = fields.get("valueName", ("valueName", None))
        if not isinstance(name, str) or not name.strip():
            self.problem(_join(path, key), "is required and must be a non-empty string")
            name = None
        read = _ExpressionReader(self, fields, path, language, calculated)
        expression = read("valueExpression", required=True)
        required = self.required(fields, path)
        if name is None or expression is None or required is None:
            return None
        return ValueTemplate(name, expression, required)

    def required(self, fields, path):
        key, raw = fields.get("required", ("required", False))
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        self.problem(_join(path, key), f'must be true or false (or "true"/"false"), not {_shown(raw)}')
        return None


class _ExpressionReader:
    """Reads and compiles one template's expressions, reporting problems to the loader."""

    def __init__(self, loader, fields, path, language, calculated):
        self.loader, self.fields, self.path = loader, fields, path
        self.language, self.calculated = language, calculated

    def __call__(self, name, required=False):
        key, raw = self.fields.get(name, (name, None))
        path = _join(self.path, key)
        if raw is None:
            if required:
                self.loader.problem(path, "is required")
            return None
        source, language = self.source(raw, path)
        if source is None:
            return None
        try:
            return compile_expression(source, language)
        except ExpressionError as error:
            self.loader.problem(path, " ".join(str(error).split()))
            return None

    def source(self, raw, path):
        """(expression text, language) of a string or {"value", "language"} expression, else (None, None)."""
        if isinstance(raw, str):
            if not raw.strip():
                self.loader.problem(path, "must not be empty")
                return None, None
            return raw, self.language
        if not self.calculated:
            self.loader.problem(path, "must be a JsonPath string (only CalculatedContent takes objects)")
            return None, None
        if not isinstance(raw, dict):
            self.loader.problem(path, f"must be a JsonPath string or {_EXPRESSION_SHAPE}")
            return None, None
        fields = self.loader.fields(raw, path, ("value", "language"))
        value_key, value = fields.get("value", ("value", None))
        if not isinstance(value, str) or not value.strip():
            self.loader.problem(_join(path, value_key), "is required and must be a non-empty expression")
            return None, None
        if "language" not in fields:
            return value, self.language
        language_key, raw_language = fields["language"]
        language = language_name(raw_language)
        if language is None:
            self.loader.problem(_join(path, language_key), f"must be {JSONPATH} or {JMESPATH}, not "
                                f"{_shown(raw_language)}")
            return None, None
        return value, language


def _join(path, key):
    return f"{path}.{key}" if path else str(key)


def load_device_templates(document):
    """Validate a whole device mapping document and compile it; TemplateError lists every problem."""
    loader = _Loader()
    templates = loader.collection(document)
    if loader.problems:
        raise TemplateError(loader.problems)
    return DeviceTemplates(templates)
