#!/usr/bin/env python3
"""An example client that keeps Haven in step with a school's MIS.

Push the roster (pupils, staff, parents and carers) from a JSON file, and pull the incidents
that changed since the last run:

    export HAVEN_TOKEN=...   # or --token-file FILE; never give the token as an argument
    python examples/mis_sync_client.py --base-url https://haven.school.example \\
        push-roster roster.json [--full]
    python examples/mis_sync_client.py --base-url https://haven.school.example \\
        pull-incidents --state-file sync-state.json [--output changed.jsonl]

`roster.json` is a list of people in Haven's shape (or `{"people": [...]}`); see
docs/integrating-your-mis.md for the fields and how an MIS or aggregator record maps onto them.

Every function takes an `httpx.Client` whose base URL and Authorization header are set, so the
same code runs against a real server or, in tests, against the application in-process. It needs
only httpx.
"""

import argparse
import contextlib
import json
import os
import stat
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from time import sleep

import httpx

MAX_PEOPLE_PER_REQUEST = 5000  # Haven's limit for one PUT /api/v1/people
PAGE_SIZE = 100  # items per page when listing (Haven allows 1-500)
MAX_RETRIES = 5  # how many times one request is tried again (busy, unavailable, connection lost)
MAX_WAIT_SECONDS = 300  # the longest wait between two tries, whatever Retry-After says
OVERLAP = timedelta(minutes=5)  # how far each incremental pull reaches back before the last one
# 429: this token is over its rate limit; 503: Haven is unavailable (starting, upgrading);
# 502 and 504: the school's reverse proxy could not reach Haven (e.g. while it restarts).
RETRY_STATUSES = {429, 502, 503, 504}

# The person fields Haven accepts; used to send back a leaver's record as Haven holds it.
PERSON_FIELDS = (
    "external_id",
    "kind",
    "forename",
    "surname",
    "preferred_forename",
    "preferred_surname",
    "year_group",
    "registration_group",
    "mis_id",
    "upn",
    "email",
    "is_active",
)


class HavenError(Exception):
    """Haven refused a request; the message carries its problem+json answer."""

    def __init__(self, response: httpx.Response):
        self.status = response.status_code
        self.request_id = response.headers.get("x-request-id", "")
        self.problem: dict = {}
        if "json" in response.headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                self.problem = response.json()
        super().__init__(self.describe(response))

    def describe(self, response: httpx.Response) -> str:
        request = response.request
        title = self.problem.get("title") or response.reason_phrase
        lines = [f"Haven refused {request.method} {request.url.path}: {self.status} {title}"]
        if self.problem.get("detail"):
            lines.append(f"  {self.problem['detail']}")
        for error in self.problem.get("errors", []):
            lines.append(f"  - {error.get('field') or 'request'}: {error.get('message')}")
        if not self.problem and response.text:
            lines.append(f"  {response.text[:500]}")
        if self.request_id:
            lines.append(f"  (request id {self.request_id}: quote it when asking for help)")
        return "\n".join(lines)


class RosterError(ValueError):
    """The roster file cannot be sent as it is; nothing was sent."""


def log(message: str) -> None:
    print(message, file=sys.stderr)


# --- HTTP with retries --------------------------------------------------------------------------


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    """The wait Haven asks for in `Retry-After` (seconds or an HTTP date), within bounds."""
    value = response.headers.get("retry-after", "").strip()
    wait = default
    if value.isdigit():
        wait = float(value)
    elif value:
        try:
            wait = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            wait = default
    return min(max(wait, 0.0), MAX_WAIT_SECONDS)


def call(
    client: httpx.Client, method: str, url: str, *, retries: int = MAX_RETRIES, **kwargs
) -> httpx.Response:
    """Send one request; wait and try again when Haven is busy or unreachable.

    Only safe requests go through here: GETs, and PUT /people, which gives the same result
    however many times it is sent. Raises HavenError for any other error answer.
    """
    for attempt in range(retries + 1):
        backoff = min(2.0**attempt, MAX_WAIT_SECONDS)
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            if attempt == retries:
                raise
            log(f"Could not reach Haven ({exc}); trying again in {backoff:.0f} s")
            sleep(backoff)
            continue
        if response.status_code in RETRY_STATUSES and attempt < retries:
            wait = retry_after_seconds(response, default=backoff)
            log(f"Haven answered {response.status_code}; trying again in {wait:.0f} s")
            sleep(wait)
            continue
        if response.is_error:
            raise HavenError(response)
        return response
    raise AssertionError("unreachable")  # the loop always returns or raises


def pages(client: httpx.Client, url: str, params: dict) -> Iterator[tuple[httpx.Response, list]]:
    """Each page of a Haven list, following `next_cursor` with the same filters."""
    cursor = None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        response = call(client, "GET", url, params=page_params)
        body = response.json()
        yield response, body["data"]
        cursor = body.get("next_cursor")
        if not cursor:
            return


# --- Roster -------------------------------------------------------------------------------------


def load_roster(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RosterError(f"Cannot read {path}: {exc}") from None
    people = data.get("people") if isinstance(data, dict) else data
    if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
        raise RosterError(f'{path}: expected a list of people, or {{"people": [...]}}')
    return people


def check_roster(people: list[dict], *, full: bool) -> None:
    """What Haven would refuse anyway, caught before anything is sent (also across chunks)."""
    if full and not people:
        raise RosterError("The roster is empty: a full sync would mark everyone as having left.")
    missing = [n for n, person in enumerate(people) if not person.get("external_id")]
    if missing:
        raise RosterError(f"People without an external_id (positions {missing[:10]}).")
    counts = Counter(person["external_id"] for person in people)
    repeated = sorted(external_id for external_id, n in counts.items() if n > 1)
    if repeated:
        raise RosterError(f"Each external_id may appear once; repeated: {', '.join(repeated[:20])}")


def _add(totals: dict, result: dict) -> None:
    for key, value in result.items():
        if isinstance(value, int):
            totals[key] = totals.get(key, 0) + value


def push_roster(
    client: httpx.Client,
    people: list[dict],
    *,
    full: bool = False,
    chunk_size: int = MAX_PEOPLE_PER_REQUEST,
) -> dict:
    """Send the roster; answer Haven's counts (created, updated, unchanged, deactivated, ...).

    Without `full`, people missing from the roster are left as they are (an incremental sync).

    With `full`, people missing from it have left: Haven marks them inactive and deactivates
    their accounts. Up to `chunk_size` people this is one request with `deactivate_missing`,
    which Haven applies all at once. A bigger roster must be split, and `deactivate_missing`
    cannot be set on any part of it (Haven would take everyone outside that part for a
    leaver), so instead this reads who Haven holds as active first (the token needs
    `people:read` as well), sends the roster in parts, then sends the people who are missing
    from it with `is_active: false`; Haven treats them as leavers in the same way.
    """
    check_roster(people, full=full)
    if len(people) <= chunk_size:
        body = {"people": people, "deactivate_missing": full}
        return call(client, "PUT", "/api/v1/people", json=body).json()

    active_before = []
    if full:
        # Read first, so a token without people:read fails before anything is written.
        for _response, data in pages(client, "/api/v1/people", {"limit": 500}):
            active_before += [person for person in data if person["is_active"]]
    totals: dict = {}
    try:
        for start in range(0, len(people), chunk_size):
            chunk = people[start : start + chunk_size]
            log(f"Sending people {start + 1} to {start + len(chunk)} of {len(people)}")
            body = {"people": chunk, "deactivate_missing": False}
            _add(totals, call(client, "PUT", "/api/v1/people", json=body).json())
    except HavenError:
        log("The parts sent before this error were saved; sending the whole roster again is safe.")
        raise
    if full:
        in_roster = {person["external_id"] for person in people}
        leavers = [
            {**{k: p[k] for k in PERSON_FIELDS if k in p}, "is_active": False}
            for p in active_before
            if p["external_id"] not in in_roster
        ]
        totals["deactivated"] = totals.get("deactivated", 0)
        for start in range(0, len(leavers), chunk_size):
            body = {"people": leavers[start : start + chunk_size], "deactivate_missing": False}
            result = call(client, "PUT", "/api/v1/people", json=body).json()
            # Haven counts a person sent as inactive as "updated"; here they are leavers.
            totals["deactivated"] += result.pop("updated", 0)
            _add(totals, result)
    return totals


# --- Incidents ----------------------------------------------------------------------------------


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def server_time(response: httpx.Response) -> datetime | None:
    """Haven's clock, from the Date header of its answer (to the second, rounded down)."""
    try:
        return parsedate_to_datetime(response.headers["date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return None


def pull_incidents(
    client: httpx.Client,
    state: dict,
    *,
    page_size: int = PAGE_SIZE,
    overlap: timedelta = OVERLAP,
) -> tuple[list[dict], dict]:
    """The incidents changed since the run that saved `state`, and the state to save after it.

    The state holds `since`, the time this run started by Haven's clock, and `seen`, the id and
    `updated_at` of each incident changed in the last `overlap` before that. The next run asks
    for changes from `since - overlap`, so a change whose transaction was still open when this
    run read its page is not missed; what it already gave out (same id, same `updated_at`) it
    skips. An incident changed while the pages are read can come twice: only its latest
    version is kept. Nothing is returned unless every page was read.
    """
    since = state.get("since")
    seen: dict[str, str] = state.get("seen", {})
    params: dict = {"limit": page_size}
    if since:
        params["updated_since"] = _iso(_instant(since) - overlap)

    started = datetime.now(UTC)
    latest: dict[int, dict] = {}
    for number, (response, data) in enumerate(pages(client, "/api/v1/incidents", params)):
        if number == 0:
            started = server_time(response) or started
        for incident in data:
            earlier = latest.get(incident["id"])
            if earlier is None or _instant(incident["updated_at"]) >= _instant(
                earlier["updated_at"]
            ):
                latest[incident["id"]] = incident

    def stamp(incident: dict) -> str:
        return _iso(_instant(incident["updated_at"]))

    changed = [i for i in latest.values() if seen.get(str(i["id"])) != stamp(i)]
    changed.sort(key=lambda i: (_instant(i["updated_at"]), i["id"]))
    window = started - overlap
    new_state = {
        "since": _iso(started),
        "seen": {
            str(i["id"]): stamp(i) for i in latest.values() if _instant(i["updated_at"]) >= window
        },
    }
    return changed, new_state


def load_state(path: Path) -> dict:
    if not path.exists():
        return {}  # the first run: every incident
    return json.loads(path.read_text(encoding="utf-8"))


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step, so a crash never leaves half of it."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent or ".", prefix=f".{path.name}.", delete=False
    ) as handle:
        handle.write(text)
    os.replace(handle.name, path)


# --- Command line -------------------------------------------------------------------------------


def read_token(token_file: Path | None) -> str:
    """The token from a file, or from HAVEN_TOKEN; never from the command line."""
    if token_file is not None:
        if os.name == "posix" and token_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log(f"Warning: {token_file} can be read by other users; chmod 600 it.")
        token = token_file.read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("HAVEN_TOKEN", "").strip()
    if not token:
        raise RosterError("No token: give --token-file FILE or set HAVEN_TOKEN.")
    return token


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Keep Haven in step with the school's MIS.")
    parser.add_argument("--base-url", required=True, help="Haven's address, https://...")
    parser.add_argument(
        "--token-file", type=Path, help="File holding the API token (else HAVEN_TOKEN)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    push = commands.add_parser("push-roster", help="Send the roster from a JSON file")
    push.add_argument("roster", type=Path)
    push.add_argument(
        "--full",
        action="store_true",
        help="The file is the whole roster: anyone missing from it has left",
    )
    push.add_argument(
        "--chunk-size",
        type=int,
        default=MAX_PEOPLE_PER_REQUEST,
        help="People per request (at most 5,000; less if Haven's HAVEN_MAX_JSON_MB is lowered)",
    )

    pull = commands.add_parser("pull-incidents", help="Incidents changed since the last run")
    pull.add_argument("--state-file", type=Path, required=True)
    pull.add_argument("--output", type=Path, help="Write JSON lines here (else standard output)")
    pull.add_argument("--page-size", type=int, default=PAGE_SIZE)
    return parser.parse_args(argv)


def run(args: argparse.Namespace, client: httpx.Client) -> None:
    if args.command == "push-roster":
        if not 1 <= args.chunk_size <= MAX_PEOPLE_PER_REQUEST:
            raise RosterError(f"--chunk-size must be 1 to {MAX_PEOPLE_PER_REQUEST}.")
        people = load_roster(args.roster)
        totals = push_roster(client, people, full=args.full, chunk_size=args.chunk_size)
        print(json.dumps(totals))
        return
    changed, new_state = pull_incidents(
        client, load_state(args.state_file), page_size=args.page_size
    )
    lines = "".join(json.dumps(incident) + "\n" for incident in changed)
    if args.output:
        write_atomically(args.output, lines)
    else:
        sys.stdout.write(lines)
        sys.stdout.flush()
    # Only now, with every page read and the output written, does the high-water mark move.
    write_atomically(args.state_file, json.dumps(new_state, indent=2, sort_keys=True) + "\n")
    log(f"{len(changed)} incident(s) changed; state saved to {args.state_file}")


def main(argv: list[str] | None = None, client: httpx.Client | None = None) -> int:
    args = parse_args(argv)
    try:
        token = read_token(args.token_file)
    except (OSError, RosterError) as exc:
        log(str(exc))
        return 2
    url = httpx.URL(args.base_url)
    if url.scheme == "http" and url.host not in {"localhost", "127.0.0.1", "::1"}:
        log("Warning: plain http:// sends the token unencrypted; use Haven's https:// address.")
    own_client = client is None
    if client is None:
        client = httpx.Client(base_url=args.base_url, timeout=60)
    client.headers["Authorization"] = f"Bearer {token}"
    client.headers["User-Agent"] = "haven-mis-sync-example/1"
    try:
        run(args, client)
    except HavenError as exc:
        log(str(exc))
        return 1
    except RosterError as exc:
        log(f"{exc} Nothing was sent.")
        return 2
    except (OSError, ValueError) as exc:
        log(str(exc))
        return 2
    except httpx.HTTPError as exc:
        log(f"Could not reach Haven at {args.base_url}: {exc}")
        return 1
    finally:
        if own_client:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
