"""The Grafana dashboard reads metrics the gateway exports, by their real names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from smsgate.observe.metrics import REGISTRY, ClusterSnapshot, render
from smsgate.store.records import ConnectionHealth

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "smsgate.json"


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"smsgate_[a-z_]+", target["expr"])
    }
    snapshot = ClusterSnapshot(
        now_ms=0,
        connections={"smsc1": ("worker-a", 1)},
        workers={"worker-a": ("worker", 0, 0)},
        balances={"shop": 100},
        health={"smsc1": ConnectionHealth("smsc1", "bound", 0, None, None, 10, 2, 100, 0, 0.0)},
    )
    exported = set(re.findall(r"^(smsgate_[a-z_]+)", render(snapshot).decode(), re.M))
    # Labelled counters and histograms have no samples until used: their families say the names.
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        exported.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    assert queried and queried <= exported, queried - exported
