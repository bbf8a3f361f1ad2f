#!/usr/bin/env bash
# Mutation testing (mutmut 3.8.1) of the clinical threshold and comparison modules, unit tests only.
#
# How to run (from anywhere; the working tree is never touched, the run happens in a copy):
#
#   tools/mutation.sh                 # the six core modules (child_pugh eligibility timing performance_status
#                                     # tace_resistance candidacy): ~2,300 mutants, about 7.5 minutes on 2 cores
#                                     # (fits a 10-minute CI cap)
#   tools/mutation.sh --all           # every threshold module (adds mrecist, bclc, recommendation,
#                                     # demographics, knowledge): ~4,700 mutants, 12 to 16 minutes on 2 cores
#   tools/mutation.sh timing bclc     # only the named modules (rules/<name>.py)
#   tools/mutation.sh --strict ...    # also exit 1 when a comparison mutant survives that is not in
#                                     # the EQUIVALENT list below
#
# Environment: PYTHON (default: .venv/bin/python of this repository; mutmut==3.8.1 is pip-installed into
# it when missing), MAX_CHILDREN (default 2), WORKDIR (default: a new temporary directory, kept so that
# `cd $WORKDIR && $PYTHON -m mutmut show <mutant>` / `mutmut browse` work afterwards).
#
# What it does: copies the repository (without .venv, .git and caches) to WORKDIR, writes a setup.cfg with
# a [mutmut] section there (pyproject.toml is not changed), and runs `mutmut run --max-children 2`. Tests:
# tests/unit/rules and tests/unit/service/test_mapping.py only (no api, integration or e2e tests). Then it
# prints, per module, killed / survived / no tests / timeout and the score (killed / all), the same for
# rules/knowledge.py's convert and lookup alone, and every surviving mutant with its diff, comparison
# mutants (an operator among < <= > >= == != is in, and/or/not, or a number changed outside string literals on a
# comparison line) marked "!", and those listed as equivalent below marked "=". rules/knowledge.py is in scope for
# convert and lookup only. Exit status: 0, or 1 when mutmut fails, or (with --strict) when a "!" mutant survives.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
MAX_CHILDREN="${MAX_CHILDREN:-2}"
CORE=(child_pugh eligibility timing performance_status tace_resistance candidacy)
REST=(mrecist bclc recommendation demographics knowledge)

strict=0
modules=()
for arg in "$@"; do
  case "$arg" in
    --all) modules+=("${CORE[@]}" "${REST[@]}") ;;
    --strict) strict=1 ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) modules+=("${arg%.py}") ;;
  esac
done
[ ${#modules[@]} -gt 0 ] || modules=("${CORE[@]}")
for m in "${modules[@]}"; do
  m="${m#rules/}"
  [ -f "$REPO/rules/$m.py" ] || { echo "no such module: rules/$m.py" >&2; exit 2; }
done

if ! "$PYTHON" -c 'import mutmut' 2>/dev/null; then
  echo "installing mutmut==3.8.1 into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install --quiet mutmut==3.8.1
fi

WORKDIR="${WORKDIR:-$(mktemp -d /tmp/hcc-mutation.XXXXXX)}"
mkdir -p "$WORKDIR"
echo "copying $REPO to $WORKDIR"
tar -C "$REPO" \
  --exclude=./.git --exclude='./.venv' --exclude='./.venv-*' --exclude=./mutants \
  --exclude='__pycache__' --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis \
  --exclude='*.egg-info' -cf - . | tar -C "$WORKDIR" -xf -

{
  echo "[mutmut]"
  echo "source_paths ="
  echo "    rules"
  echo "    service"
  echo "only_mutate ="
  for m in "${modules[@]}"; do echo "    rules/${m#rules/}.py"; done
  echo "pytest_add_cli_args_test_selection ="
  echo "    tests/unit/rules"
  echo "    tests/unit/service/test_mapping.py"
  echo "pytest_add_cli_args ="
  echo "    -p"
  echo "    no:cacheprovider"
} > "$WORKDIR/setup.cfg"

cd "$WORKDIR"
echo "mutating: ${modules[*]}"
start=$(date +%s)
# the progress line is redrawn in place: keep only its last state in the log
"$PYTHON" -m mutmut run --max-children "$MAX_CHILDREN" > "$WORKDIR/mutmut-run.log" 2>&1 || {
  tail -c 3000 "$WORKDIR/mutmut-run.log"; echo "mutmut run failed" >&2; exit 1; }
echo "mutmut run: $(( $(date +%s) - start )) s (log: $WORKDIR/mutmut-run.log)"

STRICT="$strict" "$PYTHON" - <<'EOF'
"""Summarise the mutmut results in the current directory."""
import os
import re
import sys
from collections import Counter, defaultdict

from mutmut.__main__ import SourceFileMutationData, get_diff_for_mutant, status_by_exit_code, walk_mutatable_files

# Survivors that cannot change behaviour (see the mutation-testing note); names are stable while the
# function they are in does not change.
EQUIVALENT = {
    # a PerformanceStatus has karnofsky set iff the source is karnofsky, ecog iff ecog (both on the same day)
    "rules.eligibility.x__performance__mutmut_26",
    "rules.eligibility.x__performance__mutmut_56",
    "rules.performance_status.x_approximate_equivalent__mutmut_19",
    "rules.performance_status.x_performance_status_at__mutmut_116",  # equal dates were returned just before
    "rules.performance_status.x_ecog_range_for_karnofsky__mutmut_12",  # low == score: inside a band, handled before
    "rules.performance_status.x_ecog_range_for_karnofsky__mutmut_14",  # high == score: inside a band, handled before
    "rules.performance_status.x__latest_before__mutmut_3",  # only called when nothing is in the window (anchor included)
    "rules.tace_resistance.x__session_windows__mutmut_24",  # every completed session is dated
    "rules.timing.x_days_before__mutmut_5",  # 0 days never overflows
    "rules.timing.x_days_after__mutmut_5",  # 0 days never overflows
    "rules.bclc.x__mm__mutmut_1",  # a whole number of mm below 10**6 prints the same with :g
    "rules.mrecist.x__mm__mutmut_1",  # idem
    "rules.bclc.x_burden_stage__mutmut_1",  # no nodule <=> no largest diameter
    "rules.mrecist.x__organ_group__mutmut_2",  # None is as good a group key as "unknown"
    "rules.mrecist.x__sum_of__mutmut_4",  # sum() of Fractions without a Fraction start: the same value
    "rules.mrecist.x__evaluate_at__mutmut_120",  # idem
    "rules.mrecist.x_evaluate_mrecist__mutmut_100",  # idem (an empty sum 0 prints and compares the same)
    "rules.mrecist.x__evaluate_at__mutmut_161",  # targets are >= 10 mm: a measured baseline sum is > 0
    "rules.mrecist.x__evaluate_at__mutmut_364",  # an SD has a nadir above 0 mm, hence a change from it
    "rules.mrecist.x_evaluate_mrecist__mutmut_59",  # reached only when no imaging is on or before the start
    # issue 17 (clinical core III): _sentence only sees the fixed progression labels (all longer than 2
    # characters, "mRECIST ..." upper-case at index 1 and 2, the others lower-case at both)
    "rules.tace_resistance.x__sentence__mutmut_2",
    "rules.tace_resistance.x__sentence__mutmut_3",
    "rules.tace_resistance.x__sentence__mutmut_4",
    "rules.tace_resistance.x__progression_events__mutmut_14",  # an mRECIST PD always names what made it PD
    "rules.tace_resistance.x__progression_events__mutmut_15",  # idem
    "rules.tace_resistance.x__undatable_spread__mutmut_21",  # each label holds "new " once
    "rules.tace_resistance.x__undatable_spread__mutmut_25",  # idem
    "rules.tace_resistance.x__viable__mutmut_1",  # every caller passes liver_only
    "rules.tace_resistance.x_evaluate_jsh_2014__mutmut_55",  # new spread on imaging always has the lesion's readings
    "rules.tace_resistance.x_evaluate_jsh_2014__mutmut_57",  # idem
    "rules.treatment.x_completed_tace__mutmut_22",  # a single record replaced by itself with its own `specific`
    "rules.treatment.x_completed_tace__mutmut_29",  # idem
    "rules.mrecist.xǁ_Contextǁreference_for__mutmut_5",  # the baseline date is max()'s default anyway
    "rules.mrecist.x__clinical_progression__mutmut_10",  # a constant key: stable sort of conditions already sorted so
    "rules.mrecist.x__clinical_progression__mutmut_37",  # imaging is only read for truth: None is as false as False
    "rules.mrecist.xǁ_Contextǁreference_for__mutmut_10",  # sessions start on or after the baseline: never empty
    "rules.mrecist.xǁ_Contextǁreference_for__mutmut_12",  # idem
    "rules.mrecist.x__non_target_growth__mutmut_19",  # the current reading is never below the smallest when it grew
    "rules.mrecist.x__non_target_growth__mutmut_40",  # now * 1 == now / 1
    "rules.mrecist.x__evaluate_at__mutmut_15",  # the flags are only read for truth
    "rules.mrecist.x__evaluate_at__mutmut_17",  # idem
    "rules.mrecist.x__evaluate_at__mutmut_30",  # first_seen is built in date, then lesion order: a stable sort keeps it
    "rules.mrecist.x__non_target_rule__mutmut_32",  # non_target_progression_citation is never read
}
COMPARISON = re.compile(r"(<=|>=|==|!=|(?<![-=])>|<|\bis\b|\bnot in\b|\bin\b)")


def changed(diff: str) -> tuple[str, str]:
    minus = [l[1:] for l in diff.splitlines() if l.startswith("-") and not l.startswith("---")]
    plus = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    return "\n".join(minus), "\n".join(plus)


STRING = re.compile(r"[rbfu]*(\"[^\"]*\"|'[^']*')", re.IGNORECASE)


def is_comparison_mutant(diff: str) -> bool:
    """A changed comparison operator, number, and/or, or is/is not, outside string literals, on a comparison line."""
    old, new = (STRING.sub('""', text) for text in changed(diff))
    if old == new or not COMPARISON.search(old):
        return False

    def ops(s):
        return COMPARISON.findall(s) + re.findall(r"\b(?:and|or|not)\b", s)

    def nums(s):
        return re.findall(r"(?<![\w.\[])\d+(?:\.\d+)?(?![\w.\]])", s)

    return ops(old) != ops(new) or nums(old) != nums(new)


per_module: dict[str, Counter] = defaultdict(Counter)
survivors = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, code in data.exit_code_by_key.items():
        status = status_by_exit_code[code]
        module = str(path)
        per_module[module][status] += 1
        if module.endswith("knowledge.py") and re.search(r"ǁKnowledgeǁ(convert|lookup)__", name):
            per_module["rules/knowledge.py (convert, lookup)"][status] += 1
        if status not in ("killed", "caught by type check"):
            survivors.append((name, status, get_diff_for_mutant(name, path=data.path)))

total = Counter()
print()
print(f"{'module':42} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} {'score':>7}")
for module in sorted(per_module):
    c = per_module[module]
    n = sum(c.values())
    if "(" not in module:
        total.update(c)
    print(f"{module:42} {c['killed']:7} {c['survived']:9} {c['no tests']:9} {c['timeout']:8} {c['killed'] / n:7.1%}")
n = sum(total.values())
print(f"{'TOTAL':42} {total['killed']:7} {total['survived']:9} {total['no tests']:9} {total['timeout']:8} {total['killed'] / max(n, 1):7.1%}")

flagged = []
print("\nsurviving mutants ('!' = comparison or constant in a comparison; '=' = known equivalent):")
for name, status, diff in survivors:
    # rules/knowledge.py is in scope for convert and lookup only (its other functions are not thresholds)
    in_scope = not name.startswith("rules.knowledge.") or re.search(r"ǁKnowledgeǁ(convert|lookup)__", name)
    comparison = bool(in_scope) and is_comparison_mutant(diff)
    mark = "=" if name in EQUIVALENT else ("!" if comparison else " ")
    if mark == "!":
        flagged.append(name)
    old, new = changed(diff)
    print(f"{mark} {name} [{status}]")
    print("    - " + old.strip().replace("\n", "\n      "))
    print("    + " + new.strip().replace("\n", "\n      "))
print(f"\n{len(flagged)} comparison mutant(s) survived outside the equivalent list" + (":" if flagged else "."))
for name in flagged:
    print("  " + name)
if os.environ.get("STRICT") == "1" and flagged:
    sys.exit(1)
EOF
