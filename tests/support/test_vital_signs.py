"""The Vital Signs checker: official R4 examples, broken copies, and its tables against the R4 profiles."""

import copy

import pytest

from tests.support import r4schema
from tests.support import vital_signs as vs

PROFILED = [
    "Observation-heart-rate.json",
    "Observation-blood-pressure.json",
    "Observation-example.json",  # R4's body-weight example (185 [lb_av]); there is no Observation-body-weight
    "Observation-blood-pressure-dar.json",
    "Observation-blood-pressure-cancel.json",
    "Observation-body-height.json",
    "Observation-body-length.json",
    "Observation-body-temperature.json",
    "Observation-bmi.json",
    "Observation-bmi-using-related.json",
    "Observation-head-circumference.json",
    "Observation-respiratory-rate.json",
    "Observation-satO2.json",
    "Observation-vitals-panel.json",
    "Observation-mbp.json",
]


def example(name):
    return copy.deepcopy(r4schema.load_example(name))


@pytest.mark.parametrize("name", PROFILED)
def test_the_official_vital_signs_examples_conform(name):
    observation = example(name)
    assert vs.is_vital_sign(observation)
    assert vs.violations(observation) == []
    vs.assert_conforms(observation)


def test_every_official_example_that_claims_the_profile_conforms():
    folder = r4schema.examples_dir()
    claimed = [path.name for path in sorted(folder.glob("Observation-*.json"))
               if "http://hl7.org/fhir/StructureDefinition/vitalsigns" in
               (r4schema.load_example(path.name).get("meta") or {}).get("profile", ())]
    assert len(claimed) >= 12
    assert {name: vs.violations(example(name)) for name in claimed} == dict.fromkeys(claimed, [])


def test_official_examples_that_do_not_claim_the_profile_are_caught():
    # f202: a body temperature entered in error, without effective[x].
    assert vs.violations(example("Observation-f202.json")) == [
        "Observation.effective[x]: is required (effectiveDateTime or effectivePeriod)",
    ]
    # map-sitting: a mean blood pressure filed under the laboratory category.
    assert vs.violations(example("Observation-map-sitting.json")) == [
        "Observation.category: needs the coding "
        "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
    ]


@pytest.mark.parametrize("name", ["ekg", "glasgow", "f001"])
def test_other_observations_are_not_vital_signs(name):
    assert not vs.is_vital_sign(example(f"Observation-{name}.json"))


def _component(observation, code):
    return next(c for c in observation["component"] if code in vs.loinc_codes(c["code"]))


def heart_rate_unit(obs):
    obs["valueQuantity"]["code"] = "beats/min"


def heart_rate_no_system(obs):
    del obs["valueQuantity"]["system"]


def heart_rate_no_unit(obs):
    del obs["valueQuantity"]["unit"]


def heart_rate_sampled(obs):
    del obs["valueQuantity"]
    obs["valueSampledData"] = {"origin": {"value": 0}, "period": 1000, "dimensions": 1, "data": "44 45"}


def heart_rate_no_value(obs):
    del obs["valueQuantity"]


def heart_rate_value_and_absent(obs):
    obs["dataAbsentReason"] = {"text": "unknown"}


def heart_rate_status(obs):
    obs["status"] = "done"


def heart_rate_no_status(obs):
    del obs["status"]


def heart_rate_no_category(obs):
    obs["category"] = [{"coding": [{"system": vs.CATEGORY_SYSTEM, "code": "laboratory"}]}]


def heart_rate_twice_category(obs):
    obs["category"] = obs["category"] * 2


def heart_rate_local_code(obs):
    obs["code"] = {"coding": [{"system": "http://acme.org/codes", "code": "HR"}]}


def heart_rate_no_loinc_system(obs):
    del obs["code"]["coding"][0]["system"]


def heart_rate_group_subject(obs):
    obs["subject"] = {"reference": "Group/102"}


def heart_rate_no_subject(obs):
    del obs["subject"]


def heart_rate_month(obs):
    obs["effectiveDateTime"] = "1999-07"


def heart_rate_no_effective(obs):
    del obs["effectiveDateTime"]


def heart_rate_instant(obs):
    obs["effectiveInstant"] = obs.pop("effectiveDateTime") + "T09:30:10+01:00"


def heart_rate_period_month(obs):
    del obs["effectiveDateTime"]
    obs["effectivePeriod"] = {"start": "1999-07"}


def weight_lbs(obs):
    obs["valueQuantity"]["code"] = "lbs"


def temperature_deg_c(obs):
    obs["valueQuantity"].update({"unit": "degC", "code": "degC"})  # MedTech's sample unit


def bp_diastolic_as_heart_rate(obs):
    coding = _component(obs, vs.DIASTOLIC)["code"]["coding"][0]
    coding.update({"code": "8867-4", "display": "Diastolic blood pressure"})  # MedTech's sample mistake


def bp_mmhg(obs):
    _component(obs, vs.SYSTOLIC)["valueQuantity"]["code"] = "mmHg"


def bp_panel_value(obs):
    obs["valueQuantity"] = {"value": 107, "unit": "mm[Hg]", "system": vs.UCUM, "code": "mm[Hg]"}


def bp_component_empty(obs):
    del _component(obs, vs.SYSTOLIC)["valueQuantity"]


def bp_two_systolic(obs):
    obs["component"].append(copy.deepcopy(_component(obs, vs.SYSTOLIC)))


def bp_systolic_string(obs):
    component = _component(obs, vs.SYSTOLIC)
    del component["valueQuantity"]
    component["valueString"] = "107"


def spo2_without_2708(obs):
    obs["code"]["coding"] = [c for c in obs["code"]["coding"] if c.get("code") != vs.OXYGEN_SATURATION]


def panel_without_members(obs):
    del obs["hasMember"]


HR = "Observation-heart-rate.json"
BROKEN = [
    (HR, heart_rate_unit, "Observation.valueQuantity.code: 'beats/min' is not an allowed"),
    (HR, heart_rate_no_system, "Observation.valueQuantity.system: must be"),
    (HR, heart_rate_no_unit, "Observation.valueQuantity.unit: is required"),
    (HR, heart_rate_sampled, "takes a valueQuantity only, not valueSampledData"),
    (HR, heart_rate_no_value, "needs a value[x] or a dataAbsentReason (vs-2)"),
    (HR, heart_rate_value_and_absent, "must not be present with a value (obs-6)"),
    (HR, heart_rate_status, "Observation.status: 'done' is not in"),
    (HR, heart_rate_no_status, "Observation.status: is required"),
    (HR, heart_rate_no_category, "Observation.category: needs the coding"),
    (HR, heart_rate_twice_category, "vital-signs category more than once"),
    (HR, heart_rate_local_code, "has no LOINC coding of the vital-signs value set"),
    (HR, heart_rate_no_loinc_system, "8867-4 has no system"),
    (HR, heart_rate_group_subject, "Observation.subject: must reference a Patient"),
    (HR, heart_rate_no_subject, "Observation.subject: is required"),
    (HR, heart_rate_month, "precise to the day at least (vs-1)"),
    (HR, heart_rate_no_effective, "Observation.effective[x]: is required"),
    (HR, heart_rate_instant, "Observation.effectiveInstant: is not allowed"),
    (HR, heart_rate_period_month, "Observation.effectivePeriod.start: must be precise"),
    ("Observation-example.json", weight_lbs, "'lbs' is not an allowed unit of 29463-7"),
    ("Observation-body-temperature.json", temperature_deg_c, "'degC' is not an allowed unit of 8310-5"),
    ("Observation-blood-pressure.json", bp_diastolic_as_heart_rate,
     "85354-9 needs a Diastolic blood pressure component (8462-4)"),
    ("Observation-blood-pressure.json", bp_mmhg, "valueQuantity.code: 'mmHg' is not an allowed unit of 8480"),
    ("Observation-blood-pressure.json", bp_panel_value, "is a panel and carries no value of its own"),
    ("Observation-blood-pressure.json", bp_component_empty, "needs a value[x] or a dataAbsentReason (vs-3)"),
    ("Observation-blood-pressure.json", bp_two_systolic, "has 2 Systolic blood pressure components"),
    ("Observation-blood-pressure.json", bp_systolic_string, "takes a valueQuantity only, not valueString"),
    ("Observation-satO2.json", spo2_without_2708, "59408-5 (pulse oximetry) needs 2708-6 too"),
    ("Observation-vitals-panel.json", panel_without_members, "Observation.hasMember: 85353-1"),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), BROKEN, ids=[case[1].__name__ for case in BROKEN])
def test_a_broken_copy_is_reported(name, mutate, expected):
    observation = example(name)
    mutate(observation)
    problems = vs.violations(observation)
    assert any(expected in problem for problem in problems), problems
    with pytest.raises(AssertionError, match="breaks the R4 Vital Signs profile"):
        vs.assert_conforms(observation)


def test_not_an_observation():
    assert vs.violations({"resourceType": "Patient"}) == ["resourceType: must be Observation, not 'Patient'"]
    assert vs.violations(None) == ["an Observation must be a JSON object, not NoneType"]


# --- The checker's tables against the official R4 definitions ---------------------------------------------


def _value_set_codes(url):
    name = url.split("|")[0].rsplit("/", 1)[-1]
    document = r4schema.load_example(f"ValueSet-{name}.json")
    return {concept["code"] for include in document["compose"]["include"] for concept in include["concept"]}


def test_the_code_and_unit_tables_match_the_official_value_sets():
    assert _value_set_codes("http://hl7.org/fhir/ValueSet/observation-vitalsignresult") == vs.VALUE_SET
    assert _value_set_codes("http://hl7.org/fhir/ValueSet/ucum-vitals-common") == vs.VITALS_COMMON_UNITS


PROFILES = [
    "heartrate", "resprate", "oxygensat", "bodytemp", "bodyheight", "headcircum", "bodyweight", "bmi", "bp",
]


def _elements(profile, view="differential"):
    document = r4schema.load_example(f"StructureDefinition-{profile}.json")
    return {element["id"]: element for element in document[view]["element"]}


def _fixed_code(elements, prefix):
    return next(
        e["fixedCode"] for key, e in elements.items()
        if key.startswith(prefix) and key.endswith(".code") and "fixedCode" in e
    )


def _units(elements, element_id):
    element = elements[element_id]
    if "fixedCode" in element:
        return {element["fixedCode"]}
    return _value_set_codes(element["binding"]["valueSet"])


@pytest.mark.parametrize("profile", PROFILES)
def test_the_profile_tables_match_the_official_profiles(profile):
    differential = _elements(profile)
    code = _fixed_code(differential, "Observation.code.coding:")
    value_types = [t["code"] for t in _elements(profile, "snapshot")["Observation.value[x]"].get("type", ())]
    assert code in vs.MEASURES
    if profile == "bp":
        assert vs.MEASURES[code][1] == ()
        for component, slice_name in ((vs.SYSTOLIC, "SystolicBP"), (vs.DIASTOLIC, "DiastolicBP")):
            prefix = f"Observation.component:{slice_name}"
            assert _fixed_code(differential, f"{prefix}.code.coding:") == component
            assert _units(differential, f"{prefix}.valueQuantity.code") == set(vs.MEASURES[component][1])
        assert vs.PANEL_COMPONENTS[code] == (vs.SYSTOLIC, vs.DIASTOLIC)
        assert differential["Observation.valueQuantity"]["max"] == "0"
    else:
        assert _units(differential, "Observation.valueQuantity.code") == set(vs.MEASURES[code][1])
        assert value_types == ["Quantity"]
        assert code in vs.QUANTITY_ONLY
