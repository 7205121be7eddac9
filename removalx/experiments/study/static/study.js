// Keyboard answers for the rating page (plain JavaScript shipped with removalx, no network).
// Keys 1-5 answer -2..+2; a sign then a digit answers -2, -1, +1, +2; 0 answers 0;
// the left and right arrows go to the previous and next item.
(function () {
  "use strict";
  var form = document.getElementById("answer");
  if (!form) { return; }
  var sign = null;
  var sent = false;
  function choose(score) {
    if (sent) { return; }
    var button = form.querySelector("button.score[value='" + score + "']");
    if (!button || button.disabled) { return; }
    sent = true;
    button.classList.add("chosen");
    if (form.requestSubmit) { form.requestSubmit(button); } else { button.click(); }
  }
  form.addEventListener("submit", function () { sent = true; });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var k = event.key;
    if (k === "-" || k === "+") { sign = k; event.preventDefault(); return; }
    if (k === "ArrowLeft" || k === "ArrowRight") {
      var link = document.getElementById(k === "ArrowLeft" ? "prev" : "next");
      if (link) { window.location.href = link.getAttribute("href"); }
      return;
    }
    if (!/^[0-5]$/.test(k)) { sign = null; return; }
    var d = Number(k);
    var score = null;
    if (sign !== null) {
      if (d <= 2) { score = sign === "-" ? -d : d; }
    } else if (d === 0) {
      score = 0;
    } else {
      score = d - 3;
    }
    sign = null;
    if (score !== null) { event.preventDefault(); choose(score); }
  });
})();
