"""Accounts, sign-in, sessions, second factors and API tokens. Queries live here only."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from sqlmodel import Session, col, func, select

from app.audit.service import Actor, record_event
from app.auth.models import (
    ApiToken,
    ApiTokenCreate,
    Role,
    School,
    User,
    UserCreate,
    UserSession,
    UserUpdate,
)
from app.core.config import Settings
from app.core.db import begin_writing, get_for_school
from app.core.errors import Conflict, InvalidInput, NotFound, TooManyAttempts
from app.core.security import (
    hash_password,
    new_token,
    password_needs_rehash,
    sha256_hex,
    verify_password,
)
from app.core.types import utcnow

TOKEN_PREFIX = "hvn_"  # noqa: S105 - a public prefix, not a secret
TOTP_ISSUER = "Haven"


class LoginFailed(InvalidInput):
    title = "Sign-in failed"


class AccountLocked(TooManyAttempts):
    title = "Account locked for now"


def _record_user_event(
    session: Session, actor: Actor, action: str, user: User, detail: dict | None = None
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        school_id=user.school_id,
        entity_type="user",
        entity_id=user.id,
        detail=detail,
    )


def normalise_email(email: str) -> str:
    return email.strip().lower()


# Schools -----------------------------------------------------------------------------------


def get_or_create_school(*, session: Session, name: str, urn: str = "") -> School:
    school = session.exec(select(School).order_by(School.id)).first()
    if school is None:
        school = School(name=name, urn=urn)
        session.add(school)
        session.flush()
    return school


def get_school(*, session: Session, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None:
        raise NotFound("No such school.")
    return school


# Users -------------------------------------------------------------------------------------


def get_user(*, session: Session, school_id: int, user_id: int) -> User:
    return get_for_school(session, User, user_id, school_id, "user")


def find_user_by_email(*, session: Session, school_id: int, email: str) -> User | None:
    return session.exec(
        select(User).where(User.school_id == school_id, User.email == normalise_email(email))
    ).first()


def list_users(*, session: Session, school_id: int) -> list[User]:
    return list(
        session.exec(
            select(User).where(User.school_id == school_id).order_by(User.display_name, User.id)
        ).all()
    )


def active_users_with_roles(
    *, session: Session, school_id: int, roles: Iterable[Role]
) -> list[User]:
    """Active accounts holding one of these roles, by name: a few, whatever the staff count."""
    return list(
        session.exec(
            select(User)
            .where(User.school_id == school_id, User.is_active, col(User.role).in_(list(roles)))
            .order_by(User.display_name, User.id)
        ).all()
    )


def accounts_of_people(
    *, session: Session, school_id: int, person_ids: list[int]
) -> dict[int, User]:
    """The account linked to each of these roster entries, by person id (those that have one)."""
    found: dict[int, User] = {}
    for start in range(0, len(person_ids), 500):
        users = session.exec(
            select(User).where(
                User.school_id == school_id, User.person_id.in_(person_ids[start : start + 500])
            )
        ).all()
        found.update({user.person_id: user for user in users})
    return found


def count_users(*, session: Session, school_id: int) -> int:
    return session.exec(
        select(func.count()).select_from(User).where(User.school_id == school_id)
    ).one()


def create_user(*, session: Session, school_id: int, data: UserCreate, actor: Actor) -> User:
    email = normalise_email(data.email)
    if find_user_by_email(session=session, school_id=school_id, email=email):
        raise Conflict(f"An account for {email} already exists.")
    user = User(
        school_id=school_id,
        email=email,
        display_name=data.display_name.strip(),
        role=data.role,
        is_active=data.is_active,
        password_hash=hash_password(data.password),
    )
    session.add(user)
    session.flush()
    _record_user_event(session, actor, "user.created", user, detail={"role": user.role.value})
    return user


def update_user(*, session: Session, user: User, data: UserUpdate, actor: Actor) -> User:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if user.id == actor.user_id and (
        changes.get("is_active") is False or changes.get("role", user.role) != user.role
    ):
        raise InvalidInput("You cannot change your own role or deactivate your own account.")
    changed = [name for name, value in changes.items() if getattr(user, name) != value]
    if not changed:
        return user
    for name in changed:
        setattr(user, name, changes[name])
    user.updated_at = utcnow()
    if "is_active" in changed and not user.is_active:
        revoke_user_sessions(session=session, user=user)
    if "role" in changed:
        # New powers need a fresh sign-in (and a second factor where the role asks for one).
        revoke_user_sessions(session=session, user=user)
    session.add(user)
    _record_user_event(session, actor, "user.updated", user, detail={"fields": sorted(changed)})
    return user


def link_accounts_to_people(
    *, session: Session, school_id: int, person_ids_by_email: dict[str, int], actor: Actor
) -> int:
    """Link unlinked accounts to the roster entry with the same email; the number linked."""
    linked = 0
    emails = list(person_ids_by_email)
    for start in range(0, len(emails), 500):
        users = session.exec(
            select(User).where(
                User.school_id == school_id,
                User.email.in_(emails[start : start + 500]),
                User.person_id.is_(None),
            )
        ).all()
        for user in users:
            user.person_id = person_ids_by_email[user.email]
            user.updated_at = utcnow()
            session.add(user)
            _record_user_event(session, actor, "user.linked_to_roster", user)
            linked += 1
    return linked


def deactivate_accounts_of_leavers(
    *, session: Session, school_id: int, person_ids: list[int], actor: Actor
) -> int:
    """Deactivate the active accounts linked to people who left, and sign them out.

    The last active administrator is kept, so the school can never lock itself out.
    """
    if not person_ids:
        return 0
    leavers = []
    for start in range(0, len(person_ids), 500):
        leavers += session.exec(
            select(User).where(
                User.school_id == school_id,
                User.person_id.in_(person_ids[start : start + 500]),
                User.is_active.is_(True),
            )
        ).all()
    admins_left = session.exec(
        select(func.count())
        .select_from(User)
        .where(User.school_id == school_id, User.role == Role.admin, User.is_active.is_(True))
    ).one()
    deactivated = 0
    for user in sorted(leavers, key=lambda u: u.id):
        if user.role == Role.admin:
            if admins_left <= 1:
                _record_user_event(session, actor, "user.leaver_kept_as_last_admin", user)
                continue
            admins_left -= 1
        user.is_active = False
        user.updated_at = utcnow()
        session.add(user)
        revoke_user_sessions(session=session, user=user)
        _record_user_event(session, actor, "user.deactivated_as_leaver", user)
        deactivated += 1
    return deactivated


def change_password(
    *,
    session: Session,
    user: User,
    current: str,
    new: str,
    keep_session_id: int | None,
    actor: Actor,
) -> None:
    if not verify_password(user.password_hash, current):
        raise InvalidInput("Your current password is not right.", errors=[{"field": "current"}])
    if len(new) < 12:
        raise InvalidInput("Choose a new password of at least 12 characters.")
    if new == current:
        raise InvalidInput("The new password must differ from the current one.")
    set_password(session=session, user=user, password=new)
    revoke_user_sessions(session=session, user=user, except_session_id=keep_session_id)
    _record_user_event(session, actor, "user.password_changed", user)


def reset_password(*, session: Session, user: User, password: str, actor: Actor) -> None:
    """An administrator sets a new password for someone who forgot theirs."""
    if len(password) < 12:
        raise InvalidInput("Choose a password of at least 12 characters.")
    set_password(session=session, user=user, password=password)
    user.failed_login_count = 0
    user.locked_until = None
    revoke_user_sessions(session=session, user=user)
    _record_user_event(session, actor, "user.password_reset", user)


def set_password(*, session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.updated_at = utcnow()
    session.add(user)


# Signing in --------------------------------------------------------------------------------


def authenticate(
    *, session: Session, school_id: int, email: str, password: str, settings: Settings, actor: Actor
) -> User:
    """Check a password, counting failures per account and locking it after too many."""
    now = utcnow()
    user = find_user_by_email(session=session, school_id=school_id, email=email)
    if user is not None and user.locked_until and user.locked_until > now:
        verify_password(None, password)  # same cost as a real check
        _record_user_event(session, actor, "auth.login_locked", user)
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise AccountLocked(
            f"Too many failed sign-ins for this account. Try again in {minutes} minutes, "
            "or ask an administrator."
        )
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        if user is not None:
            _count_failure(session, user, settings)
        record_event(
            session=session,
            actor=actor,
            action="auth.login_failed",
            school_id=school_id,
            entity_type="user" if user else "",
            entity_id=user.id if user else "",
            detail={} if user else {"reason": "unknown_email"},
        )
        raise LoginFailed("The email address or password is not right.")
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.add(user)
    return user


def _count_failure(session: Session, user: User, settings: Settings) -> bool:
    """Count a wrong password or code; lock the account after too many. True when it locks."""
    user.failed_login_count += 1
    locks = user.failed_login_count >= settings.login_max_failures
    if locks:
        user.locked_until = utcnow() + timedelta(minutes=settings.login_lockout_minutes)
        user.failed_login_count = 0
    session.add(user)
    return locks


def start_session(
    *, session: Session, user: User, settings: Settings, user_agent: str, actor: Actor
) -> tuple[str, UserSession]:
    raw = new_token()
    now = utcnow()
    browser = UserSession(
        user_id=user.id,
        token_hash=sha256_hex(raw),
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
        user_agent=user_agent[:200],
    )
    session.add(browser)
    session.flush()
    _record_user_event(
        session, Actor(user.id, None, actor.request_id, actor.ip_address), "auth.login", user
    )
    return raw, browser


@dataclass
class SignedIn:
    user: User
    browser: UserSession

    @property
    def second_factor_done(self) -> bool:
        return self.browser.second_factor_at is not None


def find_signed_in(*, session: Session, raw_token: str, settings: Settings) -> SignedIn | None:
    """The live session for a cookie value, or None when it is unknown, revoked or stale."""
    row = session.exec(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == sha256_hex(raw_token))
    ).first()
    if row is None:
        return None
    browser, user = row
    now = utcnow()
    idle_limit = browser.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if browser.revoked_at or browser.expires_at <= now or idle_limit <= now or not user.is_active:
        return None
    return SignedIn(user=user, browser=browser)


def touch_session(*, session: Session, browser: UserSession) -> bool:
    """Move the idle clock on; written at most once a minute to spare the database."""
    now = utcnow()
    if now - browser.last_seen_at < timedelta(minutes=1):
        return False
    begin_writing(session)
    browser.last_seen_at = now
    session.add(browser)
    return True


def end_session(*, session: Session, browser: UserSession, user: User, actor: Actor) -> None:
    browser.revoked_at = utcnow()
    session.add(browser)
    _record_user_event(session, actor, "auth.logout", user)


def revoke_user_sessions(
    *, session: Session, user: User, except_session_id: int | None = None
) -> int:
    query = select(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
    )
    if except_session_id is not None:
        query = query.where(UserSession.id != except_session_id)
    browsers = session.exec(query).all()
    now = utcnow()
    for browser in browsers:
        browser.revoked_at = now
        session.add(browser)
    return len(browsers)


# Second factor (TOTP) ----------------------------------------------------------------------


def begin_second_factor(*, session: Session, user: User) -> str:
    """Give the user a fresh secret to enrol; it takes effect once they confirm a code."""
    if user.has_second_factor:
        raise Conflict("A second factor is already set up for this account.")
    begin_writing(session)
    user.totp_secret = pyotp.random_base32()
    session.add(user)
    return provisioning_uri(user)


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _accept_code(user: User, code: str) -> bool:
    """Accept a current code once: a code already used (or an older one) is refused."""
    code = code.strip().replace(" ", "")
    if not user.totp_secret or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now = utcnow()
    for drift in (0, -1, 1):  # allow one 30-second step of clock skew either way
        at = now + timedelta(seconds=30 * drift)
        counter = totp.timecode(at)
        if totp.verify(code, for_time=at) and counter > (user.totp_last_counter or -1):
            user.totp_last_counter = counter
            return True
    return False


def confirm_second_factor(*, session: Session, user: User, code: str, actor: Actor) -> None:
    if user.has_second_factor:
        raise Conflict("A second factor is already set up for this account.")
    if not _accept_code(user, code):
        raise InvalidInput("That code is not right. Enter the 6 digits your app shows now.")
    user.totp_enabled_at = utcnow()
    session.add(user)
    _record_user_event(session, actor, "auth.second_factor_enrolled", user)


def pass_second_factor(
    *, session: Session, signed_in: SignedIn, code: str, settings: Settings, actor: Actor
) -> None:
    user = signed_in.user
    if not _accept_code(user, code):
        if _count_failure(session, user, settings):
            # Locked by wrong codes: end this half-signed-in session too.
            signed_in.browser.revoked_at = utcnow()
            session.add(signed_in.browser)
        _record_user_event(session, actor, "auth.second_factor_failed", user)
        raise InvalidInput("That code is not right, or it has been used already.")
    user.failed_login_count = 0
    signed_in.browser.second_factor_at = utcnow()
    session.add_all([user, signed_in.browser])
    _record_user_event(session, actor, "auth.second_factor_passed", user)


def reset_second_factor(*, session: Session, user: User, actor: Actor) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_counter = None
    session.add(user)
    revoke_user_sessions(session=session, user=user)
    _record_user_event(session, actor, "auth.second_factor_reset", user)


# API tokens --------------------------------------------------------------------------------


def create_api_token(
    *, session: Session, school_id: int, data: ApiTokenCreate, actor: Actor
) -> tuple[str, ApiToken]:
    """Make a token; the raw value is returned once and only its hash is kept."""
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise InvalidInput("The expiry date must be in the future.")
    raw = TOKEN_PREFIX + new_token(24)  # 192 bits of randomness
    token = ApiToken(
        school_id=school_id,
        name=data.name.strip(),
        prefix=raw[:12],
        token_hash=sha256_hex(raw),
        scopes=sorted({scope.value for scope in data.scopes}),
        created_by_id=actor.user_id,
        expires_at=data.expires_at,
    )
    session.add(token)
    session.flush()
    record_event(
        session=session,
        actor=actor,
        action="token.created",
        school_id=school_id,
        entity_type="api_token",
        entity_id=token.id,
        detail={"scopes": token.scopes},
    )
    return raw, token


def find_api_token(*, session: Session, raw: str) -> ApiToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == sha256_hex(raw))).first()
    return token if token is not None and token.is_usable else None


def note_token_use(*, session: Session, token: ApiToken) -> bool:
    """Record when a token was last used; written at most once a minute."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < timedelta(minutes=1):
        return False
    begin_writing(session)
    token.last_used_at = now
    session.add(token)
    return True


def list_api_tokens(*, session: Session, school_id: int) -> list[ApiToken]:
    return list(
        session.exec(
            select(ApiToken)
            .where(ApiToken.school_id == school_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id)
        ).all()
    )


def revoke_api_token(*, session: Session, school_id: int, token_id: int, actor: Actor) -> ApiToken:
    token = get_for_school(session, ApiToken, token_id, school_id, "token")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        record_event(
            session=session,
            actor=actor,
            action="token.revoked",
            school_id=school_id,
            entity_type="api_token",
            entity_id=token.id,
        )
    return token


def role_choices() -> list[tuple[str, str]]:
    return [(role.value, role.label) for role in Role]
