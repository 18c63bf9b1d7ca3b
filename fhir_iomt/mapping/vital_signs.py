"""Codes, units and physiological limits of device observations (../reference/vital-signs.md).

`VITAL_SIGNS` maps each LOINC code of the reference table to its allowed UCUM
units, its IEEE 11073 MDC codes and, for panels, the components it must carry.
`in_profile` tells whether the code is in the R4 Vital Signs value set (so the
Observation gets the vital-signs category); glucose and steps have checked units
but are not vital signs in FHIR R4.
"""

import math
from dataclasses import dataclass

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:iso:std:iso:11073:10101"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
PHD_CATEGORY_SYSTEM = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
VITAL_SIGNS_CODE = "vital-signs"
BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
HEART_RATE = "8867-4"


@dataclass(frozen=True)
class VitalSign:
    """One row of the reference table."""

    loinc: str
    display: str
    units: tuple = ()  # allowed UCUM codes; empty for panels, which carry no value of their own
    mdc: tuple = ()
    in_profile: bool = True
    components: tuple = ()  # LOINC codes of the components a panel must carry


def _table(*rows):
    return {row.loinc: row for row in rows}


VITAL_SIGNS = _table(
    VitalSign("85353-1", "Vital signs panel"),
    VitalSign(HEART_RATE, "Heart rate", ("/min",), ("147842", "149530", "149546")),
    VitalSign("9279-1", "Respiratory rate", ("/min",), ("151562",)),
    VitalSign("2708-6", "Oxygen saturation in Arterial blood", ("%",), ("150456",)),
    VitalSign("59408-5", "Oxygen saturation by Pulse oximetry", ("%",), ("150456",)),
    VitalSign("8310-5", "Body temperature", ("Cel", "[degF]"), ("150364",)),
    VitalSign("8302-2", "Body height", ("cm", "[in_i]"), ("188740",)),
    VitalSign("9843-4", "Head Occipital-frontal circumference", ("cm", "[in_i]")),
    VitalSign("29463-7", "Body weight", ("kg", "g", "[lb_av]"), ("188736",)),
    VitalSign("39156-5", "Body mass index", ("kg/m2",), ("188752",)),
    VitalSign(BP_PANEL, "Blood pressure panel", (), ("150020",), components=(SYSTOLIC, DIASTOLIC)),
    VitalSign(SYSTOLIC, "Systolic blood pressure", ("mm[Hg]",), ("150021",)),
    VitalSign(DIASTOLIC, "Diastolic blood pressure", ("mm[Hg]",), ("150022",)),
    VitalSign("8478-0", "Mean blood pressure", ("mm[Hg]",), ("150023",)),
    VitalSign("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer", ("mg/dL",), ("160184",),
              in_profile=False),
    VitalSign("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer", ("mmol/L",),
              ("160184",), in_profile=False),
    VitalSign("2339-0", "Glucose [Mass/volume] in Blood", ("mg/dL",), ("160368",), in_profile=False),
    VitalSign("15074-8", "Glucose [Moles/volume] in Blood", ("mmol/L",), ("160368",), in_profile=False),
    VitalSign("41950-7", "Number of steps in 24 hour Measured", ("{steps}",), in_profile=False),
)

# LOINC code -> {UCUM unit: (low, high)}, both bounds inclusive.
DEFAULT_LIMITS = {
    HEART_RATE: {"/min": (20, 300)},
    "9279-1": {"/min": (3, 80)},
    "2708-6": {"%": (50, 100)},
    "59408-5": {"%": (50, 100)},
    "8310-5": {"Cel": (25, 45), "[degF]": (77, 113)},
    "8302-2": {"cm": (20, 280), "[in_i]": (8, 110)},
    "29463-7": {"kg": (0.5, 500), "g": (500, 500000), "[lb_av]": (1.1, 1102.3)},
    "39156-5": {"kg/m2": (5, 150)},
    SYSTOLIC: {"mm[Hg]": (40, 300)},
    DIASTOLIC: {"mm[Hg]": (20, 200)},
    "8478-0": {"mm[Hg]": (30, 250)},
    "41653-7": {"mg/dL": (10, 1000)},
    "2339-0": {"mg/dL": (10, 1000)},
    "14743-9": {"mmol/L": (0.5, 55)},
    "15074-8": {"mmol/L": (0.5, 55)},
    "41950-7": {"{steps}": (0, 200000)},
}


def vital_sign_category():
    """The Observation.category element of vital signs."""
    coding = {"system": CATEGORY_SYSTEM, "code": VITAL_SIGNS_CODE, "display": "Vital Signs"}
    return {"coding": [coding], "text": "Vital Signs"}


def _code_of(coding):
    """(system, code) of a coding given as a dict or an object with system/code attributes."""
    if isinstance(coding, dict):
        return coding.get("system"), coding.get("code")
    return getattr(coding, "system", None), getattr(coding, "code", None)


def loinc_codes(codes):
    """The LOINC codes among `codes` (codings as dicts or objects with system and code)."""
    found = []
    for coding in codes or ():
        system, code = _code_of(coding)
        if system == LOINC and code:
            found.append(code)
    return found


def table_entries(codes):
    """The VitalSign rows whose LOINC code is among `codes`."""
    return [VITAL_SIGNS[code] for code in loinc_codes(codes) if code in VITAL_SIGNS]


def is_vital_sign(codes):
    """True when a LOINC coding among `codes` is in the R4 Vital Signs value set."""
    return any(entry.in_profile for entry in table_entries(codes))


def loinc_for_mdc(mdc_code):
    """The LOINC codes the reference table gives for an IEEE 11073 MDC code."""
    return [entry.loinc for entry in VITAL_SIGNS.values() if str(mdc_code) in entry.mdc]


def limits_with(overrides):
    """DEFAULT_LIMITS with some codes replaced ({code: {unit: (low, high)}}) or removed ({code: None})."""
    merged = dict(DEFAULT_LIMITS)
    for code, units in overrides.items():
        if units is None:
            merged.pop(code, None)
        else:
            merged[code] = dict(units)
    return merged


def _samples(sampled):
    """The numeric values of a SampledData (origin + factor * sample), skipping E, L and U."""
    origin = (sampled.get("origin") or {}).get("value", 0)
    factor = sampled.get("factor", 1)
    values = []
    for token in (sampled.get("data") or "").split():
        try:
            number = float(token)
        except ValueError:
            continue
        if math.isfinite(number):
            values.append(origin + factor * number)
    return values


def _measured(element):
    """(unit, [values]) carried by an Observation or component, or None when not numeric."""
    quantity = element.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        return quantity.get("code") or quantity.get("unit"), [quantity["value"]]
    sampled = element.get("valueSampledData")
    if isinstance(sampled, dict):
        origin = sampled.get("origin") or {}
        return origin.get("code") or origin.get("unit"), _samples(sampled)
    return None


def _element_problems(element, path, limits):
    measured = _measured(element)
    if measured is None:
        return []
    unit, values = measured
    problems = []
    for code in loinc_codes((element.get("code") or {}).get("coding")):
        bounds = (limits.get(code) or {}).get(unit)
        if bounds is None:
            continue
        low, high = bounds
        for value in values:
            if not low <= value <= high:
                problems.append(f"{path}: {code} value {value:g} {unit} is outside {low:g}..{high:g} {unit}")
    return problems


def check_limits(observation, limits=DEFAULT_LIMITS):
    """Messages for the value and component quantities of an Observation outside the limits."""
    problems = _element_problems(observation, "Observation.value", limits)
    for index, component in enumerate(observation.get("component") or ()):
        problems += _element_problems(component, f"Observation.component[{index}].value", limits)
    return problems
