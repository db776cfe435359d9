"""optuna-dashboard on an nmhpo study, through the dashboard's own HTTP API (its WSGI app, as
`nmhpo dashboard` serves it): metrics are sortable columns, and what it saves is stored."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
import pytest
from typer.testing import CliRunner

from nmhpo.cli import app
from nmhpo.config import load_config
from nmhpo.study import run_study
from tests.conftest import tiny_study_text

pytestmark = pytest.mark.slow


def _call(wsgi: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    setup_testing_defaults(environ)
    status: list[str] = []
    chunks = wsgi(environ, lambda s, headers, exc_info=None: status.append(s))
    text = b"".join(chunks).decode()
    return int(status[0].split()[0]), json.loads(text) if text.strip() else None


def test_dashboard_shows_sortable_metrics_and_saves_user_attrs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(sampler="random", n_trials=2))
    cfg = load_config(path)
    run_study(cfg)
    served: dict[str, Any] = {}

    def fake_server(storage: Any, host: str, port: int) -> None:
        served["wsgi"] = optuna_dashboard.wsgi(storage)

    monkeypatch.setattr(optuna_dashboard, "run_server", fake_server)
    with socket.socket() as probe:  # a free port, for the busy-port check
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(app, ["dashboard", str(path), "--port", str(port)])
    assert result.exit_code == 0, result.output
    wsgi = served["wsgi"]

    status, studies = _call(wsgi, "GET", "/api/studies")
    assert status == 200
    study_id = studies["study_summaries"][0]["study_id"]
    status, detail = _call(wsgi, "GET", f"/api/studies/{study_id}")
    assert status == 200
    sortable = {a["key"]: a["sortable"] for a in detail["union_user_attrs"]}
    for metric in ("accuracy", "energy_uj", "latency_us", "area_mm2", "train_time_s"):
        assert sortable[metric] is True, metric
    assert sortable["energy_pj.adc"] and sortable["run.cpu_s"]
    trial = detail["trials"][0]
    # One short value per attribute: no JSON line that widens the trial page.
    assert max(len(a["value"]) for a in trial["user_attrs"]) < 80

    # Optuna refuses to change a finished trial, and says so (no 204 for a write that is lost).
    status, _ = _call(
        wsgi, "POST", f"/api/trials/{trial['trial_id']}/user-attrs", {"user_attrs": {"ok": 1}}
    )
    assert status >= 400
    # A running trial (a human-in-the-loop study, or one asked for by hand) takes the write,
    # and a fresh reader of the database sees it at once: nothing waits in a buffer.
    running = optuna.load_study(study_name="tiny", storage=cfg.storage_url()).ask()
    status, _ = _call(
        wsgi, "POST", f"/api/trials/{running._trial_id}/user-attrs", {"user_attrs": {"ok": 1}}
    )
    assert status == 204
    fresh = optuna.load_study(study_name="tiny", storage=cfg.storage_url())
    assert fresh.trials[running.number].user_attrs == {"ok": 1}
