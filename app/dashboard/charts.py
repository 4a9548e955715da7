"""Charts drawn on the server with pygal, as inline SVG that Haven's Content Security Policy
accepts: no script, no `<style>` element and no `style` attribute. pygal always writes its CSS
and a configuration script into the SVG; they are taken out with an XML parser, and the chart is
styled by `static/css/dashboard.css` through pygal's class names.

Each series is filled with a pattern (solid, stripes, dots, ...) as well as a colour, so series
can be told apart without colour; the colours themselves come from the stylesheet. Each chart is
an image (`role="img"`) named by its `<title>` and `<desc>`; the table printed beside it holds
the same figures and is what a screen reader should read."""

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from functools import lru_cache

import pygal
from markupsafe import Markup
from pygal.style import Style

SVG = "http://www.w3.org/2000/svg"
COLOURS = 12  # .chart-colour-0 ... -11 in dashboard.css
_HATCHES = (  # drawn over the colour, in the pattern's 8x8 tile
    "",
    "M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4",  # diagonal stripes
    "M0,4 h8",  # horizontal stripes
    "M4,0 v8",  # vertical stripes
    "M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4 M-2,6 l4,4 M0,0 l8,8 M6,-2 l4,4",  # cross-hatch
    "M2,2 h1 M6,6 h1",  # dots
)
# pygal measures text with these sizes to lay the chart out; dashboard.css uses the same.
_STYLE = Style(
    font_family="system-ui, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=13,
    title_font_size=16,
)
_COMMON = {
    "js": [],  # pygal's script comes from a CDN: never
    "css": [],
    "no_prefix": True,
    "disable_xml_declaration": True,
    "style": _STYLE,
    "width": 800,
    "show_y_guides": True,
    "truncate_label": 40,
    "truncate_legend": 30,
    "margin": 12,
}


def _ticks(top: float) -> list[int]:
    """Whole-number steps up to at least `top` (counts are never fractions), about five."""
    step = 1
    while top / step > 6:
        step = next(s * 10**k for k in range(0, 12) for s in (1, 2, 5) if s * 10**k > step)
    return list(range(0, int(top + step) // step * step + 1, step)) if top else [0, 1]


def _tag(name: str) -> str:
    return name  # namespaces are dropped on parsing (see _clean)


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _series_number(element: ET.Element) -> int | None:
    for name in _classes(element):
        if name.startswith(("serie-", "color-")) and name.split("-")[1].isdigit():
            return int(name.split("-")[1])
    return None


def _pattern(chart_id: str, number: int) -> ET.Element:
    pattern = ET.Element(
        _tag("pattern"),
        {"id": f"{chart_id}-p{number}", "width": "8", "height": "8"},
        patternUnits="userSpaceOnUse",
    )
    ET.SubElement(
        pattern,
        _tag("rect"),
        {"width": "8", "height": "8", "class": f"chart-colour-{number % COLOURS}"},
    )
    hatch = _HATCHES[number % len(_HATCHES)]
    if hatch:
        ET.SubElement(pattern, _tag("path"), {"d": hatch, "class": "chart-hatch"})
    return pattern


def _clean(svg: str, *, chart_id: str, title: str, description: str, names: Sequence[str]) -> str:
    root = ET.fromstring(svg)  # noqa: S314 - pygal's output, made just now
    for element in root.iter():  # plain names: HTML puts inline <svg> in its namespace anyway
        element.tag = element.tag.removeprefix(f"{{{SVG}}}")
    for parent in list(root.iter()):
        for child in list(parent):
            classes = _classes(child)
            # pygal's CSS and script, its own title, axis-value titles, tooltip data (descs) and
            # the tooltip layer that only its script uses.
            if child.tag in (_tag("style"), _tag("script"), _tag("title"), _tag("desc")) or (
                "tooltip-overlay" in classes
            ):
                if child.tag == _tag("desc") and classes & {"value", "x_label"}:
                    parent.set(
                        f"data-{'value' if 'value' in classes else 'label'}", child.text or ""
                    )
                parent.remove(child)
    for element in root.iter():
        for attribute in ("style", "id"):
            element.attrib.pop(attribute, None)
    defs = root.find(_tag("defs"))
    if defs is None:
        defs = ET.SubElement(root, _tag("defs"))
    for number in range(len(names)):
        defs.append(_pattern(chart_id, number))
    # Fill each series (its bars and its legend key) with its pattern; a native tooltip names
    # the series, the bar and its value.
    for group in root.iter(_tag("g")):
        number = _series_number(group)
        if number is None or number >= len(names):
            continue
        for bar in group.iter(_tag("g")):
            if "data-value" in bar.attrib:
                tip = ET.SubElement(bar, _tag("title"))
                where = bar.attrib.pop("data-label", "")
                tip.text = f"{names[number]}, {where}: {bar.attrib.pop('data-value')}"
        for rect in group.iter(_tag("rect")):
            rect.set("fill", f"url(#{chart_id}-p{number})")
    for rect in root.iter(_tag("rect")):
        number = _series_number(rect)
        if number is not None and number < len(names) and "reactive" in _classes(rect):
            rect.set("fill", f"url(#{chart_id}-p{number})")  # a legend key
    root.set("class", "pygal-chart chart")
    root.set("role", "img")
    root.set("aria-labelledby", f"{chart_id}-title {chart_id}-desc")
    root.set("focusable", "false")
    label = ET.Element(_tag("title"), id=f"{chart_id}-title")
    label.text = title
    desc = ET.Element(_tag("desc"), id=f"{chart_id}-desc")
    desc.text = description
    root.insert(0, desc)
    root.insert(0, label)
    root.set("xmlns", SVG)
    return ET.tostring(root, encoding="unicode")


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
) -> Markup:
    """Vertical bars (one a week), each stacked by series, with a legend."""
    frozen = tuple((name, tuple(values)) for name, values in series)
    svg = _stacked_svg(chart_id, title, description, tuple(x_labels), frozen)
    return Markup(svg)  # noqa: S704 - serialised by ElementTree, which escapes every text


# pygal takes tens of milliseconds a chart (more for long periods): a chart drawn from the same
# figures is drawn once. The figures are part of the key, so a new incident draws it afresh.
@lru_cache(maxsize=64)
def _stacked_svg(
    chart_id: str,
    title: str,
    description: str,
    x_labels: tuple[str, ...],
    series: tuple[tuple[str, tuple[int, ...]], ...],
) -> str:
    every = max(1, -(-len(x_labels) // 12))  # at most about 12 labels along the axis
    rows = -(-len(series) // 4)
    top = max((sum(column) for column in zip(*(v for _, v in series), strict=True)), default=0)
    chart = pygal.StackedBar(
        **_COMMON,
        height=340 + 22 * rows,
        legend_at_bottom=True,
        legend_at_bottom_columns=4,
        margin_bottom=14 + 22 * rows,  # room for the legend's rows under the axis labels
        y_labels=_ticks(top),
        x_label_rotation=-35 if len(x_labels) > 6 else 0,
        x_labels_major_every=every,
        show_minor_x_labels=every == 1,
    )
    chart.x_labels = list(x_labels)
    for name, values in series:
        chart.add(name, list(values))
    return _clean(
        chart.render(),
        chart_id=chart_id,
        title=title,
        description=description,
        names=[name for name, _ in series],
    )


def bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    values: Sequence[float],
    series: str,
    percent: bool = False,
) -> Markup:
    """Horizontal bars, one a label, with each value written beside its bar."""
    svg = _bars_svg(chart_id, title, description, tuple(labels), tuple(values), series, percent)
    return Markup(svg)  # noqa: S704 - serialised by ElementTree, which escapes every text


@lru_cache(maxsize=64)
def _bars_svg(
    chart_id: str,
    title: str,
    description: str,
    labels: tuple[str, ...],
    values: tuple[float, ...],
    series: str,
    percent: bool,
) -> str:
    chart = pygal.HorizontalBar(
        **_COMMON,
        height=90 + 44 * len(labels),
        show_legend=False,
        print_values=True,
        print_values_position="top",
        value_formatter=lambda value: f"{value:g}{'%' if percent else ''}",
        y_labels=list(range(0, 101, 20)) if percent else _ticks(max(values, default=0)),
    )
    # pygal draws the first label at the bottom; reversed, the chart reads like the table.
    chart.x_labels = list(reversed(labels))
    chart.add(series, list(reversed(values)))
    return _clean(
        chart.render(), chart_id=chart_id, title=title, description=description, names=[series]
    )


def forget_drawn() -> None:
    """Empty the cache of drawn charts (for benchmarks that time the drawing)."""
    _stacked_svg.cache_clear()
    _bars_svg.cache_clear()
