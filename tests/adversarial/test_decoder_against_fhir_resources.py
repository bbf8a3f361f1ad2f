"""The typed decoder (``service.fhir.decode``) against fhir.resources, on corrupted demo and cohort resources.

The decoder checks only the elements the mapping reads; fhir.resources validates whole resources (strict
mode). For each corruption of one element of a real resource:

- fhir.resources finds an error in an element the decoder checks -> the decoder refuses the resource too,
  and the mapping's message is fhir.resources' own (the same words as in strict mode);
- the decoder refuses a resource fhir.resources accepts -> the corrupted element is where it refused (a
  value FHIR JSON forbids that fhir.resources lets through: a date-time written as a number, an id longer
  than 64 characters, a URI with white space, a decimal written as a string);
- an element the decoder does not check (``meta``, ``text``, an ``intent``) never makes it refuse.

Every demo and cohort resource decodes cleanly, and both modes map every patient to the same snapshot.
Bounded like the other fuzzing tests (``HCC_ADVERSARIAL_EXAMPLES``).
"""

from __future__ import annotations

import copy
import os

import msgspec
import msgspec.inspect as mi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.fhir import decode
from service.mapping import _validation_errors, map_to_snapshot, validation_problem
from tests.adversarial.clinical_data import _records, delete_path, knowledge, paths_of, set_path
from tests.adversarial.test_mapping_fuzz import BAD_VALUES

EXAMPLES = int(os.environ.get("HCC_ADVERSARIAL_EXAMPLES", "60")) * 10  # each example is cheap
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
EXTRA_VALUES = st.sampled_from([" a", "a ", "x" * 70, "2026-02-29", "2024-02-29", "2026-01-02T10:00:00",
                                "2026-01-02T10:00:00Z", [None], [{}], {"foo": 1}, 1.5, "12", 10**400])


def _resources() -> list[dict]:
    return [r for patient, rs in _records().values() for r in (patient, *rs) if r["resourceType"] in decode.DECODERS]


def _unwrap(t):
    while isinstance(t, mi.UnionType):
        kinds = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(kinds) != 1:
            return t  # int | float: a decimal, checked
        t = kinds[0]
    return t


def checked_by_decoder(resource_type: str, loc: tuple) -> bool:
    """Whether the decoder checks the element at ``loc`` (a fhir.resources error location)."""
    t = mi.type_info(decode.DECODERS[resource_type])
    for step in (s for s in loc if s != "root"):
        t = _unwrap(t)
        if isinstance(t, mi.StructType):
            fields = {f.encode_name: f for f in t.fields}
            if step not in fields:
                return bool(t.forbid_unknown_fields)  # an unknown member of a checked complex type
            t = fields[step].type
        elif isinstance(t, mi.ListType):
            t = t.item_type
        elif isinstance(t, mi.AnyType):
            return False
        else:
            return True
    return not isinstance(_unwrap(t), mi.AnyType)


def _loc(where: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in where.split("."))


@st.composite
def corrupted_resource(draw):
    resource = copy.deepcopy(draw(st.sampled_from(_resources())))
    path = draw(st.sampled_from([p for p in paths_of(resource) if p[0] != "resourceType"]))
    if draw(st.integers(0, 4)) == 0:
        delete_path(resource, path)
    else:
        set_path(resource, path, draw(st.one_of(BAD_VALUES, EXTRA_VALUES)))
    return resource, path


def test_every_demo_and_cohort_resource_decodes_and_both_modes_map_alike():
    for resource in _resources():
        assert decode.decode_problem(resource) is None, f"{resource['resourceType']}/{resource.get('id')}"
    for patient, resources in _records().values():
        fast = map_to_snapshot(patient, list(resources), knowledge())
        assert fast == map_to_snapshot(patient, list(resources), knowledge(), strict=True)


@FUZZ
@given(corrupted_resource())
def test_the_decoder_refuses_what_fhir_resources_refuses_in_the_elements_it_reads(case):
    resource, path = case
    rtype = resource["resourceType"]
    located = [(where, msg) for where, msg in _validation_errors(resource) if where is not None]
    errors = [(where, msg) for where, msg in located if checked_by_decoder(rtype, _loc(where))]
    refused = decode.decode_problem(resource)
    problem = validation_problem(resource)
    if errors:
        assert refused is not None, f"{rtype} {path}: fhir.resources says {errors[0]}, the decoder accepts"
        read = decode.READ_ELEMENTS[rtype]
        first = next((w, m) for w, m in located if w.split(".")[0] in read)
        assert problem == f"fails FHIR R4 validation at {first[0]}: {first[1]}"
    elif refused is not None and not _validation_errors(resource):
        where, _ = decode.problem_location(refused)
        corrupted = ".".join(str(p) for p in path)
        assert where == "resource" or corrupted.startswith(where) or where.startswith(corrupted), (refused, path)
    if not checked_by_decoder(rtype, path):
        assert refused is None, f"{rtype} {path} is not read, yet: {refused}"


def _strict_decode_problem(resource: dict) -> str | None:
    """The decoder as it was before its twin structs: the strict struct, then the choices, then the dates."""
    rtype = resource["resourceType"]
    try:
        msgspec.convert(resource, decode.DECODERS[rtype])
    except msgspec.ValidationError as exc:
        return str(exc)
    checks = decode.TOP_LEVEL[rtype]
    for prefix, names in checks.choices:
        present = resource.keys() & names
        if len(present) > 1:
            return decode._one_of_problem(prefix, present)
        if not present and prefix in checks.required_choices:
            return f"{prefix}[x] is required"
    for name in checks.dates:
        problem = decode._date_problem(name, resource.get(name))
        if problem:
            return f"{problem} - at `$.{name}`"
    return None


@FUZZ
@given(corrupted_resource())
def test_the_twin_structs_decide_as_the_strict_structs(case):
    """The twins (patterned strings checked once, the strings found valid kept) change no verdict and no message,
    on a first sight and again once their strings are known."""
    resource, _ = case
    for _ in range(2):
        assert decode.decode_problem(resource) == _strict_decode_problem(resource)
