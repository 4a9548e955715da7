"""Markdown for policy bodies: CommonMark in, sanitised HTML out.

Two layers, so that one mistake cannot let script through:

1. markdown-it-py parses CommonMark (plus tables) with raw HTML turned off, so any tag typed
   into the source is escaped and shown as text rather than passed through;
2. nh3 (ammonia) then keeps only an allow-list of tags and attributes, only http, https and
   mailto links, and gives every link ``rel="noopener noreferrer"``.

`has_unsafe_markup` lets an editor refuse a body that tries to smuggle in script, frames,
styles, event handlers or ``javascript:`` links, with a message, rather than drop them quietly.
"""

import html
import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = frozenset(
    {
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "a",
        "blockquote",
        "code",
        "pre",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "hr",
        "br",
    }
)
# "*": nothing generic, or ammonia's default lang and title would be kept on every tag.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href"}, "*": set()}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Removed together with everything inside them (never reachable with html off; belt and braces).
DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math"}
)

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_parser.enable("table")

_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROP_WITH_CONTENT),
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=set(URL_SCHEMES),
    url_relative="deny",  # only absolute http, https and mailto links survive
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def render_markdown(text: str) -> Markup:
    """Render a Markdown source to HTML that is safe to place in a page as it is."""
    return Markup(_cleaner.clean(_parser.render(text or "")))  # noqa: S704 - sanitised by nh3


# Tags that are never acceptable in a policy, whatever the rest of the tag says.
UNSAFE_TAGS = frozenset(
    {
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "link",
        "meta",
        "base",
        "form",
        "svg",
        "math",
        "template",
        "noscript",
    }
)
_UNSAFE_TAG = re.compile(r"<\s*/?\s*(" + "|".join(sorted(UNSAFE_TAGS)) + r")(?![\w-])", re.I)
# Any tag carrying an event handler attribute, e.g. <img src=x onerror=...> or <p/onclick=...>.
_EVENT_HANDLER = re.compile(r"<[a-z][\w:-]*[\s/](?:[^<>]*?[\s\"'/])?on[a-z]+\s*=[^<>]*>", re.I)
# Script-bearing URL schemes, after entities are decoded and blanks removed
# (browsers ignore tabs and newlines inside a scheme: "java\tscript:" still runs).
_SCRIPT_SCHEME = re.compile(r"(?:java|vb|live)script:|data:text/html", re.I)
_BLANKS = re.compile(r"[\s\x00-\x1f]+")


def has_unsafe_markup(text: str) -> bool:
    """True when the source holds raw HTML that could run script or change the page.

    Flags tags such as <script>, <iframe> and <style>, any tag with an on*= event handler
    attribute, and javascript: (or vbscript:, data:text/html) URLs, even written with
    character references or split by blanks. Plain Markdown is not flagged, including a
    "<" used in comparisons ("3 < 5") and autolinks such as <https://example.org>.
    Harmless tags (<b>, <br>) are not flagged: `render_markdown` shows them as literal text.
    """
    if not text:
        return False
    decoded = html.unescape(text)
    if _UNSAFE_TAG.search(decoded) or _EVENT_HANDLER.search(decoded):
        return True
    return bool(_SCRIPT_SCHEME.search(_BLANKS.sub("", decoded)))
