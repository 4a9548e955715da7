"""Policy Markdown: CommonMark renders; nothing that can run script or restyle the page gets out.

The output is checked twice: as a string (no "<script", no "onerror=" inside a tag, ...) and by
parsing it back with the standard library's HTML parser and listing every tag and attribute.
"""

from html.parser import HTMLParser

import pytest
from markupsafe import Markup, escape

from app.core.markdown import ALLOWED_TAGS, has_unsafe_markup, render_markdown


class _Elements(HTMLParser):
    """Every start tag in a fragment, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(fragment: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(fragment)
    parser.close()
    return parser.elements


def assert_only_safe_elements(fragment: str) -> None:
    for tag, attrs in elements(fragment):
        assert tag in ALLOWED_TAGS, (tag, fragment)
        allowed = {"href", "rel"} if tag == "a" else set()
        assert set(attrs) <= allowed, (tag, attrs, fragment)
        if "href" in attrs:
            assert (attrs["href"] or "").split(":", 1)[0] in {"http", "https", "mailto"}


# Rendering ------------------------------------------------------------------------------------


def test_returns_markup_so_jinja_does_not_escape_it():
    html = render_markdown("**bold**")
    assert isinstance(html, Markup)
    assert escape(html) == html
    assert html.strip() == "<p><strong>bold</strong></p>"


def test_headings():
    html = render_markdown("# One\n\n## Two\n\n### Three\n\n#### Four\n")
    for level, word in enumerate(["One", "Two", "Three", "Four"], start=1):
        assert f"<h{level}>{word}</h{level}>" in html


def test_deeper_headings_keep_their_text_but_not_the_tag():
    html = render_markdown("##### Five")
    assert "<h5>" not in html
    assert "Five" in html


def test_lists_emphasis_quotes_code_and_rules():
    html = render_markdown(
        "- one\n- *two*\n\n1. first\n2. second\n\n> quoted\n\n`code`\n\n```\nblock\n```\n\n---\n"
        "line  \nbreak\n"
    )
    assert "<ul>\n<li>one</li>\n<li><em>two</em></li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n<li>second</li>\n</ol>" in html
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html
    assert "<code>code</code>" in html
    assert "<pre><code>block\n</code></pre>" in html
    assert "<hr>" in html
    assert "<br>" in html
    assert_only_safe_elements(html)


def test_tables_render_without_style_attributes():
    html = render_markdown("| Who | When |\n|:----|-----:|\n| DSL | Today |\n")
    assert "<table>" in html
    assert "<thead>" in html and "<tbody>" in html
    assert "<th>Who</th>" in html and "<td>Today</td>" in html
    assert "style=" not in html  # column alignment comes out as style; it is dropped
    assert_only_safe_elements(html)


def test_links_get_rel_noopener_noreferrer():
    html = render_markdown(
        "[DfE](https://www.gov.uk/guidance) and [mail](mailto:dsl@school.example) "
        "and <https://saferinternet.org.uk>"
    )
    assert '<a href="https://www.gov.uk/guidance" rel="noopener noreferrer">DfE</a>' in html
    assert '<a href="mailto:dsl@school.example" rel="noopener noreferrer">mail</a>' in html
    assert 'href="https://saferinternet.org.uk"' in html
    assert_only_safe_elements(html)


def test_link_titles_are_dropped():
    html = render_markdown('[x](https://example.org "a title")')
    assert "title=" not in html
    assert 'href="https://example.org"' in html


@pytest.mark.parametrize(
    "source",
    [
        "[x](/relative/path)",
        "[x](#fragment)",
        "[x](//evil.example/protocol-relative)",
        "[x](ftp://files.example/x)",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox(1))",
    ],
)
def test_links_other_than_http_https_mailto_lose_their_href(source):
    html = render_markdown(source)
    assert "href=" not in html
    assert "x" in html


def test_images_are_not_rendered():
    html = render_markdown("![tracking pixel](https://example.org/p.png)")
    assert "<img" not in html
    assert "src=" not in html


def test_empty_source():
    assert render_markdown("") == Markup("")


# Hostile input --------------------------------------------------------------------------------

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "img onerror": "<img src=x onerror=alert(1)>",
    "javascript link": "[x](javascript:alert(1))",
    "iframe": '<iframe src="https://evil.example"></iframe>',
    "style": "<style>body { display: none }</style>",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("where", ["alone", "in a paragraph", "in a list", "in a table"])
def test_hostile_markup_never_reaches_the_output(source, where):
    wrapped = {
        "alone": source,
        "in a paragraph": f"Read this: {source} now.",
        "in a list": f"- first\n- {source}\n",
        "in a table": f"| a |\n|---|\n| {source} |\n",
    }[where]
    html = render_markdown(wrapped)
    lowered = html.lower()
    for needle in ("<script", "<iframe", "<style", "<img", "<object", "<embed"):
        assert needle not in lowered, (needle, html)
    assert 'href="javascript' not in lowered
    assert "javascript:" not in "".join(
        str(value).lower() for _, attrs in elements(html) for value in attrs.values()
    )
    for tag, attrs in elements(html):
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
    assert_only_safe_elements(html)


@pytest.mark.parametrize(
    "source",
    [
        "[x](JAVASCRIPT:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](&#106;avascript:alert(1))",
        "<javascript:alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        "<object data=x></object><embed src=x>",
        "<scr<script>ipt>alert(1)</script>",
        '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
        "<!-- <script>alert(1)</script> -->",
    ],
)
def test_obfuscated_hostile_markup_never_reaches_the_output(source):
    html = render_markdown(source)
    assert_only_safe_elements(html)
    assert all("href" not in attrs for _, attrs in elements(html))


def test_raw_html_is_shown_as_text_not_passed_through():
    html = render_markdown("<script>alert(1)</script>")
    assert "&lt;script&gt;" in html


# has_unsafe_markup ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_has_unsafe_markup_flags_each_hostile_sample(source):
    assert has_unsafe_markup(source)
    assert has_unsafe_markup(f"# Policy\n\nSome text.\n\n{source}\n\nMore text.")


@pytest.mark.parametrize(
    "source",
    [
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
        "< script>alert(1)</script>",
        "<script",
        "</style>",
        '<a href="https://ok.example" onclick="steal()">x</a>',
        "<div\nonmouseover=alert(1)>hover</div>",
        '<p/onclick="x()">',
        "[x](JavaScript:alert(1))",
        "[x](java\tscript:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "<object data=x>",
        "<embed src=x>",
        "<svg><circle/></svg>",
        "<meta http-equiv=refresh content=0>",
        "<link rel=stylesheet href=x>",
        "<form action=x>",
    ],
)
def test_has_unsafe_markup_flags_variants(source):
    assert has_unsafe_markup(source)


@pytest.mark.parametrize(
    "source",
    [
        "",
        "Plain text.",
        "3 < 5",
        "If x < 10 and y > 2 then 3 <5 holds.",
        "Pupils in years 7 < 9 > 6",
        "# Heading\n\n- item\n- **bold** and *em*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        "[DfE guidance](https://www.gov.uk/government/publications/mobile-phones-in-schools)",
        "<https://www.saferinternet.org.uk> and <dsl@school.example>",
        "Report it online: on the platform, or to POSH.",
        "The scripts we use in drama; the style guide; a description of the image.",
        "Once = once; only = only; `code < here`",
    ],
)
def test_has_unsafe_markup_leaves_plain_markdown_alone(source):
    assert not has_unsafe_markup(source)
