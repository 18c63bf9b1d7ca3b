"""FHIR mapping templates: loading, lookup and every validation problem."""

import copy
import json

import pytest

from fhir_iomt.domain.measurement import TemplateError
from fhir_iomt.mapping.fhir_templates import (
    CODEABLE_CONCEPT,
    CORRELATION,
    DAILY,
    HOURLY,
    QUANTITY,
    SAMPLED_DATA,
    SINGLE,
    STRING,
    load_fhir_templates,
)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def loinc(code, display=None):
    coding = {"code": code, "system": LOINC}
    return {**coding, "display": display} if display else coding


def quantity(name, unit, system=UCUM, code=None):
    return {"valueName": name, "valueType": "Quantity", "unit": unit, "system": system, "code": code or unit}


def code_value(type_name, codes, **fields):
    return {"templateType": "CodeValueFhir", "template": {"typeName": type_name, "codes": codes, **fields}}


def collection(*templates):
    return {"templateType": "CollectionFhir", "template": list(templates)}


HEART_RATE = code_value(
    "heartrate",
    [loinc("8867-4", "Heart rate")],
    periodInterval=HOURLY,
    value={"valueName": "hr", "valueType": "Quantity", "unit": "/min", "code": "/min",
           "system": "http://unitsofmeasure.org"},
)
ECG_WAVE = code_value(
    "ecgwave",
    [{"system": "urn:iso:std:iso:11073:10101", "code": "131330", "display": "ECG lead I"}],
    periodInterval=HOURLY,
    value={"valueName": "mv", "valueType": "SampledData", "defaultPeriod": 8, "unit": "mV"},
)
BLOOD_PRESSURE = code_value(
    "bloodpressure",
    [loinc("85354-9", "Blood pressure panel")],
    components=[
        {"codes": [loinc("8480-6", "Systolic blood pressure")], "value": quantity("systolic", "mm[Hg]")},
        {"codes": [loinc("8462-4", "Diastolic blood pressure")], "value": quantity("diastolic", "mm[Hg]")},
    ],
)
TEMPERATURE = code_value("temperature", [loinc("8310-5")], value=quantity("temp", "Cel"))
WORN = code_value(
    "deviceWorn",
    [{"code": "worn", "system": "https://vendor.example/codes"}],
    category=[{"text": "Device", "codes": [{"code": "device", "system": "https://vendor.example/cat"}]}],
    value={
        "valueName": "worn",
        "valueType": "CodeableConcept",
        "text": "Worn",
        "codes": [{"code": "worn", "system": "https://vendor.example/codes"}],
    },
)
NOTE = code_value(
    "note",
    [{"code": "note", "system": "https://vendor.example/codes"}],
    periodInterval=CORRELATION,
    value={"valueName": "text", "valueType": "String"},
)


class FakeDeviceTemplates:
    """What load_fhir_templates reads from DeviceTemplates."""

    def __init__(self, values):
        self.values = values

    @property
    def type_names(self):
        return set(self.values)

    def value_names(self, type_name):
        return set(self.values[type_name])


def problems_of(document, device_templates=None):
    with pytest.raises(TemplateError) as error:
        load_fhir_templates(document, device_templates)
    return error.value.problems


def assert_problem(document, path, fragment, device_templates=None):
    problems = problems_of(document, device_templates)
    assert any(p == path and fragment in m for p, m in problems), problems


# --- Loading ---


def test_valid_collection_loads_every_value_type():
    templates = load_fhir_templates(collection(HEART_RATE, ECG_WAVE, BLOOD_PRESSURE, TEMPERATURE, WORN, NOTE))
    assert len(templates) == 6
    assert templates.for_type("ecgwave").value.value_type == SAMPLED_DATA
    assert templates.for_type("ecgwave").value.default_period == 8
    assert templates.for_type("ecgwave").value.unit == "mV"
    assert templates.for_type("heartrate").value.value_type == QUANTITY
    assert templates.for_type("temperature").value.value_type == QUANTITY
    assert templates.for_type("deviceWorn").value.value_type == CODEABLE_CONCEPT
    assert templates.for_type("note").value.value_type == STRING
    assert templates.for_type("note").period_interval == CORRELATION
    assert templates.for_type("heartrate").period_interval == HOURLY
    assert templates.for_type("ecgwave").period_interval == HOURLY
    assert templates.for_type("temperature").period_interval == SINGLE


def test_for_type_ignores_case_and_returns_none_for_unknown_types():
    templates = load_fhir_templates(collection(HEART_RATE))
    assert templates.for_type("HeartRate").type_name == "heartrate"
    assert templates.for_type("steps") is None
    assert templates.type_names == {"heartrate"}


def test_template_fields_are_exposed():
    template = load_fhir_templates(collection(BLOOD_PRESSURE, WORN)).for_type("bloodpressure")
    assert [c.value.value_name for c in template.components] == ["systolic", "diastolic"]
    assert template.codes[0].code == "85354-9"
    assert template.value_names == ["systolic", "diastolic"]
    worn = load_fhir_templates(collection(WORN)).for_type("deviceworn")
    assert worn.category[0].text == "Device"
    assert worn.value.codes[0].code == "worn"


def test_json_text_and_medtech_spellings_are_accepted():
    document = collection(copy.deepcopy(ECG_WAVE), copy.deepcopy(HEART_RATE))
    document["templateType"] = "CollectionFhirTemplate"
    document["template"][0]["templateType"] = "codevaluefhirtemplate"
    document["template"][0]["template"]["value"]["valueType"] = "sampleddata"
    document["template"][1]["templateType"] = "CODEVALUEFHIR"
    document["template"][1]["template"]["value"]["valueType"] = "QUANTITY"
    templates = load_fhir_templates(json.dumps(document))
    assert templates.for_type("ecgwave").value.value_type == SAMPLED_DATA
    assert templates.for_type("heartrate").value.value_type == QUANTITY


@pytest.mark.parametrize("interval", [0, 60, 1440, -1])
def test_each_period_interval_is_accepted(interval):
    template = code_value(
        "note",
        [{"code": "n", "system": "urn:x"}],
        periodInterval=interval,
        value={"valueName": "text", "valueType": "String"},
    )
    assert load_fhir_templates(collection(template)).for_type("note").period_interval == interval


@pytest.mark.parametrize(
    "name, interval", [("Hourly", HOURLY), ("daily", DAILY), ("CorrelationId", CORRELATION)]
)
def test_period_interval_names_are_accepted(name, interval):
    template = code_value(
        "note",
        [{"code": "n", "system": "urn:x"}],
        periodInterval=name,
        value={"valueName": "text", "valueType": "String"},
    )
    assert load_fhir_templates(collection(template)).for_type("note").period_interval == interval


def test_period_interval_defaults_to_single():
    assert load_fhir_templates(collection(TEMPERATURE)).for_type("temperature").period_interval == SINGLE


def test_empty_unit_counts_as_no_unit():
    template = code_value(
        "hrv",
        [loinc("80404-7")],
        value={"valueName": "hrv", "valueType": "SampledData", "defaultPeriod": 1000, "unit": ""},
    )
    assert load_fhir_templates(collection(template)).for_type("hrv").value.unit is None


def test_glucose_and_steps_units_are_accepted():
    glucose = code_value("glucose", [loinc("41653-7")], value=quantity("mgdl", "mg/dL"))
    glucose_mol = code_value("glucosemol", [loinc("14743-9")], value=quantity("mmol", "mmol/L"))
    steps = code_value("steps", [loinc("41950-7")], value=quantity("steps", "{steps}"))
    weight = code_value("weight", [loinc("29463-7")], value=quantity("lb", "[lb_av]"))
    assert len(load_fhir_templates(collection(glucose, glucose_mol, steps, weight))) == 4


def test_device_templates_producing_every_value_pass():
    device = FakeDeviceTemplates(
        {"HeartRate": {"hr"}, "EcgWave": {"mv"}, "bloodpressure": {"systolic", "diastolic", "pulse"}}
    )
    assert len(load_fhir_templates(collection(HEART_RATE, ECG_WAVE, BLOOD_PRESSURE), device)) == 3


# --- Structural problems ---


def test_not_json_is_reported():
    assert_problem("{not json", "$", "not JSON")


def test_root_must_be_an_object():
    assert_problem([HEART_RATE], "$", "JSON object")


def test_root_template_type_must_be_collection_fhir():
    document = {"templateType": "CollectionContent", "template": []}
    assert_problem(document, "templateType", "expected CollectionFhir")


def test_root_template_must_be_an_array():
    assert_problem({"templateType": "CollectionFhir", "template": {}}, "template", "array")


def test_unknown_template_type_is_reported():
    entry = copy.deepcopy(HEART_RATE)
    entry["templateType"] = "JsonPathContent"
    assert_problem(collection(entry), "template[0].templateType", 'unknown templateType "JsonPathContent"')


def test_missing_type_name_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    del entry["template"]["typeName"]
    assert_problem(collection(entry), "template[0].template.typeName", "is required")


def test_missing_codes_are_reported():
    entry = copy.deepcopy(TEMPERATURE)
    del entry["template"]["codes"]
    assert_problem(collection(entry), "template[0].template.codes", "is required")


def test_empty_codes_are_reported():
    entry = copy.deepcopy(TEMPERATURE)
    entry["template"]["codes"] = []
    assert_problem(collection(entry), "template[0].template.codes", "non-empty array")


def test_code_without_code_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    entry["template"]["codes"] = [{"system": LOINC, "display": "Body temperature"}]
    assert_problem(collection(entry), "template[0].template.codes[0].code", "is required")


@pytest.mark.parametrize("interval", [30, "weekly", True, 1.5, [60]])
def test_period_interval_outside_the_four_values_is_reported(interval):
    entry = copy.deepcopy(HEART_RATE)
    entry["template"]["periodInterval"] = interval
    assert_problem(collection(entry), "template[0].template.periodInterval", "is not one of 0")


def test_unknown_value_type_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    entry["template"]["value"]["valueType"] = "Integer"
    problems = problems_of(collection(entry))
    assert problems == [
        (
            "template[0].template.value.valueType",
            'unknown valueType "Integer" (expected one of: Quantity, SampledData, String, CodeableConcept)',
        )
    ]


def test_missing_value_type_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    del entry["template"]["value"]["valueType"]
    assert_problem(collection(entry), "template[0].template.value.valueType", "is required")


def test_missing_value_name_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    del entry["template"]["value"]["valueName"]
    assert_problem(collection(entry), "template[0].template.value.valueName", "is required")


def test_sampled_data_needs_a_positive_default_period():
    entry = copy.deepcopy(ECG_WAVE)
    entry["template"]["value"]["defaultPeriod"] = 0
    assert_problem(collection(entry), "template[0].template.value.defaultPeriod", "defaultPeriod > 0")


def test_codeable_concept_needs_codes():
    entry = copy.deepcopy(WORN)
    del entry["template"]["value"]["codes"]
    assert_problem(collection(entry), "template[0].template.value.codes", "is required")


def test_template_without_value_or_components_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    del entry["template"]["value"]
    assert_problem(collection(entry), "template[0].template", "a value or components")


def test_component_without_value_is_reported():
    entry = copy.deepcopy(BLOOD_PRESSURE)
    del entry["template"]["components"][1]["value"]
    assert_problem(collection(entry), "template[0].template.components[1].value", "is required")


def test_unknown_property_is_reported():
    entry = copy.deepcopy(TEMPERATURE)
    entry["template"]["value"]["defaultPeriod"] = 1000  # not a Quantity property
    assert_problem(collection(entry), "template[0].template.value.defaultPeriod", "unknown property")


def test_duplicate_type_name_is_reported():
    twin = copy.deepcopy(TEMPERATURE)
    twin["template"]["typeName"] = "Temperature"
    assert_problem(collection(TEMPERATURE, twin), "template[1].template.typeName", "duplicate typeName")


def test_duplicate_value_name_is_reported():
    entry = copy.deepcopy(BLOOD_PRESSURE)
    entry["template"]["components"][1]["value"]["valueName"] = "systolic"
    assert_problem(collection(entry), "template[0].template", "valueName is used more than once")


# --- Device templates ---


def test_type_name_no_device_template_produces_is_reported():
    device = FakeDeviceTemplates({"bloodpressure": {"systolic", "diastolic"}})
    assert_problem(
        collection(HEART_RATE), "template[0].template.typeName", "no device template produces", device
    )


def test_value_name_not_produced_by_the_device_type_is_reported():
    device = FakeDeviceTemplates({"heartrate": {"heartRate"}, "ecgwave": {"ecg"}})
    problems = problems_of(collection(HEART_RATE, ECG_WAVE), device)
    assert (
        "template[0].template.value.valueName",
        "'hr' is not a value of type 'heartrate' (it has: heartRate)",
    ) in problems
    assert ("template[1].template.value.valueName", "'mv' is not a value of type 'ecgwave' (it has: ecg)") in problems


def test_component_value_name_not_produced_is_reported():
    device = FakeDeviceTemplates({"bloodpressure": {"systolic"}})
    path = "template[0].template.components[1].value.valueName"
    assert_problem(collection(BLOOD_PRESSURE), path, "'diastolic' is not a value", device)


# --- Vital signs: codes and units ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codes, unit",
    [
        ("8867-4", "count/min"),
        ("9279-1", "breaths/minute"),
        ("8310-5", "degC"),
        ("8480-6", "mmHg"),
        ("29463-7", "lb"),
        ("2708-6", "percent"),
        ("41653-7", "mmol/L"),
    ],
)
def test_medtech_units_are_refused(codes, unit):
    entry = code_value("t", [loinc(codes)], value=quantity("v", unit))
    assert_problem(
        collection(entry), "template[0].template.value.unit", f"'{unit}' is not an allowed UCUM unit"
    )


def test_sampled_data_of_a_vital_sign_is_refused_whatever_its_unit():
    entry = copy.deepcopy(HEART_RATE)
    entry["template"]["value"] = {"valueName": "hr", "valueType": "SampledData", "defaultPeriod": 1000,
                                  "unit": "count/min"}
    assert problems_of(collection(entry)) == [(
        "template[0].template.value.valueType",
        "8867-4 (Heart rate) is a vital sign: its R4 profile requires a Quantity value, not SampledData",
    )]


def test_quantity_unit_of_a_vital_sign_is_checked():
    entry = copy.deepcopy(HEART_RATE)
    entry["template"]["value"]["unit"] = entry["template"]["value"]["code"] = "count/min"
    assert_problem(collection(entry), "template[0].template.value.unit", "not an allowed UCUM unit of 8867-4")
    assert_problem(collection(entry), "template[0].template.value.code", "not an allowed UCUM unit of 8867-4")


def test_sampled_data_unit_of_a_table_code_outside_the_profile_is_checked():
    # a continuous glucose monitor: glucose is in the unit table but not a vital sign, so SampledData is allowed
    cgm = code_value(
        "cgm",
        [loinc("41653-7")],
        periodInterval=HOURLY,
        value={"valueName": "mgdl", "valueType": "SampledData", "defaultPeriod": 300000, "unit": "mmol/L"},
    )
    assert_problem(collection(cgm), "template[0].template.value.unit", "not an allowed UCUM unit of 41653-7")
    cgm["template"]["value"]["unit"] = "mg/dL"
    assert load_fhir_templates(collection(cgm)).for_type("cgm").value.value_type == SAMPLED_DATA


def test_vital_sign_value_needs_a_unit():
    entry = copy.deepcopy(HEART_RATE)
    del entry["template"]["value"]["unit"]
    del entry["template"]["value"]["code"]
    assert_problem(collection(entry), "template[0].template.value.unit", "needs a UCUM unit")
    cgm = code_value(
        "cgm", [loinc("41653-7")], value={"valueName": "mgdl", "valueType": "SampledData", "defaultPeriod": 1000}
    )
    assert_problem(collection(cgm), "template[0].template.value.unit", "needs a UCUM unit")


def test_vital_sign_quantity_needs_ucum_system():
    entry = code_value(
        "t", [loinc("8310-5")], value=quantity("temp", "Cel", system="http://example.org/units")
    )
    assert_problem(
        collection(entry), "template[0].template.value.system", "needs system http://unitsofmeasure.org"
    )


def test_vital_sign_quantity_without_system_is_reported():
    value = quantity("temp", "Cel")
    del value["system"]
    assert_problem(
        collection(code_value("t", [loinc("8310-5")], value=value)),
        "template[0].template.value.system",
        "needs system",
    )


def test_vital_sign_quantity_code_must_equal_unit():
    entry = code_value("t", [loinc("29463-7")], value=quantity("w", "kg", code="g"))
    assert_problem(collection(entry), "template[0].template.value.code", "must equal unit")


def test_vital_sign_quantity_code_must_be_ucum():
    entry = code_value("t", [loinc("8867-4")], value=quantity("hr", "/min", code="beats/min"))
    assert_problem(
        collection(entry), "template[0].template.value.code", "'beats/min' is not an allowed UCUM unit"
    )


def test_vital_sign_with_a_string_value_is_reported():
    entry = code_value("t", [loinc("8867-4")], value={"valueName": "hr", "valueType": "String"})
    assert_problem(
        collection(entry), "template[0].template.value.valueType", "needs a Quantity or SampledData"
    )


def test_loinc_code_without_system_is_reported():
    entry = code_value("t", [{"code": "8867-4"}], value=quantity("hr", "/min"))
    assert_problem(collection(entry), "template[0].template.codes[0].system", "looks like LOINC")


def test_non_vital_sign_codes_keep_their_own_units():
    entry = code_value("hrv", [loinc("80404-7")], value=quantity("hrv", "ms", system=None))
    assert load_fhir_templates(collection(entry)).for_type("hrv").value.unit == "ms"


# --- Vital signs: blood pressure panel ---------------------------------------------------------------------


def test_bp_panel_without_diastolic_is_reported():
    entry = copy.deepcopy(BLOOD_PRESSURE)
    del entry["template"]["components"][1]
    assert_problem(collection(entry), "template[0].template.components", "needs a Diastolic blood pressure")


def test_bp_panel_without_systolic_is_reported():
    entry = copy.deepcopy(BLOOD_PRESSURE)
    del entry["template"]["components"][0]
    assert_problem(collection(entry), "template[0].template.components", "needs a Systolic blood pressure")


def test_bp_panel_without_components_is_reported():
    entry = code_value("bp", [loinc("85354-9")], value=quantity("sys", "mm[Hg]"))
    problems = problems_of(collection(entry))
    assert (
        "template[0].template.value",
        "85354-9 (Blood pressure panel) is a panel and carries no value of its own",
    ) in problems
    assert any("needs a Systolic" in message for _, message in problems)


def test_diastolic_coded_as_heart_rate_is_reported():
    entry = copy.deepcopy(BLOOD_PRESSURE)
    entry["template"]["components"][1]["codes"] = [loinc("8867-4", "Diastolic blood pressure")]
    problems = problems_of(collection(entry))
    assert (
        "template[0].template.components[1].codes",
        "8867-4 is heart rate: diastolic blood pressure is 8462-4",
    ) in problems
    assert (
        "template[0].template.components[1].value.unit",
        "'mm[Hg]' is not an allowed UCUM unit of 8867-4 (Heart rate): /min",
    ) in problems


def test_diastolic_value_coded_as_heart_rate_outside_a_panel_is_reported():
    entry = code_value("diastolic", [loinc("8867-4")], value=quantity("diastolic", "/min"))
    assert_problem(collection(entry), "template[0].template.codes", "diastolic blood pressure is 8462-4")


def test_component_code_equal_to_the_observation_code_is_reported():
    entry = code_value(
        "hr",
        [loinc("8867-4")],
        value=quantity("hr", "/min"),
        components=[{"codes": [loinc("8867-4")], "value": quantity("hr2", "/min")}],
    )
    assert_problem(collection(entry), "template[0].template.components[0].codes", "must differ")


def test_medtech_style_collection_reports_every_problem_and_applies_nothing():
    heart_rate = copy.deepcopy(HEART_RATE)  # MedTech's sample: heart rate as SampledData in count/min
    heart_rate["template"]["value"] = {"valueName": "hr", "valueType": "SampledData", "defaultPeriod": 5000,
                                       "unit": "count/min"}
    bp = copy.deepcopy(BLOOD_PRESSURE)
    bp["template"]["components"][1]["codes"] = [loinc("8867-4", "Diastolic blood pressure")]
    for component in bp["template"]["components"]:
        component["value"]["unit"] = component["value"]["code"] = "mmHg"
    temperature = code_value("temperature", [loinc("8310-5")], value=quantity("temp", "degC"))
    problems = problems_of(collection(heart_rate, NOTE, bp, temperature))
    paths = {path for path, _ in problems}
    assert any(path == "template[0].template.value.valueType" and "requires a Quantity value" in message
               for path, message in problems)
    assert "template[2].template.components[0].value.unit" in paths
    assert "template[2].template.components[1].codes" in paths
    assert "template[2].template.components" in paths
    assert "template[3].template.value.unit" in paths
    assert not any(path.startswith("template[1]") for path in paths)


def test_template_error_message_lists_paths():
    entry = copy.deepcopy(TEMPERATURE)
    entry["template"]["value"]["unit"] = entry["template"]["value"]["code"] = "degC"
    with pytest.raises(TemplateError) as error:
        load_fhir_templates(collection(entry))
    assert "template[0].template.value.unit: 'degC'" in str(error.value)


def test_vital_sign_as_sampled_data_is_refused_because_its_profile_needs_a_quantity():
    entry = copy.deepcopy(HEART_RATE)
    entry["template"]["value"] = {"valueName": "hr", "valueType": "SampledData", "defaultPeriod": 1000,
                                  "unit": "/min"}
    assert_problem(collection(entry), "template[0].template.value.valueType", "requires a Quantity value")


def test_pulse_oximetry_code_needs_the_oxygen_saturation_code():
    entry = code_value("spo2", [loinc("59408-5")], value=quantity("spo2", "%"))
    assert_problem(collection(entry), "template[0].template.codes", "needs the 2708-6")
    both = code_value("spo2", [loinc("2708-6"), loinc("59408-5")], value=quantity("spo2", "%"))
    assert len(load_fhir_templates(collection(both))) == 1
