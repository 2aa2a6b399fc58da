"""bench/results/latest.json and latest.md: every part's latest figures in one table people read.

A run of some parts replaces only their sections, so `python -m bench pages` after a full run
keeps the PDF, API and scoring figures of that run (each section says when it was measured).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write(sections: dict, command: str | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    latest = json.loads(path.read_text()) if path.exists() else {}
    stamp = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "command": _settings() + (command or "python -m bench " + " ".join(sys.argv[1:])),
             "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                        f"load {os.getloadavg()[0]:.2f} at the end"}
    for name, result in sections.items():
        latest[name] = {**stamp, **result}
    path.write_text(json.dumps(latest, indent=2, ensure_ascii=False) + "\n")
    markdown = RESULTS / "latest.md"
    markdown.write_text(render(latest))
    print(f"\nwritten: {path.relative_to(RESULTS.parent.parent)} and "
          f"{markdown.relative_to(RESULTS.parent.parent)}")
    return markdown


def _samples(run: dict) -> str:
    samples = run.get("bare_samples") or []
    if len(samples) < 2:
        return ""
    return (" (the median of its " + ", ".join(str(b["p50_ms"]) for b in samples)
            + " ms, measured between the pages)")


def _settings() -> str:
    """The BENCH_* settings of the run, as they would be typed before the command (a URL's
    password masked)."""
    out = []
    for name, value in sorted(os.environ.items()):
        if name.startswith("BENCH_"):
            masked = re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", value)
            out.append(f"{name}={masked} ")
    return "".join(out)


def _made_by(section: dict) -> str:
    return f"`{section['command']}` on {section['machine']}.\n"


def _yes(flag) -> str:
    return "holds" if flag else "**misses**"


def _split(runs: list[dict]) -> list[str]:
    """Where each page's time goes in one process (bench/pages.py split), at the large size."""
    runs = [r for r in runs if r.get("split")]
    if not runs:
        return []
    largest = max(r["referrals"] for r in runs)
    runs = [r for r in runs if r["referrals"] == largest]
    out = [f"### Where the time goes, in one process, at {largest:,} referrals", "",
           "Each page requested 20 times through the app in one process (no network, no "
           "queue): its SQL statements, its template rendering (less the SQL a lazy load runs "
           "inside it), and the rest (routing, session and login, forms, the view). The first "
           "two rows are the floors every page stands on.", "",
           "| page or call | " + " | ".join(
               f"{r['database']} ms (SQL / statements / template / rest)" for r in runs) + " |",
           "|---|" + "---|" * len(runs)]
    for i, part in enumerate(runs[0]["split"]):
        cells = []
        for run in runs:
            p = run["split"][i]
            cells.append(f"{p['ms']} ({p['sql_ms']} / {p['statements']:g} / "
                         f"{p['template_ms']} / {p['rest_ms']})")
        out.append(f"| {part['name']} | " + " | ".join(cells) + " |")
    return out + [""]


def render(latest: dict) -> str:
    out = ["# Benchmark results", "",
           "Written by `make bench` (`python -m bench`); each section names the command, the "
           "time and the machine it was measured on. Ratios compare with the bare route "
           "(`GET /healthz`) measured on the same server in the same run.", ""]
    pages = latest.get("pages")
    if pages:
        out += [f"## Pages and API reads ({pages['measured_at']})", "",
                f"`{pages['command']}` on {pages['machine']}; {pages['server']}, "
                f"{pages['clients']} keep-alive clients, up to {pages['requests_per_page']} "
                f"requests or {pages['seconds_per_page']} s per page"
                + (f", each page measured in {pages['rounds']} rounds over the list and its "
                   "median round kept" if pages.get("rounds", 1) > 1 else "")
                + ". Targets: a page within "
                f"{pages['targets']['page_ratio']:g}x and an API read within "
                f"{pages['targets']['api_ratio']:g}x of the bare route's p50; at most "
                f"{pages['targets']['growth']:g}x slower at the large size than the small.", ""]
        for run in pages["runs"]:
            bare = run["bare"]
            recompute = (f"; the scoring job's full recompute {run['recompute_s']} s"
                         if run.get("recompute_s") is not None else "")
            out.append(f"- {run['database']}, {run['referrals']:,} referrals (largest partner "
                       f"{run['largest_partner_referrals']:,}): bare route p50 "
                       f"{bare['p50_ms']} ms, {bare['rps']} req/s{_samples(run)}{recompute}")
        out += ["", "| database | page or call | p50 small | ×bare | p50 large | ×bare | "
                "p95 large | req/s large | growth | ratio | growth |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in pages["table"]:
            s, lg = row["small"], row["large"]
            growth = "—" if row["growth"] is None else f"{row['growth']}×"
            out.append(f"| {row['database']} | {row['name']} | {s['p50_ms']} ms | {s['ratio']}× "
                       f"| {lg['p50_ms']} ms | {lg['ratio']}× | {lg['p95_ms']} ms | {lg['rps']} "
                       f"| {growth} | {_yes(row['ratio_holds'])} | "
                       f"{_yes(row['growth_holds'])} |")
        misses = [r for r in pages["table"] if not (r["ratio_holds"] and r["growth_holds"])]
        out += ["", f"{len(pages['table']) - len(misses)} of {len(pages['table'])} rows meet "
                "both targets.", ""]
        out += _split(pages["runs"])
    pdf = latest.get("agreements")
    if pdf:
        out += [f"## Agreement PDF ({pdf['measured_at']})", "", _made_by(pdf),
                f"{pdf['pages']} pages: the first render in a fresh process (fonts loaded "
                f"and cut) {pdf['first_render_ms']} ms; cold (empty cache) median "
                f"{pdf['cold']['median_ms']} ms (target {pdf['targets_ms']['cold']}), cached "
                f"median {pdf['cached']['median_ms']} ms (target "
                f"{pdf['targets_ms']['cached']}).", ""]
    api = latest.get("api")
    if api:
        out += [f"## API submissions ({api['measured_at']})", "", _made_by(api)]
        for run in api["runs"]:
            out.append(f"- {run['server']}: bare {run['bare_route']['per_second']} req/s, "
                       f"submissions {run['submissions']['per_second']} req/s (ratio "
                       f"{run['ratio']}), one-insert route ratio "
                       f"{run['one_insert_route']['ratio']}")
        out.append("")
    scoring = latest.get("scoring")
    if scoring:
        out += [f"## Scorecard recompute ({scoring['measured_at']})", "", _made_by(scoring)]
        for run in scoring["runs"]:
            out.append(f"- {run['database']}, {run['referrals']:,} referrals: full recompute "
                       f"{run['recompute_s']} s (target {scoring['targets']['recompute_s']} s)")
        out.append("")
    imports = latest.get("imports")
    if imports:
        out += [f"## History imports through the job runner ({imports['measured_at']})", "",
                _made_by(imports),
                "Aim (issue 15): a million rows in under ten minutes, 1,667 rows/s.", ""]
        for database in ("sqlite", "postgresql"):
            for kind, run in imports.get(database, {}).items():
                out.append(f"- {database}, {kind}: {run['rows']:,} rows in {run['seconds']} s, "
                           f"{run['rows_per_second']:,} rows/s")
        out.append("")
    return "\n".join(out)
