// Haven's own behaviour on top of htmx: where focus goes after a swap, the busy state of a
// request, and keyboard access to tables that scroll sideways. Loaded by base.html (the CSP
// allows no inline script). Every page works without it.
(function () {
  "use strict";

  var HEADINGS = "h1, h2, h3, h4";

  function focusable(el) {
    return el.matches("a[href], button, input, select, textarea, summary, [tabindex]");
  }

  function moveFocusTo(el) {
    if (!focusable(el)) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus({ preventScroll: false });
  }

  // After a swap, an error in the new content takes focus, so that it is read out first and
  // the form it is about is next. Otherwise focus stays where it is when the element that had
  // it is still on the page (a filter being changed, a button htmx found again by its id, an
  // [autofocus] in the new content). When it was swapped away it would fall back to <body>:
  // it goes to the first message of the new content, else its first heading, else the new
  // content itself.
  document.addEventListener("htmx:afterSettle", function (event) {
    var region = event.target;
    if (!region || !region.isConnected || region === document.body) {
      region = document.getElementById("main") || document.body;
    }
    var active = document.activeElement;
    var error = region.matches('[role="alert"]') ? region : region.querySelector('[role="alert"]');
    if (error && !(active && active.closest('[role="alert"]'))) {
      moveFocusTo(error);
      return;
    }
    if (active && active !== document.body && active.isConnected) {
      return;
    }
    var place =
      region.querySelector('[role="status"]') ||
      (region.matches(HEADINGS) ? region : region.querySelector(HEADINGS)) ||
      region;
    moveFocusTo(place);
  });

  // While a request runs, the region it will replace is marked busy for assistive technology
  // (the hx-indicator shows it on screen).
  function busyRegion(event) {
    var detail = event.detail || {};
    return detail.target || detail.elt || event.target;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var region = busyRegion(event);
    if (region && region.setAttribute) {
      region.setAttribute("aria-busy", "true");
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var region = busyRegion(event);
    if (region && region.removeAttribute) {
      region.removeAttribute("aria-busy");
    }
  });

  // A table that is wider than the screen scrolls inside .table-scroll; the scrolling box then
  // takes keyboard focus (arrow keys scroll it) and is named after the table's caption.
  function markScrollingTables(root) {
    var boxes = (root || document).querySelectorAll(".table-scroll");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1) {
        if (box.hasAttribute("data-scrolls")) {
          continue;
        }
        var caption = box.querySelector("caption");
        box.setAttribute("data-scrolls", "");
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute(
          "aria-label",
          (caption ? caption.textContent.trim() : "Table") + " (scrolls sideways)"
        );
      } else if (box.hasAttribute("data-scrolls")) {
        box.removeAttribute("data-scrolls");
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    }
  }
  var pending = false;
  window.addEventListener("resize", function () {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        markScrollingTables(document);
      });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    markScrollingTables(document);
  });
  document.addEventListener("htmx:load", function (event) {
    markScrollingTables(event.target.parentNode || document);
  });
})();
