// Tessera console: the little progressive enhancement the pages use (no inline script: the
// Content-Security-Policy forbids it). Everything works without it but the copy button and
// the live tail.
"use strict";

document.addEventListener("click", (ev) => {
  const button = ev.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
  });
});

// Live tail of an event log: while the box is checked, ask for the newest rows every few
// seconds and add the ones not shown yet at the top (rows are server-rendered and escaped).
(() => {
  const box = document.getElementById("live");
  const body = document.querySelector("#events tbody");
  if (!box || !body) return;
  let timer = null;
  const poll = async () => {
    try {
      const res = await fetch(box.dataset.tail, { credentials: "same-origin" });
      if (!res.ok) return;
      const tpl = document.createElement("template");
      tpl.innerHTML = await res.text();
      const known = new Set([...body.rows].map((r) => r.dataset.id));
      const fresh = [...tpl.content.querySelectorAll("tr")].filter((r) => !known.has(r.dataset.id));
      for (const row of fresh.reverse()) body.prepend(row);
      if (fresh.length) document.getElementById("no-events")?.remove();
    } catch (_) {
      // A failed poll is tried again at the next tick.
    }
  };
  box.addEventListener("change", () => {
    if (box.checked) {
      poll();
      timer = setInterval(poll, 3000);
    } else {
      clearInterval(timer);
    }
  });
})();
