"""Agreement PDF rendering: a typical 3-page agreement, cold (empty cache) and from the cache.

Self-contained: its own temporary SQLite database (built by the migrations) and cache folders.
Targets on the reference machine: median under 500 ms cold, under 20 ms cached.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from flask_migrate import upgrade

TARGET_COLD_MS = 500
TARGET_CACHED_MS = 20


def _ms(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 1),
            "min_ms": round(ordered[0] * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1),
            "n": len(ordered)}


def run(n: int = 10) -> dict:
    from portal import create_app
    from portal.extensions import db
    from portal.services import Ctx, accounts, agreements
    from portal.services.agreements import pdf

    with tempfile.TemporaryDirectory(prefix="bench-agreements-") as tmp:
        root = Path(tmp)
        app = create_app({
            "PORTAL_ENV": "testing", "TESTING": True,
            "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'bench.db'}",
            "UPLOAD_DIR": str(root / "uploads"), "PDF_CACHE_DIR": str(root / "cache-0"),
        })
        with app.app_context():
            upgrade()
            system = Ctx(user=None, ip="bench")
            org = accounts.create_org(system, code="BENCH", name="旭日置业有限公司",
                                      kind="real_estate_developer")
            today = agreements.local_today()
            agreement = agreements.draft(system, org, {
                "products": ["housing_mortgage"],
                "projects": ["旭日花园二期", "旭日广场"],
                "stage_guarantee": "乙方提供阶段性连带责任保证，并按贷款金额的5%存入保证金。",
                "onsite_staff": "甲方每周二、周六派驻客户经理一名至旭日花园售楼部。",
                "bank_sla_hours": 72, "partner_doc_days": 5,
                "effective_from": today, "expires_on": today + timedelta(days=364)})
            db.session.commit()
            pages = len(pdf.layout(agreements.document(agreement)).pages)

            cpu: dict[str, list[float]] = {"cold": [], "cached": []}

            def timed(fn, kind=None) -> float:
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                if kind:
                    cpu[kind].append(time.process_time() - start_cpu)
                return time.perf_counter() - start

            first = timed(lambda: agreements.pdf_for(agreement))  # fonts load here
            cold = []
            for i in range(n):
                app.config["PDF_CACHE_DIR"] = str(root / f"cache-{i + 1}")  # empty: a miss
                cold.append(timed(lambda: agreements.pdf_for(agreement), "cold"))
            cached = [timed(lambda: agreements.pdf_for(agreement), "cached") for _ in range(n)]
            assert agreements.pdf_for(agreement).cached
            size = len(agreements.pdf_for(agreement).data)

    result = {"pages": pages, "pdf_bytes": size, "first_render_ms": round(first * 1000, 1),
              "cold": _ms(cold), "cached": _ms(cached),
              "cpu_cold": _ms(cpu["cold"]), "cpu_cached": _ms(cpu["cached"]),
              "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
              "targets_ms": {"cold": TARGET_COLD_MS, "cached": TARGET_CACHED_MS}}
    ok_cold = result["cold"]["median_ms"] < TARGET_COLD_MS
    ok_cached = result["cached"]["median_ms"] < TARGET_CACHED_MS
    print(f"agreement PDF: {pages} pages, {size / 1024:.0f} KiB")
    print(f"  first render in the process (fonts load): {result['first_render_ms']:.0f} ms")
    print(f"  cold   (empty cache) median {result['cold']['median_ms']:7.1f} ms over {n}"
          f"  [{'ok' if ok_cold else 'OVER'} < {TARGET_COLD_MS} ms]")
    print(f"  cached               median {result['cached']['median_ms']:7.1f} ms over {n}"
          f"  [{'ok' if ok_cached else 'OVER'} < {TARGET_CACHED_MS} ms]")
    print(f"  CPU time: cold median {result['cpu_cold']['median_ms']:.1f} ms, cached median "
          f"{result['cpu_cached']['median_ms']:.1f} ms; load average "
          f"{result['load_average'][0]:.2f} on {result['cpus']} CPUs (wall times suffer when "
          f"the machine is busy)")
    return result
