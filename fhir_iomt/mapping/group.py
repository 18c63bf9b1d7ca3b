"""Measurements into the groups that each become one Observation (MedTech's observation groups).

periodInterval 0 makes one group per measurement (start == end == occurrence,
in the device's own offset); 60 and 1440 make UTC hour and day windows
[start, end) per device, patient, encounter and type; -1 makes one group per
correlation id, from its first to its last occurrence.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..domain.measurement import MISSING_REQUIRED_VALUE, NO_FHIR_TEMPLATE, MappingError
from .fhir_templates import CORRELATION, DAILY, HOURLY, SINGLE

WINDOWS = {HOURLY: timedelta(hours=1), DAILY: timedelta(days=1)}


@dataclass(frozen=True)
class MeasurementGroup:
    """Measurements of one type that make one Observation; start and end are aware datetimes."""

    type_name: str
    device_id: str
    patient_id: str | None
    encounter_id: str | None
    correlation_id: str | None
    start: datetime
    end: datetime
    measurements: tuple  # sorted by occurrence


def window_of(moment, period_interval):
    """The UTC window [start, end) of an hourly or daily periodInterval that holds `moment`."""
    utc = moment.astimezone(UTC)
    if period_interval == HOURLY:
        start = utc.replace(minute=0, second=0, microsecond=0)
    else:
        start = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + WINDOWS[period_interval]


def _by_time(measurements):
    return tuple(sorted(measurements, key=lambda m: m.occurrence.astimezone(UTC)))


def _single_groups(type_name, measurements):
    return [
        MeasurementGroup(type_name, m.device_id, m.patient_id, m.encounter_id, None, m.occurrence,
                         m.occurrence, (m,))
        for m in measurements
    ]


def _keyed(measurements, key_of):
    """Measurements bucketed by (device, patient, encounter, key_of(measurement))."""
    buckets = {}
    for m in measurements:
        key = (m.device_id, m.patient_id, m.encounter_id, key_of(m))
        buckets.setdefault(key, []).append(m)
    return buckets


def _window_groups(type_name, measurements, period_interval):
    buckets = _keyed(measurements, lambda m: window_of(m.occurrence, period_interval))
    return [
        MeasurementGroup(type_name, device, patient, encounter, None, start, end, _by_time(members))
        for (device, patient, encounter, (start, end)), members in buckets.items()
    ]


def _correlation_groups(type_name, measurements):
    buckets = _keyed(measurements, lambda m: m.correlation_id)
    groups = []
    for (device, patient, encounter, correlation_id), members in buckets.items():
        ordered = _by_time(members)
        groups.append(MeasurementGroup(type_name, device, patient, encounter, correlation_id,
                                       ordered[0].occurrence, ordered[-1].occurrence, ordered))
    return groups


def _groups_of(template, measurements):
    if template.period_interval == SINGLE:
        return _single_groups(template.type_name, measurements)
    if template.period_interval == CORRELATION:
        return _correlation_groups(template.type_name, measurements)
    return _window_groups(template.type_name, measurements, template.period_interval)


def _sort_key(group):
    return (group.type_name, group.device_id, group.patient_id or "", group.encounter_id or "",
            group.start.astimezone(UTC), group.correlation_id or "")


def _route(measurement, fhir_templates):
    """(template, None) for a measurement that can be grouped, else (None, MappingError)."""
    template = fhir_templates.for_type(measurement.type_name)
    if template is None:
        detail = f"no FHIR mapping template for type '{measurement.type_name}'"
        return None, MappingError(NO_FHIR_TEMPLATE, detail)
    if template.period_interval == CORRELATION and not measurement.correlation_id:
        detail = f"'{measurement.type_name}' is grouped by correlation id (periodInterval -1) but has none"
        return None, MappingError(MISSING_REQUIRED_VALUE, detail)
    return template, None


def group_measurements(measurements, fhir_templates):
    """(groups, unmapped): groups sorted by type, device, patient and start; unmapped (measurement, error)."""
    by_template, unmapped = {}, []
    for measurement in measurements:
        template, error = _route(measurement, fhir_templates)
        if error is not None:
            unmapped.append((measurement, error))
        else:
            by_template.setdefault(template.type_name, (template, []))[1].append(measurement)
    groups = []
    for template, members in by_template.values():
        groups += _groups_of(template, members)
    return sorted(groups, key=_sort_key), unmapped
