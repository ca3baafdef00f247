#!/usr/bin/env python3
"""Prints the per-target table of docs/reliability.md from fuzz/campaign.tsv
(one row per target: all its runs summed, its longest single run, the
coverage that run reached, and every finding ever recorded).

    python3 scripts/fuzz/summary.py [fuzz/campaign.tsv]
"""

import csv
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "campaign.tsv")

targets = {}
with open(path) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        t = targets.setdefault(row["target"], {"runs": 0, "seconds": 0, "executions": 0, "longest": None, "findings": 0, "open": 0, "last": None})
        seconds = int(row["seconds"])
        execs = int(row["executions"]) if row["executions"].isdigit() else 0
        found = sum(int(row[k]) for k in ("crashes", "ooms", "timeouts") if row[k].isdigit())
        t["runs"] += 1
        t["seconds"] += seconds
        t["executions"] += execs
        t["findings"] += found
        t["last"] = row
        # Findings of the newest run are the open ones: earlier ones were fixed and rerun.
        t["open"] = found
        if t["longest"] is None or seconds > int(t["longest"]["seconds"]):
            t["longest"] = row


def millions(n):
    return f"{n / 1e6:.1f} M"


print("| target | runs | seconds in all | longest run: s, executions, cov / ft, commit | newest run: s, commit | findings (all runs) | open |")
print("|---|---|---|---|---|---|---|")
for name in sorted(targets, key=lambda n: -targets[n]["seconds"]):
    t = targets[name]
    lr = t["longest"]
    longest = f"{lr['seconds']} s, {millions(int(lr['executions']) if lr['executions'].isdigit() else 0)}, {lr['cov']} / {lr['ft']}, `{lr['commit']}`"
    newest = f"{t['last']['seconds']} s, `{t['last']['commit']}`"
    print(f"| `{name}` | {t['runs']} | {t['seconds']} | {longest} | {newest} | {t['findings']} | {t['open']} |")
at_ten = sum(1 for t in targets.values() if int(t["longest"]["seconds"]) >= 600)
print()
print(f"{len(targets)} targets; {at_ten} with a single run of 10 minutes or more; "
      f"{sum(t['executions'] for t in targets.values()) / 1e6:.0f} M executions in all.")
