"""Alerts for incidents: a webhook (Slack-compatible JSON) and e-mail over SMTP.

Secrets (the webhook URL, which embeds its own credential, and the SMTP password) are
:class:`pydantic.SecretStr` read by :func:`bastion.gateway.secrets.read_secret` from an
environment variable, a file or Vault; they never appear in logs or error messages.
An alert carries the incident's facts and numbers, never a client's input.

:class:`Dispatcher` sends from its own thread, so a slow mail server delays nobody; a
failed send is logged (the notifier's name and the error type, nothing more) and the
incident stays in the database either way.
"""

from __future__ import annotations

import logging
import os
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bastion.errors import ConfigError
from bastion.gateway.incidents.store import Incident
from bastion.gateway.secrets import read_secret

__all__ = ["AlertSettings", "Dispatcher", "EmailNotifier", "Notifier", "WebhookNotifier",
           "describe", "notifiers_from"]

log = logging.getLogger("bastion.gateway.incidents")


class Notifier(Protocol):
    """Sends one incident somewhere; raises on failure."""

    @property
    def name(self) -> str: ...

    def send(self, incident: Incident) -> None: ...


def describe(incident: Incident) -> tuple[str, str]:
    """A one-line title and a plain-text body for an incident."""
    title = (f"[bastion] {incident.kind} incident #{incident.id}: {incident.level} "
             f"{incident.subject_kind} {incident.subject}")
    evidence = "\n".join(f"  {k}: {v:g}" for k, v in sorted(incident.evidence.items()))
    actions = "\n".join(f"  {a['action']}: {'done' if a['ok'] else 'FAILED'} {a['detail']}"
                        for a in incident.actions) or "  none (alert only)"
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(incident.time))
    body = (f"{incident.summary}\n\ntime: {when}\nrisk: {incident.risk:.2f}\n"
            f"evidence:\n{evidence}\nactions:\n{actions}\n")
    return title, body


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class WebhookNotifier:
    """POSTs ``{"text": ..., "blocks": [...]}`` (Slack incoming-webhook JSON)."""

    url: SecretStr = field(repr=False)
    timeout_s: float = 5.0
    name: str = "webhook"

    def __post_init__(self) -> None:
        scheme = self.url.get_secret_value().split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ConfigError("the alert webhook URL must start with http:// or https://")

    def send(self, incident: Incident) -> None:
        title, body = describe(incident)
        payload = {
            "text": _slack_escape(title),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                {"type": "section", "text": {"type": "mrkdwn",
                                             "text": "```" + _slack_escape(body) + "```"}},
            ],
        }
        response = httpx.post(self.url.get_secret_value(), json=payload,
                              timeout=self.timeout_s, follow_redirects=False)
        if response.status_code >= 300:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}")


@dataclass(frozen=True)
class EmailNotifier:
    """Sends a plain-text mail through SMTP (STARTTLS and login when configured)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    starttls: bool = True
    timeout_s: float = 10.0
    name: str = "email"

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ConfigError("e-mail alerts need at least one recipient")
        if self.username is not None and self.password is None:
            raise ConfigError("an SMTP username needs a password (from env, file or Vault)")

    def send(self, incident: Incident) -> None:
        title, body = describe(incident)
        message = EmailMessage()
        message["Subject"] = title
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password.get_secret_value())
            smtp.send_message(message)


class Dispatcher:
    """Delivers incidents to every notifier from a background thread."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self._notifiers = tuple(notifiers)
        self._queue: queue.Queue[Incident | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bastion-alerts", daemon=True)
        self._thread.start()

    def submit(self, incident: Incident) -> None:
        if self._notifiers:
            self._queue.put(incident)

    def flush(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            incident = self._queue.get()
            try:
                if incident is None:
                    return
                for notifier in self._notifiers:
                    try:
                        notifier.send(incident)
                    except Exception as err:  # any transport error; the secret stays out
                        log.warning("alert via %s for incident #%d failed: %s", notifier.name,
                                    incident.id, type(err).__name__)
            finally:
                self._queue.task_done()


class AlertSettings(BaseModel):
    """The ``[monitor.alerts]`` TOML table: where alerts go and where their secrets are.

    The webhook is on when its URL is in ``webhook_url_file``, the ``webhook_url_env``
    variable or (with ``vault_addr`` and ``vault_path``) the Vault KV v2 field
    ``webhook_url_vault_field``; e-mail is on when ``smtp_host`` is set, its password
    read the same way (Vault field ``smtp_password_vault_field``, else file, else env).
    """

    model_config = ConfigDict(extra="forbid")

    webhook_url_env: str = "BASTION_ALERT_WEBHOOK_URL"
    webhook_url_file: Path | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_sender: str = "bastion@localhost"
    smtp_recipients: list[str] = Field(default_factory=list)
    smtp_username: str | None = None
    smtp_password_env: str = "BASTION_SMTP_PASSWORD"
    smtp_password_file: Path | None = None
    smtp_starttls: bool = True
    vault_addr: str | None = None
    vault_path: str | None = None
    vault_token_env: str = "VAULT_TOKEN"
    webhook_url_vault_field: str | None = None
    smtp_password_vault_field: str | None = None

    def secret(self, what: str, *, env: str, file: Path | None,
               vault_field: str | None) -> SecretStr:
        """One secret: from Vault when this one has a Vault field, else file, else env."""
        if vault_field and self.vault_addr and self.vault_path:
            return read_secret(what, vault_addr=self.vault_addr, vault_path=self.vault_path,
                               vault_field=vault_field, vault_token_env=self.vault_token_env)
        return read_secret(what, env=env, file=file)


def notifiers_from(alerts: AlertSettings) -> list[Notifier]:
    """The notifiers the settings turn on, with their secrets read now."""
    out: list[Notifier] = []
    in_vault = bool(alerts.vault_addr and alerts.vault_path and alerts.webhook_url_vault_field)
    if in_vault or alerts.webhook_url_file is not None or os.environ.get(alerts.webhook_url_env):
        out.append(WebhookNotifier(alerts.secret(
            "alert webhook URL", env=alerts.webhook_url_env, file=alerts.webhook_url_file,
            vault_field=alerts.webhook_url_vault_field)))
    if alerts.smtp_host:
        password = None
        if alerts.smtp_username is not None:
            password = alerts.secret("SMTP password", env=alerts.smtp_password_env,
                                     file=alerts.smtp_password_file,
                                     vault_field=alerts.smtp_password_vault_field)
        out.append(EmailNotifier(host=alerts.smtp_host, port=alerts.smtp_port,
                                 sender=alerts.smtp_sender,
                                 recipients=tuple(alerts.smtp_recipients),
                                 username=alerts.smtp_username, password=password,
                                 starttls=alerts.smtp_starttls))
    return out
