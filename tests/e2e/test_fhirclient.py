"""fhirclient (SMART on FHIR's official Python client, R4 models) against the real server process."""

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.device import Device
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException

from tests.support.oauth import ALL_SYSTEM_SCOPES, assertion

from .builders import BODY_WEIGHT, HEART_RATE, LOINC, device, hours_after_start, instant, patient, vital_sign

pytestmark = pytest.mark.e2e


@pytest.fixture()
def smart(fhir_base, server_auth):
    """A fhirclient authorized as a backend service: fhirclient itself fetches the token (client_credentials
    with its `jwt_token` setting as the signed client assertion) and sends it on every request."""
    client_id, key = server_auth.backend()
    client = smart_client.FHIRClient(settings={
        "app_id": client_id, "api_base": fhir_base, "scope": ALL_SYSTEM_SCOPES,
        "jwt_token": assertion(client_id, key, server_auth.token_url),
    })
    client.wants_patient = False  # else fhirclient adds launch/patient, which a backend cannot hold
    client.prepare()  # discovers the token endpoint in the CapabilityStatement
    client.authorize()
    assert client.server.auth.access_token
    return client


def _create(model, server):
    """POST a model; fhirclient returns the response JSON (the stored resource), not a model."""
    stored = model.create(server)
    assert stored and stored.get("id"), f"no resource in the create response: {stored}"
    return type(model)(jsondict=stored)


def test_capability_statement(smart, fhir_base):
    smart.prepare()  # fetches /metadata, as every SMART app does first
    assert smart.ready
    statement = smart.server.capabilityStatement
    assert isinstance(statement, CapabilityStatement)
    assert statement.fhirVersion == "4.0.1"
    assert statement.kind == "instance"
    assert statement.status == "active"
    assert "json" in statement.format or "application/fhir+json" in statement.format
    rest = statement.rest[0]
    assert rest.mode == "server"
    resources = {r.type: r for r in rest.resource}
    assert {"Patient", "Device", "Observation"} <= set(resources)
    observation = resources["Observation"]
    interactions = {i.code for i in observation.interaction}
    assert {"read", "create", "update", "delete", "search-type", "vread"} <= interactions
    params = {p.name: p.type for p in observation.searchParam}
    assert params["patient"] == "reference"
    assert params["code"] == "token"
    assert params["date"] == "date"
    assert params["category"] == "token"
    direct = CapabilityStatement.read_from("metadata", smart.server)
    assert direct.fhirVersion == "4.0.1"
    assert direct.implementation.url == fhir_base


def test_patient_create_and_read(smart, tag):
    server = smart.server
    stored = _create(Patient(jsondict=patient(tag)), server)
    assert stored.meta.versionId == "1"
    read = Patient.read(stored.id, server)
    assert read.id == stored.id
    assert read.name[0].family == f"E2e{tag}"
    assert read.name[0].given == ["Ada"]
    assert read.gender == "female"
    assert read.birthDate.isostring == "1956-02-03"

    read.name[0].given = ["Grace"]
    read.update(server)
    assert Patient.read(stored.id, server).name[0].given == ["Grace"]

    with pytest.raises(FHIRNotFoundException):
        Patient.read("no-such-patient-e2e", server)


def test_search_observations_and_follow_next_links(smart, tag):
    server = smart.server
    subject = _create(Patient(jsondict=patient(tag)), server)
    scale = _create(Device(jsondict=device(tag, subject.id)), server)
    hours = list(range(0, 11 * 4, 4))  # 11 heart rates, every 4 hours
    for hour in hours:
        observation = Observation(jsondict=vital_sign(HEART_RATE, subject.id, hours_after_start(hour),
                                                      58 + hour % 9, scale.id))
        _create(observation, server)
    for hour in range(0, 24, 8):
        _create(Observation(jsondict=vital_sign(BODY_WEIGHT, subject.id, hours_after_start(hour), 70.5)),
                server)

    struct = {"subject": f"Patient/{subject.id}", "code": f"{LOINC}|8867-4", "_sort": "-date",
              "_count": "4"}
    first = Observation.where(struct=struct).perform(server)
    assert isinstance(first, Bundle)
    assert first.type == "searchset"
    assert len(first.entry) == 4
    assert all(isinstance(e.resource, Observation) for e in first.entry)
    assert [link.relation for link in first.link if link.relation == "next"] == ["next"]

    pages = list(Observation.where(struct=struct).perform_iter(server))
    assert [len(page.entry) for page in pages] == [4, 4, 3]
    assert not [link for link in pages[-1].link if link.relation == "next"]
    resources = [e.resource for page in pages for e in page.entry]
    assert len({r.id for r in resources}) == len(hours)
    # fhirclient's isostring re-renders 'Z' as '+00:00': compare the parsed datetimes.
    assert [r.effectiveDateTime.datetime for r in resources] == [
        hours_after_start(h) for h in reversed(hours)
    ]
    assert all(r.valueQuantity.code == "/min" and r.valueQuantity.system == "http://unitsofmeasure.org"
               for r in resources)

    # Follow the next links by hand, as a client that stores the Bundle would.
    bundle, count, visited = first, len(first.entry), 1
    while next_url := next((link.url for link in bundle.link or [] if link.relation == "next"), None):
        bundle = Bundle.read_from(next_url, server)
        count += len(bundle.entry or [])
        visited += 1
    assert (visited, count) == (3, len(hours))

    # fhirclient's '$gte'/'$lt' operators emit DSTU1 syntax ('date=>=...'); R4 prefixes go in the value.
    dated = {"patient": subject.id, "code": "8867-4", "_count": "2",
             "date": {"$and": [f"ge{instant(hours_after_start(8))}", f"lt{instant(hours_after_start(20))}"]}}
    in_range = list(Observation.where(struct=dated).perform_resources_iter(server))
    assert sorted(r.effectiveDateTime.datetime for r in in_range) == [
        hours_after_start(h) for h in (8, 12, 16)
    ]

    everything = list(Observation.where(struct={"patient": subject.id, "_count": "5"})
                      .perform_resources_iter(server))
    assert len(everything) == len(hours) + 3
