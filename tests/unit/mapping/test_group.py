"""Grouping measurements by periodInterval (single, hourly, daily, correlation id)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fhir_iomt.domain.measurement import MISSING_REQUIRED_VALUE, NO_FHIR_TEMPLATE, Measurement
from fhir_iomt.mapping.fhir_templates import load_fhir_templates
from fhir_iomt.mapping.group import MeasurementGroup, group_measurements, window_of

PARIS = timezone(timedelta(hours=2))
NEW_YORK = timezone(timedelta(hours=-5))


def template(type_name, interval):
    body = {
        "typeName": type_name,
        "periodInterval": interval,
        "codes": [{"code": type_name, "system": "urn:x"}],
        "value": {"valueName": "v", "valueType": "String"},
    }
    return {"templateType": "CodeValueFhir", "template": body}


TEMPLATES = load_fhir_templates(
    {
        "templateType": "CollectionFhir",
        "template": [
            template("single", 0),
            template("hourly", 60),
            template("daily", 1440),
            template("session", -1),
        ],
    }
)


def m(type_name, when, value=1, device="dev-1", patient="pat-1", encounter=None, correlation=None):
    return Measurement(type_name, when, device, (("v", value),), patient, encounter, correlation)


def test_single_makes_one_group_per_measurement():
    at = datetime(2026, 3, 1, 10, 15, 30, tzinfo=PARIS)
    first, second = m("single", at), m("single", at + timedelta(seconds=5))
    groups, unmapped = group_measurements([second, first], TEMPLATES)
    assert unmapped == []
    assert [g.measurements for g in groups] == [(first,), (second,)]
    assert groups[0].start == groups[0].end == at
    assert groups[0].start.utcoffset() == timedelta(hours=2)
    assert (groups[0].device_id, groups[0].patient_id, groups[0].correlation_id) == ("dev-1", "pat-1", None)


def test_hourly_windows_are_utc_hours():
    at = datetime(2026, 3, 1, 10, 15, tzinfo=PARIS)  # 08:15 UTC
    groups, _ = group_measurements([m("hourly", at), m("hourly", at + timedelta(minutes=50))], TEMPLATES)
    assert [(g.start, g.end) for g in groups] == [
        (datetime(2026, 3, 1, 8, tzinfo=UTC), datetime(2026, 3, 1, 9, tzinfo=UTC)),
        (datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ]


def test_hourly_window_holds_measurements_sorted_by_time():
    base = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    late, early = m("hourly", base + timedelta(minutes=50), 2), m("hourly", base + timedelta(minutes=5), 1)
    offset = m("hourly", datetime(2026, 3, 1, 10, 30, tzinfo=PARIS), 3)  # 08:30 UTC
    groups, _ = group_measurements([late, offset, early], TEMPLATES)
    assert len(groups) == 1
    assert groups[0].measurements == (early, offset, late)


def test_window_end_is_exclusive():
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    groups, _ = group_measurements([m("hourly", start), m("hourly", start + timedelta(hours=1))], TEMPLATES)
    assert [g.start for g in groups] == [start, start + timedelta(hours=1)]


def test_daily_windows_are_utc_days():
    at = datetime(2026, 3, 1, 22, 0, tzinfo=NEW_YORK)  # 03:00 UTC on March 2
    groups, _ = group_measurements([m("daily", at)], TEMPLATES)
    assert (groups[0].start, groups[0].end) == (
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
    )


@pytest.mark.parametrize("field", ["device", "patient", "encounter"])
def test_windows_are_split_by_device_patient_and_encounter(field):
    at = datetime(2026, 3, 1, 8, 10, tzinfo=UTC)
    groups, _ = group_measurements([m("hourly", at), m("hourly", at, **{field: "other"})], TEMPLATES)
    assert len(groups) == 2


def test_types_are_grouped_apart():
    at = datetime(2026, 3, 1, 8, 10, tzinfo=UTC)
    groups, _ = group_measurements([m("hourly", at), m("daily", at)], TEMPLATES)
    assert sorted(g.type_name for g in groups) == ["daily", "hourly"]


def test_correlation_groups_span_first_to_last_occurrence():
    at = datetime(2026, 3, 1, 8, 10, tzinfo=PARIS)
    a1, a2 = m("session", at, correlation="A"), m("session", at + timedelta(hours=3), correlation="A")
    b1 = m("session", at + timedelta(minutes=1), correlation="B")
    groups, unmapped = group_measurements([a2, b1, a1], TEMPLATES)
    assert unmapped == []
    by_id = {g.correlation_id: g for g in groups}
    assert by_id["A"].measurements == (a1, a2)
    assert (by_id["A"].start, by_id["A"].end) == (a1.occurrence, a2.occurrence)
    assert by_id["B"].start == by_id["B"].end == b1.occurrence


def test_correlation_group_without_correlation_id_is_unmapped():
    measurement = m("session", datetime(2026, 3, 1, tzinfo=UTC))
    groups, unmapped = group_measurements([measurement], TEMPLATES)
    assert groups == []
    assert unmapped[0][0] is measurement
    assert unmapped[0][1].reason == MISSING_REQUIRED_VALUE


def test_measurement_without_template_is_unmapped_with_reason():
    known, unknown = (
        m("hourly", datetime(2026, 3, 1, tzinfo=UTC)),
        m("steps", datetime(2026, 3, 1, tzinfo=UTC)),
    )
    groups, unmapped = group_measurements([known, unknown], TEMPLATES)
    assert [g.measurements for g in groups] == [(known,)]
    measurement, error = unmapped[0]
    assert measurement is unknown
    assert error.reason == NO_FHIR_TEMPLATE
    assert "steps" in error.detail


def test_type_lookup_ignores_case_and_groups_under_the_template_name():
    at = datetime(2026, 3, 1, 8, 10, tzinfo=UTC)
    groups, _ = group_measurements([m("Hourly", at), m("HOURLY", at + timedelta(minutes=1))], TEMPLATES)
    assert len(groups) == 1
    assert groups[0].type_name == "hourly"


def test_groups_are_frozen_and_hashable():
    groups, _ = group_measurements([m("single", datetime(2026, 3, 1, tzinfo=UTC))], TEMPLATES)
    assert isinstance(groups[0], MeasurementGroup)
    with pytest.raises(AttributeError):
        groups[0].type_name = "x"
    assert hash(groups[0])


def test_grouping_is_deterministic():
    at = datetime(2026, 3, 1, 8, tzinfo=UTC)
    batch = [m("hourly", at + timedelta(minutes=i * 13), device=f"d{i % 3}") for i in range(12)]
    first, _ = group_measurements(batch, TEMPLATES)
    second, _ = group_measurements(list(reversed(batch)), TEMPLATES)
    assert first == second


def test_window_of_crosses_the_utc_day_and_year():
    start, end = window_of(datetime(2026, 12, 31, 23, 59, 59, tzinfo=NEW_YORK), 1440)
    assert (start, end) == (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC))


def test_empty_input_gives_nothing():
    assert group_measurements([], TEMPLATES) == ([], [])
