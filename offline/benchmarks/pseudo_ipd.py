"""Constraint-matched pseudo individual patient data (pseudo-IPD) from published summary figures.

Why a search
------------
The source study publishes, per arm, only the arm size, overall survival at a few landmarks
(6, 12 and 24 months) and the median, plus cohort-wide facts: 30 deaths and 4 patients alive,
follow-up from 3 to 49 months, censoring only at the end of the study, a log-rank p of 0.002.
There is no curve to digitise and no numbers at risk, so Guyot's algorithm (BMC Med Res Methodol
2012;12:9) has no input, and sampling a fitted parametric curve matches the landmarks but misses
the medians by months. With this few patients every published figure is a statement about
counts, so we search directly over event and censoring times for patients honouring all of them.

Method
------
1. **Search space.** Every pseudo patient has a time on a grid (``time_grid_months``, 0.5) and a
   fixed status: died, or alive and censored at study end. Deaths lie in
   [``earliest_death_months``, longest follow-up]: nobody dies before 3 months because inclusion
   required at least 3 months of sorafenib. Censoring lies in [``earliest_censoring_months``,
   longest follow-up]: the alive were censored at study end, at least 11 months after the last
   enrolment. The number of patients alive at study end is fixed and every way of splitting them
   between the searched arms is searched (outer enumeration), so the cohort's number of deaths
   holds by construction.
2. **Published curve.** Per arm (and for the union of the arms) a reference curve, piecewise
   linear through 100% at month 0 and at the earliest possible death, the published landmarks,
   the published median (left out when it contradicts a landmark, as the combination arm's 25
   months does against 45% at 24 months) and 0% at the longest follow-up (after the last landmark
   deaths are spread evenly to the end of follow-up).
3. **Start.** In each arm the censored patients are spread evenly over the censoring window and
   the deaths are put at the plotting positions ``1 - (k - 1/2) / n`` of the published curve,
   snapped to the grid.
4. **Objective**, compared lexicographically:

   a. the number of *targets* missed: each landmark within ``survival_percentage_points`` and each
      median within ``median_months`` of the published value, on every searched arm and on their
      union (the overall cohort); each median unambiguous (the curve steps across 50% instead of
      resting on it, so the lifelines, R and SPSS conventions agree); the log-rank p between the
      compared arms below ``logrank_p_max``; shortest and longest follow-up as published;
   b. then a weighted sum (weights ``objective_weights`` in the cohort file): every target's error
      in units of its tolerance, the area between each Kaplan-Meier step function and its
      published curve (survival x months), and the distance between log10 of the log-rank p and
      log10 of the published p. The last two keep the curves close to the published shape between
      landmarks and the arms as far apart as the paper reports, instead of resting on a limit.
5. **Moves.** Coordinate descent. Per sweep, per searched arm and status (deaths, then censored),
   each patient alone and then each two patients adjacent in time together (so two deaths can
   become a tie at a new time, which single moves cannot reach without passing through a curve
   resting on 50%) are tried at every grid time allowed for their status; the best strictly
   improving time is kept. Sweeps repeat until one changes nothing. Every kept move strictly
   lowers the objective, so the search ends; orders are fixed, ties keep the earlier candidate
   and nothing is random, so the same cohort file gives the same patients on every run.

The search uses its own small Kaplan-Meier and log-rank arithmetic (pure Python; times are
integer grid ticks, so comparisons of times are exact) for speed; :mod:`offline.benchmarks.build` fits the chosen patients with lifelines,
and the served figures are lifelines' results.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, product

MEDIAN_SURVIVAL = 0.5
"""The survival level that defines the median."""

FLOAT_SLACK = 1e-9
"""Slack when comparing a product of Kaplan-Meier factors with a level (0.5) or a tolerance."""

SCORE_DECIMALS = 9
"""Objective values are rounded to this many decimals so float noise never decides a comparison."""

PLOTTING_POSITION_OFFSET = 0.5
"""The k-th of n deaths starts at survival level 1 - (k - 0.5) / n of the published curve."""

PERCENT = 100.0


class CohortDefinitionError(ValueError):
    """The cohort file's figures are missing or contradict the search's assumptions."""


@dataclass(frozen=True)
class PseudoPatient:
    """One reconstructed patient: months from sorafenib start to death or to censoring at study end."""

    months: float
    died: bool


@dataclass(frozen=True)
class Landmark:
    """A published survival fraction at a month."""

    month: float
    survival: float


@dataclass(frozen=True)
class ArmTargets:
    """What one arm (or the union of the searched arms) must reproduce."""

    arm_id: str
    n: int
    landmarks: tuple[Landmark, ...]
    median_months: float


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of the second objective level (tuning choices recorded in the cohort file)."""

    target_error_per_tolerance: float
    area_per_survival_month: float
    logrank_p_per_decade: float


@dataclass(frozen=True)
class SearchProblem:
    """Targets and constraints of the search, read from a cohort definition file.

    Times are held in integer grid ticks (``months / grid_months``) so that comparisons are exact.
    """

    searched_arms: tuple[ArmTargets, ...]
    union_arm: ArmTargets | None
    compared_arm_ids: tuple[str, str]
    grid_months: float
    earliest_death_ticks: int
    earliest_censoring_ticks: int
    first_follow_up_ticks: int
    last_follow_up_ticks: int
    alive_total: int
    survival_tolerance: float
    median_tolerance_months: float
    logrank_p_max: float
    logrank_p_published: float
    weights: ObjectiveWeights

    @classmethod
    def from_cohort(cls, cohort: Mapping) -> SearchProblem:
        """Read targets and constraints from a cohort definition (``rules/data/cohorts/*.json``)."""
        try:
            settings = cohort["reconstruction"]
            facts = cohort["cohort_facts"]
            grid = float(settings["time_grid_months"])
            tolerances = settings["tolerances"]
            weights = settings["objective_weights"]
            searched: list[ArmTargets] = []
            union: ArmTargets | None = None
            for arm in cohort["arms"]:
                targets = _arm_targets(arm)
                if arm["reconstruction"] == "search":
                    searched.append(targets)
                elif arm["reconstruction"] == "union":
                    union = targets
                else:
                    raise CohortDefinitionError(
                        f"arm {arm['id']!r}: reconstruction must be 'search' or 'union', not {arm['reconstruction']!r}"
                    )
            compared = tuple(settings["compared_arms"])
            if len(compared) != 2:
                raise CohortDefinitionError(f"compared_arms must name two arms, not {list(compared)}")
            problem = cls(
                searched_arms=tuple(searched),
                union_arm=union,
                compared_arm_ids=(compared[0], compared[1]),
                grid_months=grid,
                earliest_death_ticks=_ticks(settings["earliest_death_months"], grid),
                earliest_censoring_ticks=_ticks(settings["earliest_censoring_months"], grid),
                first_follow_up_ticks=_ticks(facts["follow_up_months"]["min"], grid),
                last_follow_up_ticks=_ticks(facts["follow_up_months"]["max"], grid),
                alive_total=int(facts["alive_at_study_end"]),
                survival_tolerance=float(tolerances["survival_percentage_points"]) / PERCENT,
                median_tolerance_months=float(tolerances["median_months"]),
                logrank_p_max=float(settings["logrank_p_max"]),
                logrank_p_published=float(settings["logrank_p_published"]),
                weights=ObjectiveWeights(
                    target_error_per_tolerance=float(weights["target_error_per_tolerance"]),
                    area_per_survival_month=float(weights["area_per_survival_month"]),
                    logrank_p_per_decade=float(weights["logrank_p_per_decade"]),
                ),
            )
            deaths = int(facts["deaths"])
        except KeyError as exc:
            raise CohortDefinitionError(f"cohort definition lacks {exc.args[0]!r}") from exc
        problem._validate(deaths)
        return problem

    def _validate(self, deaths: int) -> None:
        searched_ids = [arm.arm_id for arm in self.searched_arms]
        if not set(self.compared_arm_ids) <= set(searched_ids):
            raise CohortDefinitionError(f"compared_arms must name two searched arms of {searched_ids}")
        total = sum(arm.n for arm in self.searched_arms)
        if total - self.alive_total != deaths:
            raise CohortDefinitionError(f"{total} patients with {self.alive_total} alive cannot give {deaths} deaths")
        if self.union_arm is not None and self.union_arm.n != total:
            raise CohortDefinitionError(f"union arm has n={self.union_arm.n}, the searched arms {total}")
        if not self.earliest_death_ticks <= self.earliest_censoring_ticks <= self.last_follow_up_ticks:
            raise CohortDefinitionError("need earliest death <= earliest censoring <= longest follow-up")
        if self.alive_total > 0 and self.earliest_censoring_ticks > self.last_follow_up_ticks:
            raise CohortDefinitionError("alive patients need a censoring window")
        for arm in self.all_targets:
            levels = [landmark.survival for landmark in arm.landmarks]
            if levels != sorted(levels, reverse=True):
                raise CohortDefinitionError(f"arm {arm.arm_id!r}: published landmarks increase over time")

    @property
    def all_targets(self) -> tuple[ArmTargets, ...]:
        """The searched arms, then the union arm when there is one."""
        return self.searched_arms + ((self.union_arm,) if self.union_arm is not None else ())

    def months(self, ticks: int) -> float:
        return ticks * self.grid_months

    def to_ticks(self, months: float) -> int:
        return round(months / self.grid_months)

    def published_curve(self, targets: ArmTargets) -> PublishedCurve:
        return PublishedCurve.for_arm(
            targets, self.months(self.earliest_death_ticks), self.months(self.last_follow_up_ticks)
        )


def _ticks(months: float, grid_months: float) -> int:
    ticks = round(float(months) / grid_months)
    if not math.isclose(ticks * grid_months, float(months)):
        raise CohortDefinitionError(f"{months} months is not on the {grid_months}-month grid")
    return ticks


def _arm_targets(arm: Mapping) -> ArmTargets:
    published = arm["published"]
    landmarks = sorted(
        (Landmark(float(point["month"]), float(point["percent"]) / PERCENT) for point in published["survival_percent"]),
        key=lambda landmark: landmark.month,
    )
    return ArmTargets(
        arm_id=arm["id"],
        n=int(arm["n"]),
        landmarks=tuple(landmarks),
        median_months=float(published["median_os_months"]),
    )


# --- the published curve: where the search starts, and what breaks ties between valid answers ---


@dataclass(frozen=True)
class PublishedCurve:
    """Piecewise-linear survival through the published figures (see the module docstring, step 2).

    ``anchors`` are (month, survival) points in month order with non-increasing survival.
    """

    anchors: tuple[tuple[float, float], ...]

    @classmethod
    def for_arm(cls, targets: ArmTargets, earliest_death_months: float, last_follow_up_months: float) -> PublishedCurve:
        points = [(0.0, 1.0), (earliest_death_months, 1.0)]
        points += [(landmark.month, landmark.survival) for landmark in targets.landmarks]
        if median_agrees_with_landmarks(targets):
            points.append((targets.median_months, MEDIAN_SURVIVAL))
        points.append((last_follow_up_months, 0.0))
        return cls(anchors=tuple(sorted(points)))

    def survival_at(self, month: float) -> float:
        anchors = self.anchors
        for (month_a, survival_a), (month_b, survival_b) in zip(anchors, anchors[1:]):
            if month <= month_b:
                if month_b == month_a:
                    return survival_b
                fraction = (month - month_a) / (month_b - month_a)
                return survival_a + fraction * (survival_b - survival_a)
        return anchors[-1][1]

    def month_at(self, survival: float) -> float:
        """The first month at which the curve falls to ``survival``."""
        anchors = self.anchors
        for (month_a, survival_a), (month_b, survival_b) in zip(anchors, anchors[1:]):
            if survival_b <= survival <= survival_a and survival_a > survival_b:
                return month_a + (survival_a - survival) / (survival_a - survival_b) * (month_b - month_a)
        return anchors[-1][0]


def median_agrees_with_landmarks(targets: ArmTargets) -> bool:
    """False when a landmark before the median is already below 50%, or one after it above 50%."""
    for landmark in targets.landmarks:
        if landmark.month < targets.median_months and landmark.survival < MEDIAN_SURVIVAL:
            return False
        if landmark.month > targets.median_months and landmark.survival > MEDIAN_SURVIVAL:
            return False
    return True


# --- the search's own Kaplan-Meier and log-rank arithmetic (exact on the tick grid) -------------


@dataclass(frozen=True)
class ArmState:
    """One arm during the search: death and censoring times in ticks (unsorted; positions are stable)."""

    death_ticks: tuple[int, ...]
    censor_ticks: tuple[int, ...]


def kaplan_meier_steps(death_ticks: Sequence[int], censor_ticks: Sequence[int]) -> list[tuple[int, float]]:
    """(tick, survival just after it) at each distinct death time.

    A patient censored at a death time is still at risk at it (the usual convention, as lifelines).
    """
    deaths = sorted(death_ticks)
    censored = sorted(censor_ticks)
    at_risk = len(deaths) + len(censored)
    survival = 1.0
    steps: list[tuple[int, float]] = []
    death_index = censor_index = 0
    while death_index < len(deaths):
        tick = deaths[death_index]
        while censor_index < len(censored) and censored[censor_index] < tick:
            at_risk -= 1
            censor_index += 1
        died_here = 0
        while death_index < len(deaths) and deaths[death_index] == tick:
            died_here += 1
            death_index += 1
        survival *= 1.0 - died_here / at_risk
        at_risk -= died_here
        steps.append((tick, survival))
    return steps


def survival_at_tick(steps: Sequence[tuple[int, float]], tick: int) -> float:
    """Right-continuous Kaplan-Meier value at ``tick`` (deaths at ``tick`` included)."""
    survival = 1.0
    for step_tick, step_survival in steps:
        if step_tick > tick:
            break
        survival = step_survival
    return survival


def median_ticks(steps: Sequence[tuple[int, float]]) -> tuple[int | None, int | None]:
    """(first tick with S <= 0.5, first tick with S < 0.5); they differ when the curve rests on 50%."""
    at_or_below = below = None
    for tick, survival in steps:
        if at_or_below is None and survival <= MEDIAN_SURVIVAL + FLOAT_SLACK:
            at_or_below = tick
        if survival < MEDIAN_SURVIVAL - FLOAT_SLACK:
            below = tick
            break
    return at_or_below, below


def logrank_p_value(first: ArmState, second: ArmState) -> float:
    """Two-sided p of the log-rank test (chi-squared with 1 degree of freedom), as lifelines computes it."""
    deaths_at: dict[int, list[int]] = {}
    for group, arm in enumerate((first, second)):
        for tick in arm.death_ticks:
            deaths_at.setdefault(tick, [0, 0])[group] += 1
    observed_times = [sorted(arm.death_ticks + arm.censor_ticks) for arm in (first, second)]
    observed_minus_expected = variance = 0.0
    for tick in sorted(deaths_at):
        at_risk_first = _count_from(observed_times[0], tick)
        at_risk_second = _count_from(observed_times[1], tick)
        at_risk = at_risk_first + at_risk_second
        died = deaths_at[tick][0] + deaths_at[tick][1]
        observed_minus_expected += deaths_at[tick][0] - died * at_risk_first / at_risk
        if at_risk > 1:
            variance += died * (at_risk_first / at_risk) * (at_risk_second / at_risk) * (at_risk - died) / (at_risk - 1)
    if variance <= 0:
        return 1.0
    chi_squared = observed_minus_expected**2 / variance
    return math.erfc(math.sqrt(chi_squared / 2.0))


def _count_from(sorted_ticks: Sequence[int], tick: int) -> int:
    """How many of ``sorted_ticks`` are at or after ``tick`` (the number at risk there)."""
    return len(sorted_ticks) - bisect_left(sorted_ticks, tick)


# --- objective --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCheck:
    """One target of the search against the value the search reached (its own arithmetic)."""

    arm_id: str | None
    figure: str
    published: float
    achieved: float | None
    tolerance: float
    missed: bool
    normalised_error: float


@dataclass(frozen=True)
class Score:
    """The objective: targets missed first, then the weighted sum (module docstring, step 4)."""

    missed: int
    weighted: float

    @property
    def key(self) -> tuple[int, float]:
        return (self.missed, round(self.weighted, SCORE_DECIMALS))


class Evaluator:
    """Scores candidates (mapping arm id -> :class:`ArmState`) against a :class:`SearchProblem`."""

    def __init__(self, problem: SearchProblem) -> None:
        self.problem = problem
        # the published curve at the middle of every grid interval up to the longest follow-up, negated
        # (so non-decreasing, for bisection) and as prefix sums, per arm: see _area_from_published
        self._negated_curve: dict[str, list[float]] = {}
        self._curve_prefix_sums: dict[str, list[float]] = {}
        for targets in problem.all_targets:
            curve = problem.published_curve(targets)
            midpoints = [
                curve.survival_at(problem.months(tick) + problem.grid_months / 2)
                for tick in range(problem.last_follow_up_ticks)
            ]
            self._negated_curve[targets.arm_id] = [-value for value in midpoints]
            self._curve_prefix_sums[targets.arm_id] = [0.0, *accumulate(midpoints)]
        self.evaluations = 0

    def with_union(self, states: Mapping[str, ArmState]) -> dict[str, ArmState]:
        """The searched arms' states plus the union arm's (all their patients together)."""
        all_states = dict(states)
        union = self.problem.union_arm
        if union is not None:
            all_states[union.arm_id] = ArmState(
                death_ticks=tuple(tick for state in states.values() for tick in state.death_ticks),
                censor_ticks=tuple(tick for state in states.values() for tick in state.censor_ticks),
            )
        return all_states

    def checks(
        self, states: Mapping[str, ArmState]
    ) -> tuple[list[TargetCheck], float, dict[str, list[tuple[int, float]]]]:
        """Every target's check, the log-rank p between the compared arms, and each arm's KM steps."""
        problem = self.problem
        all_states = self.with_union(states)
        steps_by_arm = {
            arm_id: kaplan_meier_steps(state.death_ticks, state.censor_ticks) for arm_id, state in all_states.items()
        }
        checks: list[TargetCheck] = []
        for targets in problem.all_targets:
            steps = steps_by_arm[targets.arm_id]
            for landmark in targets.landmarks:
                survival = survival_at_tick(steps, problem.to_ticks(landmark.month))
                checks.append(
                    _within(
                        targets.arm_id,
                        f"survival at {landmark.month:g} months",
                        landmark.survival,
                        survival,
                        problem.survival_tolerance,
                    )
                )
            checks.append(self._median_check(targets, steps))
        first_id, second_id = problem.compared_arm_ids
        p_value = logrank_p_value(all_states[first_id], all_states[second_id])
        checks.append(
            TargetCheck(
                None,
                "log-rank p between arms",
                problem.logrank_p_max,
                p_value,
                problem.logrank_p_max,
                p_value >= problem.logrank_p_max,
                max(0.0, math.log10(p_value / problem.logrank_p_max)),
            )
        )
        observed = [tick for state in states.values() for tick in state.death_ticks + state.censor_ticks]
        for figure, published_ticks, achieved_ticks in (
            ("shortest follow-up (months)", problem.first_follow_up_ticks, min(observed)),
            ("longest follow-up (months)", problem.last_follow_up_ticks, max(observed)),
        ):
            distance = problem.months(abs(achieved_ticks - published_ticks))
            checks.append(
                TargetCheck(
                    None,
                    figure,
                    problem.months(published_ticks),
                    problem.months(achieved_ticks),
                    0.0,
                    distance != 0,
                    distance / problem.median_tolerance_months,
                )
            )
        return checks, p_value, steps_by_arm

    def _median_check(self, targets: ArmTargets, steps: Sequence[tuple[int, float]]) -> TargetCheck:
        problem = self.problem
        figure = "median survival (months)"
        at_or_below, below = median_ticks(steps)
        if at_or_below is None:
            unreached = abs(problem.months(problem.last_follow_up_ticks) - targets.median_months)
            return TargetCheck(
                targets.arm_id,
                figure,
                targets.median_months,
                None,
                problem.median_tolerance_months,
                True,
                unreached / problem.median_tolerance_months,
            )
        check = _within(
            targets.arm_id, figure, targets.median_months, problem.months(at_or_below), problem.median_tolerance_months
        )
        if below == at_or_below:
            return check
        # the curve rests on 50%: conventions disagree, so the median is not pinned down
        plateau_end = below if below is not None else problem.last_follow_up_ticks
        ambiguity = problem.months(plateau_end - at_or_below) / problem.median_tolerance_months
        return TargetCheck(
            check.arm_id,
            figure,
            check.published,
            check.achieved,
            check.tolerance,
            True,
            check.normalised_error + ambiguity,
        )

    def score(self, states: Mapping[str, ArmState]) -> Score:
        self.evaluations += 1
        weights = self.problem.weights
        checks, p_value, steps_by_arm = self.checks(states)
        missed = sum(check.missed for check in checks)
        weighted = weights.target_error_per_tolerance * sum(check.normalised_error for check in checks)
        weighted += weights.logrank_p_per_decade * abs(
            math.log10(max(p_value, math.ulp(0.0))) - math.log10(self.problem.logrank_p_published)
        )
        weighted += weights.area_per_survival_month * sum(
            self._area_from_published(arm_id, steps) for arm_id, steps in steps_by_arm.items()
        )
        return Score(missed=missed, weighted=weighted)

    def _area_from_published(self, arm_id: str, steps: Sequence[tuple[int, float]]) -> float:
        """Area (survival x months) between a KM step function and the published curve, midpoint rule.

        On each stretch where the KM value ``s`` is constant the non-increasing published curve
        crosses ``s`` at most once, so the stretch's area comes from prefix sums and one bisection.
        """
        negated = self._negated_curve[arm_id]
        prefix = self._curve_prefix_sums[arm_id]
        end = len(negated)
        area = 0.0
        stretch_start, survival = 0, 1.0
        for tick, next_survival in [*steps, (end, 0.0)]:
            stretch_end = min(tick, end)
            if stretch_end > stretch_start:
                crossing = bisect_left(negated, -survival, stretch_start, stretch_end)
                above = prefix[crossing] - prefix[stretch_start] - survival * (crossing - stretch_start)
                below = survival * (stretch_end - crossing) - (prefix[stretch_end] - prefix[crossing])
                area += above + below
            stretch_start, survival = max(stretch_start, stretch_end), next_survival
        return area * self.problem.grid_months


def _within(arm_id: str, figure: str, published: float, achieved: float, tolerance: float) -> TargetCheck:
    error = abs(achieved - published) / tolerance
    return TargetCheck(arm_id, figure, published, achieved, tolerance, error > 1.0 + FLOAT_SLACK, error)


# --- the search -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconstruction:
    """The chosen pseudo patients and how the search got there."""

    patients: Mapping[str, tuple[PseudoPatient, ...]]
    """Per arm id (the union arm included), sorted by time; deaths before censoring at a shared time."""
    alive_by_arm: Mapping[str, int]
    checks: tuple[TargetCheck, ...]
    logrank_p: float
    score: Score
    sweeps: int
    evaluations: int
    splits_searched: int


def initial_state(problem: SearchProblem, targets: ArmTargets, alive: int) -> ArmState:
    """Censored patients evenly over the censoring window; deaths at plotting positions of the published curve."""
    window = problem.last_follow_up_ticks - problem.earliest_censoring_ticks
    censor_ticks = tuple(problem.last_follow_up_ticks - round(index * window / alive) for index in range(alive))
    curve = problem.published_curve(targets)
    death_ticks = []
    for rank in range(1, targets.n - alive + 1):
        tick = problem.to_ticks(curve.month_at(1.0 - (rank - PLOTTING_POSITION_OFFSET) / targets.n))
        death_ticks.append(min(max(tick, problem.earliest_death_ticks), problem.last_follow_up_ticks))
    return ArmState(death_ticks=tuple(death_ticks), censor_ticks=censor_ticks)


def alive_splits(problem: SearchProblem) -> Iterator[tuple[int, ...]]:
    """Every split of the alive patients over the searched arms (cohort-file order), lexicographically."""
    ranges = [range(min(arm.n, problem.alive_total) + 1) for arm in problem.searched_arms]
    for split in product(*ranges):
        if sum(split) == problem.alive_total:
            yield split


def coordinate_descent(
    problem: SearchProblem, evaluator: Evaluator, states: dict[str, ArmState]
) -> tuple[dict[str, ArmState], Score, int]:
    """Keep the best strictly improving move until a full sweep changes nothing (module docstring, step 5)."""
    candidates_by_status = {
        True: range(problem.earliest_death_ticks, problem.last_follow_up_ticks + 1),
        False: range(problem.earliest_censoring_ticks, problem.last_follow_up_ticks + 1),
    }
    current = evaluator.score(states)
    sweeps = 0
    changed = True
    while changed:
        changed = False
        sweeps += 1
        for arm in problem.searched_arms:
            for is_death, candidates in candidates_by_status.items():
                for positions in _move_groups(states, arm.arm_id, is_death):
                    original = _ticks_of(states[arm.arm_id], is_death)
                    best_tick, best = None, current
                    for tick in candidates:
                        if all(original[position] == tick for position in positions):
                            continue
                        trial = dict(states)
                        trial[arm.arm_id] = _with_ticks(states[arm.arm_id], is_death, positions, tick)
                        score = evaluator.score(trial)
                        if score.key < best.key:
                            best_tick, best = tick, score
                    if best_tick is not None:
                        states[arm.arm_id] = _with_ticks(states[arm.arm_id], is_death, positions, best_tick)
                        current = best
                        changed = True
    return states, current, sweeps


def _move_groups(states: Mapping[str, ArmState], arm_id: str, is_death: bool) -> Iterator[tuple[int, ...]]:
    """Positions moved together: each patient alone, then each pair adjacent in time (read lazily)."""
    count = len(_ticks_of(states[arm_id], is_death))
    for position in range(count):
        yield (position,)
    for rank in range(count - 1):
        ticks = _ticks_of(states[arm_id], is_death)
        by_time = sorted(range(count), key=lambda position: (ticks[position], position))
        yield (by_time[rank], by_time[rank + 1])


def _ticks_of(state: ArmState, is_death: bool) -> tuple[int, ...]:
    return state.death_ticks if is_death else state.censor_ticks


def _with_ticks(state: ArmState, is_death: bool, positions: tuple[int, ...], tick: int) -> ArmState:
    ticks = list(_ticks_of(state, is_death))
    for position in positions:
        ticks[position] = tick
    if is_death:
        return ArmState(death_ticks=tuple(ticks), censor_ticks=state.censor_ticks)
    return ArmState(death_ticks=state.death_ticks, censor_ticks=tuple(ticks))


def reconstruct(problem: SearchProblem) -> Reconstruction:
    """Run the search from every split of the alive patients and keep the best result (first on ties)."""
    evaluator = Evaluator(problem)
    best: tuple[Score, dict[str, ArmState], tuple[int, ...]] | None = None
    total_sweeps = 0
    splits = list(alive_splits(problem))
    if not splits:
        raise CohortDefinitionError("the alive patients do not fit in the searched arms")
    for split in splits:
        states = {arm.arm_id: initial_state(problem, arm, alive) for arm, alive in zip(problem.searched_arms, split)}
        states, score, sweeps = coordinate_descent(problem, evaluator, states)
        total_sweeps += sweeps
        if best is None or score.key < best[0].key:
            best = (score, states, split)
    assert best is not None  # splits is not empty
    score, states, split = best
    checks, p_value, _ = evaluator.checks(states)
    return Reconstruction(
        patients={arm_id: _patients(problem, state) for arm_id, state in evaluator.with_union(states).items()},
        alive_by_arm={arm.arm_id: alive for arm, alive in zip(problem.searched_arms, split)},
        checks=tuple(checks),
        logrank_p=p_value,
        score=score,
        sweeps=total_sweeps,
        evaluations=evaluator.evaluations,
        splits_searched=len(splits),
    )


def _patients(problem: SearchProblem, state: ArmState) -> tuple[PseudoPatient, ...]:
    rows = [(tick, False) for tick in state.death_ticks] + [(tick, True) for tick in state.censor_ticks]
    return tuple(PseudoPatient(problem.months(tick), died=not censored) for tick, censored in sorted(rows))
