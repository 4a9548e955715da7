#!/usr/bin/env python3
"""Read this machine's package-source settings for the stand-in base image.

Nothing here is hard-coded: the Debian mirror comes from the machine's apt
sources and the pip settings from the machine's pip configuration, so the
stand-in base reaches the same registries the machine does.

    host-config.py mirror RELEASE       "MIRROR SECURITY_MIRROR" (the second may be "-")
    host-config.py apt-sources RELEASE  a deb822 sources file for the stand-in
    host-config.py pip-conf CERT        a pip.conf for the stand-in, with CERT as its CA bundle
    host-config.py apt-proxy            the machine's apt proxy settings (may be empty)
    host-config.py ca-bundle            the path of the CA bundle the machine's pip uses
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys


def _sources() -> list[tuple[str, list[str]]]:
    """(uri, suites) for every enabled binary source of the machine."""
    found: list[tuple[str, list[str]]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line.startswith(" "):
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri.rstrip("/"), fields.get("suites", "").split()))
    lists = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for path in lists:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                words = line.split("#", 1)[0].split()
                if not words or words[0] != "deb":
                    continue
                words = words[1:]
                if words and words[0].startswith("["):
                    while words and not words[0].endswith("]"):
                        words.pop(0)
                    words.pop(0)
                if len(words) >= 2:
                    found.append((words[0].rstrip("/"), [words[1]]))
    return found


def mirrors(release: str) -> tuple[str, str]:
    override = os.environ.get("HAVEN_DEBIAN_MIRROR")
    main = override or ""
    security = os.environ.get("HAVEN_DEBIAN_SECURITY_MIRROR", "")
    for uri, suites in _sources():
        if not main and release in suites:
            main = uri
        if not security and f"{release}-security" in suites:
            security = uri
    if not main:
        sys.exit(
            f"host-config: no apt source for Debian {release} on this machine; "
            "set HAVEN_DEBIAN_MIRROR to a Debian mirror URL"
        )
    return main, security or "-"


def apt_sources(release: str) -> str:
    main, security = mirrors(release)
    key = "/usr/share/keyrings/debian-archive-keyring.gpg"
    out = [
        "Types: deb",
        f"URIs: {main}",
        f"Suites: {release} {release}-updates",
        "Components: main",
        f"Signed-By: {key}",
        "",
    ]
    if security != "-":
        out += [
            "Types: deb",
            f"URIs: {security}",
            f"Suites: {release}-security",
            "Components: main",
            f"Signed-By: {key}",
            "",
        ]
    return "\n".join(out)


# pip settings worth carrying into a container: where the index is and how to
# reach it. Local paths (find-links, file:// indexes) do not exist there.
_PIP_KEYS = {
    "index-url",
    "extra-index-url",
    "trusted-host",
    "timeout",
    "default-timeout",
    "retries",
    "proxy",
    "disable-pip-version-check",
}


def _remote(value: str) -> str:
    kept = [v for v in value.split() if v.startswith(("http://", "https://"))]
    return " ".join(kept)


def pip_conf(cert: str) -> str:
    settings = _pip_settings()
    out = ["[global]", f"cert = {cert}"]
    for key in sorted(_PIP_KEYS & settings.keys()):
        value = settings[key]
        if key in {"index-url", "extra-index-url"}:
            value = _remote(value)
        if key == "default-timeout":
            key = "timeout"
        if value:
            out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


def _pip_settings() -> dict[str, str]:
    settings: dict[str, str] = {}
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except OSError:
        listing = ""
    # later lines (user, site, environment) override earlier ones, as in pip
    for line in listing.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.rpartition(".")
        if section not in {"global", "install", "download", ":env:"}:
            continue
        settings[key] = value.strip().strip("'\"")
    for env, value in os.environ.items():
        if env.startswith("PIP_"):
            settings[env[4:].lower().replace("_", "-")] = value
    return settings


def ca_bundle() -> str:
    candidates = [
        _pip_settings().get("cert", ""),
        os.environ.get("SSL_CERT_FILE", ""),
        os.environ.get("REQUESTS_CA_BUNDLE", ""),
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    sys.exit("host-config: no CA bundle found on this machine")


def apt_proxy() -> str:
    apt_config = shutil.which("apt-config")
    if not apt_config:
        return ""
    dump = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [apt_config, "dump"], capture_output=True, text=True, check=False
    ).stdout
    lines = [
        line
        for line in dump.splitlines()
        if line.lower().startswith(("acquire::http::proxy", "acquire::https::proxy"))
    ]
    return "".join(line + "\n" for line in lines)


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "mirror":
        print(*mirrors(sys.argv[2]))
    elif what == "apt-sources":
        print(apt_sources(sys.argv[2]), end="")
    elif what == "pip-conf":
        print(pip_conf(sys.argv[2]), end="")
    elif what == "ca-bundle":
        print(ca_bundle())
    elif what == "apt-proxy":
        print(apt_proxy(), end="")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
