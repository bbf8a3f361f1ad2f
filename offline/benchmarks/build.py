"""Build the benchmark tables offline: cohort definition -> pseudo patients -> lifelines -> JSON.

For every cohort definition in ``rules/data/cohorts/`` this

1. reconstructs constraint-matched pseudo individual patient data with the deterministic search
   of :mod:`offline.benchmarks.pseudo_ipd`;
2. fits each arm (and the union of the arms, the overall cohort) with lifelines: Kaplan-Meier
   with 95% confidence intervals (lifelines' default exponential Greenwood, i.e. log(-log)),
   the median with its interval (``lifelines.utils.median_survival_times`` on the
   confidence-interval frame; an infinite bound becomes ``null``), the log-rank test between
   the compared arms;
3. adds response and adverse-event rates recomputed from the published counts, illustrative
   time-to-progression curves (exponential with the published medians) and, for every
   published figure, a check of the reconstructed or recomputed value against it;
4. writes ``rules/data/benchmarks/<cohort>.tables.json``.

The output is deterministic: the search has no randomness, floats are rounded (``significant_digits``
in the cohort file), keys are sorted and the text is written with fixed separators, so a rebuild
gives the same bytes (a test rebuilds into a temporary directory and compares).

Only this module needs lifelines and scipy, imported inside the functions that fit (the search, the
serialisation and their tests run without the scientific stack); the service reads the written
tables through :mod:`service.benchmarks.tables`. Offline code: not part of the installed service.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from offline.benchmarks.pseudo_ipd import (
    PERCENT,
    PseudoPatient,
    Reconstruction,
    SearchProblem,
    median_agrees_with_landmarks,
    reconstruct,
)
from service.benchmarks.tables import (
    TABLES_FORMAT,
    TABLES_FORMAT_VERSION,
    TABLES_SUFFIX,
    KaplanMeierStep,
    step_value_at,
)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
COHORTS_DIR = PACKAGE_ROOT / "rules" / "data" / "cohorts"
TABLES_DIR = PACKAGE_ROOT / "rules" / "data" / "benchmarks"

RESPONSE_CATEGORIES = ("CR", "PR", "SD", "PD")
OBJECTIVE_RESPONSE = ("CR", "PR")
DISEASE_CONTROL = ("CR", "PR", "SD")

WITHIN = "yes"
NOT_WITHIN = "no"
NOT_A_TARGET = "n/a"


def build(out_dir: Path | None = None, cohorts_dir: Path | None = None) -> list[Path]:
    """Build the tables of every cohort in ``cohorts_dir`` into ``out_dir``; return the files written."""
    source_dir = cohorts_dir or COHORTS_DIR
    target_dir = out_dir or TABLES_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for cohort_file in sorted(source_dir.glob("*.json")):
        raw = cohort_file.read_bytes()
        tables = build_cohort_tables(json.loads(raw), source_name=_display_path(cohort_file), source_bytes=raw)
        path = target_dir / f"{tables['cohort']['id']}{TABLES_SUFFIX}"
        path.write_text(dumps_tables(tables), encoding="utf-8")
        written.append(path)
    return written


def dumps_tables(tables: Mapping[str, Any]) -> str:
    """The canonical text of a tables document: sorted keys, 1-space indent, trailing newline."""
    return json.dumps(tables, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def build_cohort_tables(cohort: Mapping[str, Any], source_name: str, source_bytes: bytes) -> dict[str, Any]:
    """The tables document of one cohort definition: search, lifelines fits, served blocks, checks, rounded."""
    settings = cohort["reconstruction"]
    problem = SearchProblem.from_cohort(cohort)
    reconstruction = reconstruct(problem)
    alpha = 1.0 - float(settings["confidence_level"])
    fits = {arm_id: fit_kaplan_meier(patients, alpha) for arm_id, patients in reconstruction.patients.items()}
    logrank = fit_logrank(reconstruction, problem.compared_arm_ids, alpha)

    caveats = list(cohort["caveats"])
    method_summary = settings["method"]
    arms = []
    for arm in cohort["arms"]:
        fit = fits[arm["id"]]
        arms.append(
            {
                "cohort": cohort["id"],
                "arm": arm["id"],
                "label": arm["label"],
                "n": arm["n"],
                "events": fit["events"],
                "censored": fit["censored"],
                "median_os_months": fit["median"],
                "survival": _survival_points(fit["steps"], settings["survival_report_months"]),
                "km": [_step_document(step) for step in fit["steps"]],
                "pseudo_ipd": [
                    {"month": patient.months, "died": patient.died} for patient in reconstruction.patients[arm["id"]]
                ],
                "published": _published_figures(arm, cohort),
                "response": _response_rates(arm),
                "adverse_events": _adverse_event_rates(arm),
                "patients_with_grade_3_4_events": _rate(
                    arm["published"]["patients_with_grade_3_4_events"], arm["n"], None
                ),
                "ttp_illustrative": _ttp_illustration(arm, cohort),
                "checks": _arm_checks(arm, cohort, problem, fit, reconstruction.patients[arm["id"]]),
                "method": method_summary,
                "caveats": caveats + list(arm.get("caveats", [])),
                "citation": cohort["citation"],
            }
        )
    document = {
        "format": TABLES_FORMAT,
        "format_version": TABLES_FORMAT_VERSION,
        "generated_by": "python -m offline.benchmarks --build (offline.benchmarks.build)",
        "source": {"file": source_name, "sha256": hashlib.sha256(source_bytes).hexdigest()},
        "cohort": {
            "id": cohort["id"],
            "title": cohort["title"],
            "citation": cohort["citation"],
            "population": cohort["population"],
            "cohort_facts": cohort["cohort_facts"],
            "arms": [{"id": arm["id"], "label": arm["label"], "n": arm["n"]} for arm in cohort["arms"]],
            "comparisons": _comparisons(cohort, logrank),
            "logrank": logrank,
            "checks": _comparison_checks(cohort, logrank),
            "method": {
                "summary": method_summary,
                "description": settings["description"],
                "settings": {key: value for key, value in settings.items() if key not in ("method", "description")},
                "search": {
                    "alive_by_arm": dict(reconstruction.alive_by_arm),
                    "splits_searched": reconstruction.splits_searched,
                    "sweeps": reconstruction.sweeps,
                    "evaluations": reconstruction.evaluations,
                    "targets_missed": reconstruction.score.missed,
                    "objective": reconstruction.score.weighted,
                },
                "fitted_with": "lifelines KaplanMeierFitter, lifelines.utils.median_survival_times, "
                "lifelines.statistics.logrank_test",
            },
            "caveats": caveats,
            "inconsistencies": cohort["inconsistencies"],
            "external_references": cohort["external_references"],
        },
        "arms": arms,
    }
    return _rounded(document, int(settings["significant_digits"]))


# --- lifelines ----------------------------------------------------------------------------------


def fit_kaplan_meier(patients: Sequence[PseudoPatient], alpha: float) -> dict[str, Any]:
    """Kaplan-Meier of the pseudo patients: step table, events, censored, median with its CI."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    fitter = KaplanMeierFitter(alpha=alpha).fit(
        [patient.months for patient in patients], event_observed=[patient.died for patient in patients]
    )
    table = fitter.event_table
    survival = fitter.survival_function_.iloc[:, 0]
    lower = fitter.confidence_interval_.iloc[:, 0]
    upper = fitter.confidence_interval_.iloc[:, 1]
    steps = tuple(
        KaplanMeierStep(
            month=float(month),
            at_risk=int(table.loc[month, "at_risk"]),
            events=int(table.loc[month, "observed"]),
            censored=int(table.loc[month, "censored"]),
            estimate=_finite(survival.loc[month]),
            ci_lower=_finite(lower.loc[month]),
            ci_upper=_finite(upper.loc[month]),
        )
        for month in table.index
    )
    median_bounds = median_survival_times(fitter.confidence_interval_)
    return {
        "steps": steps,
        "events": sum(patient.died for patient in patients),
        "censored": sum(not patient.died for patient in patients),
        "median": {
            "estimate": _finite(fitter.median_survival_time_),
            "ci_lower": _finite(median_bounds.iloc[0, 0]),
            "ci_upper": _finite(median_bounds.iloc[0, 1]),
        },
    }


def fit_logrank(reconstruction: Reconstruction, arm_ids: Sequence[str], alpha: float) -> dict[str, Any]:
    """lifelines' log-rank test between the two compared arms."""
    from lifelines.statistics import logrank_test

    first, second = (reconstruction.patients[arm_id] for arm_id in arm_ids)
    result = logrank_test(
        [patient.months for patient in first],
        [patient.months for patient in second],
        event_observed_A=[patient.died for patient in first],
        event_observed_B=[patient.died for patient in second],
        alpha=alpha,
    )
    return {
        "arms": list(arm_ids),
        "test": "log-rank",
        "test_statistic": float(result.test_statistic),
        "p_value": float(result.p_value),
    }


# --- served blocks ------------------------------------------------------------------------------


def _survival_points(steps: tuple[KaplanMeierStep, ...], months: Sequence[float]) -> list[dict[str, Any]]:
    points = []
    for month in months:
        point = step_value_at(steps, float(month))
        if point is not None:
            points.append(
                {
                    "month": point.month,
                    "estimate": point.estimate,
                    "ci_lower": point.ci_lower,
                    "ci_upper": point.ci_upper,
                }
            )
    return points


def _step_document(step: KaplanMeierStep) -> dict[str, Any]:
    return {
        "month": step.month,
        "at_risk": step.at_risk,
        "events": step.events,
        "censored": step.censored,
        "estimate": step.estimate,
        "ci_lower": step.ci_lower,
        "ci_upper": step.ci_upper,
    }


def _published_figures(arm: Mapping[str, Any], cohort: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's figures for an arm, in the shape of the reconstructed ones (fractions, months)."""
    published = arm["published"]
    is_whole_cohort = arm["reconstruction"] == "union"
    facts = cohort["cohort_facts"]
    return {
        "n": arm["n"],
        "median_os_months": {"estimate": published["median_os_months"], "ci_lower": None, "ci_upper": None},
        "survival": [
            {"month": point["month"], "estimate": point["percent"] / PERCENT, "ci_lower": None, "ci_upper": None}
            for point in published["survival_percent"]
        ],
        "median_os_from_diagnosis_months": published.get("median_os_from_diagnosis_months"),
        "median_ttp_months": published.get("median_ttp_months"),
        "deaths": facts["deaths"] if is_whole_cohort else None,
        "alive_at_study_end": facts["alive_at_study_end"] if is_whole_cohort else None,
        "follow_up_months": facts["follow_up_months"] if is_whole_cohort else None,
    }


def _rate(count: int | None, n: int, published_percent: float | None) -> dict[str, Any] | None:
    if count is None:
        return None
    return {"count": count, "n": n, "rate": count / n, "published_percent": published_percent}


def _response_rates(arm: Mapping[str, Any]) -> dict[str, Any]:
    response = arm["published"]["response"]
    counts, percents, n = response["counts"], response["percent"], arm["n"]
    if sum(counts[category] for category in RESPONSE_CATEGORIES) != n:
        raise ValueError(f"arm {arm['id']!r}: response counts do not add up to n={n}")
    return {
        "assessed_at": response["assessed_at"],
        "categories": [
            {"category": category, **_rate(counts[category], n, percents.get(category))}  # type: ignore[dict-item]
            for category in RESPONSE_CATEGORIES
        ],
        "orr": _rate(sum(counts[c] for c in OBJECTIVE_RESPONSE), n, response.get("orr_percent")),
        "dcr": _rate(sum(counts[c] for c in DISEASE_CONTROL), n, response.get("dcr_percent")),
    }


def _adverse_event_rates(arm: Mapping[str, Any]) -> list[dict[str, Any]]:
    n = arm["n"]
    return [
        {
            "event": event["event"],
            "any_grade": _rate(event["any_grade"], n, event.get("any_grade_percent")),
            "grade_3_4": _rate(event.get("grade_3_4"), n, event.get("grade_3_4_percent")),
            "note": event.get("note"),
        }
        for event in arm["published"]["adverse_events"]
    ]


def _ttp_illustration(arm: Mapping[str, Any], cohort: Mapping[str, Any]) -> dict[str, Any]:
    """Exponential curve with the published median TTP: an illustration, never data."""
    settings = cohort["reconstruction"]["ttp_illustration"]
    median = float(arm["published"]["median_ttp_months"])
    rate = math.log(2.0) / median
    step, horizon = float(settings["curve_step_months"]), float(settings["curve_horizon_months"])
    months = [index * step for index in range(int(round(horizon / step)) + 1)]
    ttp_comparison = next((c for c in cohort["comparisons"] if c["id"] == "ttp"), None)
    return {
        "status": "illustrative",
        "model": settings["model"],
        "median_months": median,
        "rate_per_month": rate,
        "curve": [{"month": month, "estimate": math.exp(-rate * month)} for month in months],
        "published_p_value": ttp_comparison["p_value"] if ttp_comparison else None,
        "note": settings["description"],
    }


def _comparisons(cohort: Mapping[str, Any], logrank: Mapping[str, Any]) -> list[dict[str, Any]]:
    comparisons = []
    for comparison in cohort["comparisons"]:
        entry = {key: value for key, value in comparison.items() if key != "recompute"}
        entry.setdefault("note", None)
        entry["reconstructed_p_value"] = logrank["p_value"] if comparison.get("reconstructed") else None
        entry["recomputed_p_value"] = _recomputed_p(comparison.get("recompute"))
        comparisons.append(entry)
    return comparisons


def _recomputed_p(recipe: Mapping[str, Any] | None) -> float | None:
    if recipe is None:
        return None
    if recipe["test"] != "fisher-exact-two-sided":
        raise ValueError(f"unknown recompute test {recipe['test']!r}")
    from scipy.stats import fisher_exact

    return float(fisher_exact(recipe["table"], alternative="two-sided").pvalue)


# --- checks: every published figure against what the tables hold ------------------------------

FLOAT_SLACK = 1e-9


class _Checks:
    """Collects check rows: published figure, the tables' value, the target and whether it is met.

    ``notes`` (from the cohort file's ``check_notes``) override the default note of a check id.
    """

    def __init__(self, notes: Mapping[str, str]) -> None:
        self.notes = notes
        self.rows: list[dict[str, Any]] = []

    def within(
        self,
        check_id: str,
        figure: str,
        published: float | None,
        reconstructed: float | None,
        tolerance: float,
        target: str,
        note: str | None = None,
    ) -> None:
        """A figure with a tolerance; ``n/a`` when either value is missing."""
        if published is None or reconstructed is None:
            verdict = NOT_A_TARGET
        else:
            verdict = WITHIN if abs(reconstructed - published) <= tolerance + FLOAT_SLACK else NOT_WITHIN
        self._add(check_id, figure, published, reconstructed, target, verdict, note)

    def at_least(self, check_id: str, figure: str, bound: float, reconstructed: float, note: str | None) -> None:
        """A lower bound the pseudo patients must respect."""
        verdict = WITHIN if reconstructed >= bound - FLOAT_SLACK else NOT_WITHIN
        self._add(check_id, figure, bound, reconstructed, f">= {bound:g}", verdict, note)

    def below(
        self, check_id: str, figure: str, published: float, reconstructed: float, limit: float, note: str | None
    ) -> None:
        """A value that must stay under a limit (the log-rank p)."""
        verdict = WITHIN if reconstructed < limit else NOT_WITHIN
        self._add(check_id, figure, published, reconstructed, f"< {limit:g}", verdict, note)

    def untargeted(
        self,
        check_id: str,
        figure: str,
        published: float | None,
        reconstructed: float | None,
        target: str,
        note: str | None,
    ) -> None:
        """A figure shown for comparison only."""
        self._add(check_id, figure, published, reconstructed, target, NOT_A_TARGET, note)

    def _add(
        self,
        check_id: str,
        figure: str,
        published: float | None,
        reconstructed: float | None,
        target: str,
        verdict: str,
        note: str | None,
    ) -> None:
        self.rows.append(
            {
                "id": check_id,
                "figure": figure,
                "published": published,
                "reconstructed": reconstructed,
                "target": target,
                "within_target": verdict,
                "note": self.notes.get(check_id, note),
            }
        )


def _comparison_checks(cohort: Mapping[str, Any], logrank: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Published p-values: the log-rank one against the pseudo patients, others recomputed or not at all."""
    checks = _Checks({})
    for comparison in cohort["comparisons"]:
        check_id, figure = f"{comparison['id']}-p", f"p-value: {comparison['figure']}"
        note = comparison.get("note")
        if comparison.get("reconstructed"):
            limit = cohort["reconstruction"]["logrank_p_max"]
            checks.below(check_id, figure, comparison["p_value"], logrank["p_value"], limit, note)
            continue
        recomputed = _recomputed_p(comparison.get("recompute"))
        target = "recomputed from published counts" if recomputed is not None else "not reconstructed"
        checks.untargeted(check_id, figure, comparison["p_value"], recomputed, target, note)
    return checks.rows


def _arm_checks(
    arm: Mapping[str, Any],
    cohort: Mapping[str, Any],
    problem: SearchProblem,
    fit: Mapping[str, Any],
    patients: Sequence[PseudoPatient],
) -> list[dict[str, Any]]:
    """Survival, medians, deaths, follow-up and constraints of one arm, then its rates."""
    settings = cohort["reconstruction"]
    tolerances = settings["tolerances"]
    survival_tolerance = tolerances["survival_percentage_points"]
    median_tolerance = tolerances["median_months"]
    published = arm["published"]
    checks = _Checks(arm.get("check_notes", {}))

    checks.within("n", "patients", arm["n"], len(patients), 0, "exact")
    for point in published["survival_percent"]:
        month = point["month"]
        value = step_value_at(fit["steps"], float(month))
        reconstructed = None if value is None or value.estimate is None else value.estimate * PERCENT
        checks.within(
            f"survival-{month:g}m",
            f"OS at {month:g} months (%)",
            point["percent"],
            reconstructed,
            survival_tolerance,
            f"±{survival_tolerance:g} pp",
        )
    arm_targets = next(targets for targets in problem.all_targets if targets.arm_id == arm["id"])
    checks.within(
        "median-os",
        "median OS from sorafenib start (months)",
        published["median_os_months"],
        fit["median"]["estimate"],
        median_tolerance,
        _months(median_tolerance),
        None if median_agrees_with_landmarks(arm_targets) else "The published median contradicts a landmark.",
    )
    checks.untargeted(
        "median-os-from-diagnosis",
        "median OS from HCC diagnosis (months)",
        published.get("median_os_from_diagnosis_months"),
        None,
        "not reconstructed",
        "Not reconstructed: the dates of diagnosis are not published.",
    )
    checks.untargeted(
        "median-ttp",
        "median time to progression (months)",
        published.get("median_ttp_months"),
        published.get("median_ttp_months"),
        "illustrative only",
        "Served as an illustrative exponential curve with this median; not reconstructed from data.",
    )

    deaths = sum(patient.died for patient in patients)
    observed = sorted(patient.months for patient in patients)
    if arm["reconstruction"] == "union":
        facts = cohort["cohort_facts"]
        follow_up = facts["follow_up_months"]
        checks.within("deaths", "deaths", facts["deaths"], deaths, 0, "exact")
        checks.within(
            "alive", "alive at study end (censored)", facts["alive_at_study_end"], len(patients) - deaths, 0, "exact"
        )
        checks.within("follow-up-min", "shortest follow-up (months)", follow_up["min"], observed[0], 0, "exact")
        checks.within("follow-up-max", "longest follow-up (months)", follow_up["max"], observed[-1], 0, "exact")
        checks.within(
            "follow-up-median",
            "median follow-up (months)",
            follow_up["median"],
            _median(observed),
            median_tolerance,
            _months(median_tolerance),
        )
    else:
        checks.untargeted(
            "deaths",
            "deaths",
            None,
            deaths,
            "not published per arm",
            "Deaths per arm are not published; the search chose how the survivors split between arms.",
        )
    death_times = [patient.months for patient in patients if patient.died]
    censor_times = [patient.months for patient in patients if not patient.died]
    if death_times:
        checks.at_least(
            "earliest-death",
            "earliest death (months)",
            settings["earliest_death_months"],
            min(death_times),
            settings["earliest_death_basis"],
        )
    if censor_times:
        checks.at_least(
            "earliest-censoring",
            "earliest censoring (months)",
            settings["earliest_censoring_months"],
            min(censor_times),
            settings["earliest_censoring_basis"],
        )
    _rate_checks(checks, arm, tolerances["published_percent_rounding_points"])
    return checks.rows


def _rate_checks(checks: _Checks, arm: Mapping[str, Any], rounding: float) -> None:
    """Published percentages against the percentages recomputed from the published counts."""
    n = arm["n"]
    target = f"±{rounding:g} pp (rounding)"
    response = arm["published"]["response"]
    counts = response["counts"]
    for category in RESPONSE_CATEGORIES:
        checks.within(
            f"response-{category}",
            f"mRECIST {category} at 3 months (%)",
            response["percent"].get(category),
            counts[category] / n * PERCENT,
            rounding,
            target,
        )
    for check_id, label, categories, key in (
        ("orr", "objective response rate (%)", OBJECTIVE_RESPONSE, "orr_percent"),
        ("dcr", "disease control rate (%)", DISEASE_CONTROL, "dcr_percent"),
    ):
        recomputed = sum(counts[category] for category in categories) / n * PERCENT
        note = None if response.get(key) is not None else "Not published for this arm; recomputed from the counts."
        checks.within(check_id, label, response.get(key), recomputed, rounding, target, note)
    for event in arm["published"]["adverse_events"]:
        slug = event["event"].split(" (")[0].lower().replace(" ", "-").replace("/", "-")
        for grade_key, grade_label in (("any_grade", "any grade"), ("grade_3_4", "grade 3-4")):
            count = event.get(grade_key)
            if count is None:
                continue
            published_percent = event.get(f"{grade_key}_percent")
            if published_percent is None and count == 0:
                published_percent = 0  # Table 2 prints a bare "0" for no patients
            checks.within(
                f"ae-{slug}-{grade_key.replace('_', '-')}",
                f"{event['event']}, {grade_label} (%)",
                published_percent,
                count / n * PERCENT,
                rounding,
                target,
            )


# --- helpers ------------------------------------------------------------------------------------


def _months(tolerance: float) -> str:
    return f"±{tolerance:g} month" + ("" if tolerance == 1 else "s")


def _median(sorted_values: Sequence[float]) -> float:
    middle = len(sorted_values) // 2
    if len(sorted_values) % 2:
        return sorted_values[middle]
    return (sorted_values[middle - 1] + sorted_values[middle]) / 2


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _rounded(value: Any, digits: int) -> Any:
    """Round every float to ``digits`` significant digits (p-values keep their precision, months
    and fractions get 4 decimals or fewer), ``-0.0`` to ``0.0`` and non-finite to ``None``, so
    that rebuilds give the same bytes."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = float(f"{value:.{digits}g}")
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, Mapping):
        return {str(key): _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item, digits) for item in value]
    raise TypeError(f"cannot write {type(value).__name__} to the tables")


def _display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(PACKAGE_ROOT).as_posix()
    except ValueError:
        return path.name
