// Haven's only script: keep keyboard and screen-reader users oriented after htmx swaps.
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  const focusable = target.querySelector("[data-focus]") || (target.matches("[data-focus]") ? target : null);
  if (focusable) {
    focusable.focus();
  }
});
