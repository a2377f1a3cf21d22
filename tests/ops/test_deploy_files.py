"""The deployment files as their own tools judge them: promtool, checkov, and the dashboard's
and alerts' metric names against what `/metrics` really exposes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bookrec.api.app import create_app
from bookrec.config import Settings
from tests.ops.servers import DEPLOY, REPO, require_binary

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
METRIC = re.compile(r"\bbookrec_[a-z_]+")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def test_promtool_accepts_the_rules_and_the_config() -> None:
    promtool = require_binary("promtool")
    rules = subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def queried_metrics() -> dict[str, set[str]]:
    """Each bookrec metric the dashboard and the alert rules query, and where."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "bookrec.json").read_text())
    found: dict[str, set[str]] = {}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in METRIC.findall(target["expr"]):
                found.setdefault(name, set()).add(f"panel {panel['title']!r}")
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in METRIC.findall(rule["expr"]):
                found.setdefault(name, set()).add(f"alert {rule['alert']}")
    return found


def test_every_metric_the_dashboard_and_alerts_query_exists(
    database_url: str, tmp_path: Path
) -> None:
    from tests.api.conftest import make_settings

    settings: Settings = make_settings(database_url, tmp_path / "var")
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as client:
        text = client.get("/metrics").text
    exposed = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        exposed.update(sample.name for sample in family.samples)
        exposed.update(family.name + suffix for suffix in SUFFIXES)
    queried = queried_metrics()
    assert len(queried) >= 10, queried  # the panels the issue asks for
    missing = {name: where for name, where in queried.items() if name not in exposed}
    assert not missing, missing
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "bookrec.json").read_text())
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("requests", "p99", "errors", "source", "cache hit", "model version", "jobs"):
        assert topic in titles, topic


def test_checkov_passes_the_dockerfile_and_the_kubernetes_manifests() -> None:
    if not CHECKOV.is_file():
        require_binary("checkov-in-.venv-checkov", str(CHECKOV))
    manifests = sorted((DEPLOY / "k8s").glob("*.yaml"))
    assert {"api.yaml", "worker.yaml", "ingress.yaml", "migrate-job.yaml"} <= {
        m.name for m in manifests
    }
    result = subprocess.run(
        [
            str(CHECKOV),
            *("--framework", "kubernetes", "dockerfile"),
            *("--skip-download", "--compact", "--quiet", "--output", "json"),
            *("-f", str(REPO / "Dockerfile")),
            *(arg for m in manifests for arg in ("-f", str(m))),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {report["check_type"] for report in reports} == {"kubernetes", "dockerfile"}
    for report in reports:
        assert report["summary"]["failed"] == 0
        assert report["summary"]["passed"] > 0
        # every skip says why, inline
        for skipped in report["results"].get("skipped_checks", []):
            assert skipped.get("suppress_comment"), skipped["check_id"]


def test_kubernetes_has_probes_resources_and_an_hpa() -> None:
    documents = [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    kinds = {doc["kind"] for doc in documents}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "Job"} <= kinds
    assert {"ConfigMap", "Secret"} <= kinds
    api = next(
        d for d in documents if d["metadata"]["name"] == "bookrec-api" and d["kind"] == "Deployment"
    )
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize(
    "service", ["api", "worker", "scheduler", "postgres", "redis", "nginx", "prometheus", "grafana"]
)
def test_compose_runs_every_service(service: str) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert service in compose["services"]
