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


def test_or_branches_are_and_only_conjunctions():
    from fhir_iomt.store.mongo_query import branches

    patient = expr.AnyOf("patient", ("Patient/1",))
    node = expr.All((patient, expr.AnyOf("status", ("final", "amended")),
                     expr.Any((expr.Compare("date", "lt", 1), expr.Compare("date_end", "gt", 9)))))
    found = branches(node)
    assert len(found) == 4
    assert all(patient in branch and len(branch) == 3 for branch in found)
    assert [expr.AnyOf("status", ("amended",)), expr.Compare("date_end", "gt", 9)] == found[3][1:]


def test_array_in_stays_one_condition_and_too_many_branches_give_up():
    from fhir_iomt.store.mongo_query import MAX_BRANCHES, branches

    assert branches(expr.AnyOf("code", ("a", "b"), True)) == [[expr.AnyOf("code", ("a", "b"), True)]]
    many = expr.AnyOf("status", tuple(str(i) for i in range(MAX_BRANCHES + 1)))
    assert branches(many) is None
