"""Template expressions: JSONPath in MedTech's (Json.NET's) dialect and JMESPath with MedTech's functions."""

import pytest

from fhir_iomt.mapping.expressions import (
    JMESPATH,
    JSONPATH,
    ExpressionError,
    compile_expression,
    language_name,
    rewrite_jsonpath,
)

EVENT = {
    "Body": {
        "deviceId": "watch-7",
        "samples": [
            {"heartRate": 72, "endDate": "2025-03-01T08:00:00Z", "unit": "count/min"},
            {"heartRate": "81", "endDate": "2025-03-01T08:01:00Z", "unit": "count/min"},
            {"stepCount": 120, "endDate": "2025-03-01T08:02:00Z", "nested": {"heartRate": None}},
        ],
    },
    "Properties": {"iothub-creation-time-utc": "2025-03-01T08:00:00.250Z"},
    "SystemProperties": {"iothub-connection-device-id": "hub-device-1"},
}


def jsonpath(source, data=EVENT):
    return compile_expression(source, JSONPATH).select(data)


def jmespath(source, data):
    return compile_expression(source, JMESPATH).select_one(data)


# JSONPath ---------------------------------------------------------------------------------------------


def test_member_chains_and_hyphenated_names():
    assert jsonpath("$.Body.deviceId") == ["watch-7"]
    assert jsonpath("$.SystemProperties.iothub-connection-device-id") == ["hub-device-1"]
    assert jsonpath("$['Properties']['iothub-creation-time-utc']") == ["2025-03-01T08:00:00.250Z"]
    assert jsonpath("Body.deviceId") == ["watch-7"]  # a path without $ starts at the root
    assert jsonpath("$.Body.missing.deeper") == []


def test_medtech_filter_shorthand_means_member_exists():
    matches = jsonpath("$..[?(@heartRate)]")
    assert [match["endDate"] for match in matches if "endDate" in match] == [
        "2025-03-01T08:00:00Z", "2025-03-01T08:01:00Z"]
    assert {"heartRate": None} in matches  # Json.NET: a null member exists
    assert jsonpath("$..[?(@heartRate)]") == jsonpath("$..[?(@.heartRate)]")


def test_scan_filter_tests_the_node_itself():
    assert jsonpath("$..[?(@Body.deviceId)]") == [EVENT]
    assert jsonpath("$..[?(@telemetry.HeartRate)]", {"deviceId": "d", "telemetry": {"HeartRate": 60}}) == [
        {"deviceId": "d", "telemetry": {"HeartRate": 60}}]


def test_filters_combine_and_compare():
    assert len(jsonpath("$..[?(@heartRate && @unit)]")) == 2
    assert len(jsonpath("$..[?(@stepCount || @unit)]")) == 3
    assert jsonpath("$.Body.samples[?(!@heartRate)]") == [EVENT["Body"]["samples"][2]]
    assert [s["endDate"] for s in jsonpath("$.Body.samples[?(@.heartRate > 75)]")] == ["2025-03-01T08:01:00Z"]
    assert len(jsonpath("$.Body.samples[?(@.unit == 'count/min')]")) == 2
    assert len(jsonpath("$.Body.samples[?(@.unit === 'count/min')]")) == 2
    assert jsonpath("$.Body.samples[?(@.unit != 'count/min')]") == []  # Json.NET: missing never compares
    assert len(jsonpath("$.Body.samples[?(@.unit != 'kg')]")) == 2


def test_a_string_never_equals_a_number_but_numeric_strings_order_as_numbers():
    assert jsonpath("$.Body.samples[?(@.heartRate == 81)]") == []
    assert jsonpath("$.Body.samples[?(@.heartRate == '81')]") == [EVENT["Body"]["samples"][1]]
    assert len(jsonpath("$.Body.samples[?(@.heartRate >= 70)]")) == 2


def test_regular_expression_literals_with_flags():
    assert len(jsonpath("$.Body.samples[?(@.unit =~ /^COUNT\\/MIN$/i)]")) == 2
    assert jsonpath("$.Body.samples[?(@.unit =~ /^kg$/)]") == []


def test_filter_without_scan_tests_array_elements_only():
    assert jsonpath("$.Body[?(@.deviceId)]") == []  # Body is an object: Json.NET tests no members
    assert len(jsonpath("$.Body.samples[?(@.endDate)]")) == 3


def test_scan_for_members_is_in_document_order():
    data = {"a": {"x": 1}, "x": 2, "b": [{"x": 3}]}
    assert jsonpath("$..x", data) == [1, 2, 3]


def test_indexes_slices_and_wildcards():
    samples = EVENT["Body"]["samples"]
    assert jsonpath("$.Body.samples[0].heartRate") == [72]
    assert jsonpath("$.Body.samples[-1].stepCount") == [120]
    assert jsonpath("$.Body.samples[0:2]") == samples[:2]
    assert jsonpath("$.Body.samples[*].endDate") == [s["endDate"] for s in samples]
    assert jsonpath("$.Body.samples[5]") == []


def test_select_one_is_single_or_none_or_an_error():
    assert compile_expression("$.Body.deviceId").select_one(EVENT) == "watch-7"
    assert compile_expression("$.Body.nothing").select_one(EVENT) is None
    assert compile_expression("$.Body.samples[2].nested.heartRate").select_one(EVENT) is None
    with pytest.raises(ExpressionError, match="selects 3 values"):
        compile_expression("$..endDate").select_one(EVENT)


def test_jsonpath_ng_extensions_still_work():
    assert jsonpath("$.Body.samples.`len`") == [3]


@pytest.mark.parametrize("source", ["$.[", "$..[?(@.a ==)]", "", "   ", "$..[?(@.a =~ /unterminated)]"])
def test_invalid_jsonpath_does_not_compile(source):
    with pytest.raises(ExpressionError):
        compile_expression(source, JSONPATH)


def test_rewrite_leaves_quoted_text_and_member_names_alone():
    assert rewrite_jsonpath("$..[?(@heartRate)]") == "$..[?(@.heartRate)]"
    assert rewrite_jsonpath("$..[?(@.a == '@b')]") == "$..[?(@.a == '@b')]"
    assert rewrite_jsonpath("$.@odata") == "$.@odata"
    assert rewrite_jsonpath("$[?(@a !== 1)]") == "$[?(@.a != 1)]"


def test_compiled_expressions_are_cached():
    assert compile_expression("$.Body.deviceId") is compile_expression("$.Body.deviceId")
    assert compile_expression("Body", JSONPATH) is not compile_expression("Body", JMESPATH)


def test_unknown_language_is_an_error():
    with pytest.raises(ExpressionError, match="unknown expression language"):
        compile_expression("$.a", "XPath")
    assert language_name("jmespath") == JMESPATH
    assert language_name(" JSONPATH ") == JSONPATH
    assert language_name("xpath") is None


# JMESPath -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("add(`10`, `10`)", {}, 20),
        ("add(left, right)", {"left": 40, "right": 50}, 90),
        ("subtract(left, right)", {"left": 40, "right": 50}, -10),
        ("multiply(left, right)", {"left": 40, "right": 50}, 2000),
        ("multiply(matchedToken.weightLb, `0.45359237`)", {"matchedToken": {"weightLb": 200}}, 90.718474),
        ("divide(left, right)", {"left": 40, "right": 50}, 0.8),
        ("divide(`10`, `10`)", {}, 1),
        ("divide(`7`, `2`)", {}, 3.5),
        ("pow(`10`, `10`)", {}, 10_000_000_000),
        ("pow(left, right)", {"left": 100, "right": 0.5}, 10.0),
        ("insertString('mple', 'sa', `0`)", {}, "sample"),
        ("insertString(original, toInsert, length(original))", {"original": "myString", "toInsert": "!!"},
         "myString!!"),
        ("insertString('123', 'patient', `0`)", {}, "patient123"),
        ("fromUnixTimestamp(unix)", {"unix": 1625677200}, "2021-07-07T17:00:00+00:00"),
        ("fromUnixTimestamp(unix)", {"unix": 0}, "1970-01-01T00:00:00+00:00"),
        ("fromUnixTimestampMs(unix)", {"unix": 1626799080000}, "2021-07-20T16:38:00+00:00"),
        ("fromUnixTimestampMs(unix)", {"unix": 1626799080250}, "2021-07-20T16:38:00.250+00:00"),
        ("ticksToUtcDateTime(ticks)", {"ticks": 637_307_268_000_000_000}, "2020-07-19T03:40:00+00:00"),
    ],
)
def test_medtech_custom_functions(source, data, expected):
    result = jmespath(source, data)
    assert result == pytest.approx(expected) if isinstance(expected, float) else result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "data", "message"),
    [
        ("divide(left, right)", {"left": 50, "right": 0}, "divide by zero"),
        ("pow(left, right)", {"left": 40, "right": 50}, "64-bit"),
        ("insertString(original, toInsert, pos)", {"original": "myString", "toInsert": "!!", "pos": 100},
         "out of range"),
        ("insertString(original, toInsert, pos)", {"original": "myString", "toInsert": "!!", "pos": -1},
         "out of range"),
        ("multiply(weight, `2`)", {"weight": "80"}, "invalid type"),
        ("add(missing, `1`)", {}, "invalid type"),
    ],
)
def test_function_errors_fail_the_evaluation(source, data, message):
    with pytest.raises(ExpressionError, match=message):
        jmespath(source, data)


@pytest.mark.parametrize(
    ("source", "message"),
    [("nosuch(a)", "unknown function nosuch"), ("add(`1`)", "takes 2 arguments"), ("a[", "invalid JmesPath")],
)
def test_jmespath_problems_are_found_when_compiling(source, message):
    with pytest.raises(ExpressionError, match=message):
        compile_expression(source, JMESPATH)


def test_projections_are_matches_and_plain_arrays_are_one_token():
    body = {"Body": [{"heartrate": 60}, {"steps": 5}, {"heartrate": 61}]}
    projection = compile_expression("Body[?heartrate]", JMESPATH)
    assert projection.select(body) == [{"heartrate": 60}, {"heartrate": 61}]
    with pytest.raises(ExpressionError, match="selects 2 values"):
        projection.select_one(body)
    assert compile_expression("Body", JMESPATH).select(body) == [body["Body"]]
    first = compile_expression("[Body][?contains(keys(@), `deviceId`)] | @[0]", JMESPATH)
    assert first.select({"Body": {"deviceId": "d"}}) == [{"deviceId": "d"}]
    assert first.select({"Body": {"other": 1}}) == []
