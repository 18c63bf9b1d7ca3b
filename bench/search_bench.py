"""HTTP (the real server) vs raw pymongo on the same nx-27017 database, side by side in one run.

Run with `make bench` (`.venv/bin/python bench/search_bench.py`); BENCH_N=1000000 for the full run.
What it does and how to read the output: bench/README.md.
"""

import gc
import http.client
import json
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

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
    percentile,
    process_tree_rss,
    start_server,
    stop_server,
    summary,
    timed,
)
from pymongo import DESCENDING, MongoClient

from fhir_iomt.fhir.dates import format_instant
from fhir_iomt.fhir.query import parse_search
from fhir_iomt.services.resources import stored_document
from fhir_iomt.store.embedded import EmbeddedMongo
from fhir_iomt.store.mongo import MongoStore
from fhir_iomt.store.mongo_query import merge, to_filter

DATABASE = "fhir_iomt_bench"
COLLECTION = "Observation"


N = env_int("BENCH_N", 100_000)
ITERATIONS = env_int("BENCH_ITER", 300)
WARMUP = env_int("BENCH_WARMUP", 30)
PAGES = env_int("BENCH_PAGES", 20)
WALKS = env_int("BENCH_WALKS", max(10, ITERATIONS // 10))
BATCH = env_int("BENCH_BATCH", 1000)
SEED = env_int("BENCH_SEED", 20260101)
CHECKED = env_int("BENCH_CHECK", 20)  # iterations whose HTTP and raw ids are compared

PATIENTS = 1000
HEAVY = 10  # patients bench-p0000..p0009 carry 10% of the readings (1% each): deep paging
COUNT = 10
SORT = [("s.date", DESCENDING), ("s.id", DESCENDING)]
YEAR_START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
DAY = 86_400
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SEARCH_CODE = "29463-7"
PAGING_CODE = "8867-4"
GOALS = {"p50": 2.0, "p99": 3.0}  # search HTTP/raw at N = 1,000,000
GOAL_N = 1_000_000

VITAL_SIGNS = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "vital-signs", "display": "Vital Signs",
}]}]
# (LOINC code, display, share in %, UCUM unit, value range); unit None = BP panel with components.
KINDS = (
    ("8867-4", "Heart rate", 35, "/min", (48, 130)),
    ("2708-6", "Oxygen saturation in Arterial blood", 25, "%", (88, 100)),
    ("85354-9", "Blood pressure panel with all children optional", 15, None, None),
    ("29463-7", "Body weight", 15, "kg", (45, 130)),
    ("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer", 10, "mg/dL", (60, 260)),
)
KIND_WEIGHTS = [kind[2] for kind in KINDS]


# Data ------------------------------------------------------------------------


def patient_id(index):
    return f"bench-p{index:04d}"


def observation_id(index):
    return f"bench-obs-{index:07d}"


def _coding(code, display):
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def _quantity(value, unit):
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def make_observation(rng, index):
    """One vital-sign Observation of a random patient at a random second of 2025."""
    heavy = rng.random() < 0.1
    patient = rng.randrange(HEAVY) if heavy else HEAVY + rng.randrange(PATIENTS - HEAVY)
    code, display, _, unit, bounds = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
    moment = datetime.fromtimestamp(YEAR_START + rng.randrange(365 * DAY), UTC)
    resource = {
        "resourceType": "Observation",
        "id": observation_id(index),
        "status": "final",
        "category": VITAL_SIGNS,
        "code": _coding(code, display),
        "subject": {"reference": f"Patient/{patient_id(patient)}"},
        "device": {"reference": f"Device/bench-d{patient:04d}-{code}"},
        "effectiveDateTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if unit is None:
        resource["component"] = [
            {"code": _coding("8480-6", "Systolic blood pressure"),
             "valueQuantity": _quantity(rng.randint(95, 180), "mm[Hg]")},
            {"code": _coding("8462-4", "Diastolic blood pressure"),
             "valueQuantity": _quantity(rng.randint(55, 110), "mm[Hg]")},
        ]
    else:
        resource["valueQuantity"] = _quantity(round(rng.uniform(*bounds), 1), unit)
    return resource


def load(collection):
    """Insert N Observations built with stored_document(), in insert_many batches; returns docs/s."""
    rng = random.Random(SEED)
    started = time.perf_counter()
    shown = 0
    for first in range(0, N, BATCH):
        millis = int(time.time() * 1000)
        instant = format_instant(datetime.fromtimestamp(millis / 1000, UTC))
        batch = [
            stored_document(COLLECTION, make_observation(rng, index), 1, instant, millis)
            for index in range(first, min(first + BATCH, N))
        ]
        collection.insert_many(batch)
        done = first + len(batch)
        if done * 10 // N > shown or done == N:
            shown = done * 10 // N
            elapsed = time.perf_counter() - started
            print(f"  loaded {done:>9,} / {N:,}  {done / elapsed:,.0f} docs/s  ({elapsed:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started
    return N / elapsed, elapsed


# Workload (one seeded sequence, used by both sides) ---------------------------


def _day(offset):
    return datetime.fromtimestamp(YEAR_START + offset * DAY, UTC).strftime("%Y-%m-%d")


def search_params(rng):
    """patient + code + date window, newest first, one page of COUNT."""
    start = rng.randrange(365 - 7)
    end = min(364, start + rng.randint(7, 90))
    return [
        ("patient", patient_id(rng.randrange(PATIENTS))),
        ("code", f"{LOINC}|{SEARCH_CODE}"),
        ("date", f"ge{_day(start)}"),
        ("date", f"le{_day(end)}"),
        ("_sort", "-date"),
        ("_count", str(COUNT)),
    ]


def paging_params(rng):
    """A monitored patient's heart-rate timeline, newest first: many pages."""
    return [
        ("patient", patient_id(rng.randrange(HEAVY))),
        ("code", f"{LOINC}|{PAGING_CODE}"),
        ("_sort", "-date"),
        ("_count", str(COUNT)),
    ]


def raw_filter(params):
    """The filter document the store builds for these parameters."""
    request = parse_search(COLLECTION, params)
    assert request.sort.key == "date" and request.sort.descending
    return to_filter(request.criteria)


# Checks ------------------------------------------------------------------------


class Mismatch(AssertionError):
    """HTTP and raw pymongo returned different resources."""


def check_same(what, http_ids, raw_ids):
    if http_ids != raw_ids:
        raise Mismatch(f"{what}: HTTP returned {http_ids}, raw pymongo {raw_ids}")


# The two sides -------------------------------------------------------------------


class HttpSide:
    """The FHIR API over one keep-alive connection (requests.Session); times include JSON parsing."""

    def __init__(self, base, token):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/fhir+json"
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _get(self, url, params=None):
        response = self.session.get(url, params=params)
        body = orjson.loads(response.content)
        if response.status_code != 200:
            raise RuntimeError(f"GET {response.url} answered {response.status_code}: {body}")
        return body

    def read(self, resource_id):
        body = self._get(f"{self.base}/fhir/{COLLECTION}/{resource_id}")
        return [body["id"]]

    def search(self, params):
        body = self._get(f"{self.base}/fhir/{COLLECTION}", params)
        return [entry["resource"]["id"] for entry in body.get("entry", [])], _next_link(body)

    def walk(self, params, pages):
        """Follow next links; per-page times and ids."""
        url, query, times, pages_ids = f"{self.base}/fhir/{COLLECTION}", params, [], []
        for _ in range(pages):
            elapsed, (ids, following) = timed(lambda u=url, q=query: self.search_url(u, q))
            times.append(elapsed)
            pages_ids.append(ids)
            if following is None:
                break
            url, query = following, None
        return times, pages_ids

    def search_url(self, url, params):
        body = self._get(url, params)
        return [entry["resource"]["id"] for entry in body.get("entry", [])], _next_link(body)

    def floor(self):
        return self._get(f"{self.base}/healthz")


def _next_link(bundle):
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)


class HttpClientSide:
    """The same requests through the standard library's http.client on one keep-alive connection.

    Not a goal of its own: it shows how much of the HTTP side is the requests library's own
    client-side work rather than the server's.
    """

    def __init__(self, base, token):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
        self.connection = None

    def _get(self, path):
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                body = orjson.loads(response.read())
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # gunicorn closes idle keep-alive connections after 2 s: reconnect once.
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        if response.will_close:
            self.connection.close()
            self.connection = None
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {body}")
        return body

    def read(self, resource_id):
        return [self._get(f"/fhir/{COLLECTION}/{resource_id}")["id"]]

    def search(self, params):
        body = self._get(f"/fhir/{COLLECTION}?{urlencode(params)}")
        return [entry["resource"]["id"] for entry in body.get("entry", [])], _next_link(body)

    def close(self):
        if self.connection is not None:
            self.connection.close()


class RawSide:
    """pymongo straight to the collection, with the filter, sort and limit the store uses."""

    def __init__(self, uri):
        self.client = MongoClient(uri)
        self.collection = self.client[DATABASE][COLLECTION]

    def read(self, resource_id):
        document = self.collection.find_one({"_id": {"$eq": resource_id}})
        return [document["resource"]["id"]]

    def search(self, query):
        rows = list(self.collection.find(query).sort(SORT).limit(COUNT + 1))
        return [row["_id"] for row in rows[:COUNT]], len(rows) > COUNT

    def page(self, query, after):
        """One keyset page after `after` = (date, id) of the previous page's last row, as the store does."""
        limit = COUNT + 1
        if after is None:
            return list(self.collection.find(query).sort(SORT).limit(limit))
        ties = merge([query, {"s.date": {"$eq": after[0]}, "s.id": {"$lt": after[1]}}])
        rows = list(self.collection.find(ties).sort(SORT).limit(limit))
        if len(rows) < limit:
            later = merge([query, {"s.date": {"$lt": after[0]}}])
            rows += list(self.collection.find(later).sort(SORT).limit(limit - len(rows)))
        return rows

    def walk(self, query, pages):
        after, times, pages_ids = None, [], []
        for _ in range(pages):
            elapsed, rows = timed(lambda a=after: self.page(query, a))
            times.append(elapsed)
            pages_ids.append([row["_id"] for row in rows[:COUNT]])
            if len(rows) <= COUNT:
                break
            last = rows[COUNT - 1]["s"]
            after = (last["date"], last["id"])
        return times, pages_ids

    def close(self):
        self.client.close()


# Scenarios ------------------------------------------------------------------------


def side_by_side(name, items, calls, compare):
    """Warm-up, then each item on every side (`calls`: side -> function), rotating which goes first."""
    names = list(calls)
    samples = {side: [] for side in names}
    for number, item in enumerate(items):
        shift = number % len(names)
        results = {}
        for side in names[shift:] + names[:shift]:
            elapsed, results[side] = timed(lambda c=calls[side], i=item: c(i))
            if number >= WARMUP:
                samples[side].append(elapsed)
        if number < WARMUP + CHECKED:
            for side in names:
                if side != "raw":
                    compare(f"{name} {number} ({side})", results[side], results["raw"])
    print(f"  {name}: {len(items) - WARMUP} iterations after {WARMUP} warm-up", flush=True)
    return samples


def walk_side_by_side(http, raw, walks):
    per_page = {"http": [], "raw": []}
    per_walk = {"http": [], "raw": []}
    depth = {"http": {}, "raw": {}}
    pages_walked = []
    warm = min(WARMUP, max(1, len(walks) // 10))
    for number, (params, query) in enumerate(walks):
        runs = [("http", lambda p=params: http.walk(p, PAGES)), ("raw", lambda q=query: raw.walk(q, PAGES))]
        if number % 2:
            runs.reverse()
        ids = {}
        for side, run in runs:
            times, ids[side] = run()
            if number >= warm:
                per_page[side].extend(times)
                per_walk[side].append(sum(times))
                for page, elapsed in enumerate(times, 1):
                    depth[side].setdefault(page, []).append(elapsed)
        if number < warm + CHECKED:
            check_same(f"paging walk {number}", ids["http"], ids["raw"])
        if number >= warm:
            pages_walked.append(len(ids["http"]))
    print(f"  deep paging: {len(walks) - warm} walks of up to {PAGES} pages after {warm} warm-up", flush=True)
    by_depth = {
        side: {page: percentile(values, 0.5) for page, values in sorted(pages.items())}
        for side, pages in depth.items()
    }
    return per_page, per_walk, by_depth, pages_walked


def ratios(http, raw):
    return {key: http[key] / raw[key] for key in ("p50", "p99") if raw[key]}


def with_ratios(samples):
    """Summaries per side, and the ratios of each HTTP side to raw."""
    result = {side: summary(values) for side, values in samples.items()}
    result["ratio"] = ratios(result["http"], result["raw"])
    if "http_client" in result:
        result["ratio_http_client"] = ratios(result["http_client"], result["raw"])
    return result


# Explain ------------------------------------------------------------------------


def explain(collection, query, limit=COUNT + 1, sort=SORT, sqlite=None):
    """Winning plan of a (sorted) limited find, and whether an index serves it.

    nx-27017 answers the explain command for the filter alone (it drops sort and limit), so on the
    embedded server the plan of the find it really runs is also asked of SQLite through neosqlite,
    the library nx-27017 runs on (`sqlite`: a neosqlite database on the same file).
    """
    cursor = collection.find(query).limit(limit)
    answer = (cursor.sort(sort) if sort else cursor).explain()
    result = {"explain_command": _verdict(answer.get("queryPlanner", {}).get("winningPlan", answer))}
    if sqlite is not None:
        try:
            cursor = sqlite[COLLECTION].find(query).limit(limit)
            answer = (cursor.sort(sort) if sort else cursor).explain()
            result["sqlite_with_sort_and_limit"] = _verdict(answer["queryPlanner"]["winningPlan"])
        except Exception as error:  # a diagnostic only: never fail the benchmark on it
            result["sqlite_with_sort_and_limit"] = {"error": repr(error)}
    best = result.get("sqlite_with_sort_and_limit", {})
    result["uses_index"] = best.get("uses_index", result["explain_command"]["uses_index"])
    return result


def _verdict(winning):
    text = json.dumps(winning, default=str)
    indexed = any(word in text for word in ("USING INDEX", "USING COVERING INDEX", "USING PRIMARY KEY",
                                            "USING INTEGER PRIMARY KEY", "IXSCAN", "IDHACK"))
    full_scan = "COLLSCAN" in text or any(
        detail.startswith("SCAN ") and "USING" not in detail and "json_each" not in detail
        for detail in _details(winning)
    )
    sorts = "TEMP B-TREE" in text or '"SORT"' in text
    return {"winningPlan": winning, "uses_index": indexed and not full_scan, "in_memory_sort": sorts}


def _details(plan):
    if isinstance(plan, list):
        return [str(step.get("detail", "")) if isinstance(step, dict) else str(step) for step in plan]
    return []


def open_sqlite(data_dir):
    """neosqlite on the embedded server's file of the benchmark database, or None."""
    try:
        import neosqlite

        path = Path(data_dir) / f"{DATABASE}.db"
        return neosqlite.Connection(str(path)) if path.exists() else None
    except Exception:  # a diagnostic only
        return None


def print_plan(title, result):
    for source, label in (("explain_command", "explain()"),
                          ("sqlite_with_sort_and_limit", "SQLite plan with sort+limit")):
        plan = result.get(source)
        if plan is None:
            continue
        if "error" in plan:
            print(f"  {title} [{label}]: unavailable ({plan['error']})")
            continue
        verdict = "uses an index" if plan["uses_index"] else "DOES NOT USE AN INDEX"
        if plan["in_memory_sort"]:
            verdict += ", SORTS IN A TEMP B-TREE"
        print(f"  {title} [{label}]: {verdict}")
        for line in _details(plan["winningPlan"]) or [json.dumps(plan["winningPlan"], default=str)]:
            print(f"      {line}")


# Output ------------------------------------------------------------------------


def _ms(value):
    return "-" if value is None else f"{value:8.2f}"


SIDE_LABELS = {"http": "http", "http_client": "http.client", "raw": "raw"}


def print_table(rows):
    print(f"\n{'scenario':<38}{'side':<13}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, result in rows:
        first = True
        for side in ("http", "http_client", "raw"):
            if side not in result:
                continue
            stats = result[side]
            print(f"{name if first else '':<38}{SIDE_LABELS[side]:<13}{stats['n']:>6}"
                  f"{_ms(stats['p50']):>10}{_ms(stats['p99']):>10}{_ms(stats['mean']):>10}")
            first = False
        for key, label in (("ratio", "http/raw"), ("ratio_http_client", "http.client/raw")):
            if key in result:
                ratio = result[key]
                print(f"{'':<38}{label:<19}{'x' + format(ratio['p50'], '.2f'):>10}"
                      f"{'x' + format(ratio['p99'], '.2f'):>10}")


def run():
    print(f"fhir-iomt search benchmark: N={N:,} Observations, {PATIENTS:,} patients, "
          f"{ITERATIONS} iterations (+{WARMUP} warm-up), {WALKS} paging walks of {PAGES} pages")
    code = code_version()
    print(describe_code(code))
    data_dir = Path(tempfile.mkdtemp(prefix="fhir-iomt-bench-"))
    database = server = raw = client = None
    try:
        database = EmbeddedMongo(data_dir / "db").start()
        store = MongoStore(database.uri, DATABASE)
        store.ensure_indexes()
        print(f"nx-27017 at {database.uri}, data in {data_dir}; loading (batches of {BATCH}):")
        rate, load_seconds = load(store.db[COLLECTION])
        store.close()
        print(f"loader: {N:,} documents in {load_seconds:.0f} s, {rate:,.0f} docs/s (not measured below)")
        gc.collect()
        gc.freeze()

        server, base = start_server(database.uri, DATABASE, data_dir / "server.log")
        print(f"server: fhir-iomt serve at {base} (pid {server.pid})")
        token = bench_token(database.uri, DATABASE, base, "system/Observation.rs", data_dir)
        http, client, raw = HttpSide(base, token), HttpClientSide(base, token), RawSide(database.uri)

        rng = random.Random(SEED + 1)
        total = WARMUP + ITERATIONS
        reads = [observation_id(rng.randrange(N)) for _ in range(total)]
        searches = [(params, raw_filter(params)) for params in (search_params(rng) for _ in range(total))]
        walks = [(params, raw_filter(params)) for params in (paging_params(rng) for _ in range(WALKS))]

        print("\nexplain (raw queries on nx-27017):")
        sqlite = open_sqlite(database.data_dir)
        after = {"s.date": {"$eq": 1735689600000}, "s.id": {"$lt": observation_id(N // 2)}}
        plans = {
            "read": explain(raw.collection, {"_id": {"$eq": reads[0]}}, 1, None, sqlite),
            "search": explain(raw.collection, searches[0][1], sqlite=sqlite),
            "paging_first": explain(raw.collection, walks[0][1], sqlite=sqlite),
            "paging_ties": explain(raw.collection, merge([walks[0][1], after]), sqlite=sqlite),
            "paging_later": explain(
                raw.collection, merge([walks[0][1], {"s.date": {"$lt": 1735689600000}}]), sqlite=sqlite
            ),
        }
        if sqlite is not None:
            sqlite.close()
        print(f"  search filter: {json.dumps(searches[0][1])}")
        for name, plan in plans.items():
            print_plan(name, plan)

        print("\nmeasuring:")
        floor = []
        for number in range(total):
            elapsed, _ = timed(http.floor)
            if number >= WARMUP:
                floor.append(elapsed)

        def compare_search(what, http_result, raw_result):
            check_same(what, http_result[0], raw_result[0])
            if (http_result[1] is not None) != raw_result[1]:
                raise Mismatch(f"{what}: next link {http_result[1]!r}, raw has more: {raw_result[1]}")

        read = side_by_side(
            "read by id", reads, {"http": http.read, "http_client": client.read, "raw": raw.read}, check_same
        )
        hits = [len(raw.search(query)[0]) for _, query in searches[WARMUP:]]
        search = side_by_side("search", searches, {
            "http": lambda item: http.search(item[0]),
            "http_client": lambda item: client.search(item[0]),
            "raw": lambda item: raw.search(item[1]),
        }, compare_search)
        per_page, per_walk, by_depth, pages_walked = walk_side_by_side(http, raw, walks)

        server_rss = process_tree_rss(server.pid)
        database_rss = process_tree_rss(database.process.pid)

        results = {}
        for name, samples in (("read_by_id", read), ("search", search),
                              ("paging_per_page", per_page), ("paging_per_walk", per_walk)):
            results[name] = with_ratios(samples)
        floor_stats = summary(floor)

        print_table([
            ("read by id", results["read_by_id"]),
            (f"search (patient+code+date, {COUNT}/page)", results["search"]),
            ("deep paging, per page", results["paging_per_page"]),
            (f"deep paging, walk of {PAGES} pages", results["paging_per_walk"]),
        ])
        print(f"\nHTTP floor (GET /healthz, no database): p50 {floor_stats['p50']:.2f} ms, "
              f"p99 {floor_stats['p99']:.2f} ms")
        print(f"search hits per query (raw, first page): mean {sum(hits) / len(hits):.1f}, "
              f"empty {sum(1 for h in hits if h == 0)} of {len(hits)}")
        print(f"deep paging: pages per walk min {min(pages_walked)}, max {max(pages_walked)}; "
              f"p50 of page 1 / page {max(pages_walked)}: "
              f"http {by_depth['http'][1]:.2f} / {by_depth['http'][max(pages_walked)]:.2f} ms, "
              f"raw {by_depth['raw'][1]:.2f} / {by_depth['raw'][max(pages_walked)]:.2f} ms")

        ratio = results["search"]["ratio"]
        goals = {key: {"limit": limit, "ratio": ratio[key], "met": ratio[key] <= limit}
                 for key, limit in GOALS.items()}
        applies = N >= GOAL_N
        print(f"\ngoals (search HTTP/raw at N={GOAL_N:,}{'' if applies else '; this run is smaller'}):")
        for key, goal in goals.items():
            print(f"  {key} within {goal['limit']:.0f}x of raw: x{goal['ratio']:.3f} "
                  f"{'met' if goal['met'] else 'MISSED'}")
        print(f"\nRSS at the end: server {sum(server_rss.values()):.0f} MiB "
              f"(gunicorn arbiter + workers: {server_rss}), nx-27017 {sum(database_rss.values()):.0f} MiB")

        report = {
            "n": N, "patients": PATIENTS, "iterations": ITERATIONS, "warmup": WARMUP,
            "walks": WALKS, "pages": PAGES, "count": COUNT, "seed": SEED,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "code": code, **machine(),
            "load": {"docs_per_s": rate, "seconds": load_seconds, "batch": BATCH},
            "results": results, "http_floor_healthz": floor_stats,
            "paging_p50_by_depth": by_depth,
            "search_hits": {"mean": sum(hits) / len(hits), "empty": sum(1 for h in hits if h == 0)},
            "goals": {"applies": applies, "at_n": GOAL_N, **goals},
            "rss_mib": {"server": server_rss, "server_total": sum(server_rss.values()),
                        "nx_27017": database_rss},
            "explain": plans,
        }
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"search-{N}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"results: {path.relative_to(ROOT)}")
    finally:
        if raw is not None:
            raw.close()
            client.close()
        stop_server(server)
        if database is not None:
            database.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    run()
