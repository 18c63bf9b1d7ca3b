"""Device ingest: POST /ingest/messages (the real server) vs raw pymongo insert_many of the same documents.

Both sides run in one run on the same nx-27017 database, batch by batch in turns.
Run with `make bench` (after the search benchmark) or `.venv/bin/python bench/ingest_bench.py`.
What it does and how to read the output: bench/README.md.
"""

import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime

import orjson
import requests
from common import (
    RESULTS,
    ROOT,
    bench_token,
    code_version,
    describe_code,
    env_int,
    machine,
    process_tree_rss,
    start_server,
    stop_server,
    summary,
    timed,
)
from pymongo import MongoClient

from fhir_iomt.fhir.dates import format_instant
from fhir_iomt.mapping.group import group_measurements
from fhir_iomt.mapping.identity import device_resource_id, patient_resource_id
from fhir_iomt.mapping.to_fhir import build_observation, observation_id
from fhir_iomt.services.ingest_templates import compile_templates
from fhir_iomt.services.resources import stored_document
from fhir_iomt.store.embedded import EmbeddedMongo
from fhir_iomt.store.mongo import HISTORY, INDEXES, MongoStore

DATABASE = "fhir_iomt_bench_ingest"
OBSERVATION = "Observation"
DEAD_LETTERS = "ingest_dead_letters"

MESSAGES = env_int("BENCH_INGEST_MESSAGES", 5000)  # readings per batch size of 100 and 1000
SINGLES = env_int("BENCH_INGEST_SINGLES", min(500, MESSAGES))  # posts of one message
DEVICES = env_int("BENCH_INGEST_DEVICES", 100)  # device i belongs to patient i
WARMUP = env_int("BENCH_INGEST_WARMUP", 50)  # single posts on fresh connections, not measured
SEED = env_int("BENCH_SEED", 20260101)
CHECKED = env_int("BENCH_CHECK", 20)  # stored Observations per batch size compared with the raw side's
BATCH_SIZES = tuple(int(size) for size in (os.environ.get("BENCH_INGEST_BATCHES") or "1,100,1000").split(","))
GOALS = {"single_p99_ms": 20.0, "batch_ratio": 0.5}  # ratio: HTTP readings/s over raw, batches of 100 and 1000


def _ingest_helpers():
    """tests/api/ingest_helpers.py: the heart-rate templates and vendor message of the API tests."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.api import ingest_helpers

    return ingest_helpers


# Data ------------------------------------------------------------------------


def device_name(index):
    return f"BENCH-HR-{index:04d}"


def patient_name(index):
    return f"BENCH-MRN-{index:04d}"


class Readings:
    """Distinct heart-rate messages: the n-th is device n % DEVICES at start + n seconds (one new Observation each)."""

    def __init__(self, start, seed):
        self.start = start
        self.rng = random.Random(seed)
        self.count = 0
        self.make = _ingest_helpers().heart_rate

    def take(self, size, devices=None):
        messages = []
        for _ in range(size):
            number, self.count = self.count, self.count + 1
            device = number % DEVICES if devices is None else devices[len(messages)]
            when = datetime.fromtimestamp(self.start + number, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            messages.append(self.make(self.rng.randint(48, 130), device_name(device), patient_name(device), when))
        return messages


class Mapper:
    """The Observations the server makes of the messages, mapped here with the same templates and functions."""

    def __init__(self, templates_document):
        self.device, self.fhir, self.identity, _ = compile_templates(templates_document)

    def observations(self, messages, issued):
        found = []
        for message in messages:
            groups, unmapped = group_measurements(self.device.normalize(message), self.fhir)
            if unmapped or len(groups) != 1:
                raise AssertionError(f"{message} maps to {len(groups)} groups ({unmapped})")
            group = groups[0]
            patient_ref = f"Patient/{patient_resource_id(group.patient_id)}"
            device_ref = f"Device/{device_resource_id(group.device_id)}"
            observation = build_observation(group, self.fhir.for_type(group.type_name), patient_ref, device_ref,
                                            issued)
            assert observation["id"] == observation_id(group)
            found.append(observation)
        return found


def stored_documents(observations):
    """(current versions, history entries) as IngestService._write_observations and the store write them."""
    moment = datetime.now(UTC)
    instant, millis = format_instant(moment), int(moment.timestamp() * 1000)
    documents = [stored_document(OBSERVATION, dict(o), 1, instant, millis) for o in observations]
    history = [
        MongoStore.history_document(OBSERVATION, {
            "rid": d["_id"], "v": 1, "lu": millis, "at": instant, "method": "PUT", "status": 201,
            "resource": d["resource"],
        })
        for d in documents
    ]
    return documents, history


def _content(resource):
    return {k: v for k, v in resource.items() if k not in ("meta", "issued")}


# The two sides -----------------------------------------------------------------


class Rejected(AssertionError):
    """The server did not accept every message, or not as the expected Observation."""


class HttpSide:
    """POST /ingest/messages over one keep-alive connection (requests.Session); times include parsing the answer."""

    def __init__(self, base, token):
        self.base = base
        self.url = f"{base}/ingest/messages"
        self.authorization = {"Authorization": f"Bearer {token}"}
        self.session = requests.Session()
        self.session.headers.update(self.authorization)
        self.reconnects = 0

    def put_templates(self, document):
        response = self.session.put(f"{self.base}/ingest/templates", data=orjson.dumps(document),
                                    headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"PUT /ingest/templates answered {response.status_code}: {response.text}")
        return response.json()

    def post(self, messages, session=None):
        """Post a batch (one message: the object itself, as a device sends it; more: a JSON array)."""
        body = orjson.dumps(messages[0] if len(messages) == 1 else messages)
        headers = {"Content-Type": "application/json", **self.authorization}
        try:
            response = (session or self.session).post(self.url, data=body, headers=headers)
        except requests.ConnectionError:
            # gunicorn closes idle keep-alive connections after 2 s; ingest is idempotent, so resend once.
            self.reconnects += 1
            response = (session or self.session).post(self.url, data=body, headers=headers)
        return response.status_code, orjson.loads(response.content)

    def floor(self):
        return self.session.get(f"{self.base}/healthz").status_code


def check_accepted(status, body, observations):
    """Every message accepted, each as the Observation mapped here."""
    expected = [[f"Observation/{o['id']}"] for o in observations]
    if status != 200 or body.get("accepted") != len(expected) or body.get("rejected") != 0:
        raise Rejected(f"answered {status}: accepted {body.get('accepted')}, rejected {body.get('rejected')} "
                       f"of {len(expected)}: {json.dumps(body)[:2000]}")
    for result, ids in zip(body["results"], expected, strict=True):
        if result["status"] != "accepted" or result["observations"] != ids:
            raise Rejected(f"message {result['index']}: {result}, expected accepted as {ids}")


class RawSide:
    """pymongo insert_many (unordered, as the store does) into fresh collections with the server's indexes."""

    def __init__(self, uri):
        self.client = MongoClient(uri)
        self.db = self.client[DATABASE]
        self.collections = {}

    def prepare(self, size):
        names = (f"raw_{OBSERVATION}_b{size}", f"raw_{HISTORY}_b{size}")
        for name, kind in zip(names, (OBSERVATION, HISTORY), strict=True):
            for keys in INDEXES[kind]:
                self.db[name].create_index(list(keys))
        self.collections[size] = tuple(self.db[name] for name in names)
        return names

    def insert(self, size, documents, history):
        current, versions = self.collections[size]
        current.insert_many(documents, ordered=False)
        versions.insert_many(history, ordered=False)

    def count(self, name, query=None):
        """The `count` command (count_documents aggregates, slowly on nx-27017)."""
        return self.db.command("count", name, query=query or {})["n"]

    def close(self):
        self.client.close()


# Measuring ---------------------------------------------------------------------


def warm_up(http, readings, mapper):
    """One batch naming every device (creates the Devices and Patients), then single posts on new connections.

    Fresh connections reach both gunicorn workers, so each has compiled the templates before measuring.
    """
    posted = 0
    for first in range(0, DEVICES, 1000):
        devices = list(range(first, min(first + 1000, DEVICES)))
        messages = readings.take(len(devices), devices)
        status, body = http.post(messages)
        check_accepted(status, body, mapper.observations(messages, format_instant(datetime.now(UTC))))
        posted += len(messages)
    for _ in range(WARMUP):
        messages = readings.take(1)
        with requests.Session() as fresh:
            status, body = http.post(messages, fresh)
        check_accepted(status, body, mapper.observations(messages, ""))
        posted += 1
    return posted


def measure(size, total, http, raw, readings, mapper, samples):
    """`total` readings in batches of `size`, each batch posted and inserted raw; the first side alternates."""
    times = {"http": [], "raw": []}
    for number in range(max(1, total // size)):
        messages = readings.take(size)
        observations = mapper.observations(messages, format_instant(datetime.now(UTC)))
        documents, history = stored_documents(observations)

        def post(m=messages, o=observations):
            status, body = http.post(m)
            check_accepted(status, body, o)

        runs = [("http", post), ("raw", lambda d=documents, h=history: raw.insert(size, d, h))]
        if number % 2:
            runs.reverse()
        for side, run in runs:
            elapsed, _ = timed(run)
            times[side].append(elapsed)
        if len(samples) < CHECKED:
            samples.extend(observations[:CHECKED - len(samples)])
    return times


def compare_stored(raw, samples):
    """The server's stored Observations are the raw side's documents (but for meta and issued)."""
    for observation in samples:
        stored = raw.db[OBSERVATION].find_one({"_id": {"$eq": observation["id"]}})
        if stored is None or _content(stored["resource"]) != _content(observation):
            raise Rejected(f"Observation/{observation['id']} stored by the server differs from the raw side's: "
                           f"{stored and stored['resource']} vs {observation}")


def side_result(size, times):
    result = {}
    for side, values in times.items():
        seconds = sum(values) / 1000
        result[side] = {"readings": size * len(values), "seconds": seconds,
                        "readings_per_s": size * len(values) / seconds, "batch_ms": summary(values)}
    result["ratio"] = result["http"]["readings_per_s"] / result["raw"]["readings_per_s"]
    return result


# Output ------------------------------------------------------------------------


def print_table(results):
    print(f"\n{'batch':>6}  {'side':<5}{'readings':>9}{'readings/s':>12}{'batch p50 ms':>14}{'p99 ms':>10}"
          f"{'mean ms':>10}")
    for size, result in results.items():
        for side in ("http", "raw"):
            stats = result[side]
            batch = stats["batch_ms"]
            print(f"{size if side == 'http' else '':>6}  {side:<5}{stats['readings']:>9,}"
                  f"{stats['readings_per_s']:>12,.0f}{batch['p50']:>14.2f}{batch['p99']:>10.2f}{batch['mean']:>10.2f}")
        print(f"{'':>6}  {'http/raw readings/s':<26}{'x' + format(result['ratio'], '.3f'):>9}")


def counts(raw, names):
    """The documents in the database after the run."""
    found = {name: raw.count(name) for name in (OBSERVATION, "Device", "Patient", DEAD_LETTERS, *names)}
    found["history_observations"] = raw.count(HISTORY, {"t": {"$eq": OBSERVATION}})
    return found


def check_counts(found, posted, raw_expected):
    problems = []
    for name, expected in ((OBSERVATION, posted), ("history_observations", posted), ("Device", DEVICES),
                           ("Patient", DEVICES), (DEAD_LETTERS, 0), *raw_expected.items()):
        if found[name] != expected:
            problems.append(f"{name}: {found[name]:,} in the database, expected {expected:,}")
    if problems:
        raise AssertionError("; ".join(problems))


def run():
    totals = {size: SINGLES if size == 1 else MESSAGES for size in BATCH_SIZES}
    print(f"fhir-iomt ingest benchmark: batches of {', '.join(map(str, BATCH_SIZES))}; readings per batch size "
          f"{', '.join(f'{s}: {n:,}' for s, n in totals.items())}; {DEVICES} devices/patients")
    code = code_version()
    print(describe_code(code))
    data_dir = tempfile.mkdtemp(prefix="fhir-iomt-bench-ingest-")
    database = server = raw = None
    try:
        database = EmbeddedMongo(f"{data_dir}/db").start()
        server, base = start_server(database.uri, DATABASE, f"{data_dir}/server.log")
        print(f"nx-27017 at {database.uri}; server: fhir-iomt serve at {base} (pid {server.pid}); data in {data_dir}")
        token = bench_token(database.uri, DATABASE, base, "ingest:write ingest:admin", data_dir)
        http, raw = HttpSide(base, token), RawSide(database.uri)

        document = _ingest_helpers().templates(identity="create")
        described = http.put_templates(document)
        mapper = Mapper(document)
        planned = DEVICES + WARMUP + sum(totals.values())
        readings = Readings(int(time.time()) - planned - 3600, SEED)
        posted = warm_up(http, readings, mapper)
        floor = [timed(http.floor)[0] for _ in range(100)]
        print(f"templates version {described.get('version')}; warm-up: {posted} readings posted "
              f"({DEVICES} in one batch naming every device, {WARMUP} single posts)")

        print("\nmeasuring (HTTP and raw in turns, batch by batch):")
        results, names, raw_expected, samples = {}, [], {}, {}
        for size in BATCH_SIZES:
            collection_names = raw.prepare(size)
            names += collection_names
            samples[size] = []
            started = time.perf_counter()
            times = measure(size, totals[size], http, raw, readings, mapper, samples[size])
            readings_done = size * len(times["http"])
            posted += readings_done
            raw_expected.update(dict.fromkeys(collection_names, readings_done))
            results[size] = side_result(size, times)
            print(f"  batches of {size:>4}: {len(times['http']):>4} batches, {readings_done:,} readings each side "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)

        for size in BATCH_SIZES:
            compare_stored(raw, samples[size])
        found = counts(raw, names)
        check_counts(found, posted, raw_expected)
        server_rss = process_tree_rss(server.pid)
        database_rss = process_tree_rss(database.process.pid)

        print_table(results)
        floor_stats = summary(floor)
        print(f"\nHTTP floor (GET /healthz, no database): p50 {floor_stats['p50']:.2f} ms, "
              f"p99 {floor_stats['p99']:.2f} ms")
        goals = {f"batch_{size}_ratio": {"limit": GOALS["batch_ratio"], "value": results[size]["ratio"],
                                         "met": results[size]["ratio"] >= GOALS["batch_ratio"]}
                 for size in BATCH_SIZES if size > 1}
        if 1 in results:
            p99 = results[1]["http"]["batch_ms"]["p99"]
            goals = {"single_p99_ms": {"limit": GOALS["single_p99_ms"], "value": p99,
                                       "met": p99 < GOALS["single_p99_ms"]}, **goals}
        print("goals:")
        for name, goal in goals.items():
            if name == "single_p99_ms":
                text = f"single-message p99 under {goal['limit']:.0f} ms: {goal['value']:.2f} ms"
            else:
                text = f"{name.split('_')[1]}-message batches at least {goal['limit']} of raw: x{goal['value']:.3f}"
            print(f"  {text} {'met' if goal['met'] else 'MISSED'}")
        print(f"checked: every response accepted every message as the Observation mapped here; "
              f"{found[OBSERVATION]:,} Observations and {found['history_observations']:,} history entries stored "
              f"= {posted:,} readings posted; {found['Device']} Devices, {found['Patient']} Patients, "
              f"{found[DEAD_LETTERS]} dead letters; {sum(len(s) for s in samples.values())} stored Observations "
              f"equal the raw side's documents; {http.reconnects} resends after a closed keep-alive connection")
        print(f"RSS at the end: server {sum(server_rss.values()):.0f} MiB (gunicorn arbiter + workers), "
              f"nx-27017 {sum(database_rss.values()):.0f} MiB")

        when = datetime.now(UTC)
        report = {
            "when": when.isoformat(timespec="seconds"), "code": code, **machine(),
            "batch_sizes": list(BATCH_SIZES), "readings_per_batch_size": totals, "devices": DEVICES,
            "warmup": {"readings": DEVICES + WARMUP, "single_posts": WARMUP}, "seed": SEED,
            "results": results, "http_floor_healthz_ms": floor_stats, "goals": goals,
            "counts": found, "resends": http.reconnects,
            "rss_mib": {"server": server_rss, "server_total": sum(server_rss.values()), "nx_27017": database_rss},
        }
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"ingest-{when.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"results: {path.relative_to(ROOT)}")
    finally:
        if raw is not None:
            raw.close()
        stop_server(server)
        if database is not None:
            database.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    run()
