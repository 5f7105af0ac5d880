// Small comforts on the donation form; everything works without this file.
//
// - The suggested amounts follow the currency (their labels come formatted from the
//   server, in data-donate), so a currency change never needs a second submit.
// - The fee hint and the pay button ("Give 102,54 zł every month") follow the amount,
//   the currency, how often and how the donor pays. They are a preview: the server
//   computes the gift and its fee again from what is sent.
// - Changing the language keeps the gift: its choices ride in the switch's link, and
//   what the donor typed (e-mail, name, address…) waits in sessionStorage for the
//   page in the new language, which puts it back and forgets it.
(function () {
  "use strict";
  var form = document.querySelector(".donate-form");
  if (!form) return;
  var data = {};
  try { data = JSON.parse(form.getAttribute("data-donate") || "{}"); } catch (e) { data = {}; }
  var STORE = "supporters.donate";
  var custom = form.querySelector("#custom_amount");
  var currencySelect = form.querySelector("#currency");
  var shown = form.querySelector("input[name=shown_currency]");
  var coversFee = form.querySelector("#covers_fee");
  var feeHint = document.getElementById("covers_fee-hint");
  var button = form.querySelector(".donate-button");

  function checked(name) {
    var input = form.querySelector("input[name=" + name + "]:checked");
    return input ? input.value : "";
  }
  function currency() { return currencySelect ? currencySelect.value : (shown ? shown.value : ""); }
  function exponent(code) { return (data.exponent || {})[code] || 0; }

  function format(minor, code) {
    var digits = exponent(code);
    try {
      return new Intl.NumberFormat(data.locale || undefined, {
        style: "currency", currency: code, minimumFractionDigits: digits, maximumFractionDigits: digits
      }).format(minor / Math.pow(10, digits));
    } catch (e) { return (minor / Math.pow(10, digits)).toFixed(digits) + " " + code; }
  }

  // "25", "25,50", "25.50", "1 250,50": the forms parse_amount reads; null for anything else.
  function typed(text, code) {
    var clean = text.replace(/[\s\u00a0\u202f']/g, "");
    if (!/^\d+([.,]\d{1,3})?$/.test(clean)) return null;
    var value = parseFloat(clean.replace(",", "."));
    var minor = Math.round(value * Math.pow(10, exponent(code)));
    return minor > 0 ? minor : null;
  }

  function amount() {
    if (custom && custom.value.trim()) return typed(custom.value, currency());
    var choice = checked("amount_choice");
    return choice && choice !== "other" ? parseInt(choice, 10) : null;
  }

  function fee(minor, code) {
    var fees = data.fee || {};
    var share = parseFloat(fees.percent || "0") / 100;
    var fixed = (fees.fixed || {})[code] || 0;
    return Math.ceil((minor + fixed) / (1 - share)) - minor;
  }

  function byTransfer() { return checked("payment") === "bank_transfer"; }

  function update() {
    var code = currency();
    var minor = amount();
    if (feeHint && data.fee_hint) {
      var on = minor || (data.presets && data.presets[code] && parseInt(data.presets[code][0][0], 10)) || 0;
      if (on) feeHint.textContent = data.fee_hint.replace("{fee}", format(fee(on, code), code)).replace("{amount}", format(on, code));
    }
    if (coversFee) coversFee.closest(".field").style.display = byTransfer() ? "none" : "";
    if (button && data.labels) {
      if (!minor) { button.textContent = data.fallback; return; }
      var total = minor + (coversFee && coversFee.checked && !byTransfer() ? fee(minor, code) : 0);
      var key = byTransfer() ? "transfer" : (checked("frequency") || "one_time");
      button.textContent = (data.labels[key] || data.labels.one_time).replace("{amount}", format(total, code));
    }
  }

  // The preset radios of another currency: the same places, new values and labels.
  function followCurrency() {
    var code = currency();
    var presets = (data.presets || {})[code];
    var group = form.querySelector("fieldset#amount_choice");
    if (!presets || !group || (shown && shown.value === code)) return;
    var radios = Array.prototype.slice.call(group.querySelectorAll("input[name=amount_choice]"));
    var other = group.querySelector("input[value=other]");
    var place = radios.filter(function (r) { return r !== other; }).map(function (r) { return r.checked; }).indexOf(true);
    radios.forEach(function (radio) { if (radio !== other) radio.closest(".radio").remove(); });
    var before = other ? other.closest(".radio") : null;
    presets.forEach(function (preset, index) {
      var wrap = document.createElement("div");
      wrap.className = "radio";
      var input = document.createElement("input");
      input.type = "radio"; input.name = "amount_choice"; input.id = "amount_choice-" + code + "-" + index;
      input.value = preset[0];
      input.checked = index === place;
      var label = document.createElement("label");
      label.htmlFor = input.id; label.textContent = preset[1];
      wrap.appendChild(input); wrap.appendChild(document.createTextNode(" ")); wrap.appendChild(label);
      group.insertBefore(wrap, before);
      input.addEventListener("change", onPreset);
    });
    if (shown) shown.value = code;
  }

  function onPreset(event) { if (event.target.value !== "other" && custom) custom.value = ""; update(); }

  if (custom) {
    var other = form.querySelector("input[name=amount_choice][value=other]");
    custom.addEventListener("input", function () { if (custom.value.trim() && other) other.checked = true; update(); });
  }
  form.querySelectorAll("input[name=amount_choice]").forEach(function (radio) { radio.addEventListener("change", onPreset); });
  form.querySelectorAll("input[name=frequency], input[name=payment]").forEach(function (radio) {
    radio.addEventListener("change", update);
  });
  if (coversFee) coversFee.addEventListener("change", update);
  if (currencySelect) currencySelect.addEventListener("change", function () { followCurrency(); update(); });

  // --- A language change keeps the gift ---------------------------------------------
  var switcher = document.querySelector("form.lang");
  var KEPT = ["email", "name", "country", "address_line1", "address_line2", "postal_code", "city",
              "dedication_kind", "dedication", "comment", "anonymous", "newsletter", "covers_fee", "payment"];
  if (switcher) {
    switcher.addEventListener("submit", function () {
      var state = { frequency: checked("frequency"), currency: currency() };
      var minor = amount();
      if (minor) state.amount = (minor / Math.pow(10, exponent(state.currency))).toFixed(exponent(state.currency));
      Object.keys(state).forEach(function (name) {
        var input = switcher.querySelector("input[data-keep][name=" + name + "]");
        if (!input) {
          input = document.createElement("input");
          input.type = "hidden"; input.name = name; input.setAttribute("data-keep", "");
          switcher.appendChild(input);
        }
        input.value = state[name];
      });
      var typedIn = {};
      KEPT.forEach(function (name) {
        var field = form.elements[name];
        if (!field) return;
        if (field.type === "checkbox") typedIn[name] = field.checked;
        else if (field.length && field[0] && field[0].type === "radio") typedIn[name] = checked(name);
        else typedIn[name] = field.value;
      });
      try { sessionStorage.setItem(STORE, JSON.stringify(typedIn)); } catch (e) { /* private mode: the link still keeps the gift */ }
    });
  }
  try {
    var saved = JSON.parse(sessionStorage.getItem(STORE) || "null");
    sessionStorage.removeItem(STORE);
    if (saved) {
      Object.keys(saved).forEach(function (name) {
        var field = form.elements[name];
        if (!field || KEPT.indexOf(name) < 0) return;
        if (field.type === "checkbox") field.checked = !!saved[name];
        else if (field.length && field[0] && field[0].type === "radio") {
          Array.prototype.forEach.call(field, function (radio) { radio.checked = radio.value === saved[name]; });
        } else if (!field.value) field.value = saved[name];
      });
    }
  } catch (e) { /* nothing kept */ }

  update();
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
