// Web chat client: sends with a client id (a retry is deduplicated by the server) and polls for
// replies; unsent messages wait in localStorage while the signal is gone.
(function () {
  "use strict";
  var cfg = window.DUAN8, log = document.getElementById("log");
  var after = 0, pollTimer = null, fastUntil = 0;
  var queueKey = "duan8.unsent", seenKey = "duan8.after";

  function newId() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function bubble(text, who) {
    var div = document.createElement("div");
    div.className = "msg " + who;
    div.textContent = text;
    log.appendChild(div);
    showNewest();
    return div;
  }
  // Keep the newest message, its question and all its buttons, in view above the input: after
  // it is drawn, after its buttons are added, and when the keyboard opens and the page shrinks.
  function showNewest() {
    log.scrollTop = log.scrollHeight;
    (window.requestAnimationFrame || setTimeout)(function () { log.scrollTop = log.scrollHeight; });
  }
  function showButtons(div, buttons) {
    if (!buttons || !buttons.length) return;
    var row = document.createElement("div");
    row.className = "buttons";
    buttons.forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b.label;
      btn.onclick = function () {
        Array.prototype.forEach.call(row.children, function (c) { c.disabled = true; });
        bubble(b.label, "me");
        enqueue({payload: b.payload, text: b.label});
      };
      row.appendChild(btn);
    });
    div.appendChild(row);
    showNewest();
  }
  function loadQueue() { try { return JSON.parse(localStorage.getItem(queueKey) || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { localStorage.setItem(queueKey, JSON.stringify(q)); }
  function enqueue(msg) {
    msg.id = newId();
    var q = loadQueue(); q.push(msg); saveQueue(q);
    flush();
  }
  var flushing = false;
  function flush() {
    if (flushing) return;
    var q = loadQueue();
    if (!q.length) return;
    flushing = true;
    var msg = q[0];
    fetch(cfg.urls.messages + "?lang=" + cfg.lang, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(msg)
    }).then(function (r) {
      if (r.status >= 500) throw new Error("server");
      if (r.status === 429) {
        // Too fast: the server says how long to wait, in words the member reads.
        return r.json().then(function (data) {
          bubble(data.message, "bot");
          flushing = false;
          setTimeout(flush, (data.retry_after || 10) * 1000);
        });
      }
      var rest = loadQueue(); rest.shift(); saveQueue(rest);
      document.getElementById("offline").hidden = true;
      flushing = false; fastUntil = Date.now() + 15000; poll(); flush();
    }).catch(function () {
      document.getElementById("offline").hidden = false;
      flushing = false; setTimeout(flush, 4000);
    });
  }
  function poll() {
    clearTimeout(pollTimer);
    fetch(cfg.urls.messages + "?after=" + after, {credentials: "same-origin"}).then(function (r) {
      return r.json();
    }).then(function (data) {
      data.messages.forEach(function (m) {
        after = Math.max(after, m.id);
        var div = bubble(m.text, "bot");
        showButtons(div, m.buttons);
      });
      sessionStorage.setItem(seenKey, String(after));
      // Replies still queued for this chat arrive within moments: look again soon for them.
      if (data.pending > 0) fastUntil = Date.now() + 15000;
      schedule(data.pending > 0 ? 250 : 0);
    }).catch(function () { schedule(4000); });
  }
  function schedule(ms) {
    pollTimer = setTimeout(poll, ms || (Date.now() < fastUntil ? 700 : 5000));
  }
  document.getElementById("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("text"), text = input.value.trim();
    if (!text) return;
    bubble(text, "me");
    input.value = "";
    enqueue({text: text});
  });
  document.getElementById("photo").addEventListener("change", function (e) {
    var files = Array.prototype.slice.call(e.target.files || []);
    if (!files.length) return;
    var form = new FormData();
    form.append("id", newId());
    files.forEach(function (f) {
      if (f.size > cfg.maxPhoto) { bubble(cfg.words.too_large + " (" + f.name + ")", "bot"); return; }
      form.append("photo", f); bubble("[" + cfg.words.photo + "] " + f.name, "me");
    });
    e.target.value = "";
    if (!form.has("photo")) return;  // only oversize files: said locally, nothing to upload
    fetch(cfg.urls.photos + "?lang=" + cfg.lang, {method: "POST", body: form, credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 429) return r.json().then(function (data) { bubble(data.message, "bot"); });
        fastUntil = Date.now() + 15000; poll();
      })
      .catch(function () { document.getElementById("offline").hidden = false; });
  });
  // "Thoát": on a shared phone, end this chat and leave nothing of it on the screen or in
  // the browser's storage for the next person.
  document.getElementById("signout").addEventListener("click", function () {
    fetch(cfg.urls.signout, {method: "POST", credentials: "same-origin",
                             headers: {"Content-Type": "application/json"}, body: "{}"})
      .then(function () {
        clearTimeout(pollTimer);
        localStorage.removeItem(queueKey); sessionStorage.removeItem(seenKey);
        while (log.firstChild) log.removeChild(log.firstChild);
        bubble(cfg.words.signed_out, "bot");
        setTimeout(function () { location.replace(location.pathname + "?lang=" + cfg.lang); }, 1500);
      }).catch(function () { document.getElementById("offline").hidden = false; });
  });
  window.addEventListener("online", flush);
  window.addEventListener("resize", showNewest);
  if (window.visualViewport) window.visualViewport.addEventListener("resize", showNewest);
  document.getElementById("text").addEventListener("focus", function () { setTimeout(showNewest, 300); });
  poll();
  setTimeout(function () {
    if (!log.children.length && !loadQueue().length) {
      var start = new URLSearchParams(location.search).get("start");
      enqueue(start ? {text: "/start", start: start} : {text: cfg.words.start});
    }
  }, 900);
  flush();
})();
