// Meridian console: tables and items, capacity and throttling, DAX caches, live replication latency,
// link controls, fault timeline.
//
// Plain JavaScript, no build step, nothing fetched from anywhere but this router.
// Every value that comes from data (table names, attribute names and values,
// region names, error messages) reaches the page as a text node or an
// attribute value, never as HTML: there is no innerHTML in this file.
"use strict";

(() => {
  const POLL_INTERVAL_MS = 1000; // capacity, DAX, replication and events
  const TABLES_INTERVAL_MS = 2000;
  const WINDOW_POINTS_MAX = 300; // samples kept per region pair (one per poll)
  const CHART_SPAN_S = 120; // what a chart shows at most; less while the page is younger
  const CHART_SPAN_MIN_S = 30;
  // The timeline shows the shortest of these spans that holds every event, ticked every so many seconds.
  const TIMELINE_TICKS_S = new Map([[120, 15], [300, 30], [600, 60], [1800, 300], [3600, 600]]);
  const TIMELINE_SPANS_S = [...TIMELINE_TICKS_S.keys()];
  const EVENTS_SHOWN_MAX = 200;
  const PAGE_ITEMS = 25;
  const COLUMNS_MAX = 12; // attribute columns in the items grid
  const CELL_CHARS_MAX = 80;
  const LATENCY_FLOOR_MS = 1; // charts are logarithmic: 0 ms is drawn as this
  const SVG_NS = "http://www.w3.org/2000/svg";
  const METERS = ["read", "write"];
  const CAPACITY_CARDS_MAX = 24; // tables charted; the rest are counted in a line
  const INSIGHTS_INTERVAL_MS = 2000; // Contributor Insights' top keys of the charted tables with it on
  const INSIGHTS_TABLES_MAX = 8; // asked per round; the others wait for the next round
  const RULE_TITLES = {
    PKC: "most accessed partition keys", SKC: "most accessed keys",
    PKT: "most throttled partition keys", SKT: "most throttled keys",
  };
  const COMMAND_COLORS = {
    "link-cut": "#d64545", "link-heal": "#2f9e44", "link-set": "#e8890c",
    "pause": "#7b5cd6", "resume": "#3b8bd6", "clock-skew": "#b3541e",
  };

  // --- small DOM helpers (text only) ---------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg(tag, props, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setProps(node, props);
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function setProps(node, props) {
    if (!props) return;
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  const $ = (id) => document.getElementById(id);

  async function api(path, options) {
    const response = await fetch(path, { cache: "no-store", ...options });
    let body;
    try {
      body = await response.json();
    } catch (err) {
      body = { message: `${response.status} ${response.statusText}` };
    }
    if (!response.ok) throw new Error(body.message || body.__type || `HTTP ${response.status}`);
    return body;
  }

  const fmtMs = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(1) : String(Math.round(v)));
  const fmtCount = (n) => Number(n).toLocaleString("en-US");
  const clock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });
  const pairKey = (source, target) => `${source}>${target}`;

  function fmtBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function clip(text) {
    return text.length > CELL_CHARS_MAX ? text.slice(0, CELL_CHARS_MAX - 1) + "…" : text;
  }

  // A DynamoDB attribute value as short text.
  function valueText(value) {
    const [type, v] = Object.entries(value)[0] || ["?", ""];
    switch (type) {
      case "S": case "N": return v;
      case "BOOL": return String(v);
      case "NULL": return "null";
      case "B": return `<${v.length} b64>`;
      case "SS": case "NS": return `{${v.join(", ")}}`;
      case "BS": return `{${v.length} binaries}`;
      case "L": return `[${v.map(valueText).join(", ")}]`;
      case "M": return `{${Object.entries(v).map(([k, x]) => `${k}: ${valueText(x)}`).join(", ")}}`;
      default: return JSON.stringify(value);
    }
  }

  // --- status ----------------------------------------------------------------------
  const problems = new Map(); // source -> message
  function setProblem(source, message) {
    if (message) problems.set(source, message); else problems.delete(source);
    const status = $("status");
    if (problems.size === 0) {
      status.dataset.state = "live";
      status.textContent = "live";
      status.removeAttribute("title");
    } else {
      status.dataset.state = "error";
      const text = [...problems.values()].join("; ");
      status.textContent = clip(text);
      status.title = text;
    }
  }

  // --- overview ----------------------------------------------------------------------
  const state = {
    overview: null,
    tables: [],
    selected: null,
    pageStarts: [null],
    pageIndex: 0,
    nextStart: null,
    itemsStamp: null, // item count / size of the open table when its page was read
    loadingItems: false,
    itemsSeq: 0,
    openedAt: Date.now() / 1000,
    series: new Map(), // pair key -> {points: [{t, ms, n}], backlog: [{t, n}], prev: {count, sum}}
    answered: new Set(), // regions whose replicator answered the previous poll
    polled: false,
    replication: null,
    events: [],
    capacity: { series: new Map(), t: null, polled: false }, // table name -> {read, write: {points, levels, prev}, table}
    dax: { series: new Map(), t: null }, // "cluster/node" -> {points: [{t, hits, misses}], prev, recent}
    insights: { wanted: [], next: 0 }, // charted tables with Contributor Insights on; where the next round starts
  };

  async function loadOverview() {
    const overview = await api("/console/api/overview");
    state.overview = overview;
    $("region").textContent = overview.region;
    $("nodes").textContent = String(overview.nodes);
    $("regions").textContent = overview.regions.join(", ");
    $("window-s").textContent = String(CHART_SPAN_S);
    $("capacity-window-s").textContent = String(CHART_SPAN_S);
    $("dax-window-s").textContent = String(CHART_SPAN_S);
    $("timeline-span").textContent = `${TIMELINE_SPANS_S[0] / 60} min`;
    document.title = `Meridian console · ${overview.region}`;
    if (!overview.replication) {
      const text = "Replication is not configured on this router (meridian serve, or a single region without a replicator): " +
        "tables and items only.";
      $("replication-off").textContent = text;
      $("replication-off").hidden = false;
      $("latency-details").hidden = true;
      $("events-empty").textContent = "Replication is not configured on this router: no control events.";
      $("timeline").hidden = true;
    }
    return overview;
  }

  // --- tables ------------------------------------------------------------------------
  async function pollTables() {
    try {
      const answer = await api("/console/api/tables");
      state.tables = answer.tables;
      renderTables(answer);
      setProblem("tables", null);
    } catch (err) {
      setProblem("tables", `tables: ${err.message}`);
    } finally {
      setTimeout(pollTables, TABLES_INTERVAL_MS);
    }
  }

  function renderTables(answer) {
    const list = $("tables");
    list.replaceChildren(...answer.tables.map((table) => {
      const replicas = table.replicas.map((r) =>
        el("span", { class: "chip", "data-status": r.ReplicaStatus, title: r.ReplicaStatus }, r.RegionName));
      const item = el("li", { "data-table": table.name, class: table.name === state.selected ? "selected" : null },
        el("button", { type: "button", class: "table-button", onclick: () => selectTable(table.name) },
          el("span", { class: "table-name" }, table.name),
          el("span", { class: "badge", "data-status": table.status }, table.status),
          el("span", { class: "table-meta" }, `${fmtCount(table.item_count)} items · ${fmtBytes(table.size_bytes)}`),
          replicas.length ? el("span", { class: "chips" }, ...replicas) : null));
      return item;
    }));
    $("table-count").textContent = answer.tables.length ? `(${answer.tables.length}${answer.truncated ? "+" : ""})` : "";
    $("tables-empty").hidden = answer.tables.length > 0;
    if (state.selected) {
      const table = state.tables.find((t) => t.name === state.selected);
      renderTableFacts(table);
      // The open page follows the table: read again when its contents changed.
      const stamp = table ? `${table.item_count}/${table.size_bytes}` : null;
      if (table && stamp !== state.itemsStamp && !state.loadingItems) {
        state.itemsStamp = stamp;
        loadItems();
      }
    }
  }

  function selectTable(name) {
    state.selected = name;
    const table = state.tables.find((t) => t.name === name);
    state.itemsStamp = table ? `${table.item_count}/${table.size_bytes}` : null;
    $("item-detail").hidden = true;
    state.pageStarts = [null];
    state.pageIndex = 0;
    for (const li of $("tables").children) li.classList.toggle("selected", li.dataset.table === name);
    renderTableFacts(state.tables.find((t) => t.name === name));
    loadItems();
  }

  function keyText(schema, definitions) {
    const types = Object.fromEntries((definitions || []).map((d) => [d.AttributeName, d.AttributeType]));
    return schema.map((k) => `${k.AttributeName} (${types[k.AttributeName] || "?"}, ${k.KeyType === "HASH" ? "partition" : "sort"})`)
      .join(" · ");
  }

  // Time to Live: the attribute the nodes expire items by, and how many items it deleted here.
  function ttlFact(ttl) {
    if (!ttl) return null;
    const deleted = ` · ${fmtCount(ttl.deleted_count)} expired item${ttl.deleted_count === 1 ? "" : "s"} deleted`;
    const status = ttl.status === "ENABLED" || ttl.status === "DISABLED" ? "" : ` (${ttl.status})`;
    return el("span", { class: "ttl-fact", title: `Time to Live ${ttl.status}` },
      "TTL ", el("b", null, ttl.attribute || "off"), status, deleted);
  }

  function renderTableFacts(table) {
    const facts = $("table-facts");
    if (!table) {
      facts.replaceChildren(state.selected ? `Table ${state.selected} no longer exists.` : "Pick a table on the left to browse its items.");
      return;
    }
    $("table-title").textContent = `Items of ${table.name}`;
    const parts = [
      el("span", null, "key ", el("b", null, keyText(table.key_schema, table.attribute_definitions))),
      el("span", null, "status ", el("b", null, table.status)),
      el("span", null, el("b", null, fmtCount(table.item_count)), " items, ", fmtBytes(table.size_bytes)),
    ];
    parts.push(ttlFact(table.ttl));
    if (table.replicas.length) {
      parts.push(el("span", null, "replicas ",
        ...table.replicas.map((r) => el("span", { class: "chip", "data-status": r.ReplicaStatus },
          `${r.RegionName} ${r.ReplicaStatus}${r.ReplicaStatusPercentProgress ? ` ${r.ReplicaStatusPercentProgress}%` : ""}`))));
    }
    if (table.indexes.length) {
      parts.push(el("span", null, "indexes ", ...table.indexes.map((i) => el("span", { class: "chip" }, `${i.name} (${i.kind})`))));
    }
    facts.classList.remove("muted");
    facts.replaceChildren(...parts);
  }

  // Reads the open table's current page; a read overtaken by a newer one (another
  // page, another table, a refresh) is dropped when it answers.
  async function loadItems() {
    const name = state.selected;
    if (!name) return;
    const seq = ++state.itemsSeq;
    state.loadingItems = true;
    for (const id of ["items-refresh", "items-prev", "items-next"]) $(id).disabled = true;
    const start = state.pageStarts[state.pageIndex];
    const query = new URLSearchParams({ table: name, limit: String(PAGE_ITEMS) });
    if (start) query.set("start", JSON.stringify(start));
    let page = null, error = null;
    try {
      page = await api(`/console/api/items?${query}`);
    } catch (err) {
      error = err;
    }
    if (seq !== state.itemsSeq) return;
    state.loadingItems = false;
    if (page) {
      state.nextStart = page.last_evaluated_key || null;
      renderItems(page, state.tables.find((t) => t.name === name));
    } else {
      state.nextStart = null;
      $("items").replaceChildren(el("caption", { class: "error" }, `Could not read ${name}: ${error.message}`));
    }
    $("items-refresh").disabled = false;
    $("items-prev").disabled = state.pageIndex === 0;
    $("items-next").disabled = !state.nextStart;
    $("items-page").textContent = `page ${state.pageIndex + 1}`;
  }

  function renderItems(page, table) {
    const keys = table ? table.key_schema.map((k) => k.AttributeName) : [];
    const seen = new Set(keys);
    const others = [];
    for (const item of page.items) {
      for (const name of Object.keys(item)) {
        if (!seen.has(name)) { seen.add(name); others.push(name); }
      }
    }
    const columns = [...keys, ...others.slice(0, Math.max(0, COLUMNS_MAX - keys.length))];
    const hidden = others.length - (columns.length - keys.length);
    const head = el("tr", null, ...columns.map((c) => el("th", { class: keys.includes(c) ? "key" : null }, c)),
      hidden > 0 ? el("th", { class: "muted" }, `+${hidden} more`) : null);
    const rows = page.items.map((item) => el("tr", { tabindex: "0", onclick: () => showItem(item) },
      ...columns.map((c) => {
        if (!(c in item)) return el("td", { class: "absent" }, "");
        const text = valueText(item[c]);
        return el("td", { title: text.length > CELL_CHARS_MAX ? text.slice(0, 1000) : null,
          "data-type": Object.keys(item[c])[0] }, clip(text));
      }),
      hidden > 0 ? el("td", { class: "muted" }, "…") : null));
    const caption = el("caption", null, page.items.length ? `${page.count} item(s) on this page` : "No items on this page.");
    $("items").replaceChildren(caption, el("thead", null, head), el("tbody", null, ...rows));
  }

  // An item in plain JSON (DynamoDB's typed form kept, it is exact).
  function showItem(item) {
    const detail = $("item-detail");
    detail.textContent = JSON.stringify(item, null, 2);
    detail.hidden = false;
  }

  // --- replication ---------------------------------------------------------------------
  async function pollReplication() {
    try {
      const answer = await api("/console/api/replication");
      updateReplication(answer);
      const errors = Object.entries(answer.errors || {});
      setProblem("replication", errors.length ? errors.map(([r, m]) => `${r}: ${m}`).join("; ") : null);
    } catch (err) {
      setProblem("replication", `replication: ${err.message}`);
    } finally {
      setTimeout(pollReplication, POLL_INTERVAL_MS);
    }
  }

  function seriesOf(key) {
    let s = state.series.get(key);
    if (!s) {
      s = { points: [], backlog: [], prev: null };
      state.series.set(key, s);
    }
    return s;
  }

  function push(list, value) {
    list.push(value);
    if (list.length > WINDOW_POINTS_MAX) list.splice(0, list.length - WINDOW_POINTS_MAX);
  }

  // Cumulative summaries -> one point per poll: the mean latency of the
  // changes applied since the previous poll (sum and count differences).
  function updateReplication(answer) {
    const now = Date.now() / 1000;
    state.replication = answer;
    const totals = new Map();
    for (const s of answer.latency) {
      const key = pairKey(s.source, s.target);
      const total = totals.get(key) || { count: 0, sum: 0, tables: [] };
      total.count += s.count;
      total.sum += (s.mean_ms || 0) * s.count;
      total.tables.push(s);
      totals.set(key, total);
    }
    const answered = new Set(answer.regions.filter((r) => !(r in (answer.errors || {}))));
    for (const link of answer.links) {
      const key = pairKey(link.source, link.target);
      const s = seriesOf(key);
      const total = totals.get(key) || { count: 0, sum: 0, tables: [] };
      s.tables = total.tables;
      if (answered.has(link.target)) {
        let prev = s.prev;
        if (!prev && state.polled && state.answered.has(link.target)) prev = { count: 0, sum: 0 };
        if (prev && total.count > prev.count) {
          const n = total.count - prev.count;
          push(s.points, { t: now, ms: Math.max(0, (total.sum - prev.sum) / n), n });
        }
        s.prev = { count: total.count, sum: total.sum };
      }
      push(s.backlog, { t: now, n: link.pending });
      s.link = link;
    }
    state.answered = answered;
    state.polled = true;
    renderPairs(answer);
    renderLatencyTable(answer.latency);
  }

  function renderPairs(answer) {
    const container = $("pairs");
    const wanted = answer.links.map((l) => pairKey(l.source, l.target));
    for (const card of [...container.children]) if (!wanted.includes(card.dataset.pair)) card.remove();
    for (const link of answer.links) {
      const key = pairKey(link.source, link.target);
      let card = [...container.children].find((c) => c.dataset.pair === key);
      if (!card) {
        card = buildPairCard(link);
        container.append(card);
      }
      updatePairCard(card, link, state.series.get(key));
    }
  }

  function buildPairCard(link) {
    const numberInput = (name, label, props) => el("label", null, label,
      el("input", { name, type: "number", min: "0", step: "any", inputmode: "decimal", ...props }));
    const form = el("form", { class: "controls", onsubmit: (e) => e.preventDefault() },
      el("div", { class: "buttons" },
        el("button", { type: "button", "data-action": "cut", class: "danger" }, "Cut"),
        el("button", { type: "button", "data-action": "heal", class: "ok" }, "Heal"),
        el("label", { class: "check" }, el("input", { type: "checkbox", name: "both", checked: true }), "both directions")),
      el("div", { class: "settings" },
        numberInput("latency_ms", "latency ms"),
        numberInput("jitter_ms", "jitter ms"),
        numberInput("loss", "loss", { max: "1", step: "0.01" }),
        el("button", { type: "button", "data-action": "set" }, "Set")),
      el("div", { class: "form-message", role: "status" }));
    form.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (button) changeLink(form, link.source, link.target, button.dataset.action);
    });
    return el("article", { class: "pair", "data-pair": pairKey(link.source, link.target),
      "data-source": link.source, "data-target": link.target },
      el("header", { class: "pair-head" },
        el("span", { class: "pair-name" }, link.source, el("span", { class: "arrow" }, " → "), link.target),
        el("span", { class: "badge state" })),
      el("div", { class: "conditions" }),
      el("canvas", { class: "chart", height: "130", "data-points": "0" }),
      el("div", { class: "numbers" },
        el("span", null, "last ", el("b", { class: "last-ms" }, "–"), " ms"),
        el("span", { class: "cumulative" }),
        el("span", { class: "backlog" })),
      form);
  }

  function updatePairCard(card, link, s) {
    const stateName = link.cut ? "cut" : link.paused ? "paused" : "up";
    card.dataset.state = stateName;
    const badge = card.querySelector(".badge.state");
    badge.textContent = stateName;
    badge.dataset.status = stateName;
    card.querySelector(".conditions").textContent =
      `latency ${fmtMs(link.latency_ms)} ms · jitter ${fmtMs(link.jitter_ms)} ms · loss ${(link.loss * 100).toFixed(1)} %` +
      ` · in flight ${link.in_flight}`;
    const last = s.points.length ? s.points[s.points.length - 1] : null;
    card.querySelector(".last-ms").textContent = last ? fmtMs(last.ms) : "–";
    const count = s.tables.reduce((a, t) => a + t.count, 0);
    const worst = (field) => Math.max(0, ...s.tables.map((t) => t[field] || 0));
    card.querySelector(".cumulative").textContent = count
      ? `p50 ${fmtMs(worst("p50_ms"))} · p99 ${fmtMs(worst("p99_ms"))} · max ${fmtMs(worst("max_ms"))} ms (${fmtCount(count)} changes${s.tables.length > 1 ? ", worst table" : ""})`
      : "no changes replicated yet";
    card.querySelector(".backlog").textContent = `backlog ${fmtCount(link.pending)}`;
    const canvas = card.querySelector("canvas");
    canvas.dataset.points = String(s.points.length);
    drawChart(canvas, s, link);
    for (const input of card.querySelectorAll("input[type=number]")) {
      input.placeholder = input.name === "loss" ? String(link.loss) : fmtMs(link[input.name]);
    }
  }

  async function changeLink(form, source, target, action) {
    const message = form.querySelector(".form-message");
    const body = { action, source, target, one_way: !form.elements.both.checked };
    if (action === "set") {
      let any = false;
      for (const name of ["latency_ms", "jitter_ms", "loss"]) {
        const text = form.elements[name].value.trim();
        if (text !== "") { body[name] = Number(text); any = true; }
      }
      if (!any) { message.textContent = "Enter a latency, jitter or loss first."; return; }
    }
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    message.textContent = "…";
    try {
      const answer = await api("/console/api/link", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      message.textContent = `${action} ${source} → ${target}${body.one_way ? "" : " (both ways)"}: done`;
      if (action === "set") for (const name of ["latency_ms", "jitter_ms", "loss"]) form.elements[name].value = "";
      updateReplication(answer);
      pollEventsOnce();
    } catch (err) {
      message.textContent = `${action} failed: ${err.message}`;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function renderLatencyTable(latency) {
    const table = $("latency-table");
    const head = el("tr", null, ...["table", "pair", "changes", "mean", "p50", "p95", "p99", "max"].map((h) => el("th", null, h)));
    const rows = latency.map((s) => el("tr", null,
      el("td", null, s.table), el("td", null, `${s.source} → ${s.target}`), el("td", { class: "num" }, fmtCount(s.count)),
      ...["mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"].map((f) => el("td", { class: "num" }, `${fmtMs(s[f])} ms`))));
    table.replaceChildren(el("thead", null, head), el("tbody", null, ...rows));
  }

  // --- drawing ---------------------------------------------------------------------------
  function niceMax(value) {
    if (value <= 0) return 1;
    const step = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
    return 10 * step;
  }

  // Intervals during which source -> target was cut, from the control events.
  function cutIntervals(source, target, now) {
    const out = [];
    let from = null;
    for (const e of state.events) {
      if (e.region !== source || !e.args || e.args.peer !== target) continue;
      if (e.command === "link-cut" && from === null) from = e.t;
      if (e.command === "link-heal" && from !== null) { out.push([from, e.t]); from = null; }
    }
    if (from !== null) out.push([from, now]);
    return out;
  }

  function pairEvents(source, target) {
    return state.events.filter((e) => (e.region === source || e.region === target) &&
      (!e.args || !e.args.peer || e.args.peer === source || e.args.peer === target));
  }

  // A canvas sized to its box at the screen's pixel ratio, cleared; drawn in CSS pixels.
  function prepareCanvas(canvas, defaultHeight) {
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || defaultHeight;
    if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
    if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    return { g, width, height };
  }

  // What a chart spans: as long as the page is open, in tens of seconds, within bounds.
  const chartSpan = (now) => Math.min(CHART_SPAN_S, Math.max(CHART_SPAN_MIN_S, Math.ceil((now - state.openedAt) / 10) * 10));

  // "-Ns" labels along the time axis at height yText, "now" at the right.
  // Horizontal gridlines of a units chart, labelled on the left; leaves the
  // 10px font, a 1px line width and left-aligned text for what follows. yMax
  // is 1, 2, 2.5 or 5 times a power of ten (niceMax): gridlines at round values.
  function unitGridlines(g, y, yMax, left, w) {
    g.font = "10px system-ui, sans-serif";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    const lead = yMax / 10 ** Math.floor(Math.log10(yMax));
    const divisions = lead === 2 ? 4 : 5;
    for (let i = 0; i <= divisions; i++) {
      const v = (yMax * i) / divisions;
      const yy = Math.round(y(v)) + 0.5;
      g.strokeStyle = i === 0 ? "#dde2ea" : "#f0f2f6";
      g.beginPath(); g.moveTo(left, yy); g.lineTo(left + w, yy); g.stroke();
      g.fillStyle = "#6b7280";
      g.fillText(fmtUnits(v), left - 4, yy);
    }
    g.textAlign = "left";
  }

  function timeTicks(g, x, span, now, yText) {
    g.fillStyle = "#6b7280";
    g.textBaseline = "top";
    const tick = span > 60 ? 30 : 10;
    for (let ago = Math.floor(span / tick) * tick; ago >= 0; ago -= tick) {
      g.textAlign = ago === span ? "left" : ago === 0 ? "right" : "center";
      g.fillText(ago === 0 ? "now" : `-${ago}s`, x(now - ago), yText);
    }
    g.textAlign = "left";
  }

  function drawChart(canvas, s, link) {
    const { g, width, height } = prepareCanvas(canvas, 130);
    const now = Date.now() / 1000;
    const span = chartSpan(now);
    const t0 = now - span;
    const left = 40, right = 48, top = 14, bottom = 18;
    const w = width - left - right, h = height - top - bottom;
    const x = (t) => left + ((t - t0) / span) * w;
    const points = s.points.filter((p) => p.t >= t0);
    const backlog = s.backlog.filter((p) => p.t >= t0);
    // Latency on a log scale, whole decades: 40 ms of steady state and a
    // 3 s catch-up after a heal both stay readable on one chart.
    const values = points.map((p) => Math.max(p.ms, LATENCY_FLOOR_MS));
    const lo = 10 ** Math.floor(Math.log10(Math.min(10, ...values)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(100, ...values) * 1.05));
    const decades = Math.log10(hi / lo);
    const bMax = niceMax(Math.max(1, ...backlog.map((p) => p.n)));
    const y = (ms) => top + h - (Math.log10(Math.max(ms, lo) / lo) / decades) * h;
    const yb = (n) => top + h - (n / bMax) * h;

    g.font = "10px system-ui, sans-serif";
    // cut intervals
    g.fillStyle = "rgba(214, 69, 69, 0.12)";
    for (const [a, b] of cutIntervals(link.source, link.target, now)) {
      const xa = Math.max(left, x(a)), xb = Math.min(left + w, x(b));
      if (xb > xa) g.fillRect(xa, top, xb - xa, h);
    }
    // grid and axes
    g.strokeStyle = "#e3e7ee";
    g.fillStyle = "#6b7280";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (let decade = lo; decade <= hi; decade *= 10) {
      for (const m of decade === hi ? [1] : [1, 2, 5]) {
        const v = decade * m;
        const yy = Math.round(y(v)) + 0.5;
        g.strokeStyle = m === 1 ? "#dde2ea" : "#f0f2f6";
        g.beginPath(); g.moveTo(left, yy); g.lineTo(left + w, yy); g.stroke();
        if (m === 1 || decades <= 2) g.fillText(String(v), left - 4, yy);
      }
    }
    g.strokeStyle = "#e3e7ee";
    g.textAlign = "left";
    g.fillStyle = "#9aa3af";
    g.textBaseline = "middle";
    g.fillText(`${fmtCount(bMax)}`, left + w + 4, top);
    g.fillText("backlog", left + w + 4, top + 12);
    timeTicks(g, x, span, now, top + h + 4);
    g.fillStyle = "#9aa3af";
    g.fillText("ms", left + 4, top + 2);
    // backlog: a grey step area on its own scale
    if (backlog.length) {
      g.fillStyle = "rgba(120, 130, 145, 0.18)";
      g.beginPath();
      g.moveTo(x(backlog[0].t), yb(0));
      for (let i = 0; i < backlog.length; i++) {
        const p = backlog[i];
        if (i > 0) g.lineTo(x(p.t), yb(backlog[i - 1].n));
        g.lineTo(x(p.t), yb(p.n));
      }
      g.lineTo(x(backlog[backlog.length - 1].t), yb(0));
      g.closePath();
      g.fill();
    }
    // control events touching this pair
    for (const e of pairEvents(link.source, link.target)) {
      if (e.t < t0) continue;
      const xx = Math.round(x(e.t)) + 0.5;
      g.strokeStyle = COMMAND_COLORS[e.command] || "#555";
      g.setLineDash([3, 3]);
      g.beginPath(); g.moveTo(xx, top); g.lineTo(xx, top + h); g.stroke();
      g.setLineDash([]);
    }
    // latency: line through the points (broken where a poll had no changes), dots on them
    g.strokeStyle = "#2563eb";
    g.fillStyle = "#2563eb";
    g.lineWidth = 1.5;
    g.beginPath();
    let previous = null;
    for (const p of points) {
      if (previous && p.t - previous.t <= (POLL_INTERVAL_MS / 1000) * 2.5) g.lineTo(x(p.t), y(p.ms));
      else g.moveTo(x(p.t), y(p.ms));
      previous = p;
    }
    g.stroke();
    for (const p of points) {
      g.beginPath();
      g.arc(x(p.t), y(p.ms), 2.2, 0, Math.PI * 2);
      g.fill();
    }
    if (!points.length) {
      g.fillStyle = "#9aa3af";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText(link.cut ? "link cut: nothing arrives" : "no changes replicated in this window", left + w / 2, top + h / 2);
    }
  }

  // --- capacity ----------------------------------------------------------------------------
  // The router answers cumulative counters per table (units consumed, requests
  // throttled, through this router); each poll becomes one point per table and
  // meter: the units consumed per second and the requests throttled per second
  // since the previous reading (differences over the router's own clock).
  async function pollCapacity() {
    try {
      updateCapacity(await api("/console/api/capacity"));
      setProblem("capacity", null);
    } catch (err) {
      setProblem("capacity", `capacity: ${err.message}`);
    } finally {
      setTimeout(pollCapacity, POLL_INTERVAL_MS);
    }
  }

  function meterLimit(table, meter) {
    const provisioned = table[`provisioned_${meter}_units`];
    return provisioned !== null && provisioned !== undefined ? provisioned : table[`max_${meter}_units`];
  }

  function updateCapacity(answer) {
    const now = Date.now() / 1000;
    const cap = state.capacity;
    const dt = cap.t === null ? 0 : answer.t - cap.t;
    const seen = new Set();
    for (const table of answer.tables) {
      seen.add(table.name);
      let s = cap.series.get(table.name);
      const fresh = !s;
      if (fresh) {
        s = { read: { points: [], levels: [], prev: null }, write: { points: [], levels: [], prev: null }, table };
        cap.series.set(table.name, s);
      }
      s.table = table;
      for (const meter of METERS) {
        const m = s[meter];
        push(m.levels, { t: now, limit: meterLimit(table, meter) });
        const consumed = table[`consumed_${meter}_units`], events = table[`${meter}_throttle_events`];
        if (consumed === null || consumed === undefined) { m.prev = null; continue; }
        // A table created since the previous poll consumed nothing before it.
        let prev = m.prev;
        if (!prev && fresh && cap.polled) prev = { consumed: 0, events: 0 };
        if (prev && dt > 0) {
          // A counter that went back started again (a table re-created, a router restarted).
          const used = consumed >= prev.consumed ? consumed - prev.consumed : consumed;
          const refused = events >= prev.events ? events - prev.events : events;
          push(m.points, { t: now, rate: used / dt, events: refused / dt });
        }
        m.prev = { consumed, events };
      }
    }
    for (const name of [...cap.series.keys()]) if (!seen.has(name)) cap.series.delete(name);
    cap.t = answer.t;
    cap.polled = true;
    renderCapacity(answer);
  }

  function renderCapacity(answer) {
    const off = $("capacity-off");
    const container = $("capacity");
    if (!answer.throttling) {
      off.textContent = "Throttling is off on this router (--no-throttling): it meters nothing, so there is no " +
        "capacity to chart. Provisioned settings are still kept and reported by DescribeTable.";
      off.hidden = false;
      container.replaceChildren();
      $("capacity-more").hidden = true;
      return;
    }
    off.hidden = true;
    // Charted first: tables with a limit or with anything consumed; then by name.
    const charted = answer.tables.filter((t) => meterLimit(t, "read") !== null || meterLimit(t, "write") !== null ||
      t.consumed_read_units > 0 || t.consumed_write_units > 0 || t.read_throttle_events > 0 || t.write_throttle_events > 0);
    const idle = answer.tables.filter((t) => !charted.includes(t));
    const shown = [...charted, ...idle].slice(0, CAPACITY_CARDS_MAX);
    const wanted = new Set(shown.map((t) => t.name));
    for (const card of [...container.children]) if (!wanted.has(card.dataset.table)) card.remove();
    const cards = new Map([...container.children].map((card) => [card.dataset.table, card]));
    shown.forEach((table, i) => {
      let card = cards.get(table.name);
      if (!card) card = buildCapacityCard(table);
      if (container.children[i] !== card) container.insertBefore(card, container.children[i] || null);
      updateCapacityCard(card, table, state.capacity.series.get(table.name));
    });
    const hidden = answer.tables.length - shown.length;
    const more = $("capacity-more");
    more.hidden = hidden <= 0 && !answer.truncated;
    more.textContent = `${fmtCount(Math.max(0, hidden))}${answer.truncated ? "+" : ""} more idle table(s) not charted.`;
    if (!answer.tables.length) {
      container.replaceChildren(el("p", { class: "muted" }, "No tables yet."));
    }
  }

  function buildCapacityCard(table) {
    const meterBox = (meter) => el("div", { class: "meter", "data-meter": meter },
      el("div", { class: "meter-title" },
        el("span", { class: "meter-name" }, meter === "read" ? "reads" : "writes"),
        el("span", { class: "meter-numbers" },
          el("b", { class: "rate" }, "–"), el("span", { class: "of" }), " · ",
          el("span", { class: "throttled" }))),
      el("canvas", { class: "chart capacity-chart", height: "120", "data-points": "0", "data-throttle-points": "0" }));
    return el("article", { class: "capacity-card", "data-table": table.name },
      el("header", { class: "capacity-head" },
        el("span", { class: "table-name" }, table.name),
        el("span", { class: "badge mode" }),
        el("span", { class: "capacity-limits" })),
      el("div", { class: "meters" }, meterBox("read"), meterBox("write")),
      el("section", { class: "insights", hidden: true },
        el("div", { class: "insights-head" },
          el("span", { class: "insights-title" }, "Contributor Insights"),
          el("span", { class: "muted" }, "each rule's top keys through this router over about the last minute")),
        el("div", { class: "insights-body" })));
  }

  function limitText(table) {
    if (table.billing_mode === "PROVISIONED") {
      return `provisioned ${fmtCount(table.provisioned_read_units)} read / ${fmtCount(table.provisioned_write_units)} write units a second`;
    }
    const max = (v) => (v === null ? "no maximum" : `at most ${fmtCount(v)} unit${v === 1 ? "" : "s"} a second`);
    return `reads ${max(table.max_read_units)} · writes ${max(table.max_write_units)}`;
  }

  const fmtUnits = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(1) : fmtCount(Math.round(v)));

  function updateCapacityCard(card, table, s) {
    const badge = card.querySelector(".badge.mode");
    badge.textContent = table.billing_mode === "PROVISIONED" ? "provisioned" : "on demand";
    badge.dataset.mode = table.billing_mode;
    card.querySelector(".capacity-limits").textContent = limitText(table);
    let throttlingNow = false;
    for (const meter of METERS) {
      const box = card.querySelector(`.meter[data-meter="${meter}"]`);
      const points = s ? s[meter].points : [], levels = s ? s[meter].levels : [];
      const last = points.length ? points[points.length - 1] : null;
      const limit = meterLimit(table, meter);
      box.querySelector(".rate").textContent = last ? fmtUnits(last.rate) : "–";
      box.querySelector(".of").textContent = limit === null ? " units/s" : ` of ${fmtCount(limit)} units/s`;
      const total = table[`${meter}_throttle_events`] || 0;
      const throttled = box.querySelector(".throttled");
      throttled.textContent = `${fmtCount(total)} throttled`;
      throttled.dataset.any = total > 0 ? "yes" : "no";
      if (last && last.events > 0) throttlingNow = true;
      drawCapacityChart(box.querySelector("canvas"), points, levels, meter);
    }
    card.dataset.throttling = throttlingNow ? "yes" : "no";
    card.dataset.insights = table.contributor_insights ? "yes" : "no";
    if (!table.contributor_insights) card.querySelector(".insights").hidden = true;
  }

  // --- Contributor Insights ----------------------------------------------------------
  // For each charted table with Contributor Insights on (the table or a global
  // index), its rules' top keys (/console/api/contributors), a few tables a round.
  async function pollInsights() {
    try {
      const wanted = [...document.querySelectorAll('.capacity-card[data-insights="yes"]')].map((c) => c.dataset.table);
      const ins = state.insights;
      if (ins.next >= wanted.length) ins.next = 0;
      const round = wanted.slice(ins.next, ins.next + INSIGHTS_TABLES_MAX);
      ins.next += round.length;
      for (const name of round) {
        const answer = await api(`/console/api/contributors?table=${encodeURIComponent(name)}`);
        const card = [...document.querySelectorAll(".capacity-card")].find((c) => c.dataset.table === name);
        if (card) renderInsights(card.querySelector(".insights"), answer);
      }
      setProblem("insights", null);
    } catch (err) {
      setProblem("insights", `contributor insights: ${err.message}`);
    } finally {
      setTimeout(pollInsights, INSIGHTS_INTERVAL_MS);
    }
  }

  const insightKeyText = (key) => Object.entries(key).map(([name, value]) => {
    const [type, inner] = Object.entries(value)[0] || ["", ""];
    return `${name} = ${type === "S" ? inner : `${inner} (${type})`}`;
  }).join(", ");

  function renderInsights(section, answer) {
    const body = section.querySelector(".insights-body");
    const resources = answer.resources.filter((r) => r.status !== "DISABLED");
    section.hidden = resources.length === 0;
    body.replaceChildren(...resources.map((resource) => {
      const rules = resource.rules.map((rule) => {
        const keys = rule.keys.length
          ? el("ol", { class: "insight-keys" }, ...rule.keys.map((entry) =>
            el("li", { class: "insight-key", "data-count": entry.count.toFixed(3) },
              el("span", { class: "key-text" }, insightKeyText(entry.key)),
              el("span", { class: "count" }, rule.throttled ? `${fmtUnits(entry.count)} refused`
                : fmtUnits(entry.count)))))
          : el("p", { class: "muted insight-none" }, rule.throttled ? "nothing throttled" : "no requests yet");
        return el("div", { class: "insight-rule", "data-rule": rule.rule, "data-throttled": rule.throttled ? "yes" : "no" },
          el("div", { class: "rule-title", title: rule.name }, RULE_TITLES[rule.rule] || rule.rule), keys);
      });
      return el("div", { class: "insight-resource", "data-index": resource.index || "" },
        el("div", { class: "insight-resource-head" },
          el("b", null, resource.index ? `index ${resource.index}` : "table"),
          el("span", { class: "badge insight-status", "data-status": resource.status },
            `${resource.status.toLowerCase()}${resource.mode === "THROTTLED_KEYS" ? " · throttled keys only" : ""}`)),
        el("div", { class: "insight-rules" }, ...rules));
    }));
  }

  // Consumed units a second (blue area), the limit (orange dashed steps, as it
  // was at each reading), throttled requests a second (red bars, own scale, right).
  function drawCapacityChart(canvas, allPoints, allLevels, meter) {
    const { g, width, height } = prepareCanvas(canvas, 120);
    const now = Date.now() / 1000;
    const span = chartSpan(now);
    const t0 = now - span;
    const left = 40, right = 48, top = 14, bottom = 18;
    const w = width - left - right, h = height - top - bottom;
    const x = (t) => left + ((t - t0) / span) * w;
    const points = allPoints.filter((p) => p.t >= t0);
    // the readings' limits: the one before the window too, where the window starts
    const before = allLevels.filter((p) => p.t < t0);
    const steps = [...before.slice(-1).map((p) => ({ t: t0, limit: p.limit })), ...allLevels.filter((p) => p.t >= t0)];
    const yMax = niceMax(Math.max(1, ...points.map((p) => p.rate), ...steps.map((p) => p.limit || 0)) * 1.1);
    const eMax = niceMax(Math.max(1, ...points.map((p) => p.events)));
    const y = (v) => top + h - (Math.min(v, yMax) / yMax) * h;
    const ye = (v) => top + h - (v / eMax) * h;
    const throttlePoints = points.filter((p) => p.events > 0);
    canvas.dataset.points = String(points.length);
    canvas.dataset.throttlePoints = String(throttlePoints.length);

    unitGridlines(g, y, yMax, left, w);
    g.fillStyle = "#9aa3af";
    if (throttlePoints.length) {
      g.fillText(fmtCount(eMax), left + w + 4, top);
      g.fillText("throttled", left + w + 4, top + 12);
      g.fillText("a second", left + w + 4, top + 24);
    }
    g.textBaseline = "top";
    g.fillText(`${meter} units/s`, left + 4, top - 12);
    timeTicks(g, x, span, now, top + h + 4);
    // throttled requests: a bar per reading that had any
    const barW = Math.max(2, (w / span) * (POLL_INTERVAL_MS / 1000) * 0.7);
    g.fillStyle = "rgba(214, 69, 69, 0.75)";
    for (const p of throttlePoints) g.fillRect(x(p.t) - barW / 2, ye(p.events), barW, top + h - ye(p.events));
    // consumed: area and line, broken where a reading is missing
    const gap = (a, b) => b.t - a.t > (POLL_INTERVAL_MS / 1000) * 2.5;
    let run = [];
    const runs = [];
    for (const p of points) {
      if (run.length && gap(run[run.length - 1], p)) { runs.push(run); run = []; }
      run.push(p);
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      g.fillStyle = "rgba(37, 99, 235, 0.15)";
      g.beginPath();
      g.moveTo(x(r[0].t), y(0));
      for (const p of r) g.lineTo(x(p.t), y(p.rate));
      g.lineTo(x(r[r.length - 1].t), y(0));
      g.closePath();
      g.fill();
      g.strokeStyle = "#2563eb";
      g.lineWidth = 1.5;
      g.beginPath();
      r.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.rate)) : g.moveTo(x(p.t), y(p.rate))));
      g.stroke();
      if (r.length === 1) {
        g.fillStyle = "#2563eb";
        g.beginPath(); g.arc(x(r[0].t), y(r[0].rate), 2.2, 0, Math.PI * 2); g.fill();
      }
    }
    // the limit: steps through the readings, the current one up to now
    g.strokeStyle = "#e8890c";
    g.lineWidth = 1.5;
    g.setLineDash([5, 4]);
    g.beginPath();
    let drawing = false, level = null;
    if (steps.length) steps.push({ t: now, limit: steps[steps.length - 1].limit });
    for (const p of steps) {
      const v = p.limit === undefined ? null : p.limit;
      if (v === null) { drawing = false; level = null; continue; }
      if (!drawing) { g.moveTo(Math.max(left, x(p.t)), y(v)); drawing = true; }
      else { g.lineTo(x(p.t), y(level)); g.lineTo(x(p.t), y(v)); }
      level = v;
    }
    g.stroke();
    g.setLineDash([]);
    if (!points.length) {
      g.fillStyle = "#9aa3af";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText("waiting for two readings", left + w / 2, top + h / 2);
    }
  }

  // --- DAX -----------------------------------------------------------------------------------
  // The router answers each DAX node's cumulative counters (its CloudWatch
  // figures); each poll becomes one point per node: item cache hits and misses
  // a second since the previous reading, over the router's own clock, and the
  // hit rates of that interval beside the cumulative ones.
  const fmtRate = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(1)} %`);
  const daxKey = (node) => `${node.cluster}/${node.node_id}`;

  async function pollDax() {
    try {
      updateDax(await api("/console/api/dax"));
      setProblem("dax", null);
    } catch (err) {
      setProblem("dax", `dax: ${err.message}`);
    } finally {
      setTimeout(pollDax, POLL_INTERVAL_MS);
    }
  }

  // Lookups since the previous reading; a counter that went back started again (a node rebooted).
  const since = (now, before) => (before === undefined ? null : now >= before ? now - before : now);

  function intervalRate(hits, misses) {
    if (hits === null || misses === null || hits + misses === 0) return null;
    return hits / (hits + misses);
  }

  function updateDax(answer) {
    const now = Date.now() / 1000;
    const dax = state.dax;
    const dt = dax.t === null ? 0 : answer.t - dax.t;
    const seen = new Set();
    for (const cluster of answer.clusters) {
      for (const node of cluster.nodes) {
        const key = daxKey(node);
        seen.add(key);
        let s = dax.series.get(key);
        if (!s) { s = { points: [], prev: null, recent: { item: null, query: null } }; dax.series.set(key, s); }
        const reading = { ih: node.item_cache.hits, im: node.item_cache.misses,
          qh: node.query_cache.hits, qm: node.query_cache.misses };
        if (s.prev && dt > 0) {
          const ih = since(reading.ih, s.prev.ih), im = since(reading.im, s.prev.im);
          push(s.points, { t: now, hits: ih / dt, misses: im / dt });
          s.recent = { item: intervalRate(ih, im), query: intervalRate(since(reading.qh, s.prev.qh), since(reading.qm, s.prev.qm)) };
        }
        s.prev = reading;
      }
    }
    for (const key of [...dax.series.keys()]) if (!seen.has(key)) dax.series.delete(key);
    dax.t = answer.t;
    renderDax(answer);
  }

  function renderDax(answer) {
    const off = $("dax-off");
    const container = $("dax");
    const count = answer.clusters.reduce((n, c) => n + c.nodes.length, 0);
    $("dax-count").textContent = count ? `${count} node${count === 1 ? "" : "s"}${answer.truncated ? "+" : ""}` : "";
    if (!answer.configured) {
      off.textContent = "This router serves no DAX: start it with --dax-port PORT (meridian serve, meridian up), " +
        "or create a cluster with aws dax create-cluster.";
      off.hidden = false;
      container.replaceChildren();
      return;
    }
    off.hidden = true;
    const wanted = new Set(answer.clusters.map((c) => c.name));
    for (const box of [...container.children]) if (!wanted.has(box.dataset.cluster)) box.remove();
    answer.clusters.forEach((cluster, i) => {
      let box = [...container.children].find((b) => b.dataset.cluster === cluster.name);
      if (!box) box = buildDaxCluster(cluster);
      if (container.children[i] !== box) container.insertBefore(box, container.children[i] || null);
      updateDaxCluster(box, cluster);
    });
  }

  function buildDaxCluster(cluster) {
    return el("section", { class: "dax-cluster", "data-cluster": cluster.name },
      el("header", { class: "dax-cluster-head" },
        el("span", { class: "table-name" }, cluster.name),
        el("span", { class: "muted" }, "discovery ", el("code", { class: "discovery" })),
        el("span", { class: "muted node-count" })),
      el("div", { class: "dax-nodes" }));
  }

  function updateDaxCluster(box, cluster) {
    box.querySelector(".discovery").textContent = cluster.discovery;
    box.querySelector(".node-count").textContent = `${cluster.nodes.length} node${cluster.nodes.length === 1 ? "" : "s"}`;
    const list = box.querySelector(".dax-nodes");
    const wanted = new Set(cluster.nodes.map((n) => n.node_id));
    for (const card of [...list.children]) if (!wanted.has(card.dataset.node)) card.remove();
    cluster.nodes.forEach((node, i) => {
      let card = [...list.children].find((c) => c.dataset.node === node.node_id);
      if (!card) card = buildDaxNode(node);
      if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
      updateDaxNode(card, node, state.dax.series.get(daxKey(node)));
    });
  }

  function buildDaxNode(node) {
    const cacheBox = (kind, title) => el("div", { class: "dax-cache", "data-cache": kind },
      el("div", { class: "dax-box-title" }, title),
      el("b", { class: "hit-rate" }, "–"), el("span", { class: "muted" }, " hit rate · now "),
      el("span", { class: "hit-rate-now" }, "–"),
      el("div", { class: "dax-small" }, el("span", { class: "hits" }, "0"), " hits · ",
        el("span", { class: "misses" }, "0"), " misses"));
    return el("article", { class: "dax-node", "data-node": node.node_id },
      el("header", { class: "dax-node-head" },
        el("span", { class: "table-name node-name" }, node.node_id),
        el("span", { class: "badge role" }),
        el("code", { class: "dax-url" }),
        el("span", { class: "muted" }, el("span", { class: "connections" }, "0"), " connection(s)")),
      el("div", { class: "dax-figures" },
        cacheBox("item", "item cache (GetItem, BatchGetItem)"),
        cacheBox("query", "query cache (Query, Scan)"),
        el("div", { class: "dax-memory" },
          el("div", { class: "dax-box-title" }, "memory"),
          el("b", { class: "utilization" }, "–"), el("span", { class: "muted" }, " in use"),
          el("div", { class: "dax-small" }, el("span", { class: "cached" }), " cached · ",
            el("span", { class: "evicted" }), " evicted"),
          el("div", { class: "dax-small muted ttls" })),
        el("div", { class: "dax-requests" },
          el("div", { class: "dax-box-title" }, el("span", { class: "requests-total" }, "0"), " requests"),
          el("ul", { class: "methods" }))),
      el("canvas", { class: "chart dax-chart", height: "110", "data-points": "0" }));
  }

  function updateDaxNode(card, node, s) {
    const role = card.querySelector(".badge.role");
    role.textContent = node.role;
    role.dataset.role = node.role;
    card.querySelector(".dax-url").textContent = node.url;
    card.querySelector(".connections").textContent = fmtCount(node.connections);
    for (const kind of ["item", "query"]) {
      const box = card.querySelector(`.dax-cache[data-cache="${kind}"]`);
      const cache = node[`${kind}_cache`];
      box.querySelector(".hit-rate").textContent = fmtRate(cache.hit_rate);
      box.querySelector(".hit-rate-now").textContent = fmtRate(s ? s.recent[kind] : null);
      box.querySelector(".hits").textContent = fmtCount(cache.hits);
      box.querySelector(".misses").textContent = fmtCount(cache.misses);
    }
    const capacity = node.capacity_bytes === null ? "" : ` of ${fmtBytes(node.capacity_bytes)}`;
    card.querySelector(".utilization").textContent = `${node.memory_utilization_percent.toFixed(2)} %`;
    card.querySelector(".cached").textContent = `${fmtBytes(node.cached_bytes)}${capacity}`;
    card.querySelector(".evicted").textContent = fmtBytes(node.evicted_bytes);
    const ttl = (ms) => (ms === null || ms === undefined ? "–" : `${fmtCount(ms / 1000)} s`);
    card.querySelector(".ttls").textContent = `TTL: items ${ttl(node.record_ttl_ms)}, queries ${ttl(node.query_ttl_ms)}`;
    card.querySelector(".requests-total").textContent = fmtCount(node.requests_total);
    const methods = Object.entries(node.requests);
    card.querySelector(".methods").replaceChildren(...(methods.length ? methods.map(([method, n]) =>
      el("li", { "data-method": method }, el("span", null, method), el("b", { class: "n" }, fmtCount(n))))
      : [el("li", { class: "muted" }, "none yet")]));
    drawDaxChart(card.querySelector("canvas"), s ? s.points : []);
  }

  // Item cache hits a second (green) and misses a second (orange), one point per reading.
  function drawDaxChart(canvas, allPoints) {
    const { g, width, height } = prepareCanvas(canvas, 110);
    const now = Date.now() / 1000;
    const span = chartSpan(now);
    const t0 = now - span;
    const left = 40, right = 10, top = 14, bottom = 18;
    const w = width - left - right, h = height - top - bottom;
    const x = (t) => left + ((t - t0) / span) * w;
    const points = allPoints.filter((p) => p.t >= t0);
    canvas.dataset.points = String(points.length);
    const yMax = niceMax(Math.max(1, ...points.map((p) => Math.max(p.hits, p.misses))) * 1.1);
    const y = (v) => top + h - (Math.min(v, yMax) / yMax) * h;
    unitGridlines(g, y, yMax, left, w);
    g.textBaseline = "top";
    g.fillStyle = "#9aa3af";
    g.fillText("item cache lookups/s", left + 4, top - 12);
    timeTicks(g, x, span, now, top + h + 4);
    for (const [field, color] of [["misses", "#e8890c"], ["hits", "#2f9e44"]]) {
      g.strokeStyle = color;
      g.fillStyle = color;
      g.lineWidth = 1.5;
      g.beginPath();
      points.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[field])) : g.moveTo(x(p.t), y(p[field]))));
      g.stroke();
      if (points.length === 1) { g.beginPath(); g.arc(x(points[0].t), y(points[0][field]), 2.2, 0, Math.PI * 2); g.fill(); }
    }
    if (!points.length) {
      g.fillStyle = "#9aa3af";
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText("waiting for two readings", left + w / 2, top + h / 2);
    }
  }

  // --- events and the fault timeline -------------------------------------------------------
  async function pollEventsOnce() {
    try {
      const answer = await api("/console/api/events");
      state.events = answer.events;
      renderEvents();
      setProblem("events", null);
    } catch (err) {
      setProblem("events", `events: ${err.message}`);
    }
  }

  async function pollEvents() {
    await pollEventsOnce();
    setTimeout(pollEvents, POLL_INTERVAL_MS);
  }

  function argsText(args) {
    return Object.entries(args || {}).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  }

  function renderEvents() {
    const shown = state.events.slice(-EVENTS_SHOWN_MAX).reverse();
    $("events").replaceChildren(...shown.map((e) => el("li", { "data-command": e.command, "data-region": e.region },
      el("time", null, clock(e.t)),
      el("span", { class: "region" }, e.region),
      el("span", { class: "command", "data-command": e.command }, e.command),
      el("span", { class: "args" }, argsText(e.args)))));
    $("events-empty").hidden = shown.length > 0;
    renderTimeline();
  }

  function renderTimeline() {
    const regions = state.overview ? state.overview.regions : [];
    const now = Date.now() / 1000;
    const oldest = state.events.length ? state.events[0].t : now;
    const span = TIMELINE_SPANS_S.find((s) => now - oldest < s * 0.95) || TIMELINE_SPANS_S[TIMELINE_SPANS_S.length - 1];
    const t0 = now - span;
    $("timeline-span").textContent = `${span / 60} min`;
    const width = 1000, label = 120, row = 26, top = 6;
    const height = top + regions.length * row + 22;
    const x = (t) => label + ((t - t0) / span) * (width - label - 10);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline-svg", role: "img",
      "aria-label": "control events over time" });
    regions.forEach((region, i) => {
      const yy = top + i * row;
      root.append(svg("rect", { x: label, y: yy + 3, width: width - label - 10, height: row - 6, class: "lane" }));
      root.append(svg("text", { x: label - 8, y: yy + row / 2, class: "lane-label", "text-anchor": "end",
        "dominant-baseline": "middle" }, region));
      for (const peer of regions) {
        if (peer === region) continue;
        for (const [a, b] of cutIntervals(region, peer, now)) {
          if (b < t0) continue;
          const xa = x(Math.max(a, t0)), xb = x(Math.min(b, now));
          root.append(svg("rect", { x: xa, y: yy + 5, width: Math.max(2, xb - xa), height: row - 10, class: "cut-bar" },
            svg("title", null, `${region} → ${peer} cut from ${clock(a)}${b >= now - 1 ? " (still cut)" : ` to ${clock(b)}`}`)));
        }
      }
    });
    const tick = TIMELINE_TICKS_S.get(span);
    for (let ago = span; ago >= 0; ago -= tick) {
      const xx = x(now - ago);
      root.append(svg("line", { x1: xx, x2: xx, y1: top, y2: height - 18, class: "tick" }));
      root.append(svg("text", { x: xx, y: height - 6, class: "tick-label", "text-anchor": "middle" },
        ago === 0 ? "now" : span <= 300 ? `-${ago}s` : `-${ago / 60}m`));
    }
    for (const e of state.events) {
      const i = regions.indexOf(e.region);
      if (i < 0 || e.t < t0) continue;
      root.append(svg("circle", { cx: x(e.t), cy: top + i * row + row / 2, r: 5, fill: COMMAND_COLORS[e.command] || "#555",
        class: "marker", "data-command": e.command },
        svg("title", null, `${clock(e.t)} ${e.region} ${e.command} ${argsText(e.args)}`)));
    }
    $("timeline").replaceChildren(root);
  }

  // --- start ---------------------------------------------------------------------------------
  async function start() {
    $("items-refresh").addEventListener("click", loadItems);
    $("items-next").addEventListener("click", () => {
      if (!state.nextStart) return;
      state.pageStarts = state.pageStarts.slice(0, state.pageIndex + 1);
      state.pageStarts.push(state.nextStart);
      state.pageIndex += 1;
      loadItems();
    });
    $("items-prev").addEventListener("click", () => {
      if (state.pageIndex === 0) return;
      state.pageIndex -= 1;
      loadItems();
    });
    let overview = null;
    while (!overview) {
      try {
        overview = await loadOverview();
        setProblem("overview", null);
      } catch (err) {
        setProblem("overview", `cannot reach the router: ${err.message}`);
        await new Promise((resolve) => setTimeout(resolve, TABLES_INTERVAL_MS));
      }
    }
    pollTables();
    pollCapacity();
    pollInsights();
    pollDax();
    if (overview.replication) {
      pollReplication();
      pollEvents();
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
