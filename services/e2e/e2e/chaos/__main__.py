"""``python -m e2e.chaos --scenarios 2,3,5,8 --jobs 2000 --duration 20``: run in the chaos container
(compose.chaos.yaml) by scripts/chaos.sh. Prints one Markdown table row per scenario (the table of
docs/reliability.md) and a JSON line of the checker's counts; exits 1 if any scenario failed."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from e2e.chaos.run import HEADER, run_scenario
from e2e.chaos.scenarios import FULL, SCENARIOS, Config
from e2e.harness import Api, Fleet, env, wait_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.chaos")
    parser.add_argument("--scenarios", default=",".join(FULL), help=f"comma list of {sorted(SCENARIOS)}")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=200.0, help="seconds the load is spread over")
    parser.add_argument("--drain", type=float, default=300.0, help="longest wait for the queue to drain")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s chaos %(levelname)s %(message)s")

    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
    config = Config(
        jobs=args.jobs,
        duration=args.duration,
        concurrency=int(env("CHAOS_WORKER_CONCURRENCY")),
        lease=float(env("LEASE_SECONDS")),
        grace=float(env("WORKER_SHUTDOWN_GRACE")),
    )
    api = Api(env("E2E_API_URL", "http://producer:8000"), env("API_TOKEN", "") or None)
    wait_for(lambda: api.request("GET", "/queues").status_code == 200, timeout=120, what="the API")
    fleet = Fleet()
    ledger = Path(env("CHAOS_LEDGER_DIR", "/ledger"))
    commit = env("CHAOS_COMMIT", "unknown")
    rows: list[str] = []
    ok = True
    for n, key in enumerate(keys):
        try:
            result = run_scenario(
                SCENARIOS[key],
                config,
                api=api,
                fleet=fleet,
                ledger=ledger,
                seed=args.seed + n,
                drain=args.drain,
            )
        except Exception as exc:  # one broken scenario must not hide the others' figures
            logging.exception("scenario %s crashed", key)
            ok = False
            rows.append(f"| {key} | {SCENARIOS[key].title} | crashed: {exc!r} |")
            continue
        ok &= result.passed
        summary = {
            "scenario": key,
            **result.outcome.report.summary(),
            "faults": dict(result.outcome.faults.counts),
            "load_seconds": round(result.load_seconds, 1),
            "recover_seconds": round(result.recover_seconds, 1),
            "slowest_refusal_seconds": round(result.outcome.refused_latency_max, 3),
            "failures": result.failures,
        }
        print("chaos-result " + json.dumps(summary), flush=True)
        rows.append(result.row(commit))
        print(rows[-1], flush=True)
    print("\n" + HEADER + "\n" + "\n".join(rows), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
