"""The report names the provider whose backup was drilled: its name, type, the tool's
version and its own checks' results in the Markdown and HTML headers, and per drill the
provider and tool version (hand-made payload data/report_sample.json; no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pgvdrill.providers.base import ToolCheck
from pgvdrill.report import html as report_html
from pgvdrill.report import views as report_views

SAMPLE = Path(__file__).parent / "data" / "report_sample.json"


@pytest.fixture
def payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    data["provider"] = [{
        "name": "nightly", "type": "barman", "version": "barman 3.19.1",
        "checks": [ToolCheck("barman check", "pass", ("barman", "check", "pg")).as_dict(),
                   ToolCheck("verify-backup", "fail", output="file base/1/1259 missing"
                             ).as_dict(),
                   ToolCheck("wal listing", "unknown", reason="cannot list").as_dict()],
        "backups": [{"id": "20251101T020000"}]}]
    for drill in data["drills"]:
        drill["backup"] = {**drill.get("backup", {}), "provider": "nightly",
                           "tool_version": "barman 3.19.1",
                           "tool_verify": ToolCheck("verify-backup", "pass").as_dict()}
    return data


def test_markdown_header_names_the_provider_its_version_and_checks(
        payload: dict[str, Any]) -> None:
    text = report_views.markdown(payload)

    header = text.split("\n## ")[0]
    assert ("- Provider: nightly (barman): barman 3.19.1; checks: barman check pass, "
            "verify-backup fail (file base/1/1259 missing), wal listing unknown "
            "(cannot list)") in header
    providers = text.split("\n## Providers\n")[1].split("\n## ")[0]
    assert f"| {payload['drills'][0]['drill']} | nightly (barman 3.19.1), its verification pass |" \
        in providers


def test_html_header_names_the_provider_with_a_badge_per_check(
        payload: dict[str, Any]) -> None:
    page = report_html.html(payload)

    header = page.split("</header>")[0]
    assert 'id="provider-nightly">Provider nightly (barman): barman 3.19.1; its checks:' \
        in header
    assert 'class="badge verdict-fail" title="file base/1/1259 missing">' in header
    assert "<td>nightly (barman 3.19.1), its verification pass</td>" in page
    assert 'class="">provider</th>' in page


def test_a_run_of_pgvdrills_own_backups_names_no_provider() -> None:
    plain: dict[str, Any] = json.loads(SAMPLE.read_text())

    assert "Provider" not in report_views.markdown(plain)
    assert 'id="provider-' not in report_html.html(plain)
    assert 'class="">provider</th>' not in report_html.html(plain)
