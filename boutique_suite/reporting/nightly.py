"""The nightly run's one Slack message: what passed (real or simulated), what failed, what skipped, the
slowest recoveries against their budgets, and where the report is. ``./run nightly`` posts it after the
run, with the same slack-sdk client the suite reads the alert channel with (chat.postMessage).

    python -m boutique_suite.reporting.nightly [--summary reports/summary.json] [--report-url URL] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from boutique_suite.clients import slack
from boutique_suite.reporting import diagnosis, resilience
from boutique_suite.run import targets

SHOWN_FAILURES = 5


def counts(summary: Mapping[str, object]) -> Counter[str]:
    """passed_real, passed_simulated, passed_static, failed, skipped."""
    found: Counter[str] = Counter()
    for entry in resilience.scenarios(summary):
        outcome = str(entry.get("outcome"))
        found[f"passed_{entry.get('execution')}" if outcome == "passed" else outcome] += 1
    return found


def message(summary: Mapping[str, object], report_url: str) -> str:
    """The one message of the run, in Slack's mrkdwn."""
    found = counts(summary)
    passed = found["passed_real"] + found["passed_simulated"] + found["passed_static"]
    failed = [
        str(e["scenario"]) for e in resilience.scenarios(summary) if e.get("outcome") in ("failed", "error")
    ]
    broken = [b for b in summary.get("broken") or [] if isinstance(b, Mapping)]  # type: ignore[attr-defined]
    verdict = ":red_circle: failed" if failed else ":large_green_circle: passed"
    if broken:
        verdict = ":red_circle: platform broken"
    lines = [
        f"*Nightly verification of `{summary.get('target')}` {verdict}* ({summary.get('finished')})",
        f"{passed} passed ({found['passed_real']} real, {found['passed_simulated']} simulated, "
        f"{found['passed_static']} static) · {len(failed)} failed · {found['skipped']} skipped",
    ]
    if broken:
        first = broken[0]
        lines.append(
            f"First cause: {first.get('cause')} (failed {len(first.get('scenarios') or [])} scenarios; "
            "evidence on the report's Broken platform page)"
        )
    known = [str(b.get("diagnosis")) for b in broken if b.get("diagnosis")] + [
        str(e["diagnosis"]) for e in resilience.scenarios(summary) if e.get("diagnosis")
    ]
    if known:
        lines.append(diagnosis.headline(known[0]))
    if failed:
        more = f" and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
        lines.append("Failed: " + "; ".join(failed[:SHOWN_FAILURES]) + more)
    slowest = resilience.slowest_recoveries(summary)
    if slowest:
        lines.append(
            "Slowest recoveries: "
            + "; ".join(f"{m.name} {m.seconds:.1f} s of {m.budget:g} s ({m.scenario})" for m in slowest)
        )
    over = resilience.over_budget(summary)
    if over:
        lines.append(
            "Over budget: " + "; ".join(f"{m.name} {m.seconds:.1f} s of {m.budget:g} s" for m in over)
        )
    lines.append(f"Report: {report_url}")
    return "\n".join(lines)


def no_summary_message(target: str, report_url: str) -> str:
    return (
        f"*Nightly verification of `{target}` :red_circle: did not run*: no summary was written (the run"
        f" stopped before any scenario; see the job log)\nReport: {report_url}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m boutique_suite.reporting.nightly", description=__doc__)
    parser.add_argument("--summary", type=Path, default=resilience.SUMMARY_FILE)
    parser.add_argument("--target", default=os.environ.get("BOUTIQUE_TARGET", "lab"))
    parser.add_argument(
        "--report-url",
        default=os.environ.get("NIGHTLY_REPORT_URL") or str(targets.REPORTS / "allure-report" / "index.html"),
    )
    parser.add_argument("--dry-run", action="store_true", help="print the message instead of posting it")
    args = parser.parse_args(argv)
    try:
        summary = json.loads(args.summary.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        summary = None
    target_name = str(summary.get("target")) if summary else args.target
    text = message(summary, args.report_url) if summary else no_summary_message(target_name, args.report_url)
    if args.dry_run:
        print(text)
        return 0
    try:
        target = targets.load(target_name)
        channel = slack.Channel.open(target)
        channel.post(text)
    except (targets.TargetError, slack.SlackUnavailable) as exc:
        print(f"nightly: the summary was not posted to Slack: {exc}", file=sys.stderr)
        return 1
    print(f"nightly: summary posted to #{channel.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
