"""hcc-cds clinical rules: pure Python over a clinical snapshot (no HTTP, no FHIR, no I/O, no clock).

The names callers use, in one place: ``from rules import assess, Knowledge, Snapshot``.
``assess`` runs every rule of :data:`RULES` (``rules.registry``) in order; the knowledge
(value sets and typed criteria, ``rules.knowledge`` / ``rules.criteria``) is checked when built.
"""

from rules.assessment import SORAFENIB_CODES, Assessment, assess
from rules.criteria import ClinicalCriteria
from rules.demographics import age_on
from rules.findings import DataIssue, Finding, Notes, Status, finding
from rules.knowledge import RULES_VERSION, CodeEntry, Knowledge, KnowledgeError, Override, OverridesError
from rules.orders import DraftSorafenibOrder, DraftTaceOrder, OrderAlert, review_sorafenib_order, review_tace_order
from rules.registry import RULES, Prior, Rule, run_rules
from rules.safety import SafetyNote
from rules.snapshot import (
    AllergyFact,
    BloodPressure,
    ConditionFact,
    DiseaseStatusReport,
    GradedEvent,
    LesionMeasurement,
    Measurement,
    MedicationFact,
    PatientFacts,
    ProcedureFact,
    Snapshot,
    UnusableMeasurement,
)
from rules.treatment import completed_tace, sorafenib_history

__all__ = [
    "RULES",
    "RULES_VERSION",
    "SORAFENIB_CODES",
    "AllergyFact",
    "Assessment",
    "BloodPressure",
    "ClinicalCriteria",
    "CodeEntry",
    "ConditionFact",
    "DataIssue",
    "DiseaseStatusReport",
    "DraftSorafenibOrder",
    "DraftTaceOrder",
    "Finding",
    "GradedEvent",
    "Knowledge",
    "KnowledgeError",
    "LesionMeasurement",
    "Measurement",
    "MedicationFact",
    "Notes",
    "OrderAlert",
    "Override",
    "OverridesError",
    "PatientFacts",
    "Prior",
    "ProcedureFact",
    "Rule",
    "SafetyNote",
    "Snapshot",
    "Status",
    "UnusableMeasurement",
    "age_on",
    "assess",
    "completed_tace",
    "finding",
    "review_sorafenib_order",
    "review_tace_order",
    "run_rules",
    "sorafenib_history",
]
