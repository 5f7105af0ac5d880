// Small comforts on the donation form; everything works without this file.
(function () {
  "use strict";
  var form = document.querySelector(".donate-form");
  if (!form) return;
  var custom = form.querySelector("#custom_amount");
  var other = form.querySelector("input[name=amount_choice][value=other]");
  if (custom && other) {
    custom.addEventListener("input", function () { if (custom.value.trim()) other.checked = true; });
    form.querySelectorAll("input[name=amount_choice]").forEach(function (radio) {
      radio.addEventListener("change", function () { if (radio.value !== "other") custom.value = ""; });
    });
  }
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
