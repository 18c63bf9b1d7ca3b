"""Parse FHIR search parameters into criteria, sort, paging and result options."""

import re
from dataclasses import dataclass, field

from ..domain.errors import InvalidRequest, UnsupportedParameter
from . import expr
from .dates import parse_range
from .params import MISSING_DATE, RESOURCE_TYPES, SORTS, normalize_text, params_of, reference_key

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
RESULT_PARAMETERS = {"_count", "_sort", "_summary", "_total", "_format", "_pretty", "_page"}
STRING_MODIFIERS = {"", "exact", "contains"}
# Bounds on one search's size: each value becomes a database condition (a regex for strings).
MAX_VALUES = 50
MAX_CRITERIA = 30
# Reference parameters _include follows, by source type ('*' names them all).
INCLUDES = {"Observation": ("patient", "subject", "device"), "Device": ("patient",)}


@dataclass(frozen=True)
class Sort:
    """Order of a search: a sub-document key, descending or not."""

    key: str
    descending: bool = False
    param: str = "_lastUpdated"

    def as_param(self):
        return ("-" if self.descending else "") + self.param


@dataclass(frozen=True)
class Include:
    """One _include: the search-document key of a reference parameter and the target types to return."""

    key: str
    targets: tuple


@dataclass
class SearchRequest:
    """A parsed search: what to match, in which order, how many, which page."""

    resource_type: str
    criteria: object
    sort: Sort
    count: int
    summary_count: bool = False
    total_accurate: bool = False
    page: str | None = None
    applied: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    includes: list = field(default_factory=list)


def split_values(raw):
    """Split a parameter value on unescaped commas, undoing FHIR's backslash escapes."""
    parts = re.split(r"(?<!\\),", raw)
    return [re.sub(r"\\([,$|\\])", r"\1", part) for part in parts]


def _token_criterion(param, values):
    if param.array:
        return expr.AnyOf(param.key, tuple(values), array=True)
    # Scalar codes (status, gender, _id) are stored without their system.
    codes = tuple(v.split("|", 1)[1] if "|" in v else v for v in values)
    return expr.AnyOf(param.key, codes)


def _reference_value(param, value, modifier, local_bases):
    if modifier and modifier not in param.targets:
        raise UnsupportedParameter(f"'{param.name}:{modifier}' is not a valid target type")
    if "/" in value:
        key = reference_key(value, local_bases)
        if key is None:
            raise InvalidRequest(f"'{value}' is not a reference for '{param.name}'")
        return (key,)
    target_types = (modifier,) if modifier else param.targets
    return tuple(f"{t}/{value}" for t in target_types)


def _reference_criterion(param, values, modifier, local_bases):
    keys = tuple(k for v in values for k in _reference_value(param, v, modifier, local_bases))
    return expr.AnyOf(param.key, keys)


def _string_criterion(param, values, modifier):
    if modifier == "exact":
        return expr.AnyOf(f"{param.key}_exact", tuple(values), array=True)
    if modifier == "contains":
        return expr.any_of(expr.Contains(param.key, normalize_text(v)) for v in values)
    return expr.any_of(expr.StartsWith(param.key, normalize_text(v)) for v in values)


def date_condition(key, prefix, value):
    """Criterion for one prefixed date value against a stored [start, end] range."""
    try:
        wanted = parse_range(value)
    except ValueError as error:
        raise InvalidRequest(f"Invalid date '{value}': {error}") from error
    start, end = key, f"{key}_end"
    conditions = {
        "eq": expr.All((expr.Compare(start, "ge", wanted.start), expr.Compare(end, "le", wanted.end))),
        "ne": expr.Any((expr.Compare(start, "lt", wanted.start), expr.Compare(end, "gt", wanted.end))),
        "lt": expr.Compare(start, "lt", wanted.start),
        "le": expr.Compare(start, "le", wanted.end),
        "gt": expr.Compare(end, "gt", wanted.end),
        "ge": expr.Compare(end, "ge", wanted.start),
        "sa": expr.Compare(start, "gt", wanted.end),
        "eb": expr.Compare(end, "lt", wanted.start),
    }
    # Resources without a date store MISSING_DATE; they match no date criterion.
    return expr.All((expr.Compare(start, "gt", MISSING_DATE), conditions[prefix]))


def _date_criterion(param, values):
    parts = []
    for value in values:
        prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
        parts.append(date_condition(param.key, prefix, value[2:] if value[:2] == prefix else value))
    return expr.any_of(parts)


def _criterion(param, modifier, raw, local_bases):
    values = [v for v in split_values(raw) if v != ""]
    if not values:
        raise InvalidRequest(f"Search parameter '{param.name}' has no value")
    if len(values) > MAX_VALUES:
        raise InvalidRequest(f"Search parameter '{param.name}' has {len(values)} values; at most {MAX_VALUES}")
    if param.type == "string":
        if modifier not in STRING_MODIFIERS:
            raise UnsupportedParameter(f"Modifier ':{modifier}' is not supported on '{param.name}'")
        return _string_criterion(param, values, modifier)
    if param.type == "reference":
        return _reference_criterion(param, values, modifier, local_bases)
    if modifier:
        raise UnsupportedParameter(f"Modifier ':{modifier}' is not supported on '{param.name}'")
    if param.type == "date":
        return _date_criterion(param, values)
    return _token_criterion(param, values)


def parse_count(raw, max_count):
    """A page size from its text: ASCII digits only, lowered to `max_count`; InvalidRequest otherwise."""
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidRequest(f"_count must be a non-negative integer, got '{raw}'")
    return min(int(raw), max_count)


def _parse_sort(resource_type, raw):
    allowed = SORTS[resource_type]
    name = raw.lstrip("-")
    if name not in allowed or raw.count("-") > 1 or "," in raw:
        names = ", ".join(sorted(allowed))
        raise UnsupportedParameter(f"_sort '{raw}' is not supported for {resource_type} ({names})")
    return Sort(allowed[name], raw.startswith("-"), name)


def include_values(resource_type):
    """The _include values a type supports, as the CapabilityStatement lists them."""
    names = INCLUDES.get(resource_type, ())
    return ["*", *(f"{resource_type}:{name}" for name in names)] if names else []


def _include_error(resource_type, raw):
    supported = ", ".join(include_values(resource_type)) or "none"
    return UnsupportedParameter(f"_include={raw} is not supported for {resource_type} (supported: {supported})")


def parse_include(resource_type, raw):
    """The Includes of one _include value ('*' or Source:param[:Target]); UnsupportedParameter otherwise."""
    parts = [resource_type, "*"] if raw == "*" else raw.split(":")
    names = INCLUDES.get(resource_type, ())
    if len(parts) not in (2, 3) or parts[0] != resource_type or (parts[1] != "*" and parts[1] not in names):
        raise _include_error(resource_type, raw)
    params = params_of(resource_type)
    target = parts[2] if len(parts) == 3 else None
    chosen = [params[name] for name in (names if parts[1] == "*" else (parts[1],))]
    chosen = [p for p in chosen if target is None or target in p.targets]
    if not chosen:
        raise _include_error(resource_type, raw)
    # Only types this server stores can be returned (a Group subject is a valid but empty include).
    return [
        Include(p.key, tuple(t for t in ((target,) if target else p.targets) if t in RESOURCE_TYPES))
        for p in chosen
    ]


class _Builder:
    """Accumulates the pieces of a SearchRequest while walking the parameters."""

    def __init__(self, resource_type, default_count, max_count, local_bases):
        self.resource_type = resource_type
        self.local_bases = local_bases
        self.params = params_of(resource_type)
        self.request = SearchRequest(resource_type, None, Sort("lu"), min(default_count, max_count))
        self.max_count = max_count
        self.criteria = []

    def result_parameter(self, name, raw):
        request = self.request
        if name == "_count":
            request.count = parse_count(raw, self.max_count)
        elif name == "_sort":
            request.sort = _parse_sort(self.resource_type, raw)
        elif name == "_summary":
            if raw != "count":
                raise UnsupportedParameter(f"_summary={raw} is not supported (only 'count')")
            request.summary_count = True
        elif name == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise InvalidRequest(f"_total must be none, estimate or accurate, got '{raw}'")
            request.total_accurate = raw != "none"
        elif name == "_page":
            request.page = raw
            return
        else:
            return
        request.applied.append((name, raw))

    def search_parameter(self, name, raw, strict):
        base, _, modifier = name.partition(":")
        param = self.params.get(base)
        if param is None:
            if "." in base and base.split(".", 1)[0] in self.params:
                raise UnsupportedParameter(f"Chained search '{name}' is not supported")
            if strict:
                raise UnsupportedParameter(f"Unknown search parameter '{name}' for {self.resource_type}")
            self.request.ignored.append(name)
            return
        if len(self.criteria) >= MAX_CRITERIA:
            raise InvalidRequest(f"A search takes at most {MAX_CRITERIA} search parameters")
        self.criteria.append(_criterion(param, modifier, raw, self.local_bases))
        self.request.applied.append((name, raw))

    def include(self, name, raw, strict):
        try:
            if name != "_include":
                raise UnsupportedParameter(f"{name} is not supported (only _include, which does not iterate)")
            includes = parse_include(self.resource_type, raw)
        except UnsupportedParameter:
            if strict:
                raise
            self.request.ignored.append(f"{name}={raw}")
            return
        request = self.request
        request.includes.extend(i for i in includes if i not in request.includes)
        if (name, raw) not in request.applied:
            request.applied.append((name, raw))


def parse_search(resource_type, items, strict=False, default_count=50, max_count=1000, local_bases=()):
    """Parse (name, value) pairs of a search into a SearchRequest; raise on bad input.

    `local_bases` are this server's base URLs: absolute references on them are local.
    """
    builder = _Builder(resource_type, default_count, max_count, local_bases)
    for name, raw in items:
        if name in RESULT_PARAMETERS:
            builder.result_parameter(name, raw)
        elif name.partition(":")[0] == "_include":
            builder.include(name, raw, strict)
        else:
            builder.search_parameter(name, raw, strict)
    request = builder.request
    request.criteria = expr.all_of(builder.criteria) if builder.criteria else None
    return request
