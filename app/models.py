"""Every domain's tables, imported so that Alembic and the app see the whole schema."""

from app.audit.models import AuditEvent
from app.auth.models import ApiToken, School, User, UserSession
from app.checklists.models import ChecklistItem, ChecklistRun, ChecklistTemplate, ItemCompletion
from app.core.idempotency import IdempotentRequest
from app.escalation.models import Escalation, EscalationRule
from app.incidents.models import (
    Contact,
    Evidence,
    Incident,
    IncidentCounter,
    IncidentPerson,
    TimelineEntry,
)
from app.jobs.models import JobRun
from app.people.models import Person, RosterImport
from app.policies.models import PhoneExemption, Policy, PolicyAcknowledgement, PolicyVersion
from app.retention.models import RecordRetention, RetentionCheck, RetentionRule
from app.webhooks.models import DeliveryAttempt, OutboxMessage, WebhookEndpoint

__all__ = [
    "ApiToken",
    "AuditEvent",
    "ChecklistItem",
    "ChecklistRun",
    "ChecklistTemplate",
    "Contact",
    "DeliveryAttempt",
    "Escalation",
    "EscalationRule",
    "Evidence",
    "IdempotentRequest",
    "Incident",
    "IncidentCounter",
    "IncidentPerson",
    "ItemCompletion",
    "JobRun",
    "OutboxMessage",
    "Person",
    "PhoneExemption",
    "Policy",
    "PolicyAcknowledgement",
    "PolicyVersion",
    "RecordRetention",
    "RetentionCheck",
    "RetentionRule",
    "RosterImport",
    "School",
    "TimelineEntry",
    "User",
    "UserSession",
    "WebhookEndpoint",
]
