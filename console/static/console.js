// ticketflow console: live regions, actions and keys on top of server-rendered pages.
// No library and no build step. Texts come translated from the page (#messages).
(() => {
  "use strict";

  const messages = JSON.parse(document.getElementById("messages").textContent);
  const t = (key, values = {}) =>
    (messages[key] || key).replace(/%\((\w+)\)s/g, (_, name) => (values[name] ?? ""));
  const page = document.body.dataset.page;
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  // --- messages to the person ---------------------------------------------------------------
  let flashTimer = null;
  function flash(text, kind = "error") {
    const box = $("#flash");
    clearTimeout(flashTimer);
    box.textContent = text;
    box.className = `flash ${kind}`;
    box.hidden = false;
    if (kind !== "error") flashTimer = setTimeout(() => { box.hidden = true; }, 4000);
  }

  // --- the JSON API, as the signed-in person ------------------------------------------------
  function describe(data, response) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && Array.isArray(data.detail)) return data.detail.map((d) => d.msg).join("; ");
    return `${response.status} ${response.statusText}`;
  }

  async function api(method, url, body) {
    const csrf = $('meta[name="csrf-token"]');
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...(csrf ? { "X-CSRF-Token": csrf.content } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* no body */ }
    if (response.status === 401 && page !== "sign-in") {
      location.href = `/console/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`;
    }
    if (!response.ok) {
      const error = new Error(describe(data, response));
      error.response = response;
      throw error;
    }
    return data;
  }

  // --- live regions -------------------------------------------------------------------------
  // The page is fetched again and every [data-live] region swapped for its new version; what
  // the person is typing lives outside them.
  let refreshing = false;
  let again = false;
  let timer = null;

  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      // Marked as the page's own refresh: it does not count as the person being active, so an
      // unattended console still signs out after the idle time.
      const response = await fetch(location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } });
      if (response.redirected && new URL(response.url).pathname === "/console/sign-in") {
        location.href = response.url;
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of $$("[data-live]")) {
        const replacement = fresh.getElementById(region.id);
        if (replacement) region.replaceWith(document.adoptNode(replacement));
      }
      decorate();
      document.dispatchEvent(new CustomEvent("console:refreshed"));
    } catch (err) {
      flash(t("offline"), "warning");
    } finally {
      refreshing = false;
      if (again) { again = false; schedule(); }
    }
  }

  // At most one refresh waits at a time: under a steady stream of events the page still
  // refreshes every 100 ms or so instead of waiting for a quiet moment that never comes.
  function schedule(delay = 100) {
    if (timer !== null) return;
    timer = setTimeout(() => { timer = null; refresh(); }, delay);
  }

  function follow(wants) {
    if (!window.EventSource) return;
    const state = $("#live-state");
    const source = new EventSource("/events");
    source.onopen = () => {
      if (state) { state.textContent = t("live"); state.className = "live-state on"; }
      schedule(); // what changed between the page's rendering and the stream's start
    };
    source.onerror = () => {
      if (state) { state.textContent = t("offline"); state.className = "live-state off"; }
    };
    for (const kind of ["ticket", "task"]) {
      source.addEventListener(kind, (event) => {
        let change = null;
        try { change = JSON.parse(event.data); } catch (_) { return; }
        if (wants(change)) schedule();
      });
    }
  }

  // --- times --------------------------------------------------------------------------------
  function span(ms) {
    const s = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  }

  function tick() {
    const now = Date.now();
    for (const el of $$("time.countdown")) {
      const due = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(due)) continue;
      const left = due - now;
      el.textContent = left >= 0 ? t("due_in", { time: span(left) }) : t("overdue_by", { time: span(left) });
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 30 * 60 * 1000);
      el.title = new Date(due).toLocaleString(document.documentElement.lang);
    }
  }

  function decorate() {
    for (const el of $$("time:not(.countdown)")) {
      const at = Date.parse(el.getAttribute("datetime"));
      if (!Number.isNaN(at)) {
        el.textContent = new Date(at).toLocaleString(document.documentElement.lang,
          { dateStyle: "short", timeStyle: "short" });
      }
    }
    tick();
  }

  // --- presence and sign-out ----------------------------------------------------------------
  async function setupPresence() {
    const select = $("#presence");
    if (!select) return;
    try {
      const me = await api("GET", "/agents/me");
      select.value = me.presence;
    } catch (_) {
      select.closest("label").hidden = true; // not an agent
      return;
    }
    select.addEventListener("change", async () => {
      if (!select.value) return;
      try {
        await api("PUT", "/agents/me/presence", { presence: select.value });
        flash(t("saved"), "ok");
      } catch (err) { flash(t("failed", { reason: err.message })); }
    });
  }

  const signOut = $("#sign-out");
  if (signOut) {
    signOut.addEventListener("click", async () => {
      try { await api("DELETE", "/auth/session"); } catch (_) { /* signed out either way */ }
      location.href = "/console/sign-in";
    });
  }

  // --- sign-in ------------------------------------------------------------------------------
  function setupSignIn() {
    const form = $("#sign-in");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = $("#sign-in-error");
      error.hidden = true;
      const body = { user: form.user.value.trim(), password: form.password.value };
      try {
        await api("POST", "/auth/session", body);
        location.href = form.dataset.next;
      } catch (err) {
        const response = err.response;
        if (response && response.status === 429) {
          error.textContent = t("throttled", { seconds: response.headers.get("Retry-After") || "?" });
        } else if (response && response.status === 401) {
          error.textContent = t("wrong");
        } else {
          error.textContent = t("failed", { reason: err.message });
        }
        error.hidden = false;
      }
    });
  }

  // --- the inbox ----------------------------------------------------------------------------
  function setupInbox() {
    follow((change) => change.kind === "task" || change.kind === "ticket");
    const filters = $("#filters");
    filters.addEventListener("change", () => filters.requestSubmit());
    let selected = -1;
    const rows = () => $$("#inbox tbody tr[data-task]");
    const select = (index) => {
      const all = rows();
      if (!all.length) return;
      selected = Math.max(0, Math.min(index, all.length - 1));
      all.forEach((row, i) => row.classList.toggle("selected", i === selected));
      all[selected].scrollIntoView({ block: "nearest" });
    };
    document.addEventListener("console:refreshed", () => { if (selected >= 0) select(selected); });
    keys({
      j: () => select(selected + 1),
      k: () => select(selected - 1),
      Enter: () => { const row = rows()[selected]; if (row) $("a", row).click(); return Boolean(row); },
      o: () => { const row = rows()[selected]; if (row) $("a", row).click(); },
      "/": () => $("select", filters).focus(),
    });
  }

  // --- one ticket ---------------------------------------------------------------------------
  function setupTicket() {
    const ticketId = $(".ticket").dataset.ticket;
    follow((change) => change.ticket_id === ticketId);
    const reply = $("#reply");
    const task = () => $("#task-state").dataset.task;

    let busy = false;
    async function act(button) {
      const action = button.dataset.action;
      if (busy && action !== "insert") return; // one action at a time: no double submit
      if (action === "insert") {
        const text = button.dataset.text;
        reply.value = reply.value.trim() ? `${reply.value.trimEnd()}\n\n${text}` : text;
        reply.focus();
        flash(t("inserted"), "ok");
        return;
      }
      const id = task();
      if (!id) return;
      let body;
      let url = `/tasks/${encodeURIComponent(id)}/${action}`;
      if (action === "note") {
        const note = $("#note").value.trim();
        if (!note) { $("#note").focus(); return; }
        body = { text: note };
        url = `/tasks/${encodeURIComponent(id)}/notes`;
      } else if (action === "complete") {
        const outcome = button.dataset.outcome;
        body = { outcome };
        const text = reply.value.trim();
        if (text) body.reply = text;
        if ((outcome === "resolve" || outcome === "ask_customer") && !text) {
          flash(t("reply_needed")); reply.focus(); return;
        }
        if (outcome === "transfer") {
          body.queue = $("#transfer-queue").value;
          if (!body.queue) { flash(t("queue_needed")); $("#transfer-queue").focus(); return; }
        }
        const amountField = $("#refund-amount");
        const amount = amountField.value.trim();
        if (amountField.validity.badInput) { flash(t("refund_amount")); amountField.focus(); return; }
        if (amount) {
          if (outcome !== "resolve" && outcome !== "ask_customer") {
            flash(t("refund_outcome")); amountField.focus(); return;
          }
          const reason = $("#refund-reason").value.trim();
          if (!reason) { flash(t("refund_reason_needed")); $("#refund-reason").focus(); return; }
          body.refund = { amount, reason };
        }
        if (outcome === "escalate" && !window.confirm(t("confirm_escalate"))) return;
      }
      busy = true;
      button.disabled = true;
      try {
        await api("POST", url, body);
        if (action === "note") $("#note").value = "";
        if (action === "complete") {
          reply.value = "";
          $("#refund-amount").value = "";
          $("#refund-reason").value = "";
        }
        flash(t("saved"), "ok");
      } catch (err) {
        flash(t("failed", { reason: err.message }));
      } finally {
        busy = false;
        button.disabled = false;
        schedule(0);
      }
    }

    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) { event.preventDefault(); act(button); }
    });
    const click = (selector) => () => { const b = $(selector); if (b) b.click(); };
    keys({
      c: click('button[data-action="claim"]'),
      e: click('button[data-outcome="escalate"]'),
      r: () => reply.focus(),
      n: () => $("#note").focus(),
      Escape: () => {
        const draft = reply.value.trim() || $("#note").value.trim();
        if (!draft || window.confirm(t("confirm_leave"))) location.href = "/console/inbox";
      },
    });
    reply.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        click('button[data-outcome="resolve"]')();
      }
    });
  }

  // --- the dashboard ------------------------------------------------------------------------
  function setupDashboard() {
    follow(() => true);
    keys({}); // g i, g d
    // Breaches happen as time passes, not only when something changes.
    setInterval(() => schedule(0), 10000);
  }

  // --- keys ---------------------------------------------------------------------------------
  let lastKey = "";
  function keys(bindings) {
    document.addEventListener("keydown", (event) => {
      if (event.isComposing) return; // an input method is composing (Chinese, Japanese, ...)
      const field = event.target.closest("input, textarea, select");
      if (field) {
        if (event.key === "Escape") field.blur();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      // Enter and Space on a focused link or button do what they always do.
      if ((event.key === "Enter" || event.key === " ") && event.target.closest("a, button")) return;
      if (lastKey === "g" && event.key === "d") { location.href = "/console/dashboard"; return; }
      if (lastKey === "g" && event.key === "i") { location.href = "/console/inbox"; return; }
      lastKey = event.key;
      const action = bindings[event.key];
      if (action && action() !== false) event.preventDefault();
    });
  }

  decorate();
  setInterval(tick, 1000);
  setupPresence();
  if (page === "sign-in") setupSignIn();
  if (page === "inbox") setupInbox();
  if (page === "ticket") setupTicket();
  if (page === "dashboard") setupDashboard();
})();
