// CallCov review console: one page, hash routes, the public API only (/api/v1).
// No framework and no build step. Every value from the API is put in the page as text (never HTML).
"use strict";

const API = "/api/v1";
const REQUIREMENTS = [
  ["identity_verification", "Identity"],
  ["mandatory_disclosures", "Disclosures"],
  ["purpose_declaration", "Purpose"],
  ["prohibited_phrases", "Prohibited phrases"],
  ["sensitive_data", "Sensitive data"],
];
const VERDICT_TEXT = { pass: "pass", fail: "fail", not_applicable: "n/a" };
const store = window.sessionStorage;

// ---------- DOM ----------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const main = () => document.getElementById("main");
function show(...nodes) {
  main().replaceChildren(...nodes);
  main().focus();
}
function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id, text: label }), input);
}
function fmtTime(unix) {
  return unix ? new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–";
}
// A date field's day as Unix seconds: its first second, or its last (``end``); "" when empty.
function day(date, end) {
  return date ? Math.floor(Date.parse(`${date}T00:00:00Z`) / 1000) + (end ? 86399 : 0) : "";
}
function fmtRate(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 100)}%`;
}
function errorBox(error) {
  return el("p", { class: "error", role: "alert", text: error.message || String(error) });
}

// ---------- API ----------
function mode() {
  return store.getItem("cc.mode") || "live";
}
async function refresh() {
  const token = store.getItem("cc.refresh");
  if (!token) return false;
  const r = await fetch(`${API}/auth/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: token }),
  });
  if (!r.ok) return false;
  const body = await r.json();
  store.setItem("cc.access", body.access_token);
  store.setItem("cc.refresh", body.refresh_token);
  return true;
}
async function request(path, options = {}, retried = false) {
  const headers = { Authorization: `Bearer ${store.getItem("cc.access")}`, "CallCov-Mode": mode() };
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(`${API}${path}`, {
    method: options.method || "GET",
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : options.body,
  });
  if (r.status === 401 && !retried && (await refresh())) return request(path, options, true);
  if (r.status === 401) {
    signOut();
    throw new Error("Your session has ended: sign in again.");
  }
  return r;
}
async function api(path, options) {
  const r = await request(path, options);
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(body?.error?.message || `${r.status} ${r.statusText}`);
  return body;
}
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

// ---------- session ----------
function signedIn() {
  return Boolean(store.getItem("cc.access"));
}
function signOut() {
  store.removeItem("cc.access");
  store.removeItem("cc.refresh");
  location.hash = "#/login";
}
function chrome() {
  const on = signedIn();
  document.getElementById("top").hidden = !on;
  document.getElementById("banner").hidden = !on || mode() !== "test";
  document.body.classList.toggle("test-mode", on && mode() === "test");
  document.getElementById("mode").value = mode();
  for (const link of document.querySelectorAll("nav a")) {
    const current = location.hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function loginPage() {
  const email = el("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const status = el("div", { "aria-live": "polite" });
  const form = el(
    "form",
    { class: "card narrow", onsubmit: signIn },
    el("h1", { text: "Sign in to CallCov" }),
    field("Email", email),
    field("Password", password),
    el("button", { type: "submit", text: "Sign in" }),
    status,
  );
  async function signIn(event) {
    event.preventDefault();
    const r = await fetch(`${API}/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: email.value, password: password.value }),
    });
    const body = await r.json();
    if (!r.ok) return status.replaceChildren(errorBox(new Error(body?.error?.message || "Sign-in failed")));
    store.setItem("cc.access", body.access_token);
    store.setItem("cc.refresh", body.refresh_token);
    location.hash = "#/calls";
  }
  show(form);
}

// ---------- calls ----------
function chips(results) {
  const compliance = results?.compliance || {};
  return el(
    "ul",
    { class: "chips" },
    REQUIREMENTS.map(([id, label]) => {
      const verdict = compliance[id]?.verdict || "not_applicable";
      return el("li", { class: `chip ${verdict}`, text: `${label}: ${VERDICT_TEXT[verdict]}` });
    }),
  );
}
function select(name, options, value) {
  return el(
    "select",
    { name },
    options.map(([v, label]) => el("option", { value: v, selected: v === value, text: label })),
  );
}
function uploadForm(onDone) {
  const file = el("input", { type: "file", name: "audio_file", accept: "audio/*", required: true });
  const agent = el("input", { name: "agent_id", required: true, maxlength: 255 });
  const contact = el("input", { name: "contact_id", required: true, maxlength: 255 });
  const status = el("div", { "aria-live": "polite" });
  const form = el(
    "form",
    { class: "card", onsubmit: send },
    el("h2", { text: "Analyze a call" }),
    el("div", { class: "row" }, field("Recording", file), field("Agent id", agent), field("Contact id", contact)),
    el("button", { type: "submit", text: "Upload" }),
    status,
  );
  async function send(event) {
    event.preventDefault();
    const data = new FormData(form);
    status.replaceChildren(el("p", { text: "Uploading…" }));
    try {
      const body = await api("/analysis", { method: "POST", body: data });
      status.replaceChildren(el("p", { text: `Submitted: ${body.id} (processing)` }));
      onDone();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  }
  return form;
}
async function callsPage(params) {
  const f = {
    status: params.get("status") || "",
    agent_id: params.get("agent_id") || "",
    contact_id: params.get("contact_id") || "",
    from: params.get("from") || "",
    to: params.get("to") || "",
    failed_check: params.get("failed_check") || "",
    skip: Number(params.get("skip") || 0),
  };
  const filters = el(
    "form",
    { class: "card filters", role: "search", onsubmit: apply },
    el("h2", { text: "Filter calls" }),
    el(
      "div",
      { class: "row" },
      field("Status", select("status", [["", "Any"], ["processing", "Processing"], ["completed", "Completed"], ["failed", "Failed"]], f.status)),
      field("Agent id", el("input", { name: "agent_id", value: f.agent_id })),
      field("Contact id", el("input", { name: "contact_id", value: f.contact_id })),
      field("From", el("input", { type: "date", name: "from", value: f.from })),
      field("To", el("input", { type: "date", name: "to", value: f.to })),
      field("Failed check", select("failed_check", [["", "Any"], ...REQUIREMENTS], f.failed_check)),
    ),
    el("button", { type: "submit", text: "Apply filters" }),
  );
  function apply(event) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(filters));
    location.hash = `#/calls${query(data)}`;
  }
  const list = el("section", { "aria-labelledby": "calls-h" }, el("h2", { id: "calls-h", text: "Calls" }), el("p", { text: "Loading…" }));
  async function load() {
    try {
      const page = await api(
        `/analysis${query({
          status: f.status, agent_id: f.agent_id, contact_id: f.contact_id, failed_check: f.failed_check,
          created_gte: day(f.from, false), created_lte: day(f.to, true), skip: f.skip, limit: 20,
        })}`,
      );
      list.replaceChildren(el("h2", { id: "calls-h", text: `Calls (${page.total})` }), callsTable(page.items), pager(page, params, "#/calls"));
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  }
  show(el("h1", { text: `Calls (${mode()} data)` }), uploadForm(load), filters, list);
  await load();
}
function callsTable(items) {
  if (!items.length) return el("p", { text: "No calls match." });
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      { class: "stack" },
      el("thead", {}, el("tr", {}, ["Call", "Created", "Agent", "Duration", "Status", "Compliance"].map((h) => el("th", { scope: "col", text: h })))),
      el(
        "tbody",
        {},
        items.map((a) =>
          el(
            "tr",
            {},
            el("td", { "data-label": "Call" }, el("a", { href: `#/calls/${a.id}`, text: a.call.contact_id })),
            el("td", { "data-label": "Created", text: fmtTime(a.created) }),
            el("td", { "data-label": "Agent", text: a.call.agent_id }),
            el("td", { "data-label": "Duration", text: a.call.duration_seconds ? `${Math.round(a.call.duration_seconds)} s` : "–" }),
            el("td", { "data-label": "Status", text: a.status }),
            el("td", { "data-label": "Compliance" }, a.status === "completed" ? chips(a.results) : "–"),
          ),
        ),
      ),
    ),
  );
}
function pager(page, params, base) {
  const go = (skip) => {
    const next = new URLSearchParams(params);
    next.set("skip", skip);
    return `${base}?${next.toString()}`;
  };
  return el(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    page.skip > 0 ? el("a", { href: go(Math.max(0, page.skip - page.limit)), text: "Previous" }) : null,
    el("span", { text: `${page.skip + 1}–${page.skip + page.items.length} of ${page.total}` }),
    page.has_more ? el("a", { href: go(page.skip + page.limit), text: "Next" }) : null,
  );
}

// ---------- one call ----------
function transcriptView(transcript) {
  const turns = el("ol", { class: "transcript", "aria-label": "Transcript" });
  for (const segment of transcript?.segments || []) {
    const words = (segment.words?.length ? segment.words : [{ text: segment.text, start: segment.start, end: segment.end }]).map((w) => {
      const redacted = /^\[[A-Z_]+\]$/.test(w.text.trim());
      return el(redacted ? "mark" : "span", {
        class: redacted ? "word redacted" : "word",
        "data-start": w.start,
        "data-end": w.end,
        title: redacted ? "Redacted" : null,
        text: `${w.text} `,
      });
    });
    turns.append(
      el(
        "li",
        { class: `turn ${segment.speaker}` },
        el("span", { class: "speaker", text: `${segment.speaker} · ${segment.start.toFixed(1)} s` }),
        el("p", {}, words),
      ),
    );
  }
  return turns;
}
function highlight(start, end) {
  for (const word of document.querySelectorAll(".word")) {
    const s = Number(word.dataset.start);
    word.classList.toggle("lit", s >= start - 0.05 && s < end);
  }
  document.querySelector(".word.lit")?.scrollIntoView({ block: "nearest" });
}
function evidenceList(evidence, audio) {
  if (!evidence?.length) return null;
  return el(
    "ul",
    { class: "evidence" },
    evidence.map((e) =>
      el(
        "li",
        {},
        el("button", {
          type: "button",
          class: "quote",
          "data-start": e.start,
          text: `“${e.quote}” (${Number(e.start).toFixed(1)} s)`,
          onclick: () => {
            audio.currentTime = Number(e.start);
            audio.play().catch(() => {});
            highlight(Number(e.start), Number(e.end));
          },
        }),
      ),
    ),
  );
}
function checkCard(name, check, audio) {
  const verdict = check.verdict;
  const bits = [
    verdict ? el("span", { class: `chip ${verdict}`, text: VERDICT_TEXT[verdict] }) : el("span", { class: "chip neutral", text: check.status }),
    el("span", { class: "meta", text: `confidence ${Math.round((check.confidence || 0) * 100)}%` }),
    check.source === "llm" ? el("span", { class: "meta llm", text: "judged by the LLM" }) : el("span", { class: "meta", text: "rule" }),
  ];
  return el(
    "li",
    { class: "check" },
    el("h4", { text: name.replaceAll("_", " ") }),
    el("div", { class: "row tight" }, bits),
    check.status === "not_applicable" && check.reason ? el("p", { class: "reason", text: `Not applicable: ${check.reason}` }) : null,
    check.status !== "not_applicable" && check.reason ? el("p", { class: "reason", text: check.reason }) : null,
    evidenceList(check.evidence, audio),
  );
}
function scorecard(results, audio) {
  if (!results) return el("p", { text: "No results yet." });
  const section = (title, checks) =>
    el("section", { class: "card" }, el("h3", { text: title }), el("ul", { class: "checks" }, Object.entries(checks || {}).map(([n, c]) => checkCard(n, c, audio))));
  return el(
    "div",
    { class: "scorecard" },
    el("p", { class: "summary", text: results.summary || "" }),
    section("Compliance", results.compliance),
    section("Quality", Object.fromEntries(Object.entries(results.quality || {}).filter(([, c]) => c && typeof c === "object" && "status" in c))),
  );
}
async function callPage(id) {
  show(el("p", { text: "Loading…" }));
  let analysis;
  try {
    analysis = await api(`/analysis/${encodeURIComponent(id)}`);
  } catch (error) {
    return show(el("h1", { text: "Call" }), errorBox(error));
  }
  const audio = el("audio", { controls: true, preload: "auto", "aria-label": "Call recording" });
  const audioNote = el("p", { class: "meta" });
  show(
    el("p", {}, el("a", { href: "#/calls", text: "← All calls" })),
    el("h1", { text: `Call ${analysis.call.contact_id} · agent ${analysis.call.agent_id}` }),
    el("p", { class: "meta", text: `${analysis.status} · ${fmtTime(analysis.created)} · ${analysis.livemode ? "live" : "test"}` }),
    el("div", { class: "split" },
      el("section", { class: "card", "aria-labelledby": "t-h" }, el("h2", { id: "t-h", text: "Recording and transcript" }), audio, audioNote, transcriptView(analysis.transcript)),
      el("section", { "aria-labelledby": "s-h" }, el("h2", { id: "s-h", text: "Scorecard" }), scorecard(analysis.results, audio)),
    ),
  );
  audio.addEventListener("timeupdate", () => {
    const t = audio.currentTime;
    for (const word of document.querySelectorAll(".word")) {
      word.classList.toggle("now", Number(word.dataset.start) <= t && t < Number(word.dataset.end));
    }
  });
  try {
    const r = await request(`/analysis/${encodeURIComponent(id)}/audio`);
    if (!r.ok) throw new Error((await r.json())?.error?.message || "The recording is not available");
    audio.src = URL.createObjectURL(await r.blob());
    audioNote.textContent = analysis.audio.redacted ? "Redacted recording: sensitive spans are bleeped." : "";
  } catch (error) {
    audioNote.replaceChildren(errorBox(error));
  }
}

// ---------- agents ----------
function trendChart(trend) {
  const w = 560, h = 160, pad = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("class", "chart");
  const label = trend.map((p) => `${fmtTime(p.start).slice(0, 10)}: ${fmtRate(p.pass_rate)} of ${p.calls} calls`).join("; ");
  svg.setAttribute("aria-label", `Pass rate over time. ${label || "No calls."}`);
  const n = Math.max(trend.length, 1);
  const x = (i) => pad + ((w - 2 * pad) * (n === 1 ? 0.5 : i / (n - 1)));
  const y = (r) => h - pad - (h - 2 * pad) * r;
  const add = (tag, attrs) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    svg.append(node);
    return node;
  };
  add("line", { x1: pad, y1: y(0), x2: w - pad, y2: y(0), class: "axis" });
  add("line", { x1: pad, y1: y(1), x2: w - pad, y2: y(1), class: "grid" });
  const points = trend.map((p, i) => (p.pass_rate === null ? null : `${x(i)},${y(p.pass_rate)}`)).filter(Boolean);
  if (points.length) add("polyline", { points: points.join(" "), class: "line" });
  trend.forEach((p, i) => p.pass_rate !== null && add("circle", { cx: x(i), cy: y(p.pass_rate), r: 4, class: "dot" }));
  add("text", { x: 2, y: y(1) + 4, class: "tick" }).textContent = "100%";
  add("text", { x: 8, y: y(0) + 4, class: "tick" }).textContent = "0%";
  return svg;
}
function periodForm(params, base) {
  const form = el(
    "form",
    { class: "card filters", onsubmit: (e) => { e.preventDefault(); location.hash = `${base}${query(Object.fromEntries(new FormData(form)))}`; } },
    el("div", { class: "row" },
      field("From", el("input", { type: "date", name: "from", value: params.get("from") || "" })),
      field("To", el("input", { type: "date", name: "to", value: params.get("to") || "" })),
      field("Trend step", select("bucket", [["week", "Week"], ["day", "Day"]], params.get("bucket") || "week")),
    ),
    el("button", { type: "submit", text: "Show period" }),
  );
  return form;
}
function periodQuery(params) {
  return { created_gte: day(params.get("from"), false), created_lte: day(params.get("to"), true), bucket: params.get("bucket") || "week" };
}
async function agentsPage(params) {
  const out = el("section", {}, el("p", { text: "Loading…" }));
  show(el("h1", { text: `Agents (${mode()} data)` }), periodForm(params, "#/agents"), out);
  try {
    const page = await api(`/analytics/agents${query({ ...periodQuery(params), skip: params.get("skip") || 0, limit: 50 })}`);
    if (!page.items.length) return out.replaceChildren(el("p", { text: "No completed calls in this period." }));
    const table = el("table", {},
      el("thead", {}, el("tr", {}, ["Agent", "Calls", "Minutes", "Pass rate", ...REQUIREMENTS.map(([, l]) => l)].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody", {}, page.items.map((c) => el("tr", {},
        el("td", {}, el("a", { href: `#/agents/${encodeURIComponent(c.agent_id)}${query(Object.fromEntries(params))}`, text: c.agent_id })),
        el("td", { text: c.calls }), el("td", { text: c.minutes.toFixed(1) }), el("td", { text: fmtRate(c.pass_rate) }),
        REQUIREMENTS.map(([id]) => el("td", { text: fmtRate(c.checks[id]?.pass_rate) })),
      ))),
    );
    out.replaceChildren(el("div", { class: "scroll" }, table), pager(page, params, "#/agents"));
  } catch (error) {
    out.replaceChildren(errorBox(error));
  }
}
async function agentPage(agentId, params) {
  const out = el("div", {}, el("p", { text: "Loading…" }));
  show(el("p", {}, el("a", { href: "#/agents", text: "← All agents" })), el("h1", { text: `Agent ${agentId}` }), periodForm(params, `#/agents/${encodeURIComponent(agentId)}`), out);
  try {
    const page = await api(`/analytics/agents${query({ ...periodQuery(params), agent_id: agentId })}`);
    const card = page.items[0];
    if (!card) return out.replaceChildren(el("p", { text: "No completed calls of this agent in this period." }));
    out.replaceChildren(
      el("section", { class: "card" },
        el("h2", { text: "Scorecard" }),
        el("p", { class: "figures", text: `${card.calls} calls · ${card.minutes.toFixed(1)} minutes · pass rate ${fmtRate(card.pass_rate)}` }),
        el("table", {},
          el("thead", {}, el("tr", {}, ["Requirement", "Passed", "Failed", "Not applicable", "Pass rate"].map((t) => el("th", { scope: "col", text: t })))),
          el("tbody", {}, REQUIREMENTS.map(([id, label]) => {
            const c = card.checks[id];
            return el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: c.passed }), el("td", { text: c.failed }), el("td", { text: c.not_applicable }), el("td", { text: fmtRate(c.pass_rate) }));
          })),
        ),
      ),
      el("section", { class: "card" }, el("h2", { text: `Trend (per ${card.period.bucket})` }), trendChart(card.trend)),
      el("p", {}, el("a", { href: `#/calls${query({ agent_id: agentId })}`, text: `Calls of ${agentId}` })),
    );
  } catch (error) {
    out.replaceChildren(errorBox(error));
  }
}

// ---------- settings ----------
async function keysSection() {
  const section = el("section", { class: "card", "aria-labelledby": "k-h" }, el("h2", { id: "k-h", text: "API keys" }));
  const shown = el("div", { "aria-live": "polite" });
  const description = el("input", { name: "description", maxlength: 500 });
  const keyMode = select("mode", [["live", "Live"], ["test", "Test"]], mode());
  const list = el("div", {});
  async function load() {
    const page = await api("/api-keys?limit=100");
    list.replaceChildren(
      page.api_keys.length
        ? el("ul", { class: "keys" }, page.api_keys.map((k) => el("li", {},
            el("span", { text: `${k.key_prefix}… ${k.description || ""} (${k.livemode ? "live" : "test"}, created ${fmtTime(k.created)})` }),
            el("button", { type: "button", class: "secondary", "aria-label": `Revoke ${k.key_prefix}`, text: "Revoke", onclick: async () => { await api(`/api-keys/${k.id}`, { method: "DELETE" }); shown.replaceChildren(el("p", { text: `Revoked ${k.key_prefix}…` })); load(); } }),
          )))
        : el("p", { text: "No active keys." }),
    );
  }
  const form = el("form", { onsubmit: async (e) => {
    e.preventDefault();
    try {
      const key = await api("/api-keys", { method: "POST", json: { description: description.value || null, mode: keyMode.value } });
      shown.replaceChildren(el("p", { class: "secret" }, el("strong", { text: "Copy this key now; it is shown once: " }), el("code", { class: "new-key", text: key.api_key })));
      load();
    } catch (error) { shown.replaceChildren(errorBox(error)); }
  } }, el("div", { class: "row" }, field("Description", description), field("Mode", keyMode)), el("button", { type: "submit", text: "Create key" }));
  section.append(form, shown, list);
  await load();
  return section;
}
async function secretSection() {
  const section = el("section", { class: "card", "aria-labelledby": "w-h" }, el("h2", { id: "w-h", text: `Webhook signing secret (${mode()})` }));
  const value = el("code", { class: "secret-value", text: "hidden" });
  let secret = null;
  const reveal = el("button", { type: "button", class: "secondary", text: "Show", onclick: () => { value.textContent = secret?.secret || "–"; } });
  const rotate = el("button", { type: "button", text: "Rotate", onclick: async () => { secret = await api(`/webhooks/secret/rotate?mode=${mode()}`, { method: "POST" }); value.textContent = secret.secret; } });
  secret = await api(`/webhooks/secret?mode=${mode()}`);
  section.append(el("p", {}, value), el("div", { class: "row tight" }, reveal, rotate), el("p", { class: "meta", text: "After a rotation the previous secret keeps signing for 24 hours." }));
  return section;
}
async function usageSection() {
  const section = el("section", { class: "card", "aria-labelledby": "u-h" }, el("h2", { id: "u-h", text: "Usage this period" }));
  const usage = await api("/billing/usage");
  const used = usage.metrics.minutes_analyzed, limit = usage.limits.minutes_limit || 0;
  const share = limit ? Math.min(used / limit, 1) : 0;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 24");
  svg.setAttribute("class", "chart gauge");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${used.toFixed(1)} of ${limit} included minutes used`);
  const bar = (width, cls) => { const r = document.createElementNS("http://www.w3.org/2000/svg", "rect"); r.setAttribute("x", 0); r.setAttribute("y", 4); r.setAttribute("height", 16); r.setAttribute("width", width); r.setAttribute("class", cls); svg.append(r); };
  bar(300, "track");
  bar(Math.max(2, 300 * share), "fill");
  section.append(
    el("p", { class: "figures", text: `${used.toFixed(1)} of ${limit} minutes (${usage.tier} plan) · ${usage.metrics.analysis_count} calls · overage ${usage.metrics.overage_minutes.toFixed(1)} min` }),
    svg,
    el("p", { class: "meta", text: `Period ${fmtTime(usage.period.start)} – ${fmtTime(usage.period.end)}` }),
  );
  return section;
}
async function settingsPage() {
  show(el("h1", { text: "Settings" }), el("p", { text: "Loading…" }));
  try {
    const parts = await Promise.all([keysSection(), secretSection(), usageSection()]);
    show(el("h1", { text: "Settings" }), ...parts);
  } catch (error) {
    show(el("h1", { text: "Settings" }), errorBox(error));
  }
}

// ---------- routing ----------
function route() {
  const hash = location.hash || "#/calls";
  if (!hash.startsWith("#/")) return;
  const [path, search] = hash.slice(1).split("?");
  const params = new URLSearchParams(search || "");
  if (!signedIn() && path !== "/login") {
    location.hash = "#/login";
    return;
  }
  chrome();
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "login") return loginPage();
  if (parts[0] === "calls" && parts[1]) return callPage(parts[1]);
  if (parts[0] === "agents" && parts[1]) return agentPage(parts[1], params);
  if (parts[0] === "agents") return agentsPage(params);
  if (parts[0] === "settings") return settingsPage();
  return callsPage(params);
}
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("mode").addEventListener("change", (e) => {
    store.setItem("cc.mode", e.target.value);
    route();
  });
  document.getElementById("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  route();
});
