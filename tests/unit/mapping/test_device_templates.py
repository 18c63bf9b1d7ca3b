"""Device mapping templates: loading, validation and normalization of realistic vendor messages."""

import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fhir_iomt.domain.measurement import (
    BAD_TIMESTAMP,
    MISSING_DEVICE_ID,
    MISSING_REQUIRED_VALUE,
    NO_TEMPLATE_MATCH,
    MappingError,
    TemplateError,
)
from fhir_iomt.mapping.device_templates import load_device_templates, parse_timestamp, to_event


def collection(*templates):
    return {"templateType": "CollectionContent", "template": list(templates)}


def content(template_type, **template):
    return {"templateType": template_type, "template": template}


def value(name, expression, required=True):
    return {"valueName": name, "valueExpression": expression, "required": required}


HEART_RATE = content(
    "JsonPathContent",
    typeName="heartrate",
    typeMatchExpression="$..[?(@heartRate)]",
    deviceIdExpression="$.deviceId",
    patientIdExpression="$.patientId",
    timestampExpression="$.endDate",
    values=[value("hr", "$.heartRate")],
)

STEPS = content(
    "JsonPathContent",
    typeName="steps",
    typeMatchExpression="$..[?(@stepCount)]",
    deviceIdExpression="$.deviceId",
    timestampExpression="$.endDate",
    values=[value("steps", "$.stepCount")],
)

BODY_WEIGHT = content(
    "CalculatedContent",
    typeName="bodyweight",
    typeMatchExpression="$..[?(@weightLb)]",
    deviceIdExpression="$.Body.scale.serial",
    patientIdExpression={"value": "insertString(Body.user, 'patient-', `0`)", "language": "JmesPath"},
    timestampExpression="$.matchedToken.measuredAt",
    values=[
        value("weight", {"value": "multiply(matchedToken.weightLb, `0.45359237`)", "language": "JmesPath"}),
        value("impedance", "$.matchedToken.impedance", required=False),
    ],
)

IOT_HUB_HEART_RATE = content(
    "IotJsonPathContent",
    typeName="heartrate",
    typeMatchExpression="$..[?(@Body.HeartRate)]",
    patientIdExpression="$.Body.PatientId",
    values=[value("hr", "$.Body.HeartRate")],
)

IOT_CENTRAL_VITALS = content(
    "IotCentralJsonPathContent",
    typeName="bloodpressure",
    typeMatchExpression="$..[?(@telemetry.BloodPressure.Systolic && @telemetry.BloodPressure.Diastolic)]",
    values=[
        value("systolic", "$.telemetry.BloodPressure.Systolic"),
        value("diastolic", "$.telemetry.BloodPressure.Diastolic"),
    ],
)

# An Apple-Health-like export: an array of samples, each carrying its device and time.
HEALTH_EXPORT = {
    "exportedAt": "2025-03-01T09:00:00+02:00",
    "samples": [
        {"heartRate": 72, "endDate": "2025-03-01T08:00:00+02:00", "deviceId": "apple-watch-9",
         "patientId": "mrn-1234"},
        {"heartRate": 88.5, "endDate": "2025-03-01T08:05:00+02:00", "deviceId": "apple-watch-9",
         "patientId": "mrn-1234"},
        {"stepCount": 412, "endDate": "2025-03-01T08:10:00+02:00", "deviceId": "apple-watch-9"},
    ],
}

SCALE_READING = {
    "scale": {"serial": "WS-30-00042", "model": "WS-30"},
    "user": "7781",
    "readings": [{"weightLb": 180, "impedance": 512, "measuredAt": "2025-03-01T07:30:00Z"}],
}

IOT_HUB_MESSAGE = {
    "Body": {"HeartRate": 64, "PatientId": "mrn-55"},
    "Properties": {"iothub-creation-time-utc": "2025-03-01T06:59:58.125Z"},
    "SystemProperties": {
        "iothub-connection-device-id": "hub-monitor-3",
        "iothub-enqueuedtime": "2025-03-01T07:00:00.000Z",
        "iothub-message-source": "Telemetry",
    },
}

IOT_CENTRAL_EXPORT = {
    "applicationId": "1dffa667-9bee-4f16-b243-25ad4151475e",
    "messageSource": "telemetry",
    "deviceId": "bp-cuff-12",
    "schema": "default@v1",
    "templateId": "urn:qugj6vbw5:___qbj_27r",
    "enqueuedTime": "2025-03-01T10:26:55.455Z",
    "telemetry": {"Activity": "resting", "BloodPressure": {"Systolic": 128, "Diastolic": 84}},
    "enrichments": {"ward": "cardiology"},
}


def normalize(message, *templates):
    return load_device_templates(collection(*templates)).normalize(message)


def mapping_error(message, *templates):
    with pytest.raises(MappingError) as caught:
        normalize(message, *templates)
    return caught.value


# Template kinds -------------------------------------------------------------------------------------------


def test_json_path_content_makes_one_measurement_per_matched_array_element():
    measurements = normalize(HEALTH_EXPORT, HEART_RATE)
    assert [m.value("hr") for m in measurements] == [72, 88.5]
    first = measurements[0]
    assert first.type_name == "heartrate"
    assert first.device_id == "apple-watch-9"
    assert first.patient_id == "mrn-1234"
    assert first.occurrence == datetime(2025, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    assert first.occurrence.utcoffset() == timedelta(hours=2)  # the device's offset is kept


def test_calculated_content_converts_pounds_to_kilograms_with_jmespath():
    (measurement,) = normalize(SCALE_READING, BODY_WEIGHT)
    assert measurement.type_name == "bodyweight"
    assert measurement.value("weight") == pytest.approx(81.6466266)
    assert measurement.value("impedance") == 512
    assert measurement.device_id == "WS-30-00042"  # from the message, through Body
    assert measurement.patient_id == "patient-7781"
    assert measurement.occurrence == datetime(2025, 3, 1, 7, 30, tzinfo=UTC)


def test_calculated_content_with_jmespath_by_default():
    template = content(
        "CalculatedContent",
        typeName="glucose",
        defaultExpressionLanguage="JmesPath",
        typeMatchExpression="Body.entries[?mgdl]",
        deviceIdExpression="Body.meter",
        timestampExpression="fromUnixTimestampMs(matchedToken.t)",
        correlationIdExpression={"value": "$.Body.session", "language": "JsonPath"},
        values=[value("glucose", "matchedToken.mgdl")],
    )
    entries = [{"mgdl": 104, "t": 1740816000000}, {"note": "x"}]
    message = {"meter": "gm-1", "session": "s-9", "entries": entries}
    (measurement,) = normalize(message, template)
    assert measurement.occurrence == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert measurement.correlation_id == "s-9"
    assert measurement.value("glucose") == 104


def test_iot_hub_message_takes_device_and_time_from_the_system_properties():
    (measurement,) = normalize(IOT_HUB_MESSAGE, IOT_HUB_HEART_RATE)
    assert measurement.device_id == "hub-monitor-3"
    # iothub-creation-time-utc (set by the device) comes before iothub-enqueuedtime
    assert measurement.occurrence == datetime(2025, 3, 1, 6, 59, 58, 125000, tzinfo=UTC)
    assert measurement.patient_id == "mrn-55"
    assert measurement.values == (("hr", 64),)


def test_iot_hub_message_without_creation_time_uses_the_enqueued_time():
    message = copy.deepcopy(IOT_HUB_MESSAGE)
    message["Properties"] = {}
    (measurement,) = normalize(message, IOT_HUB_HEART_RATE)
    assert measurement.occurrence == datetime(2025, 3, 1, 7, 0, tzinfo=UTC)


def test_iot_central_export():
    (measurement,) = normalize(IOT_CENTRAL_EXPORT, IOT_CENTRAL_VITALS)
    assert measurement.device_id == "bp-cuff-12"
    assert measurement.occurrence == datetime(2025, 3, 1, 10, 26, 55, 455000, tzinfo=UTC)
    assert measurement.values == (("systolic", 128), ("diastolic", 84))


def test_iot_kinds_accept_their_own_device_expression():
    template = copy.deepcopy(IOT_CENTRAL_VITALS)
    template["template"]["deviceIdExpression"] = "$.enrichments.ward"
    (measurement,) = normalize(IOT_CENTRAL_EXPORT, template)
    assert measurement.device_id == "cardiology"


def test_a_message_matching_two_templates_yields_both_measurements():
    measurements = normalize(HEALTH_EXPORT, HEART_RATE, STEPS)
    assert [(m.type_name, m.values) for m in measurements] == [
        ("heartrate", (("hr", 72),)), ("heartrate", (("hr", 88.5),)), ("steps", (("steps", 412),))]


def test_templates_of_one_collection_see_every_message_shape():
    kinds = (HEART_RATE, BODY_WEIGHT, IOT_HUB_HEART_RATE, IOT_CENTRAL_VITALS)
    templates = load_device_templates(collection(*kinds))
    assert [m.type_name for m in templates.normalize(SCALE_READING)] == ["bodyweight"]
    assert [m.type_name for m in templates.normalize(IOT_CENTRAL_EXPORT)] == ["bloodpressure"]
    assert [m.device_id for m in templates.normalize(IOT_HUB_MESSAGE)] == ["hub-monitor-3"]


def test_values_keep_their_json_type():
    template = content(
        "JsonPathContent", typeName="mixed", typeMatchExpression="$..[?(@kind == 'mixed')]",
        deviceIdExpression="$.device", timestampExpression="$.at",
        values=[value("int", "$.i"), value("float", "$.f"), value("text", "$.s"), value("flag", "$.b")],
    )
    message = {"kind": "mixed", "device": 4711, "at": "2025-03-01T08:00:00Z",
               "i": 3, "f": 36.6, "s": "AF", "b": True}
    (measurement,) = normalize(message, template)
    assert measurement.values == (("int", 3), ("float", 36.6), ("text", "AF"), ("flag", "true"))
    assert measurement.device_id == "4711"


def test_normalize_does_not_change_the_message():
    message = copy.deepcopy(SCALE_READING)
    normalize(message, BODY_WEIGHT)
    assert message == SCALE_READING


def test_to_event_wraps_a_vendor_message_and_keeps_an_event():
    event = to_event({"heartRate": 60})
    assert event == {"Body": {"heartRate": 60}, "Properties": {}, "SystemProperties": {}}
    assert to_event(IOT_HUB_MESSAGE) is IOT_HUB_MESSAGE
    assert to_event({"Body": "a vendor field", "x": 1})["Body"] == {"Body": "a vendor field", "x": 1}


def test_type_and_value_names_for_the_fhir_template_checker():
    templates = load_device_templates(collection(HEART_RATE, IOT_HUB_HEART_RATE, BODY_WEIGHT))
    assert templates.type_names == {"heartrate", "bodyweight"}
    assert templates.value_names("heartrate") == {"hr"}
    assert templates.value_names("bodyweight") == {"weight", "impedance"}
    assert templates.value_names("unknown") == set()
    assert len(templates) == 3


# Mapping errors ---------------------------------------------------------------------------------------------


def test_no_template_match():
    error = mapping_error({"temperature": 37.1}, HEART_RATE, STEPS)
    assert error.reason == NO_TEMPLATE_MATCH


def test_missing_required_value_names_the_value_and_the_type():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["values"].append(value("confidence", "$.confidence"))
    error = mapping_error(HEALTH_EXPORT, template)
    assert error.reason == MISSING_REQUIRED_VALUE
    assert "heartrate" in error.detail
    assert "'confidence'" in error.detail


def test_a_missing_optional_value_is_left_out():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["values"].append(value("confidence", "$.confidence", required="false"))
    measurements = normalize(HEALTH_EXPORT, template)
    assert all(m.value("confidence") is None and len(m.values) == 1 for m in measurements)


@pytest.mark.parametrize("bad", [{"bpm": 60}, [60, 61], "  ", None])
def test_a_value_that_is_not_a_single_value_fails_when_required(bad):
    message = {"deviceId": "d", "endDate": "2025-03-01T08:00:00Z", "heartRate": bad}
    assert mapping_error(message, HEART_RATE).reason == MISSING_REQUIRED_VALUE


def test_a_value_that_is_an_object_is_skipped_when_optional():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["values"].append(value("context", "$.context", required=False))
    message = {"deviceId": "d", "endDate": "2025-03-01T08:00:00Z", "heartRate": 60, "context": {"a": 1}}
    (measurement,) = normalize(message, template)
    assert measurement.values == (("hr", 60),)


def test_a_failing_calculation_fails_the_message():
    reading = {"weightLb": "180", "measuredAt": "2025-03-01T07:30:00Z"}  # a string: multiply() refuses it
    message = {"scale": {"serial": "s"}, "user": "1", "readings": [reading]}
    error = mapping_error(message, BODY_WEIGHT)
    assert error.reason == MISSING_REQUIRED_VALUE
    assert "multiply" in error.detail


@pytest.mark.parametrize("device", [None, "", {"id": "x"}, True])
def test_missing_device_id(device):
    message = {"heartRate": 60, "endDate": "2025-03-01T08:00:00Z", "deviceId": device}
    error = mapping_error(message, HEART_RATE)
    assert error.reason == MISSING_DEVICE_ID
    assert "$.deviceId" in error.detail


def test_iot_hub_message_without_device_identity():
    message = {"Body": {"HeartRate": 64}, "SystemProperties": {"iothub-enqueuedtime": "2025-03-01T07:00:00Z"}}
    assert mapping_error(message, IOT_HUB_HEART_RATE).reason == MISSING_DEVICE_ID


@pytest.mark.parametrize(
    ("timestamp", "hint"),
    [
        (None, "missing"),
        ("yesterday at noon", "not an ISO 8601"),
        ("2025-03-01", "time of day"),
        ("2025-02-30T10:00:00Z", "not an ISO 8601"),
        (1740816000, "fromUnixTimestamp"),
        ({"at": "2025-03-01T08:00:00Z"}, "an object"),
    ],
)
def test_bad_timestamp(timestamp, hint):
    message = {"heartRate": 60, "deviceId": "d", "endDate": timestamp}
    error = mapping_error(message, HEART_RATE)
    assert error.reason == BAD_TIMESTAMP
    assert hint in error.detail


def test_one_bad_element_fails_the_whole_message():
    message = copy.deepcopy(HEALTH_EXPORT)
    message["samples"][1]["endDate"] = "not a date"
    assert mapping_error(message, HEART_RATE).reason == BAD_TIMESTAMP


def test_an_expression_selecting_several_values_is_an_error():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["deviceIdExpression"] = "$..deviceId"
    message = {"heartRate": 60, "endDate": "2025-03-01T08:00:00Z", "deviceId": "a", "pair": {"deviceId": "b"}}
    error = mapping_error(message, template)
    assert error.reason == MISSING_DEVICE_ID
    assert "selects 2 values" in error.detail


def test_a_correlation_id_expression_makes_the_id_required():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["correlationIdExpression"] = "$.sessionId"
    error = mapping_error({"heartRate": 60, "deviceId": "d", "endDate": "2025-03-01T08:00:00Z"}, template)
    assert error.reason == MISSING_REQUIRED_VALUE
    assert "correlation" in error.detail


def test_a_failing_type_match_is_reported_when_nothing_matches():
    template = content(
        "CalculatedContent", typeName="bad",
        typeMatchExpression={"value": "keys(Body)", "language": "JmesPath"},
        deviceIdExpression="$.Body.d", timestampExpression="$.Body.t", values=[],
    )
    error = mapping_error([1, 2], template)
    assert error.reason == NO_TEMPLATE_MATCH
    assert "bad: typeMatchExpression failed" in error.detail


# Timestamps ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T08:00:00Z", datetime(2025, 3, 1, 8, tzinfo=UTC)),
        ("2025-03-01T08:00:00", datetime(2025, 3, 1, 8, tzinfo=UTC)),
        ("2019-02-01T22:46:01.8750000Z", datetime(2019, 2, 1, 22, 46, 1, 875000, tzinfo=UTC)),
        ("2025-03-01T08:00:00-05:00", datetime(2025, 3, 1, 8, tzinfo=timezone(timedelta(hours=-5)))),
        ("2025-03-01 08:00:00+0530", datetime(2025, 3, 1, 8, tzinfo=timezone(timedelta(minutes=330)))),
    ],
)
def test_timestamps_keep_their_offset_and_default_to_utc(text, expected):
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


# Template validation ---------------------------------------------------------------------------------------


def problems_of(document):
    with pytest.raises(TemplateError) as caught:
        load_device_templates(document)
    return dict(caught.value.problems)


def test_medtech_spellings_are_accepted():
    document = collection(
        {"templateType": "jsonpathcontenttemplate", "template": {
            "TypeName": "heartrate", "TypeMatchExpression": "$..[?(@heartRate)]",
            "DeviceIdExpression": "$.deviceId", "TimestampExpression": "$.endDate",
            "Values": [{"ValueName": "hr", "ValueExpression": "$.heartRate", "Required": "TRUE"}]}},
        {"templateType": "IotCentralJsonPathContentTemplate", "template": {
            "typeName": "spo2", "typeMatchExpression": "$..[?(@telemetry.SpO2)]",
            "values": [{"valueName": "spo2", "valueExpression": "$.telemetry.SpO2", "required": "false"}]}},
    )
    document["templateType"] = "CollectionContentTemplate"
    assert load_device_templates(document).type_names == {"heartrate", "spo2"}


def test_the_document_must_be_a_collection():
    assert problems_of([HEART_RATE]) == {
        "": 'a device mapping must be a JSON object {"templateType": "CollectionContent", "template": [...]}'}
    problems = problems_of({"templateType": "CollectionFhir", "template": []})
    assert "CollectionContent" in problems["templateType"]
    assert "non-empty array" in problems["template"]


def test_unknown_template_type():
    problems = problems_of(collection(content("CodeValueFhir", typeName="x")))
    assert problems["template[0].templateType"].startswith("unknown template type 'CodeValueFhir'")


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("typeName", "template[0].template.typeName"),
        ("typeMatchExpression", "template[0].template.typeMatchExpression"),
        ("deviceIdExpression", "template[0].template.deviceIdExpression"),
        ("timestampExpression", "template[0].template.timestampExpression"),
        ("values", "template[0].template.values"),
    ],
)
def test_missing_required_fields(field, path):
    template = copy.deepcopy(HEART_RATE)
    del template["template"][field]
    assert path in problems_of(collection(template))


def test_iot_kinds_supply_device_id_and_timestamp():
    for template in (IOT_HUB_HEART_RATE, IOT_CENTRAL_VITALS):
        assert "deviceIdExpression" not in template["template"]
        load_device_templates(collection(template))


def test_value_problems():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["values"] = [
        {"valueExpression": "$.heartRate"},
        {"valueName": "hr"},
        value("hr2", "$.heartRate", required="yes"),
        value("hr3", "$.heartRate", required=1),
        "hr",
    ]
    problems = problems_of(collection(template))
    values = "template[0].template.values"
    assert problems[f"{values}[0].valueName"] == "is required and must be a non-empty string"
    assert problems[f"{values}[1].valueExpression"] == "is required"
    assert "true or false" in problems[f"{values}[2].required"]
    assert "true or false" in problems[f"{values}[3].required"]
    assert "must be an object" in problems[f"{values}[4]"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("$..[?(@heartRate ==)]", "invalid JsonPath"),
        ({"value": "multiply(matchedToken.weightLb)", "language": "JmesPath"}, "takes 2 arguments"),
        ({"value": "toKilograms(matchedToken.weightLb)", "language": "JmesPath"}, "unknown function"),
        ({"value": "matchedToken.weightLb", "language": "XPath"}, "must be JsonPath or JmesPath"),
        ({"language": "JmesPath"}, "is required"),
        ({"value": "a", "lang": "JmesPath"}, "unknown field"),
        (42, "must be a JsonPath string or"),
        ("  ", "must not be empty"),
    ],
)
def test_expressions_that_do_not_compile(expression, message):
    template = copy.deepcopy(BODY_WEIGHT)
    template["template"]["values"][0]["valueExpression"] = expression
    problems = problems_of(collection(template))
    (found,) = [text for path, text in problems.items() if path.startswith("template[0].template.values[0]")]
    assert message in found


def test_expression_objects_only_in_calculated_content():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["deviceIdExpression"] = {"value": "$.deviceId", "language": "JsonPath"}
    problems = problems_of(collection(template))
    assert "only CalculatedContent" in problems["template[0].template.deviceIdExpression"]


def test_unknown_fields_and_bad_default_language():
    template = copy.deepcopy(BODY_WEIGHT)
    template["template"]["defaultExpressionLanguage"] = "Python"
    template["template"]["typeMatchExpresion"] = "$..x"
    problems = problems_of(collection(template))
    assert "must be JsonPath or JmesPath" in problems["template[0].template.defaultExpressionLanguage"]
    assert problems["template[0].template.typeMatchExpresion"].startswith("unknown field")
    json_path_template = copy.deepcopy(HEART_RATE)
    json_path_template["template"]["defaultExpressionLanguage"] = "JmesPath"
    assert "template[0].template.defaultExpressionLanguage" in problems_of(collection(json_path_template))


def test_duplicate_value_names_in_a_template():
    template = copy.deepcopy(HEART_RATE)
    template["template"]["values"].append(value("hr", "$.pulse"))
    problems = problems_of(collection(template))
    assert "'hr' is used twice" in problems["template[0].template.values[1].valueName"]


def test_every_problem_of_the_document_is_reported_at_once():
    broken = copy.deepcopy(HEART_RATE)
    del broken["template"]["typeName"]
    empty = content("CalculatedContent", values=[])
    problems = problems_of(collection(broken, content("Unknown"), STEPS, empty))
    assert set(problems) == {
        "template[0].template.typeName",
        "template[1].templateType",
        "template[3].template.typeName",
        "template[3].template.typeMatchExpression",
        "template[3].template.deviceIdExpression",
        "template[3].template.timestampExpression",
    }
