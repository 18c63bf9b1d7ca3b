"""FHIR dates as millisecond ranges."""

import pytest

from fhir_iomt.fhir.dates import parse_range

DAY = 86_400_000


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("2026", 365 * DAY),
        ("2024", 366 * DAY),
        ("2026-02", 28 * DAY),
        ("2026-12", 31 * DAY),
        ("2026-11-23", DAY),
        ("2026-11-23T10:15", 60_000),
        ("2026-11-23T10:15:30Z", 1000),
        ("2026-11-23T10:15:30.250+02:00", 1),
    ],
)
def test_range_is_as_wide_as_the_precision(text, width):
    found = parse_range(text)
    assert found.end - found.start + 1 == width


def test_offsets_are_preserved_on_the_utc_scale():
    assert parse_range("2026-11-23T10:00:00+01:00") == parse_range("2026-11-23T09:00:00Z")
    assert parse_range("2026-11-23T10:00:00-05:30").start == parse_range("2026-11-23T15:30:00Z").start


def test_values_without_zone_are_utc():
    assert parse_range("2026-11-23T10:00:00").start == parse_range("2026-11-23T10:00:00Z").start


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-02-30", "2026-11-23T24:00:00Z", "26-11-23", "2026/11/23", "", "now"]
)
def test_invalid_dates_are_rejected(text):
    with pytest.raises(ValueError):
        parse_range(text)
