/* First-click tests (issue 19): the participant's click on the picture of a screen.
 *
 * The picture is an image button, so the browser itself sends where it was clicked, in CSS
 * pixels of the picture as drawn (click.x, click.y). The picture is drawn scaled to the page's
 * width, so this script adds how wide it was drawn (shown_width) and the server converts the
 * click to the image's own pixels. Without this script the page draws the picture at its own
 * size and sends no shown_width, which the server reads as "not scaled".
 *
 * Only a pointed click counts: a keyboard or assistive-technology "click" carries no point (the
 * browser would send 0, 0), so it is held back with a note. After the first click, further
 * clicks do nothing while the answer is on its way.
 */
(function () {
  "use strict";

  function setUp(form) {
    var picture = form.querySelector("input[type=image]");
    var shown = form.querySelector("input[name=shown_width]");
    var note = form.parentNode.querySelector(".ia-run-pointer");
    if (!picture || !shown) return;
    var sent = false;
    picture.addEventListener("click", function (event) {
      if (sent) {
        event.preventDefault();
        return;
      }
      if (event.detail === 0) { // activated without a pointer: no place was clicked
        event.preventDefault();
        if (note) note.hidden = false;
        return;
      }
      shown.value = String(picture.getBoundingClientRect().width);
      sent = true;
    });
    // Coming back to this page from the browser's history: allow a click again (the server
    // says whether it still counts).
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        sent = false;
        shown.value = "";
      }
    });
  }

  document.querySelectorAll("form[data-first-click]").forEach(setUp);
})();
