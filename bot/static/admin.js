// The officers' console: the composer's live audience count and a broadcast's live progress.
// Plain script, no library; served from /static so the page's CSP allows it.
"use strict";

(function () {
  const fmt = (n) => Number(n).toLocaleString("vi-VN");

  const composer = document.getElementById("composer");
  if (composer) {
    const box = document.getElementById("live-count");
    const put = (key, text) => { box.querySelector(`[data-count="${key}"]`).textContent = text; };
    let timer = null;
    let asked = 0;
    const count = async () => {
      const mine = ++asked;
      const body = new FormData(composer);  // carries the form's CSRF token
      try {
        const response = await fetch(composer.dataset.countUrl, {
          method: "POST", body, credentials: "same-origin",
          headers: { "X-CSRFToken": body.get("csrf_token") },
        });
        const data = await response.json();
        if (mine !== asked) return;  // a newer count is on its way
        if (!response.ok) { put("error", data.error || ""); return; }
        put("error", "");
        put("total", fmt(data.total));
        put("no_channel", fmt(data.no_channel));
        put("channels", Object.entries(data.by_channel)
          .map(([channel, n]) => `${channel}: ${fmt(n)}`).join(" · "));
      } catch (err) {
        put("error", String(err));
      }
    };
    const soon = () => { clearTimeout(timer); timer = setTimeout(count, 250); };
    composer.addEventListener("change", soon);
    composer.addEventListener("input", soon);
    count();
  }

  const live = document.getElementById("broadcast-live");
  if (live) {
    const bar = live.querySelector("progress");
    const poll = async () => {
      let finished = false;
      try {
        const response = await fetch(live.dataset.statusUrl, { credentials: "same-origin" });
        if (response.ok) {
          const data = await response.json();
          bar.value = data.percent;
          bar.textContent = `${data.percent} %`;
          live.querySelectorAll("[data-live]").forEach((el) => {
            const key = el.dataset.live;
            if (key === "failures") {
              el.replaceChildren(...Object.entries(data.failures).map(([reason, n]) => {
                const li = document.createElement("li");
                li.textContent = `${reason}: ${fmt(n)}`;
                return li;
              }));
            } else if (key in data) {
              el.textContent = typeof data[key] === "number" && key !== "percent"
                ? fmt(data[key]) : String(data[key]);
            }
          });
          live.dataset.state = data.state;
          finished = data.state === "done" || data.state === "cancelled";
        }
      } catch (err) {
        // The next poll tries again; a network blip does not stop the bar.
      }
      if (!finished) setTimeout(poll, 1000);
    };
    poll();
  }
})();
