"""Checklist templates, runs and completions. The only module that queries checklist tables."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case
from sqlmodel import Session, and_, col, func, or_, select

from app.audit.service import Actor, record_event
from app.auth.models import Role, User
from app.checklists.library import SHIPPED_TEMPLATES, ShippedTemplate
from app.checklists.models import (
    ChecklistItem,
    ChecklistPurpose,
    ChecklistRun,
    ChecklistTemplate,
    ChecklistTemplateCreate,
    ItemCompletion,
    Recurrence,
    RunReason,
    RunStatus,
)
from app.core.db import get_for_school
from app.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from app.core.types import utcnow

NEW_STAFF_DAYS = 30  # how long a newcomer has for their conduct checklist
RECURRING_DAYS = 30  # how long a yearly or policy-driven run stays open
YEAR = timedelta(days=365)

# Templates -----------------------------------------------------------------------------------


def install_shipped_templates(
    *, session: Session, school_id: int, shipped: list[ShippedTemplate] = SHIPPED_TEMPLATES
) -> int:
    """Add the shipped templates a school lacks (by key); never touches ones it has."""
    have = set(
        session.exec(
            select(ChecklistTemplate.key).where(ChecklistTemplate.school_id == school_id)
        ).all()
    )
    added = 0
    for template_data in shipped:
        if template_data.key in have:
            continue
        template = ChecklistTemplate(
            school_id=school_id,
            key=template_data.key,
            title=template_data.title,
            description=template_data.description,
            purpose=template_data.purpose,
            source=template_data.source,
            recurrence=template_data.recurrence,
            assign_to_new_staff=template_data.assign_to_new_staff,
            policy_kind=template_data.policy_kind,
        )
        session.add(template)
        session.flush()
        for position, item in enumerate(template_data.items, start=1):
            session.add(
                ChecklistItem(
                    template_id=template.id,
                    position=position,
                    text=item.text,
                    guidance=item.guidance,
                    required=item.required,
                    note_prompt=item.note_prompt,
                )
            )
        added += 1
    session.flush()
    return added


@dataclass
class TemplateWithItems:
    template: ChecklistTemplate
    items: list[ChecklistItem]


def list_templates(
    *, session: Session, school_id: int, purposes: set[ChecklistPurpose] | None = None
) -> list[TemplateWithItems]:
    """Active templates with their items, in two queries."""
    query = select(ChecklistTemplate).where(
        ChecklistTemplate.school_id == school_id, ChecklistTemplate.is_active.is_(True)
    )
    if purposes:
        query = query.where(col(ChecklistTemplate.purpose).in_(purposes))
    templates = session.exec(query.order_by(ChecklistTemplate.title, ChecklistTemplate.id)).all()
    items = _items_of(session, [t.id for t in templates])
    return [TemplateWithItems(t, items.get(t.id, [])) for t in templates]


def _items_of(session: Session, template_ids: list[int]) -> dict[int, list[ChecklistItem]]:
    grouped: dict[int, list[ChecklistItem]] = defaultdict(list)
    if template_ids:
        rows = session.exec(
            select(ChecklistItem)
            .where(col(ChecklistItem.template_id).in_(template_ids), ChecklistItem.run_id.is_(None))
            .order_by(ChecklistItem.template_id, ChecklistItem.position)
        ).all()
        for item in rows:
            grouped[item.template_id].append(item)
    return grouped


def get_template(*, session: Session, school_id: int, template_id: int) -> ChecklistTemplate:
    return get_for_school(session, ChecklistTemplate, template_id, school_id, "checklist")


def create_template(
    *, session: Session, school_id: int, data: ChecklistTemplateCreate, actor: Actor
) -> ChecklistTemplate:
    lines = [line.strip() for line in data.items if line.strip()]
    if not lines:
        raise InvalidInput(
            "A checklist needs at least one item.",
            errors=[{"field": "items", "message": "at least one item is required"}],
        )
    too_long = [n for n, line in enumerate(lines, start=1) if len(line) > 300]
    if too_long:
        raise InvalidInput(
            f"Item {too_long[0]} is longer than 300 characters.",
            errors=[{"field": "items", "message": f"item {n} is too long"} for n in too_long],
        )
    key = f"custom-{utcnow().strftime('%Y%m%d%H%M%S%f')}"
    template = ChecklistTemplate(
        school_id=school_id,
        key=key,
        title=data.title.strip(),
        description=data.description.strip(),
        purpose=data.purpose,
        recurrence=data.recurrence,
        source="Written by the school",
    )
    session.add(template)
    session.flush()
    for position, line in enumerate(lines, start=1):
        session.add(ChecklistItem(template_id=template.id, position=position, text=line))
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="checklist.template_created",
        school_id=school_id,
        entity_type="checklist_template",
        entity_id=template.id,
        detail={"items": len(lines)},
    )
    return template


# Giving checklists to people -----------------------------------------------------------------


@dataclass
class Assignment:
    created: list[ChecklistRun] = field(default_factory=list)
    skipped: int = 0  # people who already had an unfinished run of the template


def assign(
    *,
    session: Session,
    school_id: int,
    template_id: int,
    user_ids: list[int],
    roles: list[Role],
    due_at: datetime | None,
    actor: Actor,
    reason: RunReason = RunReason.assigned,
) -> Assignment:
    """Give a template to everyone with `roles` and to the named users."""
    template = get_template(session=session, school_id=school_id, template_id=template_id)
    if not template.is_active:
        raise InvalidInput("This checklist is archived and cannot be given to anyone.")
    if template.purpose == ChecklistPurpose.incident:
        raise InvalidInput("An incident playbook is attached to incidents, not given to people.")
    if due_at is not None and due_at <= utcnow():
        raise InvalidInput(
            "The due date must be in the future.",
            errors=[{"field": "due_at", "message": "must be in the future"}],
        )
    if not user_ids and not roles:
        raise InvalidInput("Choose at least one role or person to give the checklist to.")
    recipients = _recipients(session, school_id, user_ids, roles)
    result = Assignment()
    busy = _users_with_unfinished_run(session, template.id, [u.id for u in recipients])
    now = utcnow()
    for user in recipients:
        if user.id in busy:
            result.skipped += 1
            continue
        run = ChecklistRun(
            school_id=school_id,
            template_id=template.id,
            assignee_id=user.id,
            reason=reason,
            due_at=due_at,
            created_at=now,
            updated_at=now,
            created_by_id=actor.user_id,
        )
        session.add(run)
        result.created.append(run)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="checklist.assigned",
        school_id=school_id,
        entity_type="checklist_template",
        entity_id=template.id,
        detail={
            "reason": reason.value,
            "runs": len(result.created),
            "skipped": result.skipped,
            "roles": sorted(r.value for r in roles),
        },
    )
    return result


def _recipients(
    session: Session, school_id: int, user_ids: list[int], roles: list[Role]
) -> list[User]:
    named = set(user_ids)
    query = select(User).where(User.school_id == school_id, User.is_active.is_(True))
    conditions = []
    if named:
        conditions.append(col(User.id).in_(named))
    if roles:
        conditions.append(col(User.role).in_(roles))
    users = session.exec(query.where(or_(*conditions)).order_by(User.id)).all()
    missing = named - {u.id for u in users}
    if missing:
        raise InvalidInput(
            "Some of the chosen people are not active accounts of this school.",
            errors=[
                {"field": "user_ids", "message": f"unknown or inactive: {i}"}
                for i in sorted(missing)
            ],
        )
    return list(users)


def _users_with_unfinished_run(session: Session, template_id: int, user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    return set(
        session.exec(
            select(ChecklistRun.assignee_id).where(
                ChecklistRun.template_id == template_id,
                col(ChecklistRun.assignee_id).in_(user_ids),
                ChecklistRun.completed_at.is_(None),
            )
        ).all()
    )


def _templates_where(session: Session, school_id: int, *conditions) -> list[ChecklistTemplate]:
    return list(
        session.exec(
            select(ChecklistTemplate).where(
                ChecklistTemplate.school_id == school_id,
                ChecklistTemplate.is_active.is_(True),
                *conditions,
            )
        ).all()
    )


def give_new_staff_checklists(*, session: Session, user: User, actor: Actor) -> int:
    """A new account gets every template marked for new staff, due in 30 days."""
    templates = _templates_where(
        session, user.school_id, ChecklistTemplate.assign_to_new_staff.is_(True)
    )
    due_at = utcnow() + timedelta(days=NEW_STAFF_DAYS)
    for template in templates:
        assign(
            session=session,
            school_id=user.school_id,
            template_id=template.id,
            user_ids=[user.id],
            roles=[],
            due_at=due_at,
            actor=actor,
            reason=RunReason.new_staff,
        )
    return len(templates)


def issue_yearly_runs(*, session: Session, school_id: int, now: datetime, actor: Actor) -> int:
    """Give a new run to everyone whose last run of a yearly template began a year ago."""
    created = 0
    for template in _templates_where(
        session, school_id, ChecklistTemplate.recurrence == Recurrence.yearly
    ):
        latest = session.exec(
            select(ChecklistRun.assignee_id, func.max(ChecklistRun.created_at))
            .join(User, User.id == ChecklistRun.assignee_id)
            .where(ChecklistRun.template_id == template.id, User.is_active.is_(True))
            .group_by(ChecklistRun.assignee_id)
        ).all()
        due = [user_id for user_id, started in latest if started <= now - YEAR]
        if due:
            created += len(
                assign(
                    session=session,
                    school_id=school_id,
                    template_id=template.id,
                    user_ids=due,
                    roles=[],
                    due_at=now + timedelta(days=RECURRING_DAYS),
                    actor=actor,
                    reason=RunReason.yearly,
                ).created
            )
    return created


def reissue_for_policy(*, session: Session, school_id: int, policy_kind: str, actor: Actor) -> int:
    """A new version of a policy: everyone works through the checklists linked to it again."""
    created = 0
    for template in _templates_where(
        session, school_id, ChecklistTemplate.policy_kind == policy_kind
    ):
        created += len(
            assign(
                session=session,
                school_id=school_id,
                template_id=template.id,
                user_ids=[],
                roles=list(Role),
                due_at=utcnow() + timedelta(days=RECURRING_DAYS),
                actor=actor,
                reason=RunReason.policy_version,
            ).created
        )
    return created


# Working through a run -----------------------------------------------------------------------


@dataclass
class RunView:
    run: ChecklistRun
    template: ChecklistTemplate
    items: list[ChecklistItem]
    completions: dict[int, ItemCompletion]
    assignee: User | None

    @property
    def done(self) -> int:
        return len(self.completions)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100

    @property
    def missing_required(self) -> list[ChecklistItem]:
        return [i for i in self.items if i.required and i.id not in self.completions]

    def status(self, now: datetime) -> RunStatus:
        return self.run.status(now)


def get_run(*, session: Session, school_id: int, run_id: int) -> ChecklistRun:
    return get_for_school(session, ChecklistRun, run_id, school_id, "checklist run")


def _extra_items(session: Session, run_ids: list[int]) -> dict[int, list[ChecklistItem]]:
    grouped: dict[int, list[ChecklistItem]] = defaultdict(list)
    if run_ids:
        for item in session.exec(
            select(ChecklistItem)
            .where(col(ChecklistItem.run_id).in_(run_ids))
            .order_by(ChecklistItem.position, ChecklistItem.id)
        ).all():
            grouped[item.run_id].append(item)
    return grouped


def add_run_items(
    *, session: Session, run: ChecklistRun, steps: list[tuple[str, str]]
) -> list[ChecklistItem]:
    """Steps for this run only, after the template's (e.g. an escalation's required actions),
    each as (text, guidance)."""
    position = session.exec(
        select(func.coalesce(func.max(ChecklistItem.position), 0)).where(
            or_(
                and_(ChecklistItem.template_id == run.template_id, ChecklistItem.run_id.is_(None)),
                ChecklistItem.run_id == run.id,
            )
        )
    ).one()
    added = []
    for text, guidance in steps:
        position += 1
        item = ChecklistItem(
            template_id=run.template_id,
            run_id=run.id,
            position=position,
            text=text[:300],
            guidance=guidance[:2000],
            required=True,
        )
        session.add(item)
        added.append(item)
    run.updated_at = utcnow()
    session.add(run)
    session.flush()
    return added


def run_view(*, session: Session, run: ChecklistRun) -> RunView:
    template = session.get(ChecklistTemplate, run.template_id)
    items = _items_of(session, [template.id]).get(template.id, [])
    items = items + _extra_items(session, [run.id]).get(run.id, [])
    completions = {
        c.item_id: c
        for c in session.exec(select(ItemCompletion).where(ItemCompletion.run_id == run.id)).all()
    }
    assignee = session.get(User, run.assignee_id) if run.assignee_id else None
    return RunView(run, template, items, completions, assignee)


def check_can_work_on(run: ChecklistRun, user: User | None) -> None:
    """People work through their own runs; API tokens (user None) act for the MIS."""
    if run.incident_id is not None:
        if user is not None and user.role not in {Role.dsl, Role.deputy_dsl}:
            raise PermissionDenied("Only the DSL and deputies work through an incident playbook.")
    elif user is not None and run.assignee_id != user.id:
        raise PermissionDenied("You can only tick items on your own checklist.")


def set_item(
    *,
    session: Session,
    run: ChecklistRun,
    item_id: int,
    done: bool,
    note: str,
    user: User | None,
    actor: Actor,
) -> RunView:
    check_can_work_on(run, user)
    if run.completed_at is not None:
        raise Conflict("This checklist is finished and can no longer be changed.")
    item = session.get(ChecklistItem, item_id)
    if item is None or item.template_id != run.template_id or item.run_id not in (None, run.id):
        raise NotFound("This checklist has no such item.")
    completion = session.exec(
        select(ItemCompletion).where(
            ItemCompletion.run_id == run.id, ItemCompletion.item_id == item.id
        )
    ).first()
    now = utcnow()
    if done and completion is None:
        session.add(
            ItemCompletion(
                run_id=run.id,
                item_id=item.id,
                completed_by_id=user.id if user else None,
                completed_at=now,
                note=note.strip(),
            )
        )
    elif done and completion is not None:
        completion.note = note.strip()
        session.add(completion)
    elif completion is not None:
        session.delete(completion)
    run.updated_at = now
    session.add(run)
    session.flush()
    return run_view(session=session, run=run)


def finish_run(*, session: Session, run: ChecklistRun, user: User | None, actor: Actor) -> RunView:
    check_can_work_on(run, user)
    if run.completed_at is not None:
        raise Conflict("This checklist is already finished.")
    view = run_view(session=session, run=run)
    if view.missing_required:
        numbers = ", ".join(str(i.position) for i in view.missing_required)
        raise InvalidInput(
            f"Tick every required item before finishing (still to do: {numbers}).",
            errors=[
                {"field": f"items.{i.id}", "message": "required"} for i in view.missing_required
            ],
        )
    now = utcnow()
    run.completed_at = now
    run.completed_by_id = user.id if user else None
    run.updated_at = now
    session.add(run)
    record_event(
        session=session,
        actor=actor,
        action="checklist.completed",
        school_id=run.school_id,
        entity_type="checklist_run",
        entity_id=run.id,
    )
    return view


# Lists ----------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    run: ChecklistRun
    template_title: str
    assignee_name: str
    assignee_role: Role | None
    done: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def _summaries(session: Session, query) -> list[RunSummary]:
    """Runs with their template, person and progress: one query whatever the count."""
    # Correlated counts use the run_id and template_id indexes, row by row.
    done = (
        select(func.count())
        .where(ItemCompletion.run_id == ChecklistRun.id)
        .correlate(ChecklistRun)
        .scalar_subquery()
    )
    total = (
        select(func.count())
        .where(
            or_(
                and_(
                    ChecklistItem.template_id == ChecklistRun.template_id,
                    ChecklistItem.run_id.is_(None),
                ),
                ChecklistItem.run_id == ChecklistRun.id,
            )
        )
        .correlate(ChecklistRun)
        .scalar_subquery()
    )
    # execute(), not exec(): the extra columns must come back as rows, not scalars.
    rows = session.execute(
        query.add_columns(ChecklistTemplate.title, User.display_name, User.role, done, total)
        .join(ChecklistTemplate, ChecklistTemplate.id == ChecklistRun.template_id)
        .outerjoin(User, User.id == ChecklistRun.assignee_id)
    ).all()
    return [
        RunSummary(run, title, name or "", role, done_count, total_count)
        for run, title, name, role, done_count, total_count in rows
    ]


def runs_of_user(*, session: Session, user: User) -> list[RunSummary]:
    """A person's own runs: unfinished first (soonest due), then finished (latest first)."""
    query = (
        select(ChecklistRun)
        .where(ChecklistRun.assignee_id == user.id)
        .order_by(
            ChecklistRun.completed_at.is_not(None),
            ChecklistRun.due_at.is_(None),
            ChecklistRun.due_at,
            ChecklistRun.completed_at.desc(),
            ChecklistRun.id,
        )
    )
    return _summaries(session, query)


@dataclass
class OversightFilter:
    template_id: int | None = None
    role: Role | None = None
    status: RunStatus | None = None
    search: str = ""


@dataclass
class TemplateProgress:
    template_id: int
    title: str
    assigned: int = 0
    completed: int = 0
    overdue: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.completed / self.assigned) if self.assigned else 0


def _status_condition(status: RunStatus, now: datetime):
    if status == RunStatus.completed:
        return ChecklistRun.completed_at.is_not(None)
    if status == RunStatus.overdue:
        return and_(ChecklistRun.completed_at.is_(None), ChecklistRun.due_at < now)
    return and_(
        ChecklistRun.completed_at.is_(None),
        or_(ChecklistRun.due_at.is_(None), ChecklistRun.due_at >= now),
    )


def oversight(
    *, session: Session, school_id: int, filters: OversightFilter, now: datetime
) -> tuple[list[TemplateProgress], list[RunSummary]]:
    """Completion per template and per person's run, in two queries."""
    conditions = [ChecklistRun.school_id == school_id, ChecklistRun.assignee_id.is_not(None)]
    if filters.template_id:
        conditions.append(ChecklistRun.template_id == filters.template_id)
    if filters.role:
        conditions.append(User.role == filters.role)
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        conditions.append(
            or_(func.lower(User.display_name).like(pattern), func.lower(User.email).like(pattern))
        )
    overdue = and_(ChecklistRun.completed_at.is_(None), ChecklistRun.due_at < now)
    per_template = session.exec(
        select(
            ChecklistTemplate.id,
            ChecklistTemplate.title,
            func.count(ChecklistRun.id),
            func.count(ChecklistRun.completed_at),
            func.sum(case((overdue, 1), else_=0)),
        )
        .join(ChecklistRun, ChecklistRun.template_id == ChecklistTemplate.id)
        .join(User, User.id == ChecklistRun.assignee_id)
        .where(*conditions)
        .group_by(ChecklistTemplate.id, ChecklistTemplate.title)
        .order_by(ChecklistTemplate.title)
    ).all()
    progress = [
        TemplateProgress(tid, title, assigned, completed, int(late or 0))
        for tid, title, assigned, completed, late in per_template
    ]
    if filters.status:
        conditions.append(_status_condition(filters.status, now))
    query = (
        select(ChecklistRun)
        .where(*conditions)
        .order_by(User.display_name, ChecklistRun.due_at, ChecklistRun.id)
    )
    return progress, _summaries(session, query)


def remind(*, session: Session, school_id: int, run_ids: list[int], actor: Actor) -> int:
    """Mark runs as reminded; the person sees the reminder on their home page."""
    if not run_ids:
        raise InvalidInput("Choose at least one unfinished checklist to send a reminder about.")
    runs = session.exec(
        select(ChecklistRun).where(
            ChecklistRun.school_id == school_id,
            col(ChecklistRun.id).in_(run_ids),
            ChecklistRun.assignee_id.is_not(None),
            ChecklistRun.completed_at.is_(None),
        )
    ).all()
    if len(runs) != len(set(run_ids)):
        raise InvalidInput("Some of the chosen checklists are finished or do not exist.")
    now = utcnow()
    for run in runs:
        run.reminded_at = now
        session.add(run)
    record_event(
        session=session,
        actor=actor,
        action="checklist.reminded",
        school_id=school_id,
        entity_type="checklist_run",
        detail={"runs": len(runs)},
    )
    return len(runs)


def list_runs(
    *,
    session: Session,
    school_id: int,
    limit: int,
    now: datetime,
    after: tuple[datetime, int] | None = None,
    updated_since: datetime | None = None,
    assignee_id: int | None = None,
    template_id: int | None = None,
    status: RunStatus | None = None,
) -> list[RunView]:
    """Runs in order of last change, for incremental sync; one more than `limit`. Five queries."""
    query = select(ChecklistRun).where(ChecklistRun.school_id == school_id)
    if updated_since is not None:
        query = query.where(ChecklistRun.updated_at >= updated_since)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                ChecklistRun.updated_at > at,
                and_(ChecklistRun.updated_at == at, ChecklistRun.id > last_id),
            )
        )
    if assignee_id is not None:
        query = query.where(ChecklistRun.assignee_id == assignee_id)
    if template_id is not None:
        query = query.where(ChecklistRun.template_id == template_id)
    if status is not None:
        query = query.where(_status_condition(status, now))
    runs = session.exec(
        query.order_by(ChecklistRun.updated_at, ChecklistRun.id).limit(limit + 1)
    ).all()
    templates = {
        t.id: t
        for t in session.exec(
            select(ChecklistTemplate).where(
                col(ChecklistTemplate.id).in_({r.template_id for r in runs})
            )
        ).all()
    }
    items = _items_of(session, list(templates))
    extras = _extra_items(session, [r.id for r in runs])
    completions: dict[int, dict[int, ItemCompletion]] = defaultdict(dict)
    if runs:
        for c in session.exec(
            select(ItemCompletion).where(col(ItemCompletion.run_id).in_([r.id for r in runs]))
        ).all():
            completions[c.run_id][c.item_id] = c
    return [
        RunView(
            r,
            templates[r.template_id],
            items.get(r.template_id, []) + extras.get(r.id, []),
            completions[r.id],
            None,
        )
        for r in runs
    ]


def start_playbook(
    *, session: Session, school_id: int, incident_id: int, template_key: str
) -> ChecklistRun | None:
    """Attach the incident playbook (a template of purpose `incident`) to a new incident."""
    template = session.exec(
        select(ChecklistTemplate).where(
            ChecklistTemplate.school_id == school_id,
            ChecklistTemplate.key == template_key,
            ChecklistTemplate.purpose == ChecklistPurpose.incident,
            ChecklistTemplate.is_active.is_(True),
        )
    ).first()
    if template is None:
        return None
    now = utcnow()
    run = ChecklistRun(
        school_id=school_id,
        template_id=template.id,
        incident_id=incident_id,
        reason=RunReason.incident,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    return run


def playbook_run(*, session: Session, incident_id: int) -> ChecklistRun | None:
    return session.exec(
        select(ChecklistRun)
        .where(ChecklistRun.incident_id == incident_id)
        .order_by(ChecklistRun.id)
    ).first()


def playbook_of(*, session: Session, incident_id: int) -> RunView | None:
    run = playbook_run(session=session, incident_id=incident_id)
    return run_view(session=session, run=run) if run else None


def newly_overdue(*, session: Session, school_id: int, now: datetime) -> list[ChecklistRun]:
    """People's runs past their due date that nobody has been told about yet; marks them told."""
    runs = list(
        session.exec(
            select(ChecklistRun).where(
                ChecklistRun.school_id == school_id,
                ChecklistRun.assignee_id.is_not(None),
                ChecklistRun.completed_at.is_(None),
                ChecklistRun.due_at < now,
                ChecklistRun.overdue_notified_at.is_(None),
            )
        ).all()
    )
    for run in runs:
        run.overdue_notified_at = now
        session.add(run)
    session.flush()
    return runs
