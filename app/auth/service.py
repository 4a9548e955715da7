"""Accounts, sign-in, sessions, second factors and API tokens. Queries live here only."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, func, select

from app.audit.service import Actor, record_event
from app.auth.models import (
    ApiToken,
    ApiTokenCreate,
    Role,
    School,
    SignInThrottle,
    ThrottleKind,
    User,
    UserCreate,
    UserSession,
    UserUpdate,
)
from app.core import keys
from app.core.config import Settings
from app.core.db import begin_writing, get_for_school
from app.core.errors import Conflict, InvalidInput, NotFound, TooManyAttempts
from app.core.security import (
    hash_password,
    new_token,
    password_needs_rehash,
    same_secret,
    sha256_hex,
    verify_password,
)
from app.core.types import utcnow

TOKEN_PREFIX = "hvn_"  # noqa: S105 - a public prefix, not a secret
TOTP_ISSUER = "Haven"


class LoginFailed(InvalidInput):
    title = "Sign-in failed"


class SignInThrottled(TooManyAttempts):
    title = "Too many failed sign-ins"


LOGIN_FAILED = "The email address or password is not right."
SIGN_IN_THROTTLED = (
    "Too many failed sign-ins. Wait {minutes} and try again, or ask an administrator to set a "
    "new password."
)


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


def reset_password(
    *, session: Session, user: User, password: str, settings: Settings, actor: Actor
) -> None:
    """An administrator sets a new password for someone who forgot theirs; the sign-ins refused
    for too many failures on that email start again."""
    if len(password) < 12:
        raise InvalidInput("Choose a password of at least 12 characters.")
    set_password(session=session, user=user, password=password)
    _clear_throttle(session, [_account_key(settings, user.school_id, user.email)])
    revoke_user_sessions(session=session, user=user)
    _record_user_event(session, actor, "user.password_reset", user)


def set_password(*, session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.updated_at = utcnow()
    session.add(user)


# Signing in --------------------------------------------------------------------------------


def authenticate(
    *,
    session: Session,
    school_id: int,
    email: str,
    password: str,
    settings: Settings,
    actor: Actor,
    device: str | None = None,
) -> User:
    """Check a password. Failures are counted per email typed (whether or not it has an account),
    per client address, and per browser that signed in to the account before (`device`, its
    device cookie), and the answers are the same, word for word, whether or not the account
    exists. A browser the owner signed in with before is counted on its own, so an account
    attacked from elsewhere is slowed there but never locked out for its owner."""
    now = utcnow()
    email = normalise_email(email)
    counted = _counted_keys(settings, school_id, email, actor.ip_address, device)
    user = find_user_by_email(session=session, school_id=school_id, email=email)
    blocked = session.exec(
        select(func.max(SignInThrottle.blocked_until)).where(
            col(SignInThrottle.key).in_([key for _, key in counted]),
            SignInThrottle.blocked_until > now,
        )
    ).one()
    if blocked is not None:
        verify_password(None, password)  # same cost as a real check
        if user is not None:
            _count_failed_sign_in(session, user)
        _record_sign_in_event(session, actor, "auth.login_throttled", school_id, user)
        raise SignInThrottled(SIGN_IN_THROTTLED.format(minutes=_minutes(blocked - now)))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        for kind, key in counted:
            _count_throttled_failure(session, settings, kind, key, now)
        if user is not None:
            _count_failed_sign_in(session, user)
        _record_sign_in_event(
            session,
            actor,
            "auth.login_failed",
            school_id,
            user,
            detail={} if user else {"reason": "unknown_email"},
        )
        raise LoginFailed(LOGIN_FAILED)
    _clear_throttle(session, [key for kind, key in counted if kind != ThrottleKind.address])
    user.last_login_at = now
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.add(user)
    return user


def _record_sign_in_event(
    session: Session,
    actor: Actor,
    action: str,
    school_id: int,
    user: User | None,
    detail: dict | None = None,
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        school_id=school_id,
        entity_type="user" if user else "",
        entity_id=user.id if user else "",
        detail=detail,
    )


def _minutes(wait: timedelta) -> str:
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


# Sign-in throttling ------------------------------------------------------------------------

DEVICE_COOKIE = "haven_device"
DEVICE_COOKIE_DAYS = 365


def _throttle_key(settings: Settings, kind: ThrottleKind, value: str) -> str:
    return keys.keyed_hash(settings.secret_key, keys.SIGN_IN_THROTTLE, f"{kind}:{value}".encode())


def _account_key(settings: Settings, school_id: int, email: str) -> str:
    return _throttle_key(settings, ThrottleKind.account, f"{school_id}:{normalise_email(email)}")


def _device_signature(settings: Settings, school_id: int, email: str, nonce: str) -> str:
    message = f"{school_id}:{normalise_email(email)}:{nonce}".encode()
    return keys.keyed_hash(settings.secret_key, keys.SIGN_IN_DEVICE, message)


def device_cookie(*, settings: Settings, school_id: int, email: str) -> str:
    """The value of the cookie that marks a browser as one that signed in to this account."""
    nonce = new_token(16)
    return f"{nonce}.{_device_signature(settings, school_id, email, nonce)}"


def _known_device(settings: Settings, school_id: int, email: str, cookie: str | None) -> str:
    """The device cookie's nonce when it was given to this account, else ''."""
    nonce, _, signature = (cookie or "").partition(".")
    if nonce and same_secret(signature, _device_signature(settings, school_id, email, nonce)):
        return nonce
    return ""


def _counted_keys(
    settings: Settings, school_id: int, email: str, address: str, device: str | None
) -> list[tuple[ThrottleKind, str]]:
    """What a failure counts against: the known browser alone, or else the email and the
    address (a school's staff may share one address, hence its higher limit)."""
    if nonce := _known_device(settings, school_id, email, device):
        return [(ThrottleKind.device, _throttle_key(settings, ThrottleKind.device, nonce))]
    return [
        (ThrottleKind.account, _account_key(settings, school_id, email)),
        (ThrottleKind.address, _throttle_key(settings, ThrottleKind.address, address or "-")),
    ]


def _count_throttled_failure(
    session: Session, settings: Settings, kind: ThrottleKind, key: str, now
) -> None:
    """Count one failure in a single statement (concurrent failures are all counted); at the
    limit, refuse that key for the lockout period and count afresh after it."""
    window = timedelta(minutes=settings.login_lockout_minutes)
    limit = (
        settings.login_address_max_failures
        if kind == ThrottleKind.address
        else settings.login_max_failures
    )
    table = SignInThrottle.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(
        key=key, kind=kind, failures=1, last_failure_at=now, blocked_until=None
    )
    stale = table.c.last_failure_at < now - window
    failures = session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((stale, 1), else_=table.c.failures + 1),
                "last_failure_at": now,
            },
        ).returning(table.c.failures)
    ).scalar_one()
    if failures >= limit:
        session.execute(
            update(SignInThrottle)
            .where(SignInThrottle.key == key)
            .values(failures=0, blocked_until=now + window)
        )


def _clear_throttle(session: Session, throttle_keys: list[str]) -> None:
    session.execute(delete(SignInThrottle).where(col(SignInThrottle.key).in_(throttle_keys)))


def _count_failed_sign_in(session: Session, user: User) -> None:
    """Count a failure on the account, told to its owner at their next sign-in (in SQL, so
    that failures at the same moment are all counted)."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_login_count=User.failed_login_count + 1)
        .execution_options(synchronize_session="evaluate")
    )


def _take_failed_sign_ins(session: Session, user: User) -> int:
    """The failures counted since the last sign-in, counting afresh from now."""
    failures = session.exec(select(User.failed_login_count).where(User.id == user.id)).one()
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_login_count=0)
        .execution_options(synchronize_session="evaluate")
    )
    return failures


# Longer than any refusal lasts (HAVEN_LOGIN_LOCKOUT_MINUTES is at most a day).
THROTTLE_KEPT = timedelta(days=2)


def forget_old_throttles(*, session: Session, now) -> int:
    """Forget the failures whose counting and refusal are long over; the number forgotten."""
    cutoff = now - THROTTLE_KEPT
    result = session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.last_failure_at < cutoff,
            (SignInThrottle.blocked_until.is_(None)) | (SignInThrottle.blocked_until < cutoff),
        )
    )
    return result.rowcount or 0


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
        failed_sign_ins_before=_take_failed_sign_ins(session, user),
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


def totp_seed(*, user: User, secret_key: str) -> str | None:
    """The account's TOTP seed, opened from its sealed form (shown once, while enrolling)."""
    if not user.totp_secret:
        return None
    return keys.unseal(secret_key, keys.TOTP_SEEDS, user.totp_secret)


def set_totp_seed(*, user: User, seed: str, secret_key: str) -> None:
    user.totp_secret = keys.seal(secret_key, keys.TOTP_SEEDS, seed)


def reseal_totp_seeds(*, session: Session, old_secret_key: str, new_secret_key: str) -> int:
    """Seal every TOTP seed again under a new secret key; the number resealed. A seed the old
    key cannot open stops it all (SealedValueError), before anything is written."""
    users = session.exec(select(User).where(User.totp_secret.is_not(None))).all()
    seeds = [(user, totp_seed(user=user, secret_key=old_secret_key)) for user in users]
    for user, seed in seeds:
        set_totp_seed(user=user, seed=seed, secret_key=new_secret_key)
        session.add(user)
    return len(seeds)


def begin_second_factor(*, session: Session, user: User, secret_key: str) -> str:
    """Give the user a fresh secret to enrol; it takes effect once they confirm a code."""
    if user.has_second_factor:
        raise Conflict("A second factor is already set up for this account.")
    begin_writing(session)
    set_totp_seed(user=user, seed=pyotp.random_base32(), secret_key=secret_key)
    session.add(user)
    return provisioning_uri(user=user, secret_key=secret_key)


def provisioning_uri(*, user: User, secret_key: str) -> str:
    seed = totp_seed(user=user, secret_key=secret_key)
    return pyotp.TOTP(seed).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _accept_code(session: Session, user: User, code: str, secret_key: str) -> bool:
    """Accept a current code once, even when it is sent several times at once: the step it
    belongs to is claimed by one conditional UPDATE, and only the request whose UPDATE changed
    the row is let in. A code already used (or an older one) is refused."""
    code = code.strip().replace(" ", "")
    if not user.totp_secret or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(totp_seed(user=user, secret_key=secret_key))
    now = utcnow()
    for drift in (0, -1, 1):  # allow one 30-second step of clock skew either way
        at = now + timedelta(seconds=30 * drift)
        if not totp.verify(code, for_time=at):
            continue
        counter = totp.timecode(at)
        claimed = session.execute(
            update(User)
            .where(
                User.id == user.id,
                (User.totp_last_counter.is_(None)) | (User.totp_last_counter < counter),
            )
            .values(totp_last_counter=counter)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            set_committed_value(user, "totp_last_counter", counter)
            return True
    return False


def confirm_second_factor(
    *, session: Session, user: User, code: str, secret_key: str, actor: Actor
) -> None:
    if user.has_second_factor:
        raise Conflict("A second factor is already set up for this account.")
    if not _accept_code(session, user, code, secret_key):
        raise InvalidInput("That code is not right. Enter the 6 digits your app shows now.")
    user.totp_enabled_at = utcnow()
    session.add(user)
    _record_user_event(session, actor, "auth.second_factor_enrolled", user)


def pass_second_factor(
    *, session: Session, signed_in: SignedIn, code: str, settings: Settings, actor: Actor
) -> None:
    """Check the code of a browser past the password step. Wrong codes count against the
    account as wrong passwords do; at the limit this half-signed-in session ends too."""
    user = signed_in.user
    if not _accept_code(session, user, code, settings.secret_key):
        key = _account_key(settings, user.school_id, user.email)
        now = utcnow()
        _count_throttled_failure(session, settings, ThrottleKind.account, key, now)
        _count_failed_sign_in(session, user)
        blocked = session.exec(
            select(SignInThrottle.blocked_until).where(SignInThrottle.key == key)
        ).first()
        if blocked is not None and blocked > now:
            signed_in.browser.revoked_at = utcnow()
            session.add(signed_in.browser)
        _record_user_event(session, actor, "auth.second_factor_failed", user)
        raise InvalidInput("That code is not right, or it has been used already.")
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
