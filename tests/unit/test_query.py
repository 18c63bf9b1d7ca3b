"""Parsing FHIR search parameters into criteria."""

import pytest

from fhir_iomt.domain.errors import InvalidRequest, UnsupportedParameter
from fhir_iomt.fhir import expr
from fhir_iomt.fhir.dates import parse_range
from fhir_iomt.fhir.params import MISSING_DATE
from fhir_iomt.fhir.query import parse_search, split_values


def parse(items, resource_type="Observation", **options):
    return parse_search(resource_type, items, **options)


def test_split_values_honours_escaped_commas():
    assert split_values(r"a,b\,c,d\|e") == ["a", "b,c", "d|e"]


def test_token_forms_keep_system_and_code():
    found = parse([("code", "http://loinc.org|8867-4,|x,29463-7,http://loinc.org|")]).criteria
    expected = ("http://loinc.org|8867-4", "|x", "29463-7", "http://loinc.org|")
    assert found == expr.AnyOf("code", expected, True)


def test_scalar_token_drops_the_system():
    found = parse([("status", "http://hl7.org/fhir/observation-status|final")]).criteria
    assert found == expr.AnyOf("status", ("final",))


@pytest.mark.parametrize(
    ("value", "key"),
    [("p1", "Patient/p1"), ("Patient/p1", "Patient/p1"), ("https://me.org/fhir/Patient/p1", "Patient/p1"),
     ("Patient/p1/_history/3", "Patient/p1"),
     ("https://other.org/fhir/Patient/p1", "https://other.org/fhir/Patient/p1")],
)
def test_reference_forms(value, key):
    found = parse([("patient", value)], local_bases=("https://me.org/fhir",)).criteria
    assert found == expr.AnyOf("patient", (key,))


def test_reference_type_modifier_must_be_a_target():
    assert parse([("subject:Patient", "p1")]).criteria == expr.AnyOf("subject", ("Patient/p1",))
    with pytest.raises(UnsupportedParameter):
        parse([("subject:Encounter", "e1")])


def _date(prefix, value):
    criteria = parse([("date", prefix + value)]).criteria
    guard, condition = criteria.parts
    assert guard == expr.Compare("date", "gt", MISSING_DATE)
    return condition


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("lt", lambda r: expr.Compare("date", "lt", r.start)),
        ("le", lambda r: expr.Compare("date", "le", r.end)),
        ("gt", lambda r: expr.Compare("date_end", "gt", r.end)),
        ("ge", lambda r: expr.Compare("date_end", "ge", r.start)),
        ("sa", lambda r: expr.Compare("date", "gt", r.end)),
        ("eb", lambda r: expr.Compare("date_end", "lt", r.start)),
    ],
)
def test_date_prefixes(prefix, expected):
    wanted = parse_range("2026-11")
    assert _date(prefix, "2026-11") == expected(wanted)


def test_date_eq_is_containment_and_ne_its_negation():
    wanted = parse_range("2026-11-20")
    assert _date("", "2026-11-20") == expr.All(
        (expr.Compare("date", "ge", wanted.start), expr.Compare("date_end", "le", wanted.end))
    )
    assert _date("ne", "2026-11-20") == expr.Any(
        (expr.Compare("date", "lt", wanted.start), expr.Compare("date_end", "gt", wanted.end))
    )


def test_repeated_parameters_are_and_and_commas_are_or():
    criteria = parse([("date", "ge2026"), ("date", "lt2027"), ("code", "a,b")]).criteria
    assert isinstance(criteria, expr.All) and len(criteria.parts) == 3


def test_string_search_is_normalized_prefix_with_exact_and_contains():
    assert parse([("name", "MÜL")], "Patient").criteria == expr.StartsWith("name", "mul")
    assert parse([("name:exact", "Müller")], "Patient").criteria == expr.AnyOf(
        "name_exact", ("Müller",), True
    )
    assert parse([("family:contains", "ll")], "Patient").criteria == expr.Contains("family", "ll")


def test_result_parameters():
    request = parse([("_count", "5000"), ("_sort", "-date"), ("_total", "accurate")], max_count=1000)
    assert request.count == 1000
    assert (request.sort.key, request.sort.descending) == ("date", True)
    assert request.total_accurate
    assert parse([("_summary", "count")]).summary_count


def test_unknown_parameters_are_reported_or_refused():
    assert parse([("foo", "1")]).ignored == ["foo"]
    with pytest.raises(UnsupportedParameter):
        parse([("foo", "1")], strict=True)


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([("_count", "-1")], InvalidRequest),
        ([("_count", "ten")], InvalidRequest),
        ([("_sort", "value")], UnsupportedParameter),
        ([("_summary", "true")], UnsupportedParameter),
        ([("date", "ge2026-13")], InvalidRequest),
        ([("code:text", "weight")], UnsupportedParameter),
        ([("patient.name", "x")], UnsupportedParameter),
        ([("code", "")], InvalidRequest),
    ],
)
def test_bad_search_input_is_refused(items, error):
    with pytest.raises(error):
        parse(items)


def test_patient_has_no_date_sort():
    with pytest.raises(UnsupportedParameter):
        parse([("_sort", "date")], "Patient")
