"""Criteria to MongoDB filters: explicit $eq, $in for arrays, flat merges."""

from fhir_iomt.fhir import expr
from fhir_iomt.store.mongo_query import merge, to_filter


def test_scalar_equality_is_explicit_eq():
    assert to_filter(expr.AnyOf("patient", ("Patient/1",))) == {"s.patient": {"$eq": "Patient/1"}}


def test_array_equality_is_in():
    assert to_filter(expr.AnyOf("code", ("a",), True)) == {"s.code": {"$in": ["a"]}}


def test_ranges_on_one_field_merge_into_one_document():
    node = expr.All((expr.Compare("date", "ge", 1), expr.Compare("date", "lt", 9),
                     expr.AnyOf("patient", ("Patient/1",))))
    assert to_filter(node) == {"s.date": {"$gte": 1, "$lt": 9}, "s.patient": {"$eq": "Patient/1"}}


def test_same_bound_twice_keeps_the_tighter():
    assert merge([{"s.date": {"$lt": 5}}, {"s.date": {"$lt": 3, "$gte": 1}}, {"s.date": {"$gte": 2}}]) == {
        "s.date": {"$lt": 3, "$gte": 2}
    }


def test_conditions_that_cannot_combine_go_to_and():
    merged = merge([{"s.code": {"$in": ["a"]}}, {"s.code": {"$in": ["b"]}}, {"$or": [{"x": 1}]},
                    {"$or": [{"y": 1}]}])
    assert merged == {"s.code": {"$in": ["a"]}, "$or": [{"x": 1}],
                      "$and": [{"s.code": {"$in": ["b"]}}, {"$or": [{"y": 1}]}]}


def test_or_and_patterns():
    node = expr.Any((expr.StartsWith("name", "a.b"), expr.Contains("name", "x")))
    assert to_filter(node) == {"$or": [{"s.name": {"$elemMatch": {"$regex": r"^a\.b"}}},
                                       {"s.name": {"$elemMatch": {"$regex": "x"}}}]}


def test_no_criteria_matches_everything():
    assert to_filter(None) == {}
