// Apiary pages: the little JavaScript they need. No framework, no build step.
// The token stays in this browser (localStorage) and goes only to this hub, as the API's
// Authorization header — never a cookie — so a page from elsewhere cannot act for it.
"use strict";
(function () {
  const KEY = "apiary.token";
  const token = () => localStorage.getItem(KEY) || "";
  const auth = () => (token() ? { Authorization: "Bearer " + token() } : {});
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const enc = (s) => encodeURIComponent(s).replace(/%3A/gi, ":").replace(/%40/g, "@");
  const indicatorHref = (v) => "/indicators/" + enc(v);
  const feedHref = (f) => "/feeds/" + f.split("/").map(encodeURIComponent).join("/");

  async function api(method, path, body, type) {
    const headers = Object.assign({ Accept: "application/json" }, auth());
    let payload = body;
    if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    } else if (type) headers["Content-Type"] = type;
    const r = await fetch(path, { method, headers, body: payload });
    let data = null;
    const text = await r.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { text }; }
    if (!r.ok) {
      const msg = (data && data.error && data.error.message) || r.status + " " + r.statusText;
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function say(node, text, bad) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle("notice", !!bad);
  }

  // ---- the signed-in re-render: the same page, with the token -------------------------------
  async function personalise() {
    const main = $("#main");
    if (!main || !token() || main.dataset.user) return;
    try {
      const r = await fetch(location.href, { headers: Object.assign({ "X-Apiary-Fragment": "1" }, auth()) });
      if (r.status === 401) {
        showWho(null, "token refused — sign in again");
        return;
      }
      const html = await r.text();
      const doc = new DOMParser().parseFromString(html, "text/html");
      const fresh = doc.querySelector("#main");
      if (fresh) {
        main.replaceWith(document.adoptNode(fresh));
        if (fresh.dataset.title) document.title = fresh.dataset.title + " · Apiary";
      }
    } catch (e) {
      showWho(null, "offline?");
    }
  }

  function showWho(user, note) {
    const w = $("#whoami");
    if (!w) return;
    w.textContent = "";
    if (user) w.append("signed in as ", el("a", { href: "/account", text: user }));
    else if (note) w.append(note);
    else w.append(el("a", { href: "/account", text: "Sign in" }));
  }

  // ---- feed page: subscribe, downloads with the token ---------------------------------------
  function bindFeed() {
    for (const b of $$("button.subscribe")) {
      b.addEventListener("click", async () => {
        const out = b.parentElement;
        if (!token()) { location.href = "/account"; return; }
        try {
          await api("POST", "/api/v1/subscriptions", { feed: b.dataset.feed });
          b.textContent = "Subscribed";
          b.setAttribute("aria-pressed", "true");
        } catch (e) {
          out.append(el("span", { class: "notice", role: "alert", text: " " + e.message }));
        }
      });
    }
    for (const a of $$("a[data-auth-download]")) {
      a.addEventListener("click", async (ev) => {
        if (!token()) return; // a public feed downloads as a plain link
        ev.preventDefault();
        const r = await fetch(a.href, { headers: auth() });
        if (!r.ok) { alert("export refused: " + r.status); return; }
        const url = URL.createObjectURL(await r.blob());
        const tmp = el("a", { href: url, download: a.dataset.authDownload });
        document.body.append(tmp);
        tmp.click();
        tmp.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      });
    }
  }

  // ---- live: the native stream (SSE) --------------------------------------------------------
  function bindLive() {
    const rows = $("#live-rows");
    if (!rows) return;
    const status = $("#live-status"), count = $("#live-count"), toggle = $("#live-toggle");
    const form = $("#live-filters");
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) params.set(k, String(v).trim());
    const url = "/api/v1/stream" + (params.toString() ? "?" + params : "");
    let paused = false, n = 0, stop = null;
    toggle.addEventListener("click", () => {
      paused = !paused;
      toggle.setAttribute("aria-pressed", String(paused));
      toggle.textContent = paused ? "Resume" : "Pause";
    });
    const add = (s) => {
      n += 1;
      count.textContent = String(n);
      if (paused) return;
      const tr = el("tr", { class: "new" },
        el("td", {}, el("time", { datetime: s.reporttime, text: (s.reporttime || "").replace("T", " ").replace(/\.\d+/, "") })),
        el("td", {}, el("a", { class: "value", href: indicatorHref(s.indicator), text: s.indicator })),
        el("td", { text: s.itype }),
        el("td", {}, el("a", { href: feedHref(s.feed), text: s.feed })),
        el("td", {}, ...(s.tags || []).map((t) => el("span", { class: "tag", text: t }))));
      rows.prepend(tr);
      while (rows.children.length > 500) rows.lastElementChild.remove();
    };
    const onData = (data) => { try { add(JSON.parse(data)); } catch (_) { /* a frame that is not a sighting */ } };
    if (!token()) {
      // Anonymous: EventSource, which reconnects by itself with Last-Event-ID.
      const es = new EventSource(url);
      es.addEventListener("open", () => say(status, "live"));
      es.addEventListener("sighting", (e) => onData(e.data));
      es.addEventListener("error", async () => {
        say(status, "reconnecting…");
        if (es.readyState === EventSource.CLOSED) {
          try { await api("GET", url); } catch (e) { say(status, e.message, true); }
        }
      });
      stop = () => es.close();
    } else {
      // With a token: EventSource cannot send a header, so read the same stream with fetch.
      let last = null, ctl = null, closed = false;
      const run = async () => {
        while (!closed) {
          ctl = new AbortController();
          try {
            const h = Object.assign({ Accept: "text/event-stream" }, auth());
            if (last) h["Last-Event-ID"] = last;
            const r = await fetch(url, { headers: h, signal: ctl.signal });
            if (!r.ok) {
              let msg = r.status + "";
              try { msg = (await r.json()).error.message; } catch (_) {}
              say(status, msg, true);
              if (r.status < 500 && r.status !== 429) return;
            } else {
              say(status, "live");
              const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
              let buf = "";
              for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                buf += value;
                let i;
                while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
                  const frame = buf.slice(0, i);
                  buf = buf.slice(i).replace(/^\r?\n\r?\n/, "");
                  let ev = "message", data = [];
                  for (const line of frame.split(/\r?\n/)) {
                    if (line.startsWith("id:")) last = line.slice(3).trim();
                    else if (line.startsWith("event:")) ev = line.slice(6).trim();
                    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
                  }
                  if (ev === "sighting") onData(data.join("\n"));
                }
              }
            }
          } catch (e) {
            if (closed) return;
          }
          say(status, "reconnecting…");
          await new Promise((res) => setTimeout(res, 2000));
        }
      };
      run();
      stop = () => { closed = true; if (ctl) ctl.abort(); };
    }
    window.addEventListener("pagehide", () => stop && stop());
  }

  // ---- account ------------------------------------------------------------------------------
  function bindAccount() {
    const form = $("#signin-form");
    if (!form) return;
    const main = $("#main");
    const me = main.dataset.user;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = $("#token").value.trim();
      const r = await fetch("/account", { headers: { Authorization: "Bearer " + t, "X-Apiary-Fragment": "1" } });
      if (r.status === 401) { say($("#signin-msg"), "This hub does not know that token (or it was revoked or expired).", true); return; }
      if (!r.ok) { say($("#signin-msg"), "Sign-in failed: " + r.status, true); return; }
      localStorage.setItem(KEY, t);
      location.reload();
    });
    $("#signout").addEventListener("click", () => { localStorage.removeItem(KEY); location.reload(); });
    const signup = $("#signup-form");
    if (signup) {
      signup.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const name = $("#signup-name").value.trim();
        const r = await fetch("/api/v1/signup", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
        const body = await r.json().catch(() => ({}));
        if (r.status === 429) { say($("#signup-msg"), "Too many sign-ups from here: try again in " + (r.headers.get("Retry-After") || "a few") + " s.", true); return; }
        if (!r.ok) { say($("#signup-msg"), (body.error && body.error.message) || ("Sign-up failed: " + r.status), true); return; }
        localStorage.setItem(KEY, body.token);
        signup.hidden = true;
        say($("#signup-msg"), "Welcome, " + body.user.name + ".");
        $("#new-token").textContent = body.token;
        $("#signup-token").hidden = false;
        $("#signup-continue").addEventListener("click", () => location.reload());
      });
    }
    if (!me) return;
    form.hidden = true;
    $("#signed-in").hidden = false;
    $("#me").textContent = me;
    $("#account-panels").hidden = false;
    const admin = main.dataset.admin === "true";
    loadFeeds(me, admin);
    loadSubs();
    loadTokens();
    if (admin) { $("#admin").hidden = false; loadUsers(); loadTiers(); }

    $("#feed-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target), msg = $(".msg", ev.target.parentElement);
      try {
        const body = { name: f.get("name"), visibility: f.get("visibility") };
        if (f.get("description")) body.description = f.get("description");
        const made = await api("POST", "/api/v1/feeds", body);
        say(msg, "Created " + made.feed + ".");
        ev.target.reset();
        loadFeeds(me, admin);
      } catch (e) { say(msg, e.message, true); }
    });
    $("#publish-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const item = { indicator: f.get("indicator") };
      const tags = String(f.get("tags") || "").trim();
      if (tags) item.tags = tags.split(",").map((t) => t.trim()).filter(Boolean);
      await publish(f.get("feed"), item, undefined, ev.target);
    });
    $("#upload-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const file = f.get("file");
      const name = (file && file.name || "").toLowerCase();
      const type = name.endsWith(".csv") ? "text/csv" : name.endsWith(".json") ? "application/json"
        : name.endsWith(".jsonl") || name.endsWith(".ndjson") ? "application/x-ndjson" : "text/plain";
      await publish(f.get("feed"), file, type, ev.target);
    });
    $("#token-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target), msg = $("#token-msg");
      const scopes = ["read", "write"].filter((s) => f.get(s));
      try {
        const body = { scopes: scopes.join(",") };
        if (f.get("label")) body.label = f.get("label");
        const made = await api("POST", "/api/v1/tokens", body);
        msg.textContent = "";
        msg.append("New token (shown once): ", el("code", { text: made.token }));
        loadTokens();
      } catch (e) { say(msg, e.message, true); }
    });
    $("#user-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target), msg = $(".msg", ev.target.parentElement);
      try {
        await api("POST", "/api/v1/users", { name: f.get("name"), admin: !!f.get("admin") });
        say(msg, "Created " + f.get("name") + ".");
        loadUsers();
      } catch (e) { say(msg, e.message, true); }
    });
  }

  async function publish(feed, body, type, form) {
    const msg = $("#publish-msg");
    if (!feed) { say(msg, "Choose a feed you may write to.", true); return; }
    try {
      const [o, n] = feed.split("/");
      const r = await api("POST", `/api/v1/feeds/${encodeURIComponent(o)}/${encodeURIComponent(n)}/indicators`, body, type);
      msg.textContent = "";
      msg.append(`Stored ${r.accepted}, duplicates ${r.duplicates}, refused ${r.rejected.length}. `);
      for (const it of (r.items || []).slice(0, 5)) msg.append(el("a", { class: "value", href: indicatorHref(it.indicator), text: it.indicator }), " ");
      for (const it of (r.rejected || []).slice(0, 5)) msg.append(el("span", { class: "notice", text: `line ${it.line || it.index}: ${it.message} ` }));
      form.reset();
    } catch (e) { say(msg, e.message, true); }
  }

  async function loadFeeds(me, admin) {
    const list = $("#my-feeds-list");
    try {
      const feeds = (await api("GET", "/api/v1/feeds")).items;
      const mine = feeds.filter((f) => f.owner === me);
      list.textContent = "";
      for (const f of mine) list.append(el("li", {}, el("a", { href: feedHref(f.feed), text: f.feed }), " ", el("span", { class: "pill", text: f.visibility })));
      if (!mine.length) list.append(el("li", { class: "empty", text: "No feeds yet." }));
      const writable = admin ? feeds : mine;
      for (const sel of $$("select.writable-feeds")) {
        sel.textContent = "";
        for (const f of writable) sel.append(el("option", { value: f.feed, text: f.feed }));
      }
    } catch (e) { say(list, e.message, true); }
  }

  async function loadSubs() {
    const list = $("#subs-list");
    try {
      const subs = (await api("GET", "/api/v1/subscriptions")).items;
      list.textContent = "";
      for (const f of subs) {
        const b = el("button", { type: "button", text: "Unsubscribe" });
        b.addEventListener("click", async () => {
          await api("DELETE", "/api/v1/subscriptions/" + f.feed.split("/").map(encodeURIComponent).join("/"));
          loadSubs();
        });
        list.append(el("li", {}, el("a", { href: feedHref(f.feed), text: f.feed }), " ", b));
      }
      if (!subs.length) list.append(el("li", { class: "empty", text: "No subscriptions: use Subscribe on a feed's page." }));
    } catch (e) { say(list, e.message, true); }
  }

  async function loadTokens() {
    const body = $("#tokens-list");
    try {
      const toks = (await api("GET", "/api/v1/tokens")).items;
      body.textContent = "";
      for (const t of toks.filter((t) => !t.revoked)) {
        const b = el("button", { type: "button", text: "Revoke" });
        b.addEventListener("click", async () => {
          if (!confirm("Revoke token " + t.id + "?")) return;
          await api("DELETE", "/api/v1/tokens/" + t.id);
          loadTokens();
        });
        body.append(el("tr", {}, el("td", { text: t.id }), el("td", { text: t.label || "" }), el("td", { text: t.scopes }),
          el("td", { text: t.expires_at || "never" }), el("td", {}, b)));
      }
    } catch (e) { say($("#token-msg"), e.message, true); }
  }

  async function loadUsers() {
    const list = $("#users-list");
    try {
      const users = (await api("GET", "/api/v1/users")).items;
      list.textContent = "";
      for (const u of users) list.append(el("li", { text: u.name + (u.admin ? " (admin)" : "") }));
    } catch (e) { say(list, e.message, true); }
  }

  async function loadTiers() {
    const box = $("#tiers");
    try {
      const data = await api("GET", "/api/v1/sources");
      const items = data.items || data.sources || [];
      const t = el("table", { class: "list" }, el("thead", {}, el("tr", {}, el("th", { text: "Source" }), el("th", { text: "Tier" }), el("th", { text: "Reliability" }))));
      const tb = el("tbody");
      for (const s of items) {
        const name = s.feed || s.source || s.name;
        const sel = el("select", { "aria-label": "tier of " + name });
        for (const tier of ["seed", "established", "probation", "quarantined"]) sel.append(el("option", { text: tier }));
        sel.value = s.tier;
        sel.addEventListener("change", async () => {
          const [o, n] = name.split("/");
          try { await api("PUT", `/api/v1/sources/${encodeURIComponent(o)}/${encodeURIComponent(n)}/tier`, { tier: sel.value }); }
          catch (e) { alert(e.message); }
        });
        tb.append(el("tr", {}, el("td", {}, el("a", { href: feedHref(name), text: name })), el("td", {}, sel),
          el("td", { class: "num", text: s.reliability !== undefined ? String(s.reliability) : "" })));
      }
      t.append(tb);
      box.textContent = "";
      box.append(t);
    } catch (e) {
      box.textContent = "";
      box.append(el("div", { class: "unavailable", "data-state": "unavailable" },
        el("strong", { text: "Source tiers — not available. " }), e.status === 404 ? "This hub does not keep source tiers yet." : e.message));
    }
  }

  async function start() {
    await personalise();
    const main = $("#main");
    showWho(main && main.dataset.user, token() && !(main && main.dataset.user) ? "token refused — sign in again" : null);
    bindFeed();
    bindLive();
    bindAccount();
    document.documentElement.dataset.ready = "1";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
