"""The vital-signs table and physiological limits."""

import pytest

from fhir_iomt.mapping import vital_signs as vs
from fhir_iomt.mapping.fhir_templates import FhirCode


def coded(code, system=vs.LOINC):
    return {"coding": [{"system": system, "code": code}]}


def quantity_observation(code, value, unit):
    return {
        "code": coded(code),
        "valueQuantity": {"value": value, "unit": unit, "system": vs.UCUM, "code": unit},
    }


def test_table_units_follow_the_reference():
    assert vs.VITAL_SIGNS["8867-4"].units == ("/min",)
    assert vs.VITAL_SIGNS["8310-5"].units == ("Cel", "[degF]")
    assert vs.VITAL_SIGNS["29463-7"].units == ("kg", "g", "[lb_av]")
    assert vs.VITAL_SIGNS["8462-4"].units == ("mm[Hg]",)
    assert vs.VITAL_SIGNS["41950-7"].units == ("{steps}",)
    assert vs.VITAL_SIGNS["85354-9"].units == ()
    assert vs.VITAL_SIGNS["85354-9"].components == ("8480-6", "8462-4")


def test_medtech_units_are_not_in_the_table():
    units = {unit for entry in vs.VITAL_SIGNS.values() for unit in entry.units}
    assert not units & {"count/min", "mmHg", "degC", "bpm", "%O2"}


def test_mdc_codes_map_to_loinc():
    assert vs.loinc_for_mdc("149530") == ["8867-4"]
    assert vs.loinc_for_mdc(150022) == ["8462-4"]
    assert vs.loinc_for_mdc("150456") == ["2708-6", "59408-5"]
    assert vs.loinc_for_mdc("999") == []


@pytest.mark.parametrize(
    "code",
    [
        "8867-4",
        "9279-1",
        "2708-6",
        "59408-5",
        "8310-5",
        "8302-2",
        "29463-7",
        "39156-5",
        "85354-9",
        "8480-6",
        "8462-4",
        "85353-1",
    ],
)
def test_profile_codes_are_vital_signs(code):
    assert vs.is_vital_sign([{"system": vs.LOINC, "code": code}])


@pytest.mark.parametrize("code", ["41653-7", "14743-9", "2339-0", "15074-8", "41950-7", "80404-7"])
def test_glucose_steps_and_others_are_not_vital_signs(code):
    assert not vs.is_vital_sign([{"system": vs.LOINC, "code": code}])


def test_vital_sign_needs_the_loinc_system():
    assert not vs.is_vital_sign([{"code": "8867-4"}])
    assert not vs.is_vital_sign([{"system": vs.MDC, "code": "147842"}])
    assert not vs.is_vital_sign([])
    assert not vs.is_vital_sign(None)


def test_is_vital_sign_reads_template_codes_too():
    assert vs.is_vital_sign([FhirCode("x", "urn:x"), FhirCode("8867-4", vs.LOINC)])


def test_vital_sign_category():
    category = vs.vital_sign_category()
    assert category["coding"][0] == {
        "system": vs.CATEGORY_SYSTEM,
        "code": "vital-signs",
        "display": "Vital Signs",
    }


def test_default_limits_of_the_brief():
    limits = vs.DEFAULT_LIMITS
    assert limits["8867-4"]["/min"] == (20, 300)
    assert limits["2708-6"]["%"] == (50, 100)
    assert limits["29463-7"]["kg"] == (0.5, 500)
    assert limits["8310-5"] == {"Cel": (25, 45), "[degF]": (77, 113)}
    assert limits["8480-6"]["mm[Hg]"] == (40, 300)
    assert limits["8462-4"]["mm[Hg]"] == (20, 200)
    assert limits["41653-7"]["mg/dL"] == limits["2339-0"]["mg/dL"] == (10, 1000)
    assert limits["14743-9"]["mmol/L"] == limits["15074-8"]["mmol/L"] == (0.5, 55)
    assert limits["41950-7"]["{steps}"] == (0, 200000)
    assert limits["9279-1"]["/min"] == (3, 80)


def test_limits_use_only_table_units():
    for code, units in vs.DEFAULT_LIMITS.items():
        assert set(units) <= set(vs.VITAL_SIGNS[code].units), code


def test_fahrenheit_limits_match_celsius():
    (low_c, high_c), (low_f, high_f) = (
        vs.DEFAULT_LIMITS["8310-5"]["Cel"],
        vs.DEFAULT_LIMITS["8310-5"]["[degF]"],
    )
    assert (low_c * 9 / 5 + 32, high_c * 9 / 5 + 32) == (low_f, high_f)


@pytest.mark.parametrize(
    "code, value, unit",
    [("8867-4", 20, "/min"), ("8867-4", 300, "/min"), ("8310-5", 98.6, "[degF]"), ("41950-7", 0, "{steps}")],
)
def test_values_inside_limits_pass(code, value, unit):
    assert vs.check_limits(quantity_observation(code, value, unit)) == []


@pytest.mark.parametrize(
    "code, value, unit",
    [
        ("8867-4", 19, "/min"),
        ("8867-4", 301, "/min"),
        ("2708-6", 101, "%"),
        ("8310-5", 120, "[degF]"),
        ("8310-5", 24.9, "Cel"),
        ("29463-7", 600, "kg"),
        ("14743-9", 60, "mmol/L"),
        ("9279-1", 2, "/min"),
    ],
)
def test_values_outside_limits_are_reported(code, value, unit):
    problems = vs.check_limits(quantity_observation(code, value, unit))
    assert len(problems) == 1
    assert problems[0].startswith(f"Observation.value: {code} value")
    assert unit in problems[0]


def test_component_quantities_are_checked():
    observation = {
        "code": coded("85354-9"),
        "component": [
            {"code": coded("8480-6"), "valueQuantity": {"value": 350, "unit": "mm[Hg]", "code": "mm[Hg]"}},
            {"code": coded("8462-4"), "valueQuantity": {"value": 80, "unit": "mm[Hg]", "code": "mm[Hg]"}},
        ],
    }
    problems = vs.check_limits(observation)
    assert problems == ["Observation.component[0].value: 8480-6 value 350 mm[Hg] is outside 40..300 mm[Hg]"]


def test_sampled_data_samples_are_checked_and_gaps_skipped():
    observation = {
        "code": coded("8867-4"),
        "valueSampledData": {
            "origin": {"value": 0, "code": "/min"},
            "period": 1000,
            "dimensions": 1,
            "data": "72 E 350 10 U",
        },
    }
    problems = vs.check_limits(observation)
    assert len(problems) == 2
    assert "350" in problems[0] and "10" in problems[1]


def test_unknown_unit_or_code_is_not_checked():
    assert vs.check_limits(quantity_observation("8867-4", 1000, "/s")) == []
    assert vs.check_limits(quantity_observation("80404-7", 1e9, "ms")) == []
    assert vs.check_limits({"code": coded("8867-4"), "valueString": "fast"}) == []


def test_limits_can_be_overridden_per_code():
    limits = vs.limits_with({"8867-4": {"/min": (30, 220)}, "2708-6": None})
    assert vs.check_limits(quantity_observation("8867-4", 25, "/min"), limits)
    assert vs.check_limits(quantity_observation("2708-6", 10, "%"), limits) == []
    assert vs.check_limits(quantity_observation("8462-4", 10, "mm[Hg]"), limits)  # other codes keep defaults
    assert vs.DEFAULT_LIMITS["8867-4"]["/min"] == (20, 300)


def test_limits_given_whole_replace_the_defaults():
    limits = {"8867-4": {"/min": (60, 100)}}
    assert vs.check_limits(quantity_observation("8867-4", 110, "/min"), limits)
    assert vs.check_limits(quantity_observation("8462-4", 10, "mm[Hg]"), limits) == []
