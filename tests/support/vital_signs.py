"""The rules of the FHIR R4 Vital Signs profiles, checked on an Observation (a test oracle).

Written from the official R4 definitions (StructureDefinition vitalsigns, bp,
heartrate, bodyweight ... and their value sets, in hl7.fhir.r4.examples@4.0.1) and
from ../shared/reference/vital-signs.md, independently of fhir_iomt's own tables so
that it can catch their mistakes:

- ``status`` present, in the observation-status value set;
- a ``category`` with the vital-signs coding (exactly one);
- ``code`` with a LOINC coding of the vital-signs value set (2708-6 must accompany
  59408-5, pulse oximetry);
- ``subject`` a reference to a Patient;
- ``effectiveDateTime`` or ``effectivePeriod``, precise to the day (vs-1);
- a value or a dataAbsentReason when there is no component and no hasMember (vs-2),
  never both;
- the profiled measures (heart rate, weight ...) carry a ``valueQuantity`` only,
  with ``value``, ``unit``, ``system`` UCUM and ``code`` an allowed UCUM unit;
- the blood-pressure panel (85354-9) carries no value of its own and exactly one
  systolic (8480-6) and one diastolic (8462-4) component in mm[Hg]; the vital-signs
  panel (85353-1) carries no value and has members;
- every component has a value or a dataAbsentReason (vs-3); a Quantity in a
  component is UCUM from the vitals-common units, in the measure's own unit.

``violations(observation)`` returns them as readable strings ([] when it conforms).
"""

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS = "vital-signs"
STATUSES = frozenset({
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown",
})

VITALS_PANEL = "85353-1"
BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
OXYGEN_SATURATION = "2708-6"
PULSE_OXIMETRY = "59408-5"

# LOINC code -> (name, allowed UCUM units); units () for the panels, which carry no value of their own.
MEASURES = {
    VITALS_PANEL: ("Vital signs panel", ()),
    "9279-1": ("Respiratory rate", ("/min",)),
    "8867-4": ("Heart rate", ("/min",)),
    OXYGEN_SATURATION: ("Oxygen saturation", ("%",)),
    PULSE_OXIMETRY: ("Oxygen saturation by pulse oximetry", ("%",)),
    "8310-5": ("Body temperature", ("Cel", "[degF]")),
    "8302-2": ("Body height", ("cm", "[in_i]")),
    "9843-4": ("Head circumference", ("cm", "[in_i]")),
    "29463-7": ("Body weight", ("kg", "g", "[lb_av]")),
    "39156-5": ("Body mass index", ("kg/m2",)),
    BP_PANEL: ("Blood pressure panel", ()),
    SYSTOLIC: ("Systolic blood pressure", ("mm[Hg]",)),
    DIASTOLIC: ("Diastolic blood pressure", ("mm[Hg]",)),
    "8478-0": ("Mean blood pressure", ("mm[Hg]",)),
}
# The R4 value set observation-vitalsignresult (what Observation.code of a vital sign is bound to).
VALUE_SET = frozenset(code for code in MEASURES if code != PULSE_OXIMETRY)
# The measures that have their own profile in R4: value[x] is closed to Quantity there.
QUANTITY_ONLY = frozenset({"9279-1", "8867-4", OXYGEN_SATURATION, "8310-5", "8302-2", "9843-4", "29463-7",
                           "39156-5"})
PANEL_COMPONENTS = {BP_PANEL: (SYSTOLIC, DIASTOLIC)}
# ValueSet ucum-vitals-common: the only units a component Quantity may use (required binding).
VITALS_COMMON_UNITS = frozenset({"%", "cm", "[in_i]", "kg", "g", "[lb_av]", "Cel", "[degF]", "mm[Hg]", "/min",
                                 "kg/m2", "m2"})


def _codings(concept):
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or () if isinstance(c, dict)]


def loinc_codes(concept):
    """The LOINC codes of a CodeableConcept."""
    return [c.get("code") for c in _codings(concept) if c.get("system") == LOINC and c.get("code")]


def vital_sign_codes(observation):
    """The vital-sign LOINC codes of an Observation's code, in order."""
    return [code for code in loinc_codes(observation.get("code")) if code in MEASURES]


def has_vital_signs_category(observation):
    """True when a category has the vital-signs coding."""
    return any(_is_vs_category(concept) for concept in observation.get("category") or ())


def _is_vs_category(concept):
    return any(c.get("system") == CATEGORY_SYSTEM and c.get("code") == VITAL_SIGNS for c in _codings(concept))


def is_vital_sign(observation):
    """True when the profile applies: a vital-sign LOINC code, or the vital-signs category (R4 says SHALL)."""
    return bool(vital_sign_codes(observation)) or has_vital_signs_category(observation)


def _value_keys(element):
    return [key for key in element if key.startswith("value") and key[5:6].isupper()]


def _day_precise(text):
    return isinstance(text, str) and len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-"


def _is_patient_reference(reference):
    if not isinstance(reference, dict):
        return False
    if reference.get("type") == "Patient":
        return True
    text = reference.get("reference")
    if not isinstance(text, str):
        return False
    parts = text.split("/")
    return len(parts) >= 2 and parts[-2] == "Patient" and bool(parts[-1])


class _Checker:
    def __init__(self, observation):
        self.observation = observation
        self.problems = []

    def add(self, path, message):
        self.problems.append(f"{path}: {message}")

    def run(self):
        obs = self.observation
        if obs.get("resourceType") != "Observation":
            self.add("resourceType", f"must be Observation, not {obs.get('resourceType')!r}")
            return self.problems
        self.status()
        self.category()
        codes = self.code()
        self.subject()
        self.effective()
        self.value_or_absent()
        for code in codes:
            self.measure(code)
        for index, component in enumerate(obs.get("component") or ()):
            self.component(index, component)
        return self.problems

    def status(self):
        status = self.observation.get("status")
        if status is None:
            self.add("Observation.status", "is required")
        elif status not in STATUSES:
            self.add("Observation.status", f"{status!r} is not in the observation-status value set")

    def category(self):
        found = [c for c in self.observation.get("category") or () if _is_vs_category(c)]
        if not found:
            self.add("Observation.category", f"needs the coding {CATEGORY_SYSTEM}|{VITAL_SIGNS}")
        elif len(found) > 1:
            self.add("Observation.category", "has the vital-signs category more than once")

    def code(self):
        concept = self.observation.get("code")
        codes = [code for code in loinc_codes(concept) if code in MEASURES]
        if not codes:
            other = [f"{c.get('system')}|{c.get('code')}" for c in _codings(concept)]
            self.add("Observation.code", "has no LOINC coding of the vital-signs value set "
                                         f"(found: {', '.join(other) or 'none'})")
        unsystematic = [c.get("code") for c in _codings(concept) if not c.get("system")]
        for code in [code for code in unsystematic if code in MEASURES]:
            self.add("Observation.code.coding", f"{code} has no system (must be {LOINC})")
        if PULSE_OXIMETRY in codes and OXYGEN_SATURATION not in codes:
            self.add("Observation.code", f"{PULSE_OXIMETRY} (pulse oximetry) needs {OXYGEN_SATURATION} too")
        return codes

    def subject(self):
        subject = self.observation.get("subject")
        if subject is None:
            self.add("Observation.subject", "is required")
        elif not _is_patient_reference(subject):
            self.add("Observation.subject", f"must reference a Patient, not {subject!r}")

    def effective(self):
        obs = self.observation
        others = [key for key in ("effectiveInstant", "effectiveTiming") if key in obs]
        for key in others:
            self.add(f"Observation.{key}", "is not allowed (effective[x] is dateTime or Period)")
        if "effectiveDateTime" in obs:
            if not _day_precise(obs["effectiveDateTime"]):
                self.add("Observation.effectiveDateTime", "must be precise to the day at least (vs-1)")
        elif "effectivePeriod" in obs:
            period = obs["effectivePeriod"] if isinstance(obs["effectivePeriod"], dict) else {}
            bounds = [period.get(key) for key in ("start", "end") if period.get(key) is not None]
            if not bounds:
                self.add("Observation.effectivePeriod", "needs a start or an end")
            for key in ("start", "end"):
                if period.get(key) is not None and not _day_precise(period[key]):
                    self.add(f"Observation.effectivePeriod.{key}", "must be precise to the day at least")
        elif not others:
            self.add("Observation.effective[x]", "is required (effectiveDateTime or effectivePeriod)")

    def value_or_absent(self):
        obs = self.observation
        values = _value_keys(obs)
        if values and "dataAbsentReason" in obs:
            self.add("Observation.dataAbsentReason", "must not be present with a value (obs-6)")
        grouped = obs.get("component") or obs.get("hasMember")
        if not grouped and not values and "dataAbsentReason" not in obs:
            self.add("Observation", "needs a value[x] or a dataAbsentReason (vs-2)")

    def measure(self, code):
        obs = self.observation
        name, units = MEASURES[code]
        values = _value_keys(obs)
        if not units:
            for key in values:
                self.add(f"Observation.{key}", f"{code} ({name}) is a panel and carries no value of its own")
            if code == VITALS_PANEL and not obs.get("hasMember"):
                self.add("Observation.hasMember", f"{code} ({name}) needs at least one member")
            for required in PANEL_COMPONENTS.get(code, ()):
                self.panel_component(code, required)
            return
        if code in QUANTITY_ONLY:
            for key in values:
                if key != "valueQuantity":
                    self.add(f"Observation.{key}", f"{code} ({name}) takes a valueQuantity only, not {key}")
        if "valueQuantity" in obs:
            self.quantity("Observation.valueQuantity", obs["valueQuantity"], code, name, units)

    def panel_component(self, panel, required):
        components = self.observation.get("component") or ()
        found = [c for c in components if required in loinc_codes(c.get("code"))]
        name = MEASURES[required][0]
        if not found:
            self.add("Observation.component", f"{panel} needs a {name} component ({required})")
        elif len(found) > 1:
            self.add("Observation.component", f"{panel} has {len(found)} {name} components ({required})")

    def component(self, index, component):
        path = f"Observation.component[{index}]"
        if not isinstance(component, dict):
            self.add(path, "must be an object")
            return
        if not _codings(component.get("code")):
            self.add(f"{path}.code", "is required")
        values = _value_keys(component)
        if not values and "dataAbsentReason" not in component:
            self.add(path, "needs a value[x] or a dataAbsentReason (vs-3)")
        if values and "dataAbsentReason" in component:
            self.add(f"{path}.dataAbsentReason", "must not be present with a value")
        codes = [code for code in loinc_codes(component.get("code")) if code in MEASURES]
        quantity = component.get("valueQuantity")
        for code in codes:
            name, units = MEASURES[code]
            in_panel = any(code in PANEL_COMPONENTS.get(p, ()) for p in vital_sign_codes(self.observation))
            if in_panel:
                for key in values:
                    if key != "valueQuantity":
                        self.add(f"{path}.{key}", f"{code} ({name}) takes a valueQuantity only, not {key}")
            if quantity is not None:
                self.quantity(f"{path}.valueQuantity", quantity, code, name, units)
        if quantity is not None and not codes:
            self.common_unit(f"{path}.valueQuantity", quantity)

    def quantity(self, path, quantity, code, name, units):
        if not isinstance(quantity, dict):
            self.add(path, "must be an object")
            return
        value = quantity.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.add(f"{path}.value", f"is required and must be a number, not {value!r}")
        if not quantity.get("unit"):
            self.add(f"{path}.unit", "is required")
        if quantity.get("system") != UCUM:
            self.add(f"{path}.system", f"must be {UCUM}, not {quantity.get('system')!r}")
        if quantity.get("code") not in units:
            self.add(f"{path}.code", f"{quantity.get('code')!r} is not an allowed unit of {code} ({name}): "
                                     f"{', '.join(units)}")

    def common_unit(self, path, quantity):
        if not isinstance(quantity, dict):
            self.add(path, "must be an object")
            return
        if quantity.get("system") != UCUM or quantity.get("code") not in VITALS_COMMON_UNITS:
            self.add(path, f"{quantity.get('system')}|{quantity.get('code')} is not in ucum-vitals-common")


def violations(observation):
    """Every rule of the R4 Vital Signs profiles that `observation` breaks ([] when it conforms)."""
    if not isinstance(observation, dict):
        return [f"an Observation must be a JSON object, not {type(observation).__name__}"]
    return _Checker(observation).run()


def assert_conforms(observation):
    """Fail with every Vital Signs profile violation of `observation`, one a line."""
    problems = violations(observation)
    if problems:
        name = f"Observation/{observation.get('id')}" if isinstance(observation, dict) else "?"
        raise AssertionError(f"{name} breaks the R4 Vital Signs profile:\n  " + "\n  ".join(problems))
