"""Rules every template keeps: htmx requests show that they are working; links are links."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.core.config import resource_dir

TEMPLATES = Path(resource_dir("templates"))
REQUESTS = ("hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
# Indicators every page has (templates/base.html).
PAGE_INDICATORS = {"page-busy"}


class _Walker(HTMLParser):
    """Each element that makes an htmx request, with the hx-indicator it or an ancestor sets."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.requests: list[tuple[int, str, str | None]] = []
        self.ids: set[str] = set()
        self.role_buttons: list[tuple[int, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("role") == "button":
            self.role_buttons.append((self.getpos()[0], attributes.get("href", "")))
        self.stack.append((tag, attributes))
        boosted = attributes.get("hx-boost") == "true"
        if boosted or any(name in attributes for name in REQUESTS):
            indicator = next(
                (a["hx-indicator"] for _, a in reversed(self.stack) if "hx-indicator" in a), None
            )
            self.requests.append((self.getpos()[0], tag, indicator))
        if tag in VOID:
            self.stack.pop()

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return


def _walk(path: Path) -> _Walker:
    walker = _Walker()
    text = path.read_text(encoding="utf-8")
    # A macro call that renders an element with an id: forms.spinner("x").
    walker.ids.update(re.findall(r"""spinner\(\s*["']([^"']+)["']""", text))
    walker.ids.update(
        f"{prefix}{{{{ item.id }}}}"
        for prefix in re.findall(r"""spinner\(\s*["']([^"']+)["']\s*~\s*item\.id""", text)
    )
    walker.feed(text)
    walker.close()
    return walker


TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_walk():
    assert len(TEMPLATE_FILES) > 20


@pytest.mark.parametrize(
    "path", TEMPLATE_FILES, ids=[str(p.relative_to(TEMPLATES)) for p in TEMPLATE_FILES]
)
def test_every_htmx_request_has_an_indicator(path):
    walker = _walk(path)
    problems = []
    for line, tag, indicator in walker.requests:
        if indicator is None:
            problems.append(f"line {line}: <{tag}> makes an htmx request without hx-indicator")
            continue
        for selector in indicator.split(","):
            selector = selector.strip()
            if selector.startswith(("closest ", "find ", "next ", "previous ", "this")):
                continue
            name = selector.removeprefix("#")
            name = re.sub(r"\{\{\s*", "{{ ", re.sub(r"\s*\}\}", " }}", name))
            if name not in walker.ids | PAGE_INDICATORS:
                problems.append(f"line {line}: hx-indicator {selector} is not in this template")
    assert problems == [], f"{path.relative_to(TEMPLATES)}: " + "; ".join(problems)


@pytest.mark.parametrize(
    "path", TEMPLATE_FILES, ids=[str(p.relative_to(TEMPLATES)) for p in TEMPLATE_FILES]
)
def test_links_are_not_dressed_as_buttons(path):
    """A link that goes somewhere is a link (class "button" styles it like one); role="button"
    would tell a screen reader it acts in place, and Space would not follow it."""
    assert _walk(path).role_buttons == []
