/*! Supporters "Support Us" widget. No cookies, no identifiers, no third-party requests. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !window.fetch || !Element.prototype.attachShadow) return;
  var origin = new URL(me.src, location.href).origin;
  var hosts = [].slice.call(document.querySelectorAll("[data-supporters-widget]"));
  // "I've given" (/my/quiet): on our own site's top-level pages only, no card, no space and no count until then
  try {
    if (location.origin === origin && self === top && localStorage.getItem("supporters:quiet-until") > Date.now()) {
      hosts.forEach(function (host) { host.hidden = true; });
      return;
    }
  } catch (e) {}
  var lang = (me.dataset.lang || document.documentElement.lang || "").slice(0, 2).toLowerCase();
  // shared by every copy of the script on the page (one script tag per card is allowed)
  var shared = window["supporters:widget"] || (window["supporters:widget"] = { configs: {}, chosen: {} });
  var configs = shared.configs, chosen = shared.chosen;
  // The card is HEIGHT px tall at every width (docs/widget.md, "Its size"): each part has a most
  // lines it may take, the space left sits above the button. app.css reserves the same height.
  var CSS = ":host{all:initial!important;display:block!important;height:448px!important;contain:strict!important}" +
    ":host([hidden]){display:none!important}:host([data-frame]){height:100vh!important}" +
    ".c{box-sizing:border-box;height:100%;overflow:hidden;display:flex;flex-direction:column;font:16px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d232b;background:#fbfaf7;" +
    "border:1px solid #e3e0d8;border-top:4px solid #b3261e;border-radius:8px;padding:16px 18px;max-width:640px;margin:0 auto}" +
    ".c>*{flex:none}h2,p{overflow:hidden;display:-webkit-box;-webkit-box-orient:vertical}" +
    "h2{font:700 21px/1.25 Georgia,serif;margin:0 0 6px;max-height:2.5em;-webkit-line-clamp:2}p{margin:0 0 10px;max-height:5.8em;-webkit-line-clamp:4}" +
    ".bar{height:8px;background:#e3e0d8;border-radius:4px;overflow:hidden}.bar span{display:block;height:100%;background:#1e7b46}" +
    ".raised{font-size:14px;line-height:20px;max-height:40px;-webkit-line-clamp:2;color:#5b6470;margin:6px 0 10px}" +
    ".g{display:flex;gap:6px;margin:0 0 8px}.a{display:grid;grid-template-columns:repeat(auto-fit,minmax(58px,1fr));max-height:82px;overflow:hidden}.a button{font-size:14px;padding:8px 3px}" +
    "button{font:600 15px/20px system-ui,sans-serif;padding:8px 6px;border:1px solid #8a8f98;border-radius:6px;background:#fff;color:#1d232b;cursor:pointer;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}" +
    "button[aria-pressed=true]{border-color:#b3261e;box-shadow:inset 0 0 0 1px #b3261e}" +
    "a{display:block;margin-top:auto;text-align:center;font:700 17px/22px system-ui,sans-serif;background:#b3261e;color:#fff;text-decoration:none;padding:11px;border-radius:6px}" +
    ":focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}@media print{:host{display:none!important}}" +
    // a frame given less than the card's height (older snippets said 340 px) drops the text, then the progress line
    "@media (max-height:447px){:host([data-frame]) .t{display:none}}@media (max-height:339px){:host([data-frame]) .raised{display:none}}" +
    ":host([data-theme=dark]) .c{background:#1d232b;color:#f3f1ec;border-color:#3a414b}" +
    ":host([data-theme=dark]) button{background:#2a313a;color:#f3f1ec}:host([data-theme=dark]) .raised{color:#b9c0c8}" +
    "@media (prefers-color-scheme:dark){:host(:not([data-theme=light])) .c{background:#1d232b;color:#f3f1ec;border-color:#3a414b}" +
    ":host(:not([data-theme=light])) button{background:#2a313a;color:#f3f1ec}}";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  function config(campaign) {
    var url = origin + "/widget/config/" + encodeURIComponent(campaign) + ".json" + (lang ? "?lang=" + lang : "");
    return configs[url] || (configs[url] = fetch(url, { credentials: "omit" }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    }));
  }

  // One variant per campaign per page view: every card of the campaign shows (and counts) the same one.
  function pick(cfg) {
    var variants = cfg.variants, total = 0, i;
    if (chosen[cfg.campaign]) return chosen[cfg.campaign];
    for (i = 0; i < variants.length; i++) total += variants[i].weight;
    var roll = Math.random() * total;
    for (i = 0; i < variants.length && (roll -= variants[i].weight) >= 0; i++);
    return (chosen[cfg.campaign] = variants[i] || variants[0]);
  }

  // No cookies ride along (sendBeacon always sends them): a CORS "simple request", text/plain JSON.
  function beacon(cfg, event) {
    fetch(cfg.event_url, { method: "POST", body: JSON.stringify(event), keepalive: true, credentials: "omit", mode: "no-cors" }).catch(function () {});
  }

  function render(host, card, cfg) {
    var data = host.dataset, variant = pick(cfg), frame = "frame" in data;
    var currency = cfg.presets[data.currency] ? data.currency : cfg.currencies[0];
    var presets = cfg.presets[currency], state = { frequency: cfg.frequency, amount: presets[Math.min(1, presets.length - 1)].amount };
    var event = { campaign: cfg.campaign, article: data.article || "", variant: variant.key };
    card.setAttribute("role", "region");
    card.setAttribute("aria-labelledby", "sw-h");
    card.appendChild(el("h2", { id: "sw-h" }, variant.heading));
    if (variant.text) card.appendChild(el("p", { "class": "t" }, variant.text));
    var p = cfg.progress;
    if (p.percent != null) {
      var bar = el("div", { "class": "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": p.percent, "aria-label": p.raised_label + " " + p.goal_label });
      var fill = el("span");
      fill.style.width = p.percent + "%";
      bar.appendChild(fill);
      card.appendChild(bar);
    }
    card.appendChild(el("p", { "class": "raised" }, p.raised_label + (p.goal_label ? " " + p.goal_label : "") + " · " + p.supporters_label));
    var link = el("a", { href: "#", target: frame ? "_top" : "_self" }, cfg.labels.button);

    function group(label, options, key, cls) {
      var box = el("div", { "class": cls, role: "group", "aria-label": label });
      options.forEach(function (o) {
        var b = el("button", { type: "button", "aria-pressed": String(state[key] === o[0]) }, o[1]);
        b.addEventListener("click", function () {
          state[key] = o[0];
          box.querySelectorAll("button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
          update();
        });
        box.appendChild(b);
      });
      card.appendChild(box);
    }
    group(cfg.labels.frequency, [["one_time", cfg.labels.once], ["monthly", cfg.labels.monthly]], "frequency", "g");
    group(cfg.labels.amount, presets.map(function (x) { return [x.amount, x.label]; }), "amount", "g a");

    function update() {
      var q = new URLSearchParams({ campaign: cfg.campaign, amount: state.amount, currency: currency, frequency: state.frequency, variant: variant.key });
      if (event.article) q.set("article", event.article);
      // in a frame, the page's address comes from the snippet (?page=), else the referrer (only an origin)
      q.set("src", frame ? (data.src || document.referrer || location.href) : location.href);
      link.href = cfg.donate_url + "?" + q;
    }
    update();
    link.addEventListener("click", function () { beacon(cfg, Object.assign({ type: "click" }, event)); });
    card.appendChild(link);

    if (window.IntersectionObserver) {
      var seen = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.intersectionRatio >= 0.5; })) {
          seen.disconnect();
          beacon(cfg, Object.assign({ type: "impression" }, event));
        }
      }, { threshold: 0.5 });
      seen.observe(host);
    }
  }

  if (me.dataset.campaign) {
    var own = el("div", { "data-supporters-widget": "", "data-campaign": me.dataset.campaign });
    ["article", "currency", "theme"].forEach(function (k) { if (me.dataset[k]) own.dataset[k] = me.dataset[k]; });
    me.parentNode.insertBefore(own, me);
    hosts.push(own);
  }
  hosts.forEach(function (host) {
    if (host.dataset.supportersReady) return;
    host.dataset.supportersReady = "1";
    if ("frame" in host.dataset) document.body.style.margin = "0";
    // the empty card holds its space at once, with the same rules as the full card
    var root = host.attachShadow({ mode: "open" }), card = el("section", { "class": "c" });
    if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else root.appendChild(el("style", {}, CSS));
    root.appendChild(card);
    config(host.dataset.campaign || "general").then(function (cfg) { render(host, card, cfg); }, function () {
      host.hidden = true;
    });
  });
})();
