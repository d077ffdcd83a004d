// The workspace's small script (the pages work without it):
// 1. tells the server the browser's time zone (a cookie) and fills the forms' hidden zone fields;
// 2. the note form's live check: the submission's own check, asked while the peer types
//    (POST /inbox/notes/check, nothing is stored), with the matched words marked in the text.
(function () {
  "use strict";
  let zone = "UTC";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* keep UTC */ }
  document.cookie = "bridge_tz=" + encodeURIComponent(zone) + "; path=/; SameSite=Strict";
  document.querySelectorAll("input.tz-name").forEach(function (el) { if (!el.value) { el.value = zone; } });

  const form = document.getElementById("note-form");
  const out = document.getElementById("note-feedback");
  if (!form || !out) { return; }
  const text = form.querySelector("#n-text");
  const marked = document.getElementById("note-marked");
  const crisis = document.getElementById("crisis-live");
  let timer = null;
  let seq = 0;
  const HEAD = {
    allow: "Looks good: within peer scope.",
    warn: "You can submit this. A few things to check:",
    hold: "You can submit this; it will be held until:",
    block: "This note can't be sent as written:",
  };

  function el(tag, cls, txt) {
    const e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (txt !== undefined) { e.textContent = txt; }
    return e;
  }

  function mark(spans) {
    if (!marked) { return; }
    const p = marked.querySelector(".note-text");
    const value = text.value;
    p.textContent = "";
    let pos = 0;
    spans.forEach(function (s) {
      const start = s[0], end = s[1];
      if (start < pos || end > value.length || end <= start) { return; }
      if (start > pos) { p.appendChild(document.createTextNode(value.slice(pos, start))); }
      const m = el("mark", "", value.slice(start, end));
      m.dataset.severity = s[2];
      p.appendChild(m);
      pos = end;
    });
    if (pos < value.length) { p.appendChild(document.createTextNode(value.slice(pos))); }
    marked.hidden = spans.length === 0;
  }

  function render(result) {
    out.dataset.verdict = result.verdict;
    out.textContent = "";
    out.appendChild(el("p", "verdict", result.headline && result.verdict === "error"
      ? result.headline + " " + (result.detail || "") : HEAD[result.verdict] || result.headline || ""));
    const findings = result.findings || [];
    if (findings.length) {
      const ul = el("ul", "findings");
      findings.forEach(function (f) {
        const li = el("li", "finding", f.message);
        li.dataset.severity = f.severity;
        if (f.words.length) { li.appendChild(el("span", "words", " (\u201c" + f.words.join("\u201d, \u201c") + "\u201d)")); }
        ul.appendChild(li);
      });
      out.appendChild(ul);
      const details = el("details", "tech");
      details.appendChild(el("summary", "", "Details"));
      const rules = el("ul");
      findings.forEach(function (f) { rules.appendChild(el("li", "", f.rule + " (" + f.severity + ")")); });
      details.appendChild(rules);
      out.appendChild(details);
    }
    mark(result.spans || []);
    if (crisis) { crisis.hidden = !result.risk; }
  }

  async function check() {
    const mine = ++seq;
    const fd = new FormData(form);
    if (!String(fd.get("text") || "").trim()) { out.textContent = ""; delete out.dataset.verdict; mark([]); return; }
    try {
      const resp = await fetch("/inbox/notes/check", {
        method: "POST",
        credentials: "same-origin",
        body: new URLSearchParams(fd),
      });
      if (mine !== seq) { return; }  // a newer keystroke already asked
      render(await resp.json());
    } catch (e) {
      out.dataset.verdict = "error";
      out.textContent = "The live check is unavailable; the note is checked again when you submit.";
    }
  }
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
  if (text.value.trim()) { check(); }
})();
