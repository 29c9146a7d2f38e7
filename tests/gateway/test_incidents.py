"""Incident response end to end: the monitor's alarms run playbooks through a real
gateway over HTTP, land in the database, reach a local webhook receiver and a local
SMTP server, and are read back by ``bastion incidents``."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from sklearn.linear_model import LogisticRegression

from bastion.attacks.extraction import JacobianAugmentation, extract_model
from bastion.cli.main import main
from bastion.errors import ConfigError
from bastion.gateway.incidents import (
    Alarm,
    AlertSettings,
    Dispatcher,
    EmailNotifier,
    Incident,
    Kind,
    Level,
    Playbooks,
    WebhookNotifier,
    notifiers_from,
)
from bastion.gateway.monitor import MonitorSettings, monitored_app
from bastion.gateway.server import running
from bastion.gateway.settings import GatewaySettings, RoleSettings
from bastion.gateway.slots import ModelSlot, ModelVersion
from bastion.models.sklearn import SklearnClassifier

PEPPER = SecretStr("test-pepper-not-secret")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayClient:
    """A ``Classifier`` that asks the gateway; label-only answers become one-hot rows
    (what an attacker does when probabilities are withheld). Raises on any refusal."""

    def __init__(self, url: str, token: str, n_classes: int = 10) -> None:
        self.url, self.token, self._k, self._q = url, token, n_classes, 0
        self.label_only = 0

    n_classes = property(lambda self: self._k)
    input_shape = property(lambda self: (64,))
    bounds = property(lambda self: (0.0, 1.0))
    n_queries = property(lambda self: self._q)

    def reset_queries(self) -> None:
        self._q = 0

    def ask(self, x: np.ndarray) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/predict", json={"inputs": x.tolist()},
                          headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        rows = []
        for start in range(0, len(x), 10):
            answer = self.ask(x[start : start + 10])
            if answer.status_code != 200:
                raise PermissionError(answer.status_code)
            self._q += len(x[start : start + 10])
            for out in answer.json()["outputs"]:
                if "probabilities" not in out:
                    self.label_only += 1
                rows.append(out.get("probabilities", np.eye(self._k)[out["label"]]))
        return np.asarray(rows)


@pytest.fixture(scope="module")
def data(digits: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    x, y = digits
    order = np.random.default_rng(0).permutation(len(x))
    train, reference, natural = order[:1000], order[1000:1400], order[1400:]
    v1 = SklearnClassifier(LogisticRegression(max_iter=300).fit(x[train], y[train]))
    v0 = SklearnClassifier(LogisticRegression(max_iter=300, C=0.01).fit(x[train], y[train]))
    return {"v0": v0, "v1": v1, "reference": x[reference], "natural": x[natural]}


def _settings(tmp_path: Path) -> GatewaySettings:
    roles = {"admin": RoleSettings(scopes=("predict", "audit:read", "admin"), output="full"),
             "client": RoleSettings(scopes=("predict",), output="full")}
    return GatewaySettings(database_url=f"sqlite:///{tmp_path}/gw.db", roles=roles)


def _app(tmp_path: Path, data: dict[str, Any], **monitor: Any) -> Any:
    slot = ModelSlot(ModelVersion("v0", data["v0"]))
    slot.deploy(ModelVersion("v1", data["v1"]))
    return monitored_app(_settings(tmp_path), models=slot, monitor=MonitorSettings(**monitor),
                         reference=data["reference"], pepper=PEPPER, notifiers=[])


def _token(app: Any, role: str = "client") -> str:
    return str(app.state.tokens.create(name=role, role=role)[0])


def _alarm(level: Level, subject: str, kind: Kind = Kind.EXTRACTION) -> Alarm:
    return Alarm(kind=kind, level=level, subject_kind="token", subject=subject, risk=1.0,
                 summary="test alarm", time=1.0, evidence={"prada_w": 0.5})


@pytest.mark.slow
def test_extraction_over_http_is_detected_and_the_token_blocked(
        tmp_path: Path, data: dict[str, Any]) -> None:
    app = _app(tmp_path, data)
    benign, attacker = _token(app), _token(app)
    with running(app) as url:
        natural = data["natural"]
        honest = GatewayClient(url, benign)
        honest.predict_proba(natural[:300])
        thief = GatewayClient(url, attacker)
        with pytest.raises(PermissionError) as refused:
            extract_model(thief, JacobianAugmentation(seed_x=natural[:20], step=0.1),
                          budget=2000, eval_x=natural[:100], n_rounds=8, epochs=10)
        assert refused.value.args[0] == 403
        assert thief.n_queries < 1000 and thief.label_only > 0  # throttled before blocked
        assert thief.ask(natural[:1]).status_code == 403
        assert honest.ask(natural[:1]).status_code == 200
        app.state.monitor.flush()
    attacker_id = attacker.split("_")[1]
    found = app.state.incidents.list(kind="extraction")
    assert [(i.level, i.subject) for i in found] == [("block", attacker_id),
                                                     ("throttle", attacker_id)]
    assert found[0].actions[0] == {"action": "block", "ok": True,
                                   "detail": f"token {attacker_id} refused with 403 from "
                                             "its next request"}
    assert {a["action"] for a in found[1].actions} == {"label-only", "tighten-rate-limit"}
    # The block outlives a restart: it is restored from the open incident.
    again = _app(tmp_path, data)
    with running(again) as url:
        assert GatewayClient(url, attacker).ask(natural[:1]).status_code == 403


def test_playbook_actions_act_on_the_next_request(tmp_path: Path, data: dict[str, Any]) -> None:
    playbooks = Playbooks(extraction={Level.THROTTLE: ["label-only", "tighten-rate-limit"],
                                      Level.BLOCK: ["revoke-token"]},
                          drift={Level.ALERT: ["rollback-model"]}, tight_limit="3/minute")
    app = _app(tmp_path, data, playbooks=playbooks)
    token, other = _token(app), _token(app)
    x = data["natural"][:2]
    responder = app.state.monitor._sink
    with running(app) as url:
        client = GatewayClient(url, token)
        assert "probabilities" in client.ask(x).json()["outputs"][0]
        responder.handle(_alarm(Level.THROTTLE, token.split("_")[1]))
        answers = [client.ask(x) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert set(answers[0].json()["outputs"][0]) == {"label"}
        responder.handle(_alarm(Level.BLOCK, token.split("_")[1]))
        assert client.ask(x).status_code == 401  # revoked in the database
        assert GatewayClient(url, other).ask(x).json()["model_version"] == "v1"
        responder.handle(Alarm(kind=Kind.DRIFT, level=Level.ALERT, subject_kind="model",
                               subject="v1", risk=1.0, summary="drift", time=2.0))
        assert GatewayClient(url, other).ask(x).json()["model_version"] == "v0"
    drift = app.state.incidents.list(kind="drift")[0]
    assert drift.actions == [{"action": "rollback-model", "ok": True,
                              "detail": "rolled back; now serving v0"}]


def test_an_action_that_does_not_apply_is_recorded_as_skipped(
        tmp_path: Path, data: dict[str, Any]) -> None:
    app = _app(tmp_path, data, playbooks=Playbooks(
        extraction={Level.BLOCK: ["revoke-token", "block"]}))
    app.state.monitor._sink.handle(Alarm(kind=Kind.EXTRACTION, level=Level.BLOCK,
                                         subject_kind="client", subject="192.0.2.1", risk=1.0,
                                         summary="s", time=1.0))
    (incident,) = app.state.incidents.list()
    assert incident.actions[0]["ok"] is False and "skipped" in incident.actions[0]["detail"]
    assert incident.actions[1]["ok"] is True  # the next action still ran


def test_unknown_playbook_action_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        Playbooks(extraction={Level.BLOCK: ["nuke"]})


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "type": self.headers["Content-Type"],
                                    "json": json.loads(body)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/SECRET", handler
    server.shutdown()


def test_webhook_gets_slack_json_and_its_url_stays_out_of_logs(
        tmp_path: Path, data: dict[str, Any], receiver: tuple[str, type[_Receiver]],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    url, handler = receiver
    monkeypatch.setenv("BASTION_ALERT_WEBHOOK_URL", url)
    notifiers = notifiers_from(AlertSettings())
    assert [n.name for n in notifiers] == ["webhook"] and "SECRET" not in repr(notifiers)
    app = _app(tmp_path, data)
    app.state.monitor._sink._dispatcher = dispatcher = Dispatcher(notifiers)
    app.state.monitor._sink.handle(_alarm(Level.BLOCK, "abc<script>"))
    dispatcher.flush()
    (hit,) = handler.received
    assert hit["path"] == "/hooks/T000/SECRET" and hit["type"] == "application/json"
    assert hit["json"]["text"].startswith("[bastion] extraction incident #1: block token")
    assert "&lt;script&gt;" in hit["json"]["text"]  # Slack control characters escaped
    assert [b["type"] for b in hit["json"]["blocks"]] == ["header", "section"]
    handler.status = 500
    with caplog.at_level(logging.WARNING, logger="bastion.gateway.incidents"):
        app.state.monitor._sink.handle(_alarm(Level.BLOCK, "def"))
        dispatcher.flush()
    assert "alert via webhook for incident #2 failed" in caplog.text
    assert "SECRET" not in caplog.text and "hooks" not in caplog.text


def test_email_alert_reaches_a_local_smtp_server(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword


    class Inbox:
        messages: ClassVar[list[Any]] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append(envelope)
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"hunter2-smtp"
        return AuthResult(success=ok)

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        secret = tmp_path / "smtp-password"
        secret.write_text("hunter2-smtp\n")
        alerts = AlertSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                               smtp_sender="gw@example.test",
                               smtp_recipients=["sec@example.test"], smtp_username="gw",
                               smtp_password_file=secret, webhook_url_env="UNSET_FOR_TEST")
        (notifier,) = notifiers_from(alerts)
        assert isinstance(notifier, EmailNotifier) and "hunter2" not in repr(notifier)
        dispatcher = Dispatcher([notifier])
        with caplog.at_level(logging.DEBUG):
            dispatcher.submit(Incident(id=7, time=0.0, kind="extraction", level="block",
                                       subject_kind="token", subject="0123abcd", risk=1.0,
                                       summary="extraction suspected", evidence={"prada_w": 0.8},
                                       actions=[{"action": "block", "ok": True,
                                                 "detail": "refused"}], status="open"))
            dispatcher.flush()
        (mail,) = inbox.messages
        assert mail.mail_from == "gw@example.test" and mail.rcpt_tos == ["sec@example.test"]
        text = mail.content.decode()
        assert "Subject: [bastion] extraction incident #7: block token 0123abcd" in text
        assert "prada_w: 0.8" in text and "block: done refused" in text
        assert "hunter2" not in caplog.text
    finally:
        controller.stop()


def test_wrong_smtp_password_is_logged_without_the_password(
        caplog: pytest.LogCaptureFixture) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult


    class Inbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = _free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port, auth_require_tls=False,
                            authenticator=lambda *a: AuthResult(success=False, handled=False))
    controller.start()
    try:
        notifier = EmailNotifier(host="127.0.0.1", port=port, sender="a@b.test",
                                 recipients=("c@d.test",), username="gw",
                                 password=SecretStr("wrong-pass-xyz"), starttls=False)
        dispatcher = Dispatcher([notifier])
        with caplog.at_level(logging.WARNING):
            dispatcher.submit(Incident(id=1, time=0.0, kind="drift", level="alert",
                                       subject_kind="model", subject="v1", risk=1.0,
                                       summary="s", evidence={}, actions=[], status="open"))
            dispatcher.flush()
        assert "alert via email for incident #1 failed: SMTPAuthenticationError" in caplog.text
        assert "wrong-pass-xyz" not in caplog.text
    finally:
        controller.stop()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["incidents", *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_incidents_cli_lists_shows_and_closes(tmp_path: Path, data: dict[str, Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    app = _app(tmp_path, data)
    sink = app.state.monitor._sink
    sink.handle(_alarm(Level.THROTTLE, "aaaa"))
    sink.handle(_alarm(Level.BLOCK, "aaaa"))
    db = ("--database-url", f"sqlite:///{tmp_path}/gw.db")
    code, out, _ = _cli(capsys, "list", *db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("#2") and "block" in lines[0] and "token aaaa" in lines[0]
    assert lines[1].startswith("#1") and "label-only, tighten-rate-limit" in lines[1]
    _, out, _ = _cli(capsys, "show", "2", "--json", *db)
    assert json.loads(out)["actions"][0]["action"] == "block"
    _, out, _ = _cli(capsys, "show", "1", *db)
    assert "prada_w" in out and "tighten-rate-limit" in out
    code, _, err = _cli(capsys, "show", "99", *db)
    assert code == 2
    assert err.strip() == "bastion: error: no incident #99; see bastion incidents list"
    assert app.state.incidents.blocks() == {("token", "aaaa"): True}
    assert app.state.monitor.before("10.0.0.1", "aaaa").value == "block"
    code, _, err = _cli(capsys, "close", "2", *db)
    assert code == 0 and "closed incident #2" in err
    assert app.state.incidents.blocks() == {("token", "aaaa"): False}
    app.state.monitor._sync_blocks()  # what the worker does every block_sync_s
    assert app.state.monitor.before("10.0.0.1", "aaaa").value == "allow"
    assert _cli(capsys, "close", "99", *db)[0] == 2
    code, _, err = _cli(capsys, "list", "--database-url", f"sqlite:///{tmp_path}/gw.db-nothing")
    assert code == 2 and err.count("\n") == 1


class _Vault(BaseHTTPRequestHandler):
    """Answers KV v2 reads of secret/alerts as Vault does, for one token."""

    def do_GET(self) -> None:
        ok = (self.headers.get("X-Vault-Token") == "vault-root"
              and self.path == "/v1/secret/data/alerts")
        doc = {"data": {"data": {"hook": "http://127.0.0.1:9/hooks/FROM-VAULT",
                                 "smtp": "vault-smtp-pass"},
                        "metadata": {"version": 1, "deletion_time": "", "destroyed": False}}}
        body = json.dumps(doc if ok else {"errors": ["permission denied"]}).encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_alert_secrets_from_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("VAULT_TOKEN", "vault-root")
        alerts = AlertSettings(vault_addr=f"http://127.0.0.1:{server.server_address[1]}",
                               vault_path="secret/alerts", webhook_url_vault_field="hook",
                               smtp_password_vault_field="smtp", smtp_host="127.0.0.1",
                               smtp_username="gw", smtp_recipients=["a@b.test"])
        webhook, email = notifiers_from(alerts)
        assert isinstance(webhook, WebhookNotifier) and isinstance(email, EmailNotifier)
        assert webhook.url.get_secret_value().endswith("/hooks/FROM-VAULT")
        assert email.password is not None
        assert email.password.get_secret_value() == "vault-smtp-pass"
        assert "FROM-VAULT" not in repr(webhook) and "vault-smtp" not in repr(email)
        monkeypatch.setenv("VAULT_TOKEN", "wrong")
        with pytest.raises(ConfigError, match="could not read"):
            notifiers_from(alerts)
    finally:
        server.shutdown()


def test_a_database_that_is_gone_costs_the_record_not_the_response(
        tmp_path: Path, data: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy import text

    app = _app(tmp_path, data)
    sent: list[Incident] = []
    responder = app.state.monitor._sink
    responder._dispatcher = type("D", (), {"submit": staticmethod(sent.append)})()
    with app.state.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE gateway_incidents"))
    with caplog.at_level(logging.ERROR, logger="bastion.gateway.incidents"):
        responder.handle(_alarm(Level.BLOCK, "feedbeef"))
    assert app.state.monitor.before("10.0.0.1", "feedbeef").value == "block"  # still acted
    assert "could not store the extraction incident (OperationalError)" in caplog.text
    assert [i.status for i in sent] == ["unrecorded"]  # the alert still goes out
    app.state.monitor.close()


def test_a_block_holds_in_every_gateway_process_on_the_database(
        tmp_path: Path, data: dict[str, Any]) -> None:
    first = _app(tmp_path, data, block_sync_s=0.05)
    second = _app(tmp_path, data, block_sync_s=0.05)  # another worker, same database
    first.state.monitor._sink.handle(_alarm(Level.BLOCK, "c0ffee"))
    deadline = time.monotonic() + 5
    while second.state.monitor.before("10.0.0.2", "c0ffee").value != "block":
        assert time.monotonic() < deadline, "the other process never saw the block"
        time.sleep(0.02)
    (incident,) = first.state.incidents.list()
    first.state.incidents.close(incident.id)
    for app in (first, second):
        while app.state.monitor.before("10.0.0.2", "c0ffee").value != "allow":
            assert time.monotonic() < deadline, "closing the incident did not lift the block"
            time.sleep(0.02)
