/*! Supporters: "I've given". Hides the Support Us card on this site's own pages, in this browser,
    until a time kept in localStorage (key "supporters:quiet-until", milliseconds). Nothing is sent. */
(function () {
  "use strict";
  var KEY = "supporters:quiet-until", DAY = 864e5;
  function until() { try { return +localStorage.getItem(KEY) || 0; } catch (e) { return 0; } }
  function show(box) {
    var status = box.querySelector("[data-quiet-status]"), end = until();
    [].forEach.call(box.querySelectorAll("[data-quiet-off]"), function (b) { b.hidden = !(end > Date.now()); });
    if (!status) return;
    status.textContent = end > Date.now()
      ? box.dataset.hiddenText.replace("{day}", new Date(end).toLocaleDateString(document.documentElement.lang || undefined, { year: "numeric", month: "long", day: "numeric" }))
      : box.dataset.shownText;
  }
  [].forEach.call(document.querySelectorAll("[data-quiet]"), function (box) {
    try { localStorage.getItem(KEY); } catch (e) { return; }
    var buttons = box.querySelector("[data-quiet-buttons]");
    if (buttons) buttons.hidden = false;
    [].forEach.call(box.querySelectorAll("[data-quiet-days]"), function (b) {
      b.addEventListener("click", function () {
        localStorage.setItem(KEY, String(Date.now() + Number(b.dataset.quietDays) * DAY));
        show(box);
      });
    });
    [].forEach.call(box.querySelectorAll("[data-quiet-off]"), function (b) {
      b.addEventListener("click", function () { localStorage.removeItem(KEY); show(box); });
    });
    show(box);
  });
})();
