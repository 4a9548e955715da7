#!/usr/bin/env python3
"""How docker-compose.yml runs one of Haven's services, for scripts/container-smoke.

    compose-service.py SERVICE --dotenv FILE --volume-prefix PREFIX --env-out FILE \
        [--set KEY=VALUE ...] [--compose docker-compose.yml]

Writes the service's environment to --env-out (KEY=VALUE lines, for
`podman run --env-file`), as Compose builds it: the env_file entries (`.env`
is replaced by --dotenv), then `environment:` with ${VAR} interpolated from
--dotenv, then the --set changes, each of which must replace a key the file
sets. Prints bash assignments to eval:

    command=(...)       the service's command
    volumes=(...)       -v options, named volumes renamed PREFIX-NAME
    healthcheck=on|off  off when the service disables the image's health check
    container_port=N    the container side of the first published port, if any
    build_context=DIR   the build context, relative to the compose file
    dockerfile=FILE     the Dockerfile, relative to the build context

Keys this script does not know how to reproduce make it fail, so the smoke
test cannot silently run something other than what the file says.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import yaml

UNDERSTOOD = {
    "image",
    "build",
    "env_file",
    "environment",
    "volumes",
    "restart",
    "command",
    "healthcheck",
    "depends_on",
    "ports",
}
_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_]\w*))")


class ComposeError(Exception):
    pass


def read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR:+alt}, $$."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        value = variables.get(name)
        is_set = value is not None
        is_full = bool(value)
        if operator in (":-", "-"):
            use_default = not is_full if operator == ":-" else not is_set
            return interpolate(argument, variables) if use_default else value
        if operator in (":?", "?"):
            missing = not is_full if operator == ":?" else not is_set
            if missing:
                raise ComposeError(f"{name}: {argument or 'required'}")
            return value
        if operator in (":+", "+"):
            use_alt = is_full if operator == ":+" else is_set
            return interpolate(argument, variables) if use_alt else ""
        return value or ""

    return _VAR.sub(substitute, text)


def environment(service: dict, base: Path, dotenv: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    env_files = service.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str) else env_files:
        env.update(dotenv if entry == ".env" else read_dotenv(base / entry))
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.partition("=")[::2] for item in declared)
    for key, value in declared.items():
        if value is None:
            raise ComposeError(f"environment {key} takes its value from the shell; not supported")
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[key] = interpolate(str(value), dotenv)
    return env


def volume_options(service: dict, compose: dict, prefix: str) -> list[str]:
    named = set(compose.get("volumes") or {})
    options: list[str] = []
    for entry in service.get("volumes") or []:
        if not isinstance(entry, str):
            raise ComposeError("long-syntax volumes are not supported")
        source, _, target = entry.partition(":")
        if source not in named:
            raise ComposeError(f"volume {entry}: only named volumes are supported")
        options += ["-v", f"{prefix}-{source}:{target}"]
    return options


def describe(args) -> tuple[str, dict[str, str]]:
    compose_file = Path(args.compose)
    compose = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    try:
        service = compose["services"][args.service]
    except KeyError:
        raise ComposeError(f"{compose_file} has no service {args.service!r}") from None
    unknown = set(service) - UNDERSTOOD
    if unknown:
        raise ComposeError(
            f"service {args.service} uses {sorted(unknown)}, which container-smoke does not "
            "reproduce: teach scripts/container/compose-service.py"
        )
    health = service.get("healthcheck") or {}
    if set(health) - {"disable"}:
        raise ComposeError(f"service {args.service}: only `healthcheck: disable` is supported")

    dotenv = read_dotenv(Path(args.dotenv))
    env = environment(service, compose_file.parent, dotenv)
    for change in args.set or []:
        key, _, value = change.partition("=")
        if key not in env:
            raise ComposeError(f"--set {key}: service {args.service} does not set {key}")
        env[key] = value
    for key, value in env.items():
        if "\n" in value:
            raise ComposeError(f"{key}: values with line breaks are not supported")

    command = service.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    build = service.get("build") or "."
    if isinstance(build, str):
        build = {"context": build}
    port = ""
    for mapping in service.get("ports") or []:
        port = interpolate(str(mapping), dotenv).rsplit(":", 1)[-1].split("/")[0]
        break

    lines = [
        f"command=({' '.join(shlex.quote(str(word)) for word in command or [])})",
        "volumes=("
        + " ".join(shlex.quote(o) for o in volume_options(service, compose, args.volume_prefix))
        + ")",
        f"healthcheck={'off' if health.get('disable') else 'on'}",
        f"container_port={shlex.quote(port)}",
        f"build_context={shlex.quote(build.get('context', '.'))}",
        f"dockerfile={shlex.quote(build.get('dockerfile', 'Dockerfile'))}",
    ]
    return "\n".join(lines) + "\n", env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service")
    parser.add_argument("--compose", default="docker-compose.yml")
    parser.add_argument("--dotenv", required=True)
    parser.add_argument("--volume-prefix", required=True)
    parser.add_argument("--env-out", required=True)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE")
    args = parser.parse_args()
    try:
        shell, env = describe(args)
    except ComposeError as exc:
        print(f"compose-service: {exc}", file=sys.stderr)
        return 1
    Path(args.env_out).write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    sys.stdout.write(shell)
    return 0


if __name__ == "__main__":
    sys.exit(main())
