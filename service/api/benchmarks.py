"""REST: cohort survival benchmarks from the built tables.

``GET /api/v1/benchmarks`` lists the cohorts with their arms, citation, comparisons between arms
and external reference figures; ``GET /api/v1/benchmarks/{cohort}/{arm}`` serves one arm: its
reconstructed Kaplan-Meier figures, the paper's figures in the same shape, response and
adverse-event rates, the illustrative time-to-progression curve, the method and the caveats.

The routes only translate: the tables are built offline and loaded once, with the app
(``AppState.benchmarks`` and ``plots``, read by :func:`get_benchmark_tables` and
:func:`get_benchmark_plots`, dependencies a test may override). Unknown cohorts or arms give 404 with the valid values. Every figure is a
benchmark from a small retrospective cohort, never a prediction for a patient and never a
treatment effect of one arm over the other: the ``caveats`` say so with each arm.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas import ErrorMessage
from service.benchmarks.plots import PlotFiles
from service.benchmarks.tables import BenchmarkTables, CohortTable

router = APIRouter(prefix="/api/v1/benchmarks", tags=["benchmarks"])


async def get_benchmark_tables(request: Request) -> BenchmarkTables:  # async: no thread-pool hop
    """The shipped benchmark tables, loaded with the app (``AppState.benchmarks``)."""
    return request.app.state.hcc.benchmarks


TablesDep = Annotated[BenchmarkTables, Depends(get_benchmark_tables)]


async def get_benchmark_plots(request: Request) -> dict[tuple[str, str], PlotFiles]:
    """The pre-rendered Kaplan-Meier plots of every arm, loaded with the app (``AppState.plots``)."""
    return request.app.state.hcc.plots


PlotsDep = Annotated[dict[tuple[str, str], PlotFiles], Depends(get_benchmark_plots)]


# --- response models ------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class BenchmarkEstimate(_Model):
    """A value with its 95% confidence interval; ``null`` where lifelines gives no finite value."""

    estimate: float | None
    ci_lower: float | None = None
    ci_upper: float | None = None


class BenchmarkSurvivalPoint(_Model):
    """Overall survival (a fraction) at a month from sorafenib start, with its 95% CI."""

    month: float
    estimate: float | None
    ci_lower: float | None = None
    ci_upper: float | None = None


class KaplanMeierStep(_Model):
    """One row of the Kaplan-Meier step function of the pseudo patients."""

    month: float
    at_risk: int = Field(description="pseudo patients under observation at this month (before its events)")
    events: int = Field(description="deaths at this month")
    censored: int = Field(description="censored (alive at study end) at this month")
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None


class BenchmarkFollowUp(_Model):
    median: float
    min: float
    max: float


class PublishedFigures(_Model):
    """The paper's figures for the arm, in the shape of the reconstructed ones (no CIs are published)."""

    n: int
    median_os_months: BenchmarkEstimate
    survival: list[BenchmarkSurvivalPoint]
    median_os_from_diagnosis_months: float | None
    median_ttp_months: float | None
    deaths: int | None = Field(description="published for the whole cohort only")
    alive_at_study_end: int | None
    follow_up_months: BenchmarkFollowUp | None


class BenchmarkRate(_Model):
    """A count among n patients, the rate as a fraction, and the percentage as printed in the paper."""

    count: int
    n: int
    rate: float
    published_percent: float | None


class ResponseCategory(BenchmarkRate):
    category: Literal["CR", "PR", "SD", "PD"]


class ResponseRates(_Model):
    """mRECIST response at the 3-month scan, from the published counts."""

    assessed_at: str
    categories: list[ResponseCategory]
    orr: BenchmarkRate = Field(description="objective response: CR + PR")
    dcr: BenchmarkRate = Field(description="disease control: CR + PR + SD")


class AdverseEventRate(_Model):
    """A sorafenib-related adverse event (NCI-CTCAE v4.0) by grade, from the published counts."""

    event: str
    any_grade: BenchmarkRate
    grade_3_4: BenchmarkRate | None
    note: str | None


class BenchmarkCurvePoint(_Model):
    month: float
    estimate: float


class TtpIllustration(_Model):
    """Time to progression: an exponential curve with the published median. Illustrative, not data."""

    status: Literal["illustrative"]
    model: str
    median_months: float
    rate_per_month: float
    curve: list[BenchmarkCurvePoint]
    published_p_value: float | None
    note: str


class BenchmarkCheck(_Model):
    """A published figure against the value the tables hold, and whether it is within target."""

    id: str
    figure: str
    published: float | None
    reconstructed: float | None
    target: str
    within_target: Literal["yes", "no", "n/a"]
    note: str | None


class BenchmarkCitation(_Model):
    status: str
    text: str
    note: str
    design: str
    setting: str
    enrolment: str
    study_end: str
    n: int


class ArmBenchmark(_Model):
    """One arm of a benchmark cohort: reconstructed survival beside the paper's figures."""

    cohort: str
    arm: str
    label: str
    n: int
    events: int
    censored: int
    median_os_months: BenchmarkEstimate
    survival: list[BenchmarkSurvivalPoint]
    km: list[KaplanMeierStep] = Field(
        description="the full step function, for plots, conditional survival and numbers at risk"
    )
    published: PublishedFigures
    response: ResponseRates
    adverse_events: list[AdverseEventRate]
    patients_with_grade_3_4_events: BenchmarkRate | None
    ttp_illustrative: TtpIllustration
    checks: list[BenchmarkCheck]
    method: str
    caveats: list[str]
    citation: BenchmarkCitation


class ArmSummary(_Model):
    id: str
    label: str
    n: int
    href: str


class BenchmarkComparison(_Model):
    """A published comparison between the arms, with the p-value reconstructed or recomputed where possible."""

    id: str
    figure: str
    test: str
    p_value: float
    reconstructed: bool
    reconstructed_p_value: float | None
    recomputed_p_value: float | None
    note: str | None


class ExternalFigure(_Model):
    measure: str
    unit: str
    values: dict[str, float]
    comparison: str | None


class ExternalReference(_Model):
    """A published external cohort or trial, as cited summary numbers only."""

    id: str
    name: str
    citation: str
    doi: str | None
    design: str
    population: str
    figures: list[ExternalFigure]
    sources: str
    unconfirmed: str | None
    relevance: str


class CohortSummary(_Model):
    id: str
    title: str
    citation: BenchmarkCitation
    arms: list[ArmSummary]
    comparisons: list[BenchmarkComparison]
    method: str
    caveats: list[str]
    external_references: list[ExternalReference]


class BenchmarkList(_Model):
    cohorts: list[CohortSummary]


# --- routes -------------------------------------------------------------------------------------


@router.get("", response_model=BenchmarkList, summary="List the benchmark cohorts and their arms")
def list_benchmarks(tables: TablesDep) -> BenchmarkList:
    return BenchmarkList(cohorts=[_cohort_summary(cohort) for cohort in tables.cohorts.values()])


@router.get(
    "/{cohort}/{arm}",
    response_model=ArmBenchmark,
    summary="One arm of a benchmark cohort",
    responses={
        status.HTTP_404_NOT_FOUND: {
            "model": ErrorMessage,
            "description": "Unknown cohort or arm; names the valid values",
        }
    },
)
def get_arm_benchmark(cohort: str, arm: str, tables: TablesDep) -> ArmBenchmark:
    found = tables.cohorts.get(cohort)
    if found is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"Unknown benchmark cohort '{cohort}'. Valid cohorts: {', '.join(tables.cohorts)}.",
        )
    table = found.arms.get(arm)
    if table is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"Unknown arm '{arm}' of cohort '{cohort}'. Valid arms: {', '.join(found.arms)}.",
        )
    return ArmBenchmark.model_validate(table.document)


PLOT_MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


@router.get(
    "/{cohort}/{arm}/plot.{fmt}",
    summary="The arm's Kaplan-Meier plot (rendered when the tables were built)",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}, "image/png": {}}, "description": "The plot"},
        status.HTTP_404_NOT_FOUND: {"model": ErrorMessage, "description": "Unknown cohort, arm or format"},
    },
)
def get_arm_plot(cohort: str, arm: str, fmt: str, plots: PlotsDep) -> Response:
    files = plots.get((cohort, arm))
    if files is None or fmt not in PLOT_MEDIA_TYPES:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"No plot '{cohort}/{arm}/plot.{fmt}'. Arms: {', '.join(a for _, a in plots)}; formats: svg, png.",
        )
    content: str | bytes = files.svg if fmt == "svg" else files.png
    return Response(content, media_type=PLOT_MEDIA_TYPES[fmt], headers={"Cache-Control": "public, max-age=86400"})


def _cohort_summary(cohort: CohortTable) -> CohortSummary:
    document = cohort.document
    return CohortSummary(
        id=cohort.cohort_id,
        title=cohort.title,
        citation=BenchmarkCitation.model_validate(document["citation"]),
        arms=[
            ArmSummary(id=arm.arm_id, label=arm.label, n=arm.n, href=f"{router.prefix}/{cohort.cohort_id}/{arm.arm_id}")
            for arm in cohort.arms.values()
        ],
        comparisons=[BenchmarkComparison.model_validate(entry) for entry in document["comparisons"]],
        method=document["method"]["summary"],
        caveats=list(document["caveats"]),
        external_references=[ExternalReference.model_validate(entry) for entry in document["external_references"]],
    )
