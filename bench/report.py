"""The benchmark results as Markdown tables (the form of BENCHMARKS.md's measured sections)."""

from __future__ import annotations


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(results: dict) -> str:
    m = results["machine"]
    out = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}; load average before {results['load_average_before'][0]:.2f}, "
        f"after {results['load_average_after'][0]:.2f}.",
        "",
    ]
    verdicts = results.get("verdicts") or []
    if verdicts:
        out += ["### Targets", "", _row("target", "measured", "limit", "met", "other processes' CPU"),
                _row("---", "---:", "---:", "---", "---:")]  # fmt: skip
        for v in verdicts:
            out.append(_row(v["target"], f"{v['value']:g}", f"{v['limit']:g}", "yes" if v["met"] else "**no**",
                            f"{v['busy']:.0%}"))  # fmt: skip
        out.append("")

    inproc = results.get("inprocess")
    if inproc:
        c = inproc["cases"]
        out += [
            "### 1. In-process (no HTTP, no database)",
            "",
            f"{c['patients']} cohort patients, {c['resources'][0]}–{c['resources'][1]} resources "
            f"({c['observations'][0]}–{c['observations'][1]} Observations) a prefetch, "
            f"{c['body_kib'][0]}–{c['body_kib'][1]} KiB a request body. Other processes used "
            f"{inproc.get('other_processes_cpu', float('nan')):.0%} of the CPU during the warm and cold runs.",
            "",
            _row("whole hook work, ms", "p50", "p90", "p99", "max"),
            _row("---", "---:", "---:", "---:", "---:"),
            _row("warm (record seen before)", *(_ms(inproc["warm"][k]) for k in ("p50", "p90", "p99", "max"))),
            _row("cold (first sight)", *(_ms(inproc["cold"][k]) for k in ("p50", "p90", "p99", "max"))),
            *(
                _row(f"strict mode, {kind}", *(_ms(inproc["strict"][kind][k]) for k in ("p50", "p90", "p99", "max")))
                for kind in ("warm", "cold")
                if "strict" in inproc
            ),
            "",
            _row("stage, p50 ms", "warm", "cold"),
            _row("---", "---:", "---:"),
        ]
        for stage in inproc["warm_stages"]:
            out.append(_row(stage, _ms(inproc["warm_stages"][stage]["p50"]), _ms(inproc["cold_stages"][stage]["p50"])))
        out += ["", _row("resources", "warm p50", "warm p99", "cold p50", "cold p99"), _row("---", "---:", "---:", "---:", "---:")]
        cold_bands = {b["resources"]: b for b in inproc["cold_by_resources"]}
        for band in inproc["warm_by_resources"]:
            cold = cold_bands.get(band["resources"], {})
            out.append(_row(band["resources"], _ms(band["p50"]), _ms(band["p99"]), _ms(cold.get("p50")), _ms(cold.get("p99"))))
        if not inproc["profile_warm"]:
            out += ["", "Profile: not taken (pyinstrument is not installed)."]
        else:
            out += ["", "Profile (pyinstrument, 0.1 ms sampling; the profiler's own cost inflates every row alike):", "",
                    _row("where", "warm ms/call", "warm share", "cold ms/call", "cold share"),
                    _row("---", "---:", "---:", "---:", "---:")]  # fmt: skip
            cold_profile = inproc["profile_cold"]
            for name, part in inproc["profile_warm"].items():
                cold_part = cold_profile.get(name, {"ms_per_call": 0.0, "share": 0.0})
                out.append(_row(name, _ms(part["ms_per_call"]), f"{part['share']:.0%}", _ms(cold_part["ms_per_call"]),
                                f"{cold_part['share']:.0%}"))  # fmt: skip
            for name, part in cold_profile.items():
                if name not in inproc["profile_warm"]:
                    out.append(_row(name, "–", "–", _ms(part["ms_per_call"]), f"{part['share']:.0%}"))
        out += ["", "Growth with the prefetch's size (synthetic: cohort patient 1 with N Child-Pugh labs; µs per extra "
                "Observation = the slope from the row above):", "",
                _row("Observations", "resources", "body KiB", "warm p50 ms", "cold p50 ms", "warm µs/extra Obs",
                     "cold µs/extra Obs", "other processes"),
                _row("---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")]  # fmt: skip
        for s in inproc["scaling"]:
            out.append(_row(s["observations"], s["resources"], s["body_kib"], _ms(s["warm_p50_ms"]), _ms(s["cold_p50_ms"]),
                            s.get("warm_per_extra_observation_us") or "–", s.get("cold_per_extra_observation_us") or "–",
                            f"{s.get('other_processes_cpu', float('nan')):.0%}"))  # fmt: skip
        out.append("")
    run = (inproc or {}).get("cold_run")
    if run:
        out += [f"Cold run: {run['calls']} calls in a row, each a cohort patient never seen (ids and versions new), "
                f"the validation cache ({run['cache_max_entries']} entries) left to fill and evict; other processes "
                f"used {run['other_processes_cpu']:.0%} of the CPU. Last block's p50 / first block's: "
                f"{run['last_over_first_p50']}.", "",
                _row("calls", "p50 ms", "p90 ms", "p99 ms", "cache entries after"), _row("---", "---:", "---:", "---:", "---:")]
        for b in run["blocks"]:
            out.append(_row(b["calls"], _ms(b["p50"]), _ms(b["p90"]), _ms(b["p99"]), b["cache_entries"]))
        if run.get("cache_alone"):
            out += ["", "The validation cache alone, µs per get-then-put of a new key (full from put 50 000 on: each put "
                    "evicts one):", "", _row(*(r["puts"] for r in run["cache_alone"])),
                    _row(*("---:" for _ in run["cache_alone"])), _row(*(r["us_per_put"] for r in run["cache_alone"]))]
        out.append("")

    http = results.get("http")
    if http:
        c = http["cases"]
        out += ["### 2. HTTP: uvicorn in its own process, load from another", "", f"Database: {http['database']}.", ""]
        out += ["Warm: the cohort's bodies again (a chart opened again); cold: a patient never seen (every id and "
                "version new); each call followed by `/healthz`, the floor.", "",
                _row("workers", "patient-view warm p50 / p99", "cold p50 / p99", "/healthz p50 / p99",
                     "warm p50 − healthz p50", "cold p50 − healthz p50", "server CPU ms/warm call",
                     "other processes (warm / cold)"),
                _row("---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")]  # fmt: skip
        for workers, e in sorted(http["workers"].items()):
            s = e["sequential"]
            out.append(_row(
                workers,
                f"{_ms(s['patient_view_warm']['p50'])} / {_ms(s['patient_view_warm']['p99'])}",
                f"{_ms(s['patient_view_cold']['p50'])} / {_ms(s['patient_view_cold']['p99'])}",
                f"{_ms(s['healthz']['p50'])} / {_ms(s['healthz']['p99'])}",
                _ms(s["service_p50_over_healthz_ms"]),
                _ms(s.get("cold_service_p50_over_healthz_ms")),
                _ms(s["server_cpu_ms_per_patient_view"]),
                f"{s['other_processes_cpu_share']:.0%} / {s.get('cold_other_processes_cpu_share', float('nan')):.0%}",
            ))  # fmt: skip
        out += ["", "Peak throughput (wrk, 1 thread, cycling the 34 cohort bodies, each request a patient never seen; 10 s a run):", "",
                _row("workers", "connections", "patient-view req/s", "p50 / p99 ms", "workers' CPU (cores)",
                     "/healthz req/s", "errors"),
                _row("---:", "---:", "---:", "---:", "---:", "---:", "---:")]  # fmt: skip
        for workers, e in sorted(http["workers"].items()):
            t = e.get("throughput")
            if not t:
                out.append(_row(workers, "–", "wrk not installed", "", "", "", ""))
                continue
            for hook, health in zip(t["patient_view"], t["healthz"]):
                out.append(_row(workers, hook["connections"], hook["requests_per_second"],
                                f"{_ms(hook['latency_ms'].get('p50'))} / {_ms(hook['latency_ms'].get('p99'))}",
                                hook.get("server_cores_busy", "–"), health["requests_per_second"],
                                hook["non_2xx"] + health["non_2xx"]))  # fmt: skip
        out += ["", _row("workers", "ready after", "resident memory per worker after start / after load, MiB"),
                _row("---:", "---:", "---")]  # fmt: skip
        for workers, e in sorted(http["workers"].items()):
            out.append(_row(workers, f"{e['ready_seconds']:.2f} s ({e['ready_path']})",
                            f"{e['rss_mib_after_start']} / {e['rss_mib_after_load']}"))  # fmt: skip
        scaling = next((e["scaling"] for e in http["workers"].values() if e.get("scaling")), None)
        if scaling:
            out += ["", "Growth with the prefetch's size over HTTP (1 worker, sequential):", "",
                    _row("Observations", "body KiB", "warm p50 / p99 ms", "cold p50 / p99 ms", "other processes"),
                    _row("---:", "---:", "---:", "---:", "---:")]  # fmt: skip
            for s in scaling:
                out.append(_row(s["observations"], s["body_kib"], f"{_ms(s['warm']['p50'])} / {_ms(s['warm']['p99'])}",
                                f"{_ms(s['cold']['p50'])} / {_ms(s['cold']['p99'])}",
                                f"{s.get('other_processes_cpu_share', float('nan')):.0%}"))  # fmt: skip
        out.append("")

    nofetch = results.get("nofetch")
    if nofetch:
        out += [
            "### 3. No prefetch: the record fetched from a real FHIR server",
            "",
            f"{nofetch['fhir_server']}; {nofetch['gets_per_call']} GETs a call (the record's searches at once, "
            "then the lesions by `_id`).",
            "",
            _row("", "p50 ms", "p90 ms", "p99 ms"),
            _row("---", "---:", "---:", "---:"),
            _row("patient-view end to end", *(_ms(nofetch["end_to_end"][k]) for k in ("p50", "p90", "p99"))),
            _row("the same GETs straight to the FHIR server", *(_ms(nofetch["fhir_server_direct"][k]) for k in ("p50", "p90", "p99"))),
            _row("/healthz", *(_ms(nofetch["healthz"][k]) for k in ("p50", "p90", "p99"))),
            "",
            f"Our share: {nofetch['overhead_p50_ms']:.2f} ms at p50 ({nofetch['overhead_p99_ms']:.2f} ms at p99). "
            f"CPU a call: hcc-cds {nofetch.get('hcc_cds_cpu_ms_per_call', '–')} ms, the FHIR server "
            f"{nofetch.get('fhir_server_cpu_ms_per_call', '–')} ms, on the same 2 cores; other processes used "
            f"{nofetch['other_processes_cpu_share']:.0%} of the CPU meanwhile.",
            "",
        ]
    return "\n".join(out) + "\n"
