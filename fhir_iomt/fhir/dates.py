"""FHIR date, dateTime and instant values as ranges of epoch milliseconds.

A FHIR date is a range as wide as its precision: `2026` covers the whole year,
`2026-11-23T10:15:00+01:00` one second. Values without a time zone are read as
UTC (documented in the CapabilityStatement), so stored ranges and search ranges
compare on one scale.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

_PATTERN = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True)
class DateRange:
    """A closed range [start, end] in epoch milliseconds."""

    start: int
    end: int


def _zone(text):
    """Time zone of an ISO offset ('Z', '+01:00'), UTC when absent."""
    if not text or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _millis(moment):
    return int(moment.timestamp() * 1000)


def _add_months(moment, months):
    total = moment.month - 1 + months
    return moment.replace(year=moment.year + total // 12, month=total % 12 + 1)


def parse_range(text):
    """Parse a FHIR date/dateTime/instant into the DateRange it covers; ValueError if invalid."""
    match = _PATTERN.match(text or "")
    if not match:
        raise ValueError(f"'{text}' is not a FHIR date or dateTime")
    parts = match.groupdict()
    zone = _zone(parts["tz"])
    start = datetime(
        int(parts["year"]),
        int(parts["month"] or 1),
        int(parts["day"] or 1),
        int(parts["hour"] or 0),
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        int((parts["fraction"] or "0")[:6].ljust(6, "0")),
        tzinfo=zone,
    )
    if parts["fraction"] is not None:
        end = start + timedelta(milliseconds=1)
    elif parts["second"] is not None:
        end = start + timedelta(seconds=1)
    elif parts["minute"] is not None:
        end = start + timedelta(minutes=1)
    elif parts["day"] is not None:
        end = start + timedelta(days=1)
    elif parts["month"] is not None:
        end = _add_months(start, 1)
    else:
        end = start.replace(year=start.year + 1)
    return DateRange(_millis(start), _millis(end) - 1)


def span(first, last):
    """The range from the start of `first` to the end of `last` (a Period)."""
    return DateRange(first.start, last.end)


def instant_now():
    """The current time as a FHIR instant in UTC with millisecond precision."""
    return format_instant(datetime.now(UTC))


def format_instant(moment):
    """Format an aware datetime as a FHIR instant in UTC."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def millis_of_instant(text):
    """Epoch milliseconds of a FHIR instant written by this server."""
    return parse_range(text).start
