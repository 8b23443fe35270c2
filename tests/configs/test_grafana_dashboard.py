"""The Grafana dashboard (deploy/grafana/callcov.json) parses, and its queries and the metrics the code
defines (``callcov.kit.metrics.METRICS``) match both ways, under the names Ray exports: ``ray_`` + name,
``_total`` on counters, ``_bucket``/``_sum``/``_count`` on histograms."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from callcov.kit.metrics import METRICS

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "callcov.json"
SERIES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def exported_names() -> dict[str, str]:
    """Every series name Ray exports for the code's metrics -> the metric's name in the code."""
    return {f"ray_{spec.name}{suffix}": spec.name for spec in METRICS for suffix in SERIES[spec.type]}


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_query_names_a_defined_metric_and_every_metric_has_a_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    used: set[str] = set()
    for expr in expressions(dashboard):
        names = set(re.findall(r"\b(ray_callcov_[a-z_]+)", expr))
        assert names, f"a panel query names no CallCov metric: {expr}"
        unknown = names - set(exported)
        assert not unknown, f"{expr} names metrics the code does not define: {unknown}"
        used |= {exported[name] for name in names}
    assert used == {spec.name for spec in METRICS}, "metrics without a panel"


def test_panels_have_titles_ids_and_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(panel["title"] for panel in dashboard["panels"])
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"${datasource}"}
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
