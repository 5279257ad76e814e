"""Webhook alerts of the monitor stage (level 3): one POST per receiver when a report alerts.

Receivers come from config.json (`alerts`), their URLs only from the environment variable each
one names, because a webhook URL is a bearer secret: it is never written to a file or a log
line (lines name the variable and the host). Credentials in the URL (`https://user:pass@host/`)
are sent as an `Authorization: Basic` header, and scrubbed from every message like the rest. Delivery is retried with exponential backoff on
the failures that can pass (network errors, timeouts, 5xx, 429); a receiver that already got
the same set of violations within the cooldown is not sent them again, so a monitor scheduled
every few minutes does not page every few minutes for one drift. Network problems never raise:
a monitor run must still write its report when the alerting channel is down.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from mlops_runtime import __version__
from mlops_runtime.config import AlertingConfig, AlertReceiver
from mlops_runtime.monitor_report import MonitorReport, Violation, read_report

OutcomeStatus = Literal["delivered", "failed", "suppressed", "skipped"]

KINDS = ("webhook", "slack")
SEVERITY_RANK = {"ok": 0, "warning": 1, "alert": 2}
DEFAULT_URL_ENV = "ALERT_WEBHOOK_URL"
# Slack cuts a message's text at 40 000 characters but renders anything past a few thousand
# as a wall; the rest is in "violations" for receivers that want it.
TEXT_LIMIT = 3000
STATE_VERSION = 1
USER_AGENT = f"mlops-runtime/{__version__} (monitor alerts)"
# Bound on any single wait, Retry-After included: a receiver asking for an hour must not hold
# the monitor stage (and its scheduler slot) for an hour.
MAX_DELAY_S = 60.0
RESPONSE_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class AlertOutcome:
    """What happened to one receiver for one report."""

    receiver: str  # the receiver's url_env: the name an operator can look up, never the URL
    status: OutcomeStatus
    attempts: int
    http_status: int | None
    dedup_key: str


@dataclass(frozen=True)
class AlertSettings:
    """config.json's `alerting` block, with the defaults of missing or unusable values."""

    cooldown_s: float = 3600.0
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0

    @classmethod
    def from_mapping(cls, settings: AlertingConfig | Mapping[str, Any]) -> AlertSettings:
        if isinstance(settings, AlertingConfig):
            return cls(cooldown_s=_non_negative(settings.cooldown_s, cls().cooldown_s))
        defaults = cls()
        return cls(
            cooldown_s=_non_negative(settings.get("cooldown_s"), defaults.cooldown_s),
            retries=int(_non_negative(settings.get("retries"), defaults.retries)),
            backoff_s=_non_negative(settings.get("backoff_s"), defaults.backoff_s),
            # A zero timeout would make every socket non-blocking and every send fail.
            timeout_s=_non_negative(settings.get("timeout_s"), defaults.timeout_s) or 0.1,
        )


@dataclass(frozen=True)
class _Receiver:
    kind: str
    url_env: str
    name: str
    min_severity: str

    @property
    def label(self) -> str:
        named = f" [{self.name}]" if self.name else ""
        return f"{self.kind} {self.url_env}{named}"

    @property
    def state_key(self) -> str:
        # Two entries reading the same variable post to the same URL: one cooldown for both.
        return self.name or self.url_env


@dataclass(frozen=True)
class _Attempt:
    http_status: int | None
    error: str  # empty when delivered
    retryable: bool
    retry_after: float | None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def send_alerts(
    report: MonitorReport | Mapping[str, Any],
    alerts: Sequence[AlertReceiver | Mapping[str, Any]],
    settings: AlertingConfig | Mapping[str, Any],
    state_path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    now: float | None = None,
    log: Callable[[str], None] = _stderr,
    sleep: Callable[[float], None] = time.sleep,
) -> list[AlertOutcome]:
    """Send `report` to every receiver whose severity it reaches; one outcome per such receiver.

    Receivers the report does not concern (an "ok" report, a "warning" for a receiver that
    waits for "alert") get no outcome and no log line: nothing was due.
    """
    report = read_report(report)
    env = os.environ if environ is None else environ
    current = time.time() if now is None else now
    options = AlertSettings.from_mapping(settings)
    status = _text(report.status, "ok")
    receivers = [_receiver(entry) for entry in alerts]
    due = [r for r in receivers if _reaches(status, r.min_severity)]
    if not due:
        return []
    key = dedup_key(report)
    payload = build_payload(report, key)
    body = json.dumps(payload, default=str, ensure_ascii=False).encode("utf-8")
    state = _load_state(state_path, log)
    outcomes: list[AlertOutcome] = []
    for receiver in due:
        outcome = _deliver_one(receiver, body, key, options, state, env, current, log, sleep)
        if outcome.status == "delivered":
            # Saved after each delivery, so a run killed by its scheduler while a later
            # receiver retries still remembers the ones already paged.
            state.setdefault(receiver.state_key, {})[key] = {
                "sent_at": current,
                "model": _text(report.name, ""),
            }
            _save_state(state_path, _pruned(state, current, options.cooldown_s), log)
        outcomes.append(outcome)
    return outcomes


def dedup_key(report: MonitorReport | Mapping[str, Any]) -> str:
    """sha256 of the model name, the report's status and its (check, feature) pairs at that status.

    Only the violations at the report's own severity count, so an alert does not become "new"
    because a warning came or went beside it; the status is part of the key so that a warning
    that escalates to an alert on the same check is sent again.
    """
    report = read_report(report)
    status = _text(report.status, "")
    pairs = sorted(
        {
            (_text(v.check, ""), "" if v.feature is None else v.feature)
            for v in report.violations
            if _text(v.severity, "") == status
        }
    )
    material = json.dumps([_text(report.name, ""), status, pairs], separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def build_payload(report: MonitorReport | Mapping[str, Any], key: str) -> dict[str, Any]:
    """Slack's incoming webhooks read `text` and ignore the rest; generic receivers get it all."""
    report = read_report(report)
    return {
        "text": summary_text(report),
        "model": report.name,
        "status": report.status,
        "generated_at": report.generated_at,
        "violations": [v.to_json() for v in report.violations],
        "dedup_key": key,
    }


def summary_text(report: MonitorReport | Mapping[str, Any], limit: int = TEXT_LIMIT) -> str:
    """One line: model, status, then each violation (alerts first), cut with a count of the rest."""
    report = read_report(report)
    violations = sorted(
        report.violations, key=lambda v: -SEVERITY_RANK.get(_text(v.severity, ""), 0)
    )
    head = _one_line(
        f"mlops monitor: {_text(report.name, '?')} is {_text(report.status, '?').upper()}"
    )
    if not violations:
        return head[:limit]
    head += f" ({len(violations)} violation{'s' if len(violations) != 1 else ''}): "
    parts = [_describe(v) for v in violations]
    text = head
    for index, part in enumerate(parts):
        rest = len(parts) - index - 1
        candidate = text + ("; " if index else "") + part
        # Reserve room for the tail that would follow if a later part does not fit.
        tail = f"; ... and {rest} more" if rest else ""
        if len(candidate) + len(tail) > limit:
            return (text + f"{'; ' if index else ''}... and {len(parts) - index} more")[:limit]
        text = candidate
    return text


def _describe(violation: Violation) -> str:
    check = _text(violation.check, "?")
    if check.startswith("rollback") or check == "feature_freshness":
        # What the monitor did (or could not do), and an age in seconds or a view never
        # materialised, read better as the sentence it wrote.
        return _one_line(f"{check}: {_text(violation.description, '')}")
    feature = violation.feature
    where = f"{check}[{feature}]" if feature is not None else check
    return _one_line(
        f"{where} {_number(violation.observed)} vs threshold "
        f"{_number(violation.threshold)} ({_text(violation.severity, '?')})"
    )


def _text(value: str | None, absent: str) -> str:
    """A text attribute as the alerts show it; `absent` when the report does not say."""
    return absent if value is None else value


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _receiver(entry: AlertReceiver | Mapping[str, Any]) -> _Receiver:
    if isinstance(entry, AlertReceiver):
        return _Receiver(entry.kind, entry.url_env, entry.name, entry.min_severity)
    return _Receiver(
        kind=str(entry.get("kind") or "webhook"),
        url_env=str(entry.get("url_env") or DEFAULT_URL_ENV),
        name=str(entry.get("name") or ""),
        min_severity=str(entry.get("min_severity") or "alert"),
    )


def _reaches(status: str, min_severity: str) -> bool:
    rank = SEVERITY_RANK.get(status, 0)
    return rank > 0 and rank >= SEVERITY_RANK.get(min_severity, SEVERITY_RANK["alert"])


def _deliver_one(
    receiver: _Receiver,
    body: bytes,
    key: str,
    options: AlertSettings,
    state: dict[str, dict[str, dict[str, Any]]],
    env: Mapping[str, str],
    now: float,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
) -> AlertOutcome:
    def outcome(status: OutcomeStatus, attempts: int, http_status: int | None) -> AlertOutcome:
        return AlertOutcome(receiver.url_env, status, attempts, http_status, key)

    if receiver.kind not in KINDS:
        log(f"alert: {receiver.label}: skipped (unknown kind; expected one of {', '.join(KINDS)})")
        return outcome("skipped", 0, None)
    url = env.get(receiver.url_env, "").strip()
    if not url:
        log(f"alert: {receiver.label}: skipped ({receiver.url_env} is not set)")
        return outcome("skipped", 0, None)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _valid_port(url):
        log(f"alert: {receiver.label}: skipped ({receiver.url_env} is not an http(s) URL)")
        return outcome("skipped", 0, None)
    where = f"alert: {receiver.label} -> {parts.hostname}"

    sent_at = state.get(receiver.state_key, {}).get(key, {}).get("sent_at")
    if isinstance(sent_at, int | float) and 0 <= now - sent_at < options.cooldown_s:
        log(
            f"{where}: suppressed (same violations delivered {now - sent_at:.0f} s ago, "
            f"cooldown {options.cooldown_s:.0f} s, key {key[:12]})"
        )
        return outcome("suppressed", 0, None)

    total = options.retries + 1
    for attempt in range(1, total + 1):
        result = _post(url, body, options.timeout_s)
        if not result.error:
            log(f"{where}: delivered (attempt {attempt}/{total}, {result.http_status})")
            return outcome("delivered", attempt, result.http_status)
        if not result.retryable or attempt == total:
            final = "not retried" if attempt < total else "no retries left"
            log(f"{where}: attempt {attempt}/{total} failed ({result.error}), {final}")
            log(f"{where}: failed (attempt {attempt}/{total}, {result.error})")
            return outcome("failed", attempt, result.http_status)
        delay = _delay(options.backoff_s, attempt, result.retry_after)
        log(f"{where}: attempt {attempt}/{total} failed ({result.error}), retrying in {delay:g} s")
        sleep(delay)
    raise AssertionError("unreachable: the loop returns on its last attempt")


def _valid_port(url: str) -> bool:
    try:
        urlsplit(url).port  # noqa: B018 - the property parses the port and raises if malformed
    except ValueError:
        return False
    return True


def _delay(backoff_s: float, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_DELAY_S)
    return float(min(backoff_s * 2 ** (attempt - 1), MAX_DELAY_S))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without its body; a webhook that redirects is
    # misconfigured, and following it would only hide that.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _without_credentials(url: str) -> tuple[str, str | None]:
    """The URL without its `user:password@`, and the Authorization header they make.

    urllib hands the userinfo to the socket as part of the host name (a lookup that fails),
    so a receiver behind basic authentication, whose URL carries it as curl and requests
    take it, was never reached."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return bare, "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _post(url: str, body: bytes, timeout_s: float) -> _Attempt:
    target, authorization = _without_credentials(url)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(target, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            response.read(RESPONSE_READ_LIMIT)
            return _Attempt(int(response.status), "", False, None)
    except urllib.error.HTTPError as err:
        code = int(err.code)
        err.close()
        retryable = code == 429 or code >= 500
        retry_after = _retry_after(err.headers.get("Retry-After")) if retryable else None
        return _Attempt(code, f"HTTP {code}", retryable, retry_after)
    except urllib.error.URLError as err:
        return _Attempt(None, _scrub(_reason(err.reason), url), True, None)
    except (TimeoutError, OSError, http.client.HTTPException) as err:
        return _Attempt(None, _scrub(_reason(err), url), True, None)
    except ValueError as err:
        # http.client rejects some malformed URLs only when it opens them; no retry helps.
        return _Attempt(None, _scrub(_reason(err), url), False, None)


def _reason(err: object) -> str:
    if isinstance(err, BaseException):
        detail = getattr(err, "strerror", None) or str(err)
        return f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    return str(err)


def _scrub(message: str, url: str) -> str:
    """Exception texts sometimes quote the URL or a piece of it; none of it may reach a log."""
    parts = urlsplit(url)
    secrets = [url, parts.netloc, parts.path, parts.query, parts.fragment]
    for credential in (parts.username, parts.password):
        if credential:
            secrets += [credential, unquote(credential)]
    for secret in sorted((s for s in secrets if len(s) > 1), key=len, reverse=True):
        message = message.replace(secret, "<redacted>")
    return message


def _retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form: an HTTP date would need the receiver's clock to agree with
    # ours, and the exponential backoff is a fine fallback.
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _non_negative(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return float(default)
    return float(value)


def _load_state(path: Path, log: Callable[[str], None]) -> dict[str, dict[str, dict[str, Any]]]:
    """The receivers' last deliveries; an unreadable file counts as none (worst case: a resend)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        log(f"alert: state file {path} cannot be read ({type(err).__name__}); starting empty")
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        log(f"alert: state file {path} is not valid JSON; starting empty")
        return {}
    sent = data.get("sent") if isinstance(data, dict) else None
    if not isinstance(sent, dict):
        log(f"alert: state file {path} has an unknown layout; starting empty")
        return {}
    return {
        str(receiver): {
            str(k): dict(entry) for k, entry in entries.items() if isinstance(entry, dict)
        }
        for receiver, entries in sent.items()
        if isinstance(entries, dict)
    }


def _pruned(
    state: dict[str, dict[str, dict[str, Any]]], now: float, cooldown_s: float
) -> dict[str, dict[str, dict[str, Any]]]:
    # Entries past the cooldown suppress nothing; dropping them keeps the file small for good.
    kept: dict[str, dict[str, dict[str, Any]]] = {}
    for receiver, entries in state.items():
        live = {
            k: e
            for k, e in entries.items()
            if isinstance(e.get("sent_at"), int | float) and now - e["sent_at"] < cooldown_s
        }
        if live:
            kept[receiver] = live
    return kept


def _save_state(
    path: Path, state: dict[str, dict[str, dict[str, Any]]], log: Callable[[str], None]
) -> None:
    """Replace the file in one rename, so a concurrent reader never sees half of it."""
    document = {"version": STATE_VERSION, "sent": state}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    except OSError as err:
        # The alert went out; losing its record only risks one duplicate on the next run.
        log(f"alert: state file {path} cannot be written ({type(err).__name__}: {err.strerror})")
