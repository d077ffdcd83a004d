// Live scope feedback for the note form: asks POST /api/v1/notes/check (nothing is stored) while the
// peer types, and says which rule and which words would block or flag the note. The page works
// without this script; the server checks again on submit.
(function () {
  "use strict";
  function offset() {
    const m = -new Date().getTimezoneOffset();
    const sign = m >= 0 ? "+" : "-";
    const a = Math.abs(m);
    return sign + String(Math.floor(a / 60)).padStart(2, "0") + ":" + String(a % 60).padStart(2, "0");
  }
  document.querySelectorAll("input.tz").forEach(function (el) { el.value = offset(); });

  const form = document.getElementById("note-form");
  const out = document.getElementById("note-feedback");
  if (!form || !out) { return; }
  const text = form.querySelector("#n-text");
  let timer = null;
  let seq = 0;

  function render(result) {
    out.dataset.verdict = result.verdict;
    out.textContent = "";
    const head = document.createElement("p");
    head.className = "verdict";
    head.textContent = result.verdict === "allow" ? "Within peer scope."
      : result.verdict === "warn" ? "Within scope, with notes:"
      : result.verdict === "hold" ? "Will be held until resolved:" : "This note would be blocked:";
    out.appendChild(head);
    if (result.violations.length) {
      const ul = document.createElement("ul");
      result.violations.forEach(function (v) {
        const li = document.createElement("li");
        // evidence: strings, or {text, start, end} spans of the note
        const items = Array.isArray(v.evidence) ? v.evidence : (v.evidence ? [v.evidence] : []);
        const ev = items.map(function (e) { return typeof e === "object" ? e.text : String(e); })
          .join("\u201d, \u201c");
        li.textContent = v.rule + " (" + v.severity + "): " + v.message + (ev ? " \u2014 \u201c" + ev + "\u201d" : "");
        ul.appendChild(li);
      });
      out.appendChild(ul);
    }
  }

  async function check() {
    const mine = ++seq;
    const fd = new FormData(form);
    if (!String(fd.get("text") || "").trim()) { out.textContent = ""; delete out.dataset.verdict; return; }
    const body = {
      id: String(fd.get("id") || "draft-check") || "draft-check",
      participant_id: String(fd.get("participant_id") || "unknown") || "unknown",
      author_id: document.body.dataset.practitioner || "unknown",
      audience: String(fd.get("audience")),
      text: String(fd.get("text")),
      written_at: new Date().toISOString(),
    };
    try {
      const resp = await fetch("/api/v1/notes/check", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Bridge-Inbox": "1" },
        body: JSON.stringify(body),
      });
      if (mine !== seq) { return; }  // a newer keystroke already asked
      const data = await resp.json();
      if (resp.ok) { render(data); return; }
      out.dataset.verdict = "error";
      // the check needs a complete draft (a known participant, a valid id): say what is missing
      out.textContent = data.field
        ? "Scope check waits for a valid " + data.field.replace(/_/g, " ") + " (" + data.message + ")."
        : data.message;
    } catch (e) {
      out.textContent = "Scope check unavailable; the note is checked again when you submit.";
    }
  }
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(check, 300); });
})();
