// traceduck UI: plain JavaScript, no build step, nothing fetched from other origins.
// Every value from the store reaches the page as a text node or an attribute set through the
// DOM (h() below): never through innerHTML, so a tag value "<img onerror=...>" is just text.
"use strict";

const TOKEN_KEY = "traceduck-token";
const $app = () => document.getElementById("app");

// -- the token: ?token=T on the first URL -> sessionStorage, then out of the address bar -------
(function takeToken() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token !== null) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
})();

// -- DOM helpers -------------------------------------------------------------------------------
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "value") el.value = value;
    else if (name === "checked") el.checked = !!value;
    else if (name === "style") el.style.cssText = value; // CSSOM: allowed by the CSP
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}
function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}
function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
function mount(...children) { append(clear($app()), children); }

// -- API ---------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.info = (body && body.error) || {};
  }
}
async function api(path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const init = { headers, credentials: "omit" };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    if (res.status === 401) showAuth();
    throw new ApiError(res.status, data);
  }
  return data;
}
function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else if (v !== null && v !== undefined && v !== "") p.set(k, v);
  }
  const s = p.toString();
  return s ? "?" + s : "";
}
function showAuth() {
  const box = document.getElementById("auth");
  const input = h("input", { type: "password", placeholder: "token", id: "token-input" });
  append(clear(box), [
    h("span", {}, "This server needs its token (printed in the terminal by traceduck ui). "),
    input,
    h("button", { class: "primary", onclick: () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      box.classList.add("hidden");
      route();
    } }, "Use token"),
  ]);
  box.classList.remove("hidden");
}

// -- formatting --------------------------------------------------------------------------------
function fmtTime(ms, withMs) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    (withMs ? "." + pad(d.getMilliseconds(), 3) : "");
}
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "";
  if (typeof ms !== "number") return String(ms);
  if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
  return ms.toFixed(ms < 10 ? 2 : 1) + " ms";
}
function jsonText(v) { return typeof v === "string" ? v : JSON.stringify(v); }
function statusEl(s) { return h("span", { class: "status-" + s }, s); }
function chip(key, value, onpick) {
  const text = value === true ? null : jsonText(value);
  const cond = onpick ? condition("tags", key, value) : null;
  return h("span", {
    class: "chip" + (cond ? " pick" : ""),
    title: key + (text === null ? "" : " = " + text) + (cond ? "  (click: filter by it)" : ""),
    onclick: cond ? () => onpick(cond) : null,
  }, h("span", { class: "k" }, key), text === null ? "" : " " + text);
}
// A filter condition matching one value, in the search language; null when none is simple.
function fieldRef(prefix, key) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${prefix}.${key}` : `${prefix}.\`${key.replace(/`/g, "``")}\``;
}
function literal(v) {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "string" && !v.includes("\\")) return "'" + v.replace(/'/g, "''") + "'";
  return null;
}
function condition(prefix, key, value) {
  const lit = literal(value);
  return lit === null ? null : `${fieldRef(prefix, key)} = ${lit}`;
}
function andFilter(filter, cond) { return filter ? `(${filter}) AND ${cond}` : cond; }
// Typed values as in MLflow's and redun's tag editors: JSON when it parses, else a string.
function parseValue(text) {
  const t = text.trim();
  if (t === "") return "";
  try { return JSON.parse(t); } catch (e) { return text; }
}
function filterErrorBox(err) {
  const box = h("div", { class: "error", id: "filter-error", role: "alert" });
  append(box, [err.message]);
  if (err.info && err.info.kind === "filter" && err.info.filter && err.info.position !== null) {
    box.appendChild(h("pre", { class: "caret" },
      err.info.filter + "\n" + " ".repeat(err.info.position) + "^  (position " + err.info.position + ")"));
  }
  return box;
}

// JSON with long strings and big objects folded.
const FOLD_CHARS = 300;
function jsonView(value) { return h("div", { class: "json" }, jsonNode(value, 0)); }
function jsonNode(v, depth) {
  if (v === null) return h("span", { class: "lit" }, "null");
  if (typeof v === "boolean") return h("span", { class: "lit" }, String(v));
  if (typeof v === "number") return h("span", { class: "num" }, String(v));
  if (typeof v === "string") {
    if (v.length <= FOLD_CHARS) return h("span", { class: "str" }, JSON.stringify(v));
    const span = h("span", { class: "str" }, JSON.stringify(v.slice(0, FOLD_CHARS)).slice(0, -1) + "…");
    const more = h("button", { class: "link", onclick: () => {
      span.textContent = JSON.stringify(v); more.remove();
    } }, `show ${v.length - FOLD_CHARS} more chars`);
    return h("span", {}, span, more);
  }
  const isArr = Array.isArray(v);
  const entries = isArr ? v.map((x, i) => [i, x]) : Object.entries(v);
  if (!entries.length) return h("span", {}, isArr ? "[]" : "{}");
  const body = entries.map(([k, x]) => h("div", { class: "entry" },
    isArr ? null : h("span", { class: "key" }, JSON.stringify(String(k)) + ": "), jsonNode(x, depth + 1)));
  const label = isArr ? `[${entries.length} items]` : `{${entries.length} keys}`;
  return h("details", { open: depth < 3 && entries.length <= 40 }, h("summary", {}, label), body);
}

// -- routing -----------------------------------------------------------------------------------
let refreshTimer = null;
function go(url) { history.pushState(null, "", url); route(); }
window.addEventListener("popstate", route);
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[data-nav]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute("href"));
});
function route() {
  if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; }
  const path = window.location.pathname;
  const params = new URLSearchParams(window.location.search);
  let page;
  if (path.startsWith("/trace/")) page = renderTrace(decodeURIComponent(path.slice(7)));
  else if (path === "/compare") page = renderCompare(params);
  else if (path === "/stats") page = renderStats(params);
  else page = renderList(params);
  page.catch((err) => mount(h("div", { class: "error", role: "alert" }, err.message)));
}
document.addEventListener("DOMContentLoaded", route);

// -- trace list --------------------------------------------------------------------------------
const COLUMNS = [
  ["time", "timestamp_ms"], ["name", "name"], ["status", "status"], ["latency", "execution_time_ms"],
];
function parseOrder(order) {
  const m = /^\s*(.+?)\s+(ASC|DESC)\s*$/i.exec(order || "");
  return m ? { field: m[1], dir: m[2].toUpperCase() } : { field: (order || "").trim(), dir: "ASC" };
}
async function renderList(params) {
  const filter = params.get("filter") || "";
  const order = params.get("order") || "";
  const page = params.get("page") || "";
  const size = params.get("size") || "";
  const listUrl = (changes) => "/" + qs({ filter, order, size, page: "", ...changes });

  const input = h("input", { class: "filter", id: "filter", type: "text", value: filter,
    placeholder: "status = 'ERROR' AND tags.env = 'prod' AND execution_time_ms > 500",
    "aria-label": "filter", spellcheck: "false" });
  const form = h("form", { class: "row", id: "filter-form", onsubmit: (ev) => {
    ev.preventDefault();
    go(listUrl({ filter: input.value.trim() }));
  } }, input, h("button", { class: "primary", type: "submit", id: "search" }, "Search"));
  const errorSlot = h("div", {});
  const selected = new Set();
  const compareBtn = h("button", { id: "compare", disabled: true, onclick: () =>
    go("/compare" + qs({ ids: [...selected].join(",") })) }, "Compare selected");
  const auto = h("input", { type: "checkbox", id: "auto-refresh", onchange: () => {
    if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; }
    if (auto.checked) refreshTimer = setInterval(load, 5000);
  } });
  const orderSelect = h("select", { id: "order-by", "aria-label": "order by" });
  const cur = parseOrder(order);
  const dirSelect = h("select", { id: "order-dir", "aria-label": "direction" },
    h("option", { value: "DESC" }, "desc"), h("option", { value: "ASC" }, "asc"));
  dirSelect.value = order ? cur.dir : "DESC";
  const applyOrder = () => go(listUrl({ order: orderSelect.value ? orderSelect.value + " " + dirSelect.value : "" }));
  orderSelect.addEventListener("change", applyOrder);
  dirSelect.addEventListener("change", applyOrder);

  const table = h("table", { id: "traces" });
  const pager = h("div", { class: "row", id: "pager" });
  const bulk = bulkPanel(filter, () => load());
  const bulkDelete = deletePanel(filter, () => load());
  const deleted = params.get("deleted");
  mount(
    form, errorSlot,
    deleted ? h("div", { class: "notice", id: "deleted-notice" }, `Deleted trace ${deleted}.`) : null,
    h("div", { class: "row" },
      h("label", {}, "Order by ", orderSelect, " ", dirSelect),
      compareBtn,
      h("a", { href: "/stats" + qs({ filter }), "data-nav": true, id: "stats-link" }, "Stats for this filter"),
      h("button", { id: "refresh", onclick: () => load() }, "Refresh"),
      h("label", {}, auto, " auto-refresh")),
    bulk, bulkDelete, table, pager);

  api("/api/keys").then((keys) => {
    const opts = [["", "time (default)"], ...COLUMNS.slice(1).map(([l, f]) => [f, l]),
      ["span_count", "spans"], ...keys.tags.map((k) => ["tags." + k, "tags." + k]),
      ...keys.metadata.map((k) => ["metadata." + k, "metadata." + k])];
    if (cur.field && !opts.some(([f]) => f === cur.field)) opts.push([cur.field, cur.field]);
    append(orderSelect, opts.map(([f, l]) => h("option", { value: f }, l)));
    orderSelect.value = cur.field;
  }).catch(() => {});

  async function load() {
    let data;
    try {
      data = await api("/api/search" + qs({ filter, order_by: order, page_token: page, max_results: size || 50 }));
    } catch (err) {
      clear(errorSlot).appendChild(filterErrorBox(err));
      clear(table); clear(pager);
      return;
    }
    clear(errorSlot);
    const head = h("tr", {}, h("th", {}, ""));
    for (const [label, field] of COLUMNS) {
      const sorted = cur.field === field || (!order && field === "timestamp_ms");
      const dir = sorted ? (order ? cur.dir : "DESC") : null;
      head.appendChild(h("th", {
        class: "sortable" + (sorted ? " sorted" : "") + (field === "execution_time_ms" ? " num" : ""),
        "data-dir": dir === "ASC" ? "▲" : "▼", "data-field": field,
        onclick: () => go(listUrl({ order: field + " " + (sorted && dir === "DESC" ? "ASC" : "DESC") })),
      }, label));
    }
    head.appendChild(h("th", {}, "tags"));
    const rows = data.traces.map((t) => {
      const box = h("input", { type: "checkbox", checked: selected.has(t.trace_id), "aria-label": "select", onchange: () => {
        box.checked ? selected.add(t.trace_id) : selected.delete(t.trace_id);
        compareBtn.disabled = selected.size < 2;
      } });
      return h("tr", { class: "trace-row", "data-trace-id": t.trace_id },
        h("td", {}, box),
        h("td", { class: "mono" }, fmtTime(t.timestamp_ms)),
        h("td", {}, h("a", { href: "/trace/" + t.trace_id, "data-nav": true, class: "trace-link" }, t.name || "(unnamed)")),
        h("td", {}, statusEl(t.status)),
        h("td", { class: "num" }, fmtMs(t.execution_time_ms)),
        h("td", { class: "tags" }, Object.entries(t.tags).map(([k, v]) =>
          chip(k, v, (cond) => go(listUrl({ filter: andFilter(filter, cond) }))))));
    });
    append(clear(table), [h("thead", {}, head), h("tbody", {}, rows)]);
    if (!rows.length) table.appendChild(h("tbody", {}, h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No traces match."))));
    append(clear(pager), [
      page ? h("a", { href: listUrl({}), "data-nav": true, id: "first-page" }, "« First page") : null,
      page ? h("button", { class: "link", onclick: () => history.back() }, "‹ Back") : null,
      data.next_page_token ? h("a", { href: listUrl({ page: data.next_page_token }), "data-nav": true, id: "next-page" }, "Next page ›") : null,
      h("span", { class: "muted" }, `${data.traces.length} shown`),
    ]);
  }
  await load();
}

function bulkPanel(filter, reload) {
  const key = h("input", { id: "bulk-key", placeholder: "tag key", "aria-label": "bulk tag key" });
  const value = h("input", { id: "bulk-value", placeholder: "value (JSON or text; empty: true)", "aria-label": "bulk tag value" });
  const msg = h("span", { id: "bulk-msg" });
  const confirmRow = h("span", { id: "bulk-confirm" });
  const start = h("button", { id: "bulk-start", onclick: async () => {
    clear(msg); clear(confirmRow);
    if (!key.value.trim()) { append(msg, [h("span", { class: "error" }, "give a tag key")]); return; }
    if (!filter) { append(msg, [h("span", { class: "error" }, "type a filter first: bulk tagging applies to the traces it matches")]); return; }
    let n;
    try { n = (await api("/api/count" + qs({ filter }))).count; } catch (err) {
      append(msg, [h("span", { class: "error" }, err.message)]); return;
    }
    const tags = { [key.value.trim()]: value.value.trim() === "" ? true : parseValue(value.value) };
    append(confirmRow, [
      h("span", { id: "bulk-count" }, `Tag ${n} trace${n === 1 ? "" : "s"} matching this filter? `),
      h("button", { class: "primary", id: "bulk-apply", onclick: async () => {
        clear(confirmRow);
        try {
          const r = await api("/api/tags/bulk", { filter, tags });
          append(clear(msg), [h("span", { class: "notice" }, `Tagged ${r.count} traces.`)]);
          reload();
        } catch (err) { append(clear(msg), [h("span", { class: "error" }, err.message)]); }
      } }, "Apply"),
      h("button", { onclick: () => clear(confirmRow) }, "Cancel"),
    ]);
  } }, "Tag all matching…");
  return h("details", { class: "panel", id: "bulk" }, h("summary", {}, "Bulk-tag every trace matching the filter"),
    h("div", { class: "row" }, key, value, start, confirmRow, msg));
}

// Deleting: the count first, then a confirmation; the count goes along as max_traces, so no
// more traces are deleted than the user agreed to even if matching ones arrive meanwhile.
function deletePanel(filter, reload) {
  const msg = h("span", { id: "delete-msg" });
  const confirmRow = h("span", { id: "delete-confirm" });
  const fail = (err) => append(clear(msg), [h("span", { class: "error" }, err.message)]);
  const start = h("button", { class: "danger", id: "delete-start", onclick: async () => {
    clear(msg); clear(confirmRow);
    if (!filter) { append(msg, [h("span", { class: "error" }, "type a filter first: this deletes the traces it matches")]); return; }
    let n;
    try { n = (await api("/api/count" + qs({ filter }))).count; } catch (err) { fail(err); return; }
    if (!n) { append(msg, [h("span", { class: "muted" }, "No trace matches this filter.")]); return; }
    const traces = `${n} trace${n === 1 ? "" : "s"}`;
    append(confirmRow, [
      h("span", { id: "delete-count" }, `Delete ${traces} matching this filter, with their spans, tags, metadata and history? This cannot be undone. `),
      h("button", { class: "danger", id: "delete-apply", onclick: async () => {
        clear(confirmRow);
        try {
          const r = await api("/api/delete", { filter, max_traces: n });
          append(clear(msg), [h("span", { class: "notice" }, `Deleted ${r.count} trace${r.count === 1 ? "" : "s"}.`)]);
          reload();
        } catch (err) { fail(err); }
      } }, `Delete ${traces}`),
      h("button", { id: "delete-cancel", onclick: () => clear(confirmRow) }, "Cancel"),
    ]);
  } }, "Delete all matching…");
  return h("details", { class: "panel", id: "bulk-delete" }, h("summary", {}, "Delete every trace matching the filter"),
    h("div", { class: "row" }, start, confirmRow, msg));
}

function deleteTraceButton(info) {
  const slot = h("span", { id: "trace-delete-confirm" });
  const ask = h("button", { class: "danger", id: "trace-delete", onclick: () => append(clear(slot), [
    h("span", {}, "Delete this trace with its spans, tags, metadata and history? "),
    h("button", { class: "danger", id: "trace-delete-apply", onclick: async () => {
      try {
        await api("/api/delete", { trace_ids: [info.trace_id] });
        go("/" + qs({ deleted: info.trace_id }));
      } catch (err) { append(clear(slot), [h("span", { class: "error" }, err.message)]); }
    } }, "Delete"),
    h("button", { onclick: () => clear(slot) }, "Cancel"),
  ]) }, "Delete trace…");
  return h("div", { class: "row" }, ask, slot);
}

// -- one trace ---------------------------------------------------------------------------------
async function renderTrace(id) {
  const path = "/api/traces/" + encodeURIComponent(id);
  const historyCall = api(path + "/history"); // both at once: spans draw without waiting
  historyCall.catch(() => {});
  const data = await api(path);
  const info = data.info;
  document.title = `${info.name || info.trace_id} · traceduck`;
  const spans = data.spans;
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parent_id && byId.has(s.parent_id)) {
      if (!kids.has(s.parent_id)) kids.set(s.parent_id, []);
      kids.get(s.parent_id).push(s);
    } else roots.push(s);
  }
  const ordered = [];
  const walk = (s, depth) => {
    ordered.push([s, depth]);
    (kids.get(s.span_id) || []).sort((a, b) => a.start_time_ns - b.start_time_ns).forEach((c) => walk(c, depth + 1));
  };
  roots.sort((a, b) => a.start_time_ns - b.start_time_ns).forEach((r) => walk(r, 0));
  // reduce, not Math.min(...spread): a trace may hold more spans than a call takes arguments
  const t0 = spans.reduce((m, s) => Math.min(m, s.start_time_ns), Infinity);
  const t1 = spans.reduce((m, s) => Math.max(m, s.end_time_ns), -Infinity);
  const total = Math.max(t1 - t0, 1);

  const detail = h("div", { id: "span-detail" });
  const collapsed = new Set();
  const rows = ordered.map(([s, depth]) => {
    const left = ((s.start_time_ns - t0) / total) * 100;
    const width = Math.max(((s.end_time_ns - s.start_time_ns) / total) * 100, 0.2);
    const hasKids = kids.has(s.span_id);
    const twisty = hasKids
      ? h("button", { class: "link twisty", title: "fold or unfold the children", "aria-expanded": "true", onclick: (ev) => {
        ev.stopPropagation();
        collapsed.has(s.span_id) ? collapsed.delete(s.span_id) : collapsed.add(s.span_id);
        twisty.textContent = collapsed.has(s.span_id) ? "▸" : "▾";
        twisty.setAttribute("aria-expanded", String(!collapsed.has(s.span_id)));
        refold();
      } }, "▾")
      : h("span", { class: "twisty-space" });
    const tr = h("tr", { "data-span-id": s.span_id, onclick: () => select(s, tr) },
      h("td", { style: `padding-left:${6 + depth * 14}px` }, twisty, h("span", { class: "span-name" }, s.name),
        " ", h("span", { class: "muted" }, s.span_type)),
      h("td", {}, statusEl(s.status)),
      h("td", { class: "num" }, fmtMs(s.duration_ms)),
      h("td", { class: "bar-cell" }, h("div", { class: "bar-track" },
        h("div", { class: "bar" + (s.status === "ERROR" ? " err" : ""), style: `left:${left}%;width:${Math.min(width, 100 - left)}%` }))));
    return tr;
  });
  // Hide every row under a folded span (rows are in tree order, so a depth walk suffices).
  function refold() {
    let hideDeeperThan = Infinity;
    ordered.forEach(([s, depth], i) => {
      if (depth <= hideDeeperThan) hideDeeperThan = Infinity;
      const hidden = depth > hideDeeperThan;
      rows[i].classList.toggle("hidden", hidden);
      if (!hidden && collapsed.has(s.span_id)) hideDeeperThan = depth;
    });
  }
  function select(s, tr) {
    document.querySelectorAll(".waterfall tr.selected").forEach((r) => r.classList.remove("selected"));
    tr.classList.add("selected");
    append(clear(detail), spanDetail(s));
  }

  const tagHistorySlot = h("div", { id: "tag-history-slot" }, h("span", { class: "muted" }, "loading…"));
  const metaHistorySlot = h("div", {}, h("span", { class: "muted" }, "loading…"));
  const errors = spans.filter((s) => s.status === "ERROR" || (s.events || []).some((e) => e.name === "exception"));
  mount(
    h("h1", {}, info.name || "(unnamed)", " ", statusEl(info.status)),
    h("div", { class: "row muted mono" }, info.trace_id, ` · ${fmtTime(info.timestamp_ms)} · ${fmtMs(info.execution_time_ms)} · ${info.span_count} spans`,
      info.service_name ? ` · ${info.service_name}` : ""),
    deleteTraceButton(info),
    info.status_message ? h("div", { class: "error" }, info.status_message) : null,
    errors.length ? h("div", { class: "panel", id: "errors" }, h("h2", {}, "Errors"), errors.map(errorBlock)) : null,
    h("div", { class: "grid" },
      h("div", {},
        h("h2", {}, "Spans"),
        h("table", { class: "waterfall", id: "waterfall" },
          h("thead", {}, h("tr", {}, h("th", {}, "span"), h("th", {}, "status"), h("th", { class: "num" }, "duration"), h("th", {}, "timeline"))),
          h("tbody", {}, rows)),
        detail),
      h("div", {},
        tagsPanel(info, data.exclusive_keys),
        metadataPanel(info),
        h("h2", {}, "Tag history"), tagHistorySlot,
        h("h2", {}, "Metadata history"), metaHistorySlot)));
  historyCall.then((hist) => {
    append(clear(tagHistorySlot), historyTable(hist.tag_history));
    append(clear(metaHistorySlot), metadataHistory(hist.metadata_history));
  }).catch((err) => append(clear(tagHistorySlot), h("div", { class: "error" }, err.message)));
  if (rows.length) select(ordered[0][0], rows[0]);
}

function errorBlock(s) {
  const exc = (s.events || []).filter((e) => e.name === "exception");
  return h("div", { class: "err-block" },
    h("div", {}, h("b", {}, s.name), " ", s.status_message ? h("span", { class: "error" }, s.status_message) : ""),
    exc.map((e) => {
      const a = e.attributes || {};
      return h("div", {},
        h("div", { class: "error" }, `${a["exception.type"] || "exception"}: ${a["exception.message"] || ""}`),
        a["exception.stacktrace"] ? h("pre", { class: "tb" }, a["exception.stacktrace"]) : null);
    }));
}

function kvTable(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h("div", { class: "muted" }, "none");
  return h("table", { class: "kv" }, h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", {}, jsonView(v))))));
}

function spanDetail(s) {
  return h("div", { class: "panel" },
    h("h2", {}, s.name, " ", statusEl(s.status)),
    h("div", { class: "muted mono" }, `${s.span_type} · ${fmtMs(s.duration_ms)} · span ${s.span_id}`),
    s.status_message ? h("div", { class: "error" }, s.status_message) : null,
    h("h2", {}, "Inputs"), s.inputs === null || s.inputs === undefined ? h("div", { class: "muted" }, "none") : jsonView(s.inputs),
    h("h2", {}, "Outputs"), s.outputs === null || s.outputs === undefined ? h("div", { class: "muted" }, "none") : jsonView(s.outputs),
    h("h2", {}, "Attributes"), kvTable(s.attributes),
    h("h2", {}, "Events"),
    (s.events || []).length ? (s.events || []).map((e) => h("div", { class: "panel" },
      h("b", {}, e.name), e.attributes && e.attributes["exception.stacktrace"]
        ? [h("div", { class: "error" }, `${e.attributes["exception.type"] || ""}: ${e.attributes["exception.message"] || ""}`),
          h("pre", { class: "tb" }, e.attributes["exception.stacktrace"])]
        : jsonView(e.attributes || {}))) : h("div", { class: "muted" }, "none"));
}

function tagsPanel(info, exclusiveKeys) {
  const msg = h("div", { id: "tag-msg" });
  const body = h("tbody", {});
  const reload = () => route();
  const fail = (err) => append(clear(msg), [h("div", { class: "error" }, err.message)]);
  for (const [key, value] of Object.entries(info.tags)) {
    const valueCell = h("td", { class: "mono tag-value" }, jsonText(value));
    const row = h("tr", { "data-tag-key": key },
      h("td", { class: "mono tag-key" }, key, key in exclusiveKeys ? h("span", { class: "excl", title: `exclusive (scope: ${exclusiveKeys[key]})` }, "★ exclusive") : null),
      valueCell,
      h("td", {},
        h("button", { class: "link tag-edit", onclick: () => {
          const input = h("input", { class: "tag-edit-input", value: JSON.stringify(value), "aria-label": "tag value" });
          const save = async () => {
            try { await api("/api/tags", { trace_id: info.trace_id, key, value: parseValue(input.value) }); reload(); } catch (err) { fail(err); }
          };
          input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") save(); if (ev.key === "Escape") reload(); });
          append(clear(valueCell), [input, h("button", { class: "link tag-save", onclick: save }, "save"), h("button", { class: "link", onclick: reload }, "cancel")]);
          input.focus();
        } }, "edit"),
        h("button", { class: "link danger tag-delete", onclick: async () => {
          try { await api("/api/tags/delete", { trace_id: info.trace_id, key }); reload(); } catch (err) { fail(err); }
        } }, "delete")));
    body.appendChild(row);
  }
  const key = h("input", { id: "new-tag-key", placeholder: "key", "aria-label": "new tag key" });
  const value = h("input", { id: "new-tag-value", placeholder: "value: 3.2, true, text, {\"a\":1}", "aria-label": "new tag value" });
  const exclusive = h("input", { type: "checkbox", id: "new-tag-exclusive" });
  const add = async () => {
    if (!key.value.trim()) { fail(new Error("give a tag key")); return; }
    const v = value.value.trim() === "" ? true : parseValue(value.value);
    try { await api("/api/tags", { trace_id: info.trace_id, key: key.value.trim(), value: v, exclusive: exclusive.checked }); reload(); } catch (err) { fail(err); }
  };
  return h("div", { id: "tags-panel" },
    h("h2", {}, "Tags"),
    h("table", { id: "tags" }, body),
    h("div", { class: "row" }, key, value, h("label", { title: "one trace per root name holds it" }, exclusive, " exclusive"),
      h("button", { class: "primary", id: "add-tag", onclick: add }, "Add tag")),
    msg);
}

function metadataPanel(info) {
  const msg = h("div", {});
  const key = h("input", { id: "new-meta-key", placeholder: "key", "aria-label": "metadata key" });
  const value = h("input", { id: "new-meta-value", placeholder: "value", "aria-label": "metadata value" });
  const log = async () => {
    if (!key.value.trim()) return;
    try { await api("/api/metadata", { trace_id: info.trace_id, metadata: { [key.value.trim()]: parseValue(value.value) } }); route(); }
    catch (err) { append(clear(msg), [h("div", { class: "error" }, err.message)]); }
  };
  return h("div", { id: "metadata-panel" }, h("h2", {}, "Metadata"), kvTable(info.metadata),
    h("div", { class: "row" }, key, value, h("button", { onclick: log }, "Log metadata")), msg);
}

function historyTable(events) {
  if (!events.length) return h("div", { class: "muted" }, "no changes");
  return h("table", { id: "tag-history" },
    h("thead", {}, h("tr", {}, ["time", "key", "change", "source"].map((c) => h("th", {}, c)))),
    h("tbody", {}, events.map((e) => h("tr", {},
      h("td", { class: "mono" }, String(e.time).replace("T", " ").slice(0, 19)),
      h("td", { class: "mono" }, e.key),
      h("td", { class: "mono" }, e.operation + ": ", e.had_old ? jsonText(e.old_value) : "∅", " → ", e.has_new ? jsonText(e.new_value) : "∅"),
      h("td", { class: "source" }, e.source)))));
}

function metadataHistory(events) {
  if (!events.length) return h("div", { class: "muted" }, "none");
  return h("table", {}, h("tbody", {}, events.map((e) => h("tr", {},
    h("td", { class: "mono" }, String(e.time).replace("T", " ").slice(0, 19)),
    h("td", { class: "mono" }, e.key), h("td", {}, jsonView(e.value)), h("td", {}, e.source)))));
}

// -- compare -----------------------------------------------------------------------------------
async function renderCompare(params) {
  const data = await api("/api/compare" + qs({ ids: params.get("ids") || "", filter: params.get("filter") || "" }));
  const onlyDiff = h("input", { type: "checkbox", id: "only-diff", onchange: () => {
    table.querySelectorAll("tbody tr:not(.diff)").forEach((r) => r.classList.toggle("hidden", onlyDiff.checked));
  } });
  const cell = (row, i) => {
    if (!row.present[i]) return h("td", { class: "muted" }, "—");
    const v = row.values[i];
    if (row.field === "timestamp_ms") return h("td", { class: "mono" }, fmtTime(v, true));
    if (row.field === "execution_time_ms") return h("td", { class: "mono" }, fmtMs(v));
    if (row.field === "status") return h("td", {}, statusEl(v));
    return h("td", { class: "mono" }, v === null ? "null" : jsonText(v));
  };
  const table = h("table", { id: "compare-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "field"), data.trace_ids.map((id) =>
      h("th", {}, h("a", { href: "/trace/" + id, "data-nav": true, class: "mono" }, id.slice(0, 12)))))),
    h("tbody", {}, data.rows.map((row) => h("tr", { class: row.differs ? "diff" : "", "data-field": row.field },
      h("td", { class: "mono" }, row.field), data.trace_ids.map((_, i) => cell(row, i))))));
  mount(h("h1", {}, `Compare ${data.trace_ids.length} traces`),
    h("div", { class: "row" }, h("label", {}, onlyDiff, " only rows that differ"), h("span", { class: "muted" }, "highlighted rows differ")),
    table);
}

// -- stats -------------------------------------------------------------------------------------
async function renderStats(params) {
  const filter = params.get("filter") || "";
  const by = params.get("by") || "name";
  const input = h("input", { class: "filter", id: "stats-filter", value: filter, placeholder: "filter (optional)", "aria-label": "filter" });
  const byInput = h("input", { id: "stats-by", value: by, list: "group-keys", "aria-label": "group by", placeholder: "name | status | tags.KEY" });
  const keyList = h("datalist", { id: "group-keys" }, ["name", "status", "service_name"].map((k) => h("option", { value: k })));
  const form = h("form", { class: "row", onsubmit: (ev) => {
    ev.preventDefault();
    go("/stats" + qs({ filter: input.value.trim(), by: byInput.value.trim() }));
  } }, input, h("label", {}, "group by ", byInput), keyList, h("button", { class: "primary", type: "submit" }, "Show"));
  const out = h("div", { id: "stats-out" });
  mount(h("h1", {}, "Stats"), form, out);
  api("/api/keys").then((k) => append(keyList, k.tags.map((t) => h("option", { value: "tags." + t })),
    k.metadata.map((t) => h("option", { value: "metadata." + t })))).catch(() => {});
  let data;
  try { data = await api("/api/stats" + qs({ filter, by })); } catch (err) { out.appendChild(filterErrorBox(err)); return; }
  const groups = data.groups;
  const label = (g) => (g.group === null ? "(none)" : String(g.group));
  append(out, [
    h("table", { id: "stats-table" },
      h("thead", {}, h("tr", {}, [by, "traces", "errors", "error rate", "p50", "p95", "p99", "max"].map((c, i) => h("th", { class: i ? "num" : "" }, c)))),
      h("tbody", {}, groups.map((g) => h("tr", {},
        h("td", {}, h("a", { href: "/" + qs({ filter: groupFilter(filter, by, g.group) }), "data-nav": true }, label(g))),
        h("td", { class: "num" }, g.count), h("td", { class: "num" }, g.errors),
        h("td", { class: "num" }, (g.error_rate * 100).toFixed(1) + "%"),
        h("td", { class: "num" }, fmtMs(g.p50_ms)), h("td", { class: "num" }, fmtMs(g.p95_ms)),
        h("td", { class: "num" }, fmtMs(g.p99_ms)), h("td", { class: "num" }, fmtMs(g.max_ms)))))),
    h("h2", {}, "Latency by group"), latencyChart(groups, label),
  ]);
}
function groupFilter(filter, by, value) {
  if (value === null) return filter; // the language has no "missing key" test to narrow by
  // Group values of tags come back as text; numbers and booleans compare as themselves.
  const typed = typeof value === "string" && /^(-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false)$/.test(value)
    && by !== "name" && by !== "status" && by !== "service_name" ? JSON.parse(value) : value;
  const lit = literal(typed);
  return lit === null ? filter : andFilter(filter, `${by} = ${lit}`);
}
function latencyChart(groups, label) {
  const shown = groups.slice(0, 20);
  if (!shown.length) return h("div", { class: "muted" }, "no data");
  const colors = { p50_ms: "#7aa2f7", p95_ms: "#e0af68", p99_ms: "#e06c75" };
  const max = Math.max(...shown.map((g) => g.p99_ms || 0), 1e-9);
  const labelW = 180, plotW = 520, rowH = 42, width = labelW + plotW + 90;
  const chart = svg("svg", { class: "chart", id: "latency-chart", width, height: shown.length * rowH + 10, role: "img" });
  shown.forEach((g, i) => {
    const y = 5 + i * rowH;
    chart.appendChild(svg("text", { x: 0, y: y + 20 }, label(g).slice(0, 28)));
    Object.entries(colors).forEach(([k, color], j) => {
      const w = Math.max(((g[k] || 0) / max) * plotW, 1);
      chart.appendChild(svg("rect", { x: labelW, y: y + j * 12, width: w, height: 10, fill: color },
        svg("title", {}, `${label(g)} ${k.replace("_ms", "")}: ${fmtMs(g[k])}`)));
      chart.appendChild(svg("text", { x: labelW + w + 4, y: y + j * 12 + 9 }, fmtMs(g[k])));
    });
  });
  return h("div", {}, h("div", { class: "legend" }, Object.entries(colors).map(([k, c]) =>
    h("span", {}, h("span", { class: "sw", style: `background:${c}` }), k.replace("_ms", "")))), chart);
}
