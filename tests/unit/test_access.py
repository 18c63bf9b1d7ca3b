"""The Guard: how scopes become constraints on types and resources (plain data)."""

import pytest

from fhir_iomt.domain.access import Access
from fhir_iomt.domain.errors import Forbidden
from fhir_iomt.domain.scopes import ScopeSet
from fhir_iomt.services.access import Guard


def guard(scope, patient=None):
    return Guard(Access("c1", "client", ScopeSet.parse(scope), "u1", None, patient))


def obs(patient, category="vital-signs", obs_id="o1"):
    return {"resourceType": "Observation", "id": obs_id, "subject": {"reference": f"Patient/{patient}"},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": category}]}], "code": {"text": "x"}, "status": "final"}


def test_an_unrestricted_scope_adds_nothing_to_a_search():
    assert guard("user/Observation.rs").search_items("Observation") == []


def test_a_patient_scope_confines_searches_by_compartment_parameter():
    assert guard("patient/*.rs", "p1").search_items("Observation") == [("patient", "p1")]
    assert guard("patient/*.rs", "p1").search_items("Device") == [("patient", "p1")]
    assert guard("patient/*.rs", "p1").search_items("Patient") == [("_id", "p1")]


def test_a_query_restriction_is_added_to_searches():
    items = guard("patient/Observation.rs?category=vital-signs", "p1").search_items("Observation")
    assert items == [("patient", "p1"), ("category", "vital-signs")]


def test_two_restrictions_on_one_parameter_become_an_or():
    scope = "patient/Observation.rs?category=vital-signs patient/Observation.rs?category=laboratory"
    assert guard(scope, "p1").search_items("Observation") == [("patient", "p1"), ("category", "vital-signs,laboratory")]


def test_restrictions_that_cannot_be_combined_are_refused_not_widened():
    scope = "patient/Observation.rs?category=vital-signs patient/Observation.rs?status=final"
    with pytest.raises(Forbidden):
        guard(scope, "p1").search_items("Observation")


def test_a_patient_scope_without_a_patient_in_context_grants_nothing():
    with pytest.raises(Forbidden):
        guard("patient/Observation.rs").search_items("Observation")


def test_no_scope_for_the_interaction_is_forbidden():
    with pytest.raises(Forbidden) as refused:
        guard("user/Observation.rs").constraints("Observation", "create")
    assert "insufficient_scope" in refused.value.headers["WWW-Authenticate"]


def test_wildcards_never_reach_the_audit_trail():
    with pytest.raises(Forbidden):
        guard("system/*.cruds").constraints("AuditEvent", "search-type")
    assert guard("system/AuditEvent.rs").constraints("AuditEvent", "search-type") is None


def test_resources_are_checked_against_compartment_and_restriction():
    confined = guard("patient/Observation.rs?category=vital-signs", "p1")
    assert confined.allows("Observation", "read", obs("p1"))
    assert not confined.allows("Observation", "read", obs("p2"))
    assert not confined.allows("Observation", "read", obs("p1", "laboratory"))
    with pytest.raises(Forbidden):
        confined.check("Observation", "read", obs("p2"))


def test_a_patient_token_reads_only_its_own_patient_resource():
    confined = guard("patient/Patient.r", "p1")
    assert confined.allows("Patient", "read", {"resourceType": "Patient", "id": "p1"})
    assert not confined.allows("Patient", "read", {"resourceType": "Patient", "id": "p2"})


def test_an_absolute_local_reference_counts_as_in_the_compartment():
    confined = Guard(Access("c", "c", ScopeSet.parse("patient/Observation.r"), patient="p1"),
                     ("https://fhir.example/fhir",))
    resource = obs("p1")
    resource["subject"]["reference"] = "https://fhir.example/fhir/Patient/p1"
    assert confined.allows("Observation", "read", resource)
    resource["subject"]["reference"] = "https://other.example/fhir/Patient/p1"
    assert not confined.allows("Observation", "read", resource)
