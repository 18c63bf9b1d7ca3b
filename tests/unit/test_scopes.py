"""SMART scopes on plain data: parsing (v1, v2, query restrictions), granting, registration checks."""

import pytest

from fhir_iomt.domain.scopes import (
    ResourceScope,
    ScopeError,
    ScopeSet,
    check_registration,
    grant,
    parse_resource_scope,
    split_scopes,
)

# Parsing ----------


@pytest.mark.parametrize(("text", "letters"), [
    ("patient/Observation.read", "rs"),
    ("user/*.write", "cud"),
    ("system/*.*", "cruds"),
    ("patient/Observation.rs", "rs"),
    ("system/Device.cruds", "cruds"),
    ("user/Patient.r", "r"),
    ("user/Patient.s", "s"),
    ("user/Patient.cd", "cd"),
    ("patient/*.cruds", "cruds"),
])
def test_v1_and_v2_permissions_become_interaction_letters(text, letters):
    scope = parse_resource_scope(text)
    assert scope.interactions == frozenset(letters)
    assert scope.restriction == ()


def test_parsed_parts():
    scope = parse_resource_scope("patient/Observation.rs")
    assert (scope.context, scope.resource_type) == ("patient", "Observation")
    assert parse_resource_scope("system/*.read").resource_type == "*"


@pytest.mark.parametrize("text", [
    "patient/Observation.sr",  # v2 letters must keep the order c r u d s
    "patient/Observation.rc",
    "patient/Observation.sdr",
    "patient/Observation.rr",
    "patient/Observation.",
    "patient/Observation",
    "patient/Observation.x",
    "patient/Observation.readwrite",
    "patient/Observation.READ",
    "patient/observation.rs",
    "group/Observation.rs",
    "Patient/Observation.rs",
    "patient/Observation.rs ",
    "patient/**.rs",
    "patient/.rs",
    "patient/Observation.rs?",
    "patient/Observation.rs?category=",
    "patient/Observation.rs?category",
    "patient/Observation.rs?=vital-signs",
])
def test_malformed_resource_scopes_are_refused(text):
    with pytest.raises(ScopeError):
        parse_resource_scope(text)


def test_query_restriction_is_parsed_into_pairs():
    scope = parse_resource_scope("patient/Observation.rs?category=vital-signs")
    assert scope.restriction == (("category", "vital-signs"),)
    assert scope.interactions == frozenset("rs")
    several = parse_resource_scope("user/Observation.rs?category=vital-signs&status=final")
    assert several.restriction == (("category", "vital-signs"), ("status", "final"))


def test_query_restriction_values_are_url_decoded_and_rendered_back():
    scope = parse_resource_scope(
        "patient/Observation.rs?category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category"
        "%7Cvital-signs")
    assert scope.restriction == (("category",
                                  "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"),)
    assert parse_resource_scope(scope.render()) == scope


def test_render_gives_the_v2_form():
    assert parse_resource_scope("patient/*.read").render() == "patient/*.rs"
    assert parse_resource_scope("user/Observation.write").render() == "user/Observation.cud"
    assert parse_resource_scope("system/*.*").render() == "system/*.cruds"
    assert ResourceScope("patient", "Observation", frozenset("sr"), (("category", "laboratory"),)).render() == \
        "patient/Observation.rs?category=laboratory"


def test_split_scopes_keeps_order_and_drops_repeats():
    assert split_scopes("  openid  patient/*.rs openid\tfhirUser ") == ["openid", "patient/*.rs", "fhirUser"]
    assert split_scopes(None) == [] and split_scopes("") == []


# ScopeSet: what a token holds ----------


def test_scope_set_separates_resource_scopes_from_names():
    scopes = ScopeSet.parse("launch/patient patient/Observation.rs openid ingest:write launch")
    assert [s.render() for s in scopes.resources] == ["patient/Observation.rs"]
    assert scopes.names == {"launch/patient", "openid", "ingest:write", "launch"}
    assert scopes.has("ingest:write") and not scopes.has("ingest:admin")
    assert scopes.contexts() == {"patient"}


def test_scope_set_ignores_malformed_entries():
    scopes = ScopeSet.parse("patient/Observation.sr patient/Patient.rs")
    assert [s.render() for s in scopes.resources] == ["patient/Patient.rs"]
    assert "patient/Observation.sr" not in scopes.names


def test_grants_for_matches_type_and_letter():
    scopes = ScopeSet.parse("patient/Observation.rs user/*.c")
    assert [s.render() for s in scopes.grants_for("Observation", "r")] == ["patient/Observation.rs"]
    assert [s.render() for s in scopes.grants_for("Patient", "c")] == ["user/*.c"]
    assert scopes.grants_for("Patient", "r") == []
    assert scopes.grants_for("Observation", "d") == []


@pytest.mark.parametrize("text", ["system/*.cruds", "system/*.*", "user/*.read", "patient/*.rs", "system/*.rs"])
def test_wildcards_never_reach_audit_event(text):
    scope = parse_resource_scope(text)
    assert not scope.covers_type("AuditEvent")
    assert not any(scope.allows("AuditEvent", letter) for letter in "cruds")
    assert scope.covers_type("Observation")
    assert ScopeSet.parse(text).grants_for("AuditEvent", "s") == []


def test_audit_event_is_reached_by_a_scope_that_names_it():
    scope = parse_resource_scope("system/AuditEvent.rs")
    assert scope.allows("AuditEvent", "s") and scope.allows("AuditEvent", "r")
    assert not scope.allows("AuditEvent", "c")
    assert not scope.covers_type("Observation")


# grant(): asked ∩ registered ∩ role ----------


def test_grant_is_the_intersection_of_asked_registered_and_role():
    registered = "patient/*.cruds user/Observation.rs openid offline_access"
    assert grant("patient/Observation.rs", registered, "patient") == "patient/Observation.rs"
    # asked cruds, registered cruds, a patient may only read and search
    assert grant("patient/Observation.cruds", registered, "patient") == "patient/Observation.rs"
    assert grant("patient/Observation.cruds", registered, "clinician") == "patient/Observation.cruds"
    # asked more types than registered: only the registered type
    assert grant("user/*.rs", registered, "clinician") == "user/Observation.rs"
    # asked fewer letters than registered
    assert grant("user/Observation.r", registered, "clinician") == "user/Observation.r"
    # not registered at all
    assert grant("user/Patient.rs", registered, "clinician") == ""


def test_grant_keeps_the_clients_wording_when_granted_whole():
    assert grant("patient/*.read", "patient/*.cruds", "patient") == "patient/*.read"
    assert grant("user/*.read", "user/*.cruds", "clinician") == "user/*.read"
    assert grant("user/*.write", "user/*.rs", "clinician") == ""
    assert grant("user/*.*", "user/*.rs", "clinician") == "user/*.rs"


def test_a_patient_never_gets_user_or_system_scopes():
    registered = "user/*.read patient/*.read launch/patient openid fhirUser"
    granted = grant("user/*.read patient/*.read openid fhirUser", registered, "patient")
    assert granted == "patient/*.read openid fhirUser"
    assert grant("user/*.read", registered, "patient") == ""
    assert grant("system/*.read", "system/*.read", "patient") == ""


def test_a_clinician_gets_patient_and_user_but_not_system_scopes():
    registered = "patient/*.cruds user/*.cruds"
    assert grant("patient/*.rs user/*.cruds", registered, "clinician") == "patient/*.rs user/*.cruds"
    assert grant("system/*.rs", "system/*.rs", "clinician") == ""


def test_a_backend_gets_only_system_and_service_scopes():
    registered = "system/*.rs ingest:write introspect"
    assert grant("system/Observation.rs ingest:write", registered, "system") == "system/Observation.rs ingest:write"
    assert grant("patient/*.rs user/*.rs openid ingest:admin", registered, "system") == ""
    assert grant("system/Patient.cruds", registered, "system") == "system/Patient.rs"


def test_named_scopes_need_registration_and_a_role_that_may_hold_them():
    assert grant("openid fhirUser offline_access", "openid offline_access", "patient") == "openid offline_access"
    assert grant("launch launch/patient", "launch launch/patient", "clinician") == "launch launch/patient"
    assert grant("ingest:write", "ingest:write", "clinician") == ""
    assert grant("openid", "openid", "system") == ""
    assert grant("made-up", "made-up", "clinician") == ""


def test_malformed_asked_scopes_are_dropped():
    assert grant("patient/Observation.sr patient/Patient.rs", "patient/*.rs", "patient") == "patient/Patient.rs"


def test_grant_drops_repeats():
    assert grant("patient/*.rs patient/*.rs openid openid", "patient/*.rs openid", "patient") == "patient/*.rs openid"


def test_audit_event_is_never_granted_through_a_wildcard():
    # A wildcard registration does not reach it...
    assert grant("system/AuditEvent.rs", "system/*.cruds", "system") == ""
    # ...nor a wildcard request, even when the client is registered for the audit trail.
    assert grant("system/*.rs", "system/*.rs system/AuditEvent.rs", "system") == "system/*.rs"
    assert grant("system/*.rs", "system/AuditEvent.rs", "system") == ""
    # Naming it on both sides grants it.
    assert grant("system/AuditEvent.rs", "system/AuditEvent.rs", "system") == "system/AuditEvent.rs"
    assert grant("system/AuditEvent.cruds", "system/AuditEvent.rs", "system") == "system/AuditEvent.rs"


def test_query_restrictions_are_kept_and_combined():
    registered = "patient/Observation.rs?category=vital-signs"
    assert grant("patient/Observation.rs", registered, "patient") == "patient/Observation.rs?category=vital-signs"
    assert grant("patient/*.rs", registered, "patient") == "patient/Observation.rs?category=vital-signs"
    assert grant(registered, registered, "patient") == registered
    # The client may narrow a registration with its own restriction: both apply.
    narrowed = grant("patient/Observation.rs?status=final", registered, "patient")
    assert ScopeSet.parse(narrowed).resources[0].restriction == (("category", "vital-signs"), ("status", "final"))
    # An asked restriction on an unrestricted registration is kept.
    assert grant(registered, "patient/*.rs", "patient") == registered


def test_restriction_check_vetoes_restrictions_the_server_cannot_enforce():
    def only_category(scope):
        return all(name == "category" for name, _ in scope.restriction)

    asked = "patient/Observation.rs?category=laboratory patient/Observation.rs?date=2026"
    assert grant(asked, "patient/Observation.rs", "patient", only_category) == \
        "patient/Observation.rs?category=laboratory"
    # Unrestricted scopes are not vetoed.
    assert grant("patient/Observation.rs", "patient/Observation.rs", "patient", lambda scope: False) == \
        "patient/Observation.rs"


# Registration ----------


def test_registration_checks_syntax_and_context():
    check_registration("patient/*.rs user/Observation.cruds launch/patient openid", ("patient", "user"))
    check_registration("system/*.cruds system/AuditEvent.rs ingest:write", ("system",))
    for scope, contexts in (
        ("patient/Observation.sr", ("patient", "user")),
        ("system/*.rs", ("patient", "user")),
        ("patient/*.rs", ("system",)),
        ("made-up-scope", ("system",)),
        ("patient/Observation.rs?category=", ("patient",)),
    ):
        with pytest.raises(ScopeError):
            check_registration(scope, contexts)
