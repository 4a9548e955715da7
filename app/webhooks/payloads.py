"""Thin payloads: ids, references, severities, rule keys, actions and a link. Never names,
descriptions or evidence: children's data stays in Haven, where access is audited.

Every event's payload is built here. A payload stores the link as a `path` in Haven; delivery
makes it the full `url` receivers get, with HAVEN_BASE_URL (`for_receiver`)."""

from datetime import datetime

from app.webhooks.models import EndpointFormat, EventType


def incident_escalated(*, incident, rules: list) -> dict:
    return {
        "incident_id": incident.id,
        "reference": incident.reference,
        "severity": incident.severity.value,
        "rules": [rule.key for rule in rules],
        "required_actions": [action for rule in rules for action in rule.required_actions],
        "path": f"/incidents/{incident.id}",
    }


def incident_updated(*, incident) -> dict:
    return {
        "incident_id": incident.id,
        "reference": incident.reference,
        "status": incident.status.value,
        "severity": incident.severity.value,
        "path": f"/incidents/{incident.id}",
    }


def checklist_overdue(*, run) -> dict:
    return {
        "run_id": run.id,
        "template_id": run.template_id,
        "due_at": run.due_at.isoformat(),
        "path": f"/checklists/runs/{run.id}",
    }


def policy_review_due(*, policy, version) -> dict:
    return {
        "policy_id": policy.id,
        "version": version.number,
        "review_due": version.review_due.isoformat(),
        "path": f"/policies/{policy.id}",
    }


def webhook_test() -> dict:
    return {"message": "A test from Haven."}


def envelope(event_type: EventType, data: dict, at: datetime) -> dict:
    return {"type": event_type.value, "timestamp": at.isoformat(), "data": data}


def for_receiver(event: dict, base_url: str) -> dict:
    """The event as receivers get it: the stored `path` becomes `url`, in the same place, with
    `base_url` before it. A message stored with its `url` already passes unchanged."""
    data = event.get("data", {})
    if "path" not in data:
        return event
    base = base_url.rstrip("/")
    linked = {}
    for key, value in data.items():
        if key == "path":
            linked["url"] = base + value
        else:
            linked[key] = value
    return {**event, "data": linked}


def summary_line(event: dict) -> str:
    data = event.get("data", {})
    if event.get("type") == EventType.incident_escalated.value:
        actions = " ".join(data.get("required_actions", []))
        return (
            f"Escalated: {data.get('reference')} ({data.get('severity')}). "
            f"Rules: {', '.join(data.get('rules', []))}. {actions}"
        ).strip()
    return f"{event.get('type')}: {data.get('reference', '')}".strip()


def formatted_body(event: dict, endpoint_format: EndpointFormat) -> dict:
    """The same thin content, shaped for Slack or Microsoft Teams when the endpoint asks."""
    if endpoint_format == EndpointFormat.slack:
        url = event.get("data", {}).get("url")
        return {"text": summary_line(event) + (f" <{url}|Open in Haven>" if url else "")}
    if endpoint_format == EndpointFormat.teams:
        url = event.get("data", {}).get("url")
        card = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": summary_line(event)[:120],
            "text": summary_line(event),
        }
        if url:
            card["potentialAction"] = [
                {
                    "@type": "OpenUri",
                    "name": "Open in Haven",
                    "targets": [{"os": "default", "uri": url}],
                }
            ]
        return card
    return event
