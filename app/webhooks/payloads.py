"""Thin payloads: ids, references, severities, rule keys, actions and a link. Never names,
descriptions or evidence: children's data stays in Haven, where access is audited."""

from datetime import datetime

from app.webhooks.models import EndpointFormat, EventType


def incident_escalated(*, incident, rules: list, base_url: str) -> dict:
    return {
        "incident_id": incident.id,
        "reference": incident.reference,
        "severity": incident.severity.value,
        "rules": [rule.key for rule in rules],
        "required_actions": [action for rule in rules for action in rule.required_actions],
        "url": f"{base_url.rstrip('/')}/incidents/{incident.id}",
    }


def envelope(event_type: EventType, data: dict, at: datetime) -> dict:
    return {"type": event_type.value, "timestamp": at.isoformat(), "data": data}


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
