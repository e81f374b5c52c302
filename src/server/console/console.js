// The Kiln web console (docs/console.md). Plain JavaScript, no framework and
// nothing loaded from elsewhere: every byte comes from `kiln serve`, and
// everything shown comes from its /v1 API, read with the session cookie.
// Pages are hash routes: #/steps, #/steps/{id}, #/submit, #/cluster,
// #/catalog, #/catalog/{layer}. Tenant text is always set as textContent,
// never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // --- the API --------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // Every request carries X-Kiln-Console: the server requires it on a
  // cookie-authenticated state change (the CSRF defence, docs/console.md).
  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({ "X-Kiln-Console": "1" }, extraHeaders || {});
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401 && !path.startsWith("/v1/session")) {
      showSignIn("Your session ended: sign in again.");
      throw new ApiError(401, "unauthorized", "signed out");
    }
    const type = res.headers.get("Content-Type") || "";
    const data = type.startsWith("application/json") ? await res.json() : await res.text();
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(res.status, e.code || String(res.status), e.message || String(data));
    }
    return { data, res };
  }

  // --- small helpers --------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "data") Object.assign(e.dataset, v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // "2026-12-06 19:04:44", local time. Written out rather than through
  // Intl: the first Intl call costs the steps page's first paint tens of
  // milliseconds (bench/console_bench.py).
  const pad2 = (n) => (n < 10 ? "0" : "") + n;
  function fmtClock(d) {
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }
  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + fmtClock(d);
  }

  function fmtDuration(s) {
    if (s === null || s === undefined || !isFinite(s)) return "";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function fmtMoney(x) {
    if (x === null || x === undefined) return "";
    return x < 0.01 && x > 0 ? x.toFixed(4) : x.toFixed(2);
  }

  function fraction(p) {
    if (!p) return 0;
    if (p.tiles_total > 0) return p.tiles_done / p.tiles_total;
    if (p.tasks_total > 0) return p.tasks_done / p.tasks_total;
    return 0;
  }

  function progressBar(p) {
    const f = fraction(p);
    const label = p && p.tiles_total > 0
      ? p.tiles_done + " / " + p.tiles_total + " tiles"
      : p && p.tasks_total > 0 ? p.tasks_done + " / " + p.tasks_total + " tasks" : "";
    const fill = el("div");
    fill.style.width = (100 * f).toFixed(1) + "%";
    return el("div", {
      class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": (100 * f).toFixed(2),
      data: { done: p ? p.tiles_done : 0, total: p ? p.tiles_total : 0 },
    }, fill, el("span", { text: label }));
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  // --- pages and routing ----------------------------------------------------

  const pages = ["signin", "steps", "step", "submit", "cluster", "catalog", "layer"];
  let timer = null;          // the current page's polling timer
  let pageToken = 0;         // bumps on each navigation; stale answers are dropped
  let signedIn = false;

  function show(page) {
    for (const p of pages) $("page-" + p).hidden = p !== page;
    for (const a of document.querySelectorAll("#nav a")) {
      a.classList.toggle("active", a.dataset.page === page ||
        (page === "step" && a.dataset.page === "steps") ||
        (page === "layer" && a.dataset.page === "catalog"));
    }
  }

  function stopTimer() {
    if (timer) clearTimeout(timer);
    timer = null;
  }

  // Runs `fn` now and then every `ms` while the page is the same.
  function poll(fn, ms) {
    const mine = pageToken;
    const run = async () => {
      if (mine !== pageToken) return;
      try {
        await fn(mine);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) console.warn(e);
        if (e instanceof ApiError && e.status === 401) return;
      }
      if (mine === pageToken) timer = setTimeout(run, ms);
    };
    run();
  }

  function showSignIn(message) {
    signedIn = false;
    pageToken++;
    stopTimer();
    $("nav").hidden = true;
    $("signout").hidden = true;
    $("who").textContent = "";
    $("who").dataset.environment = "";
    forget();
    $("signin-error").textContent = message || "";
    show("signin");
    $("signin-token").focus();
  }

  // What one session saw is not left for the next one to read.
  function forget() {
    for (const id of ["steps-body", "layers-body", "c-groups", "c-nodes", "c-workers",
      "c-decisions", "c-chart", "layer-stats", "layer-facts", "layer-version"]) {
      $(id).replaceChildren();
    }
    for (const id of ["c-slots", "c-queued", "c-cost", "c-rate", "layer-url", "steps-updated"]) {
      $(id).textContent = "";
    }
    clearStep();
    samples.length = 0;
    serverSamples = [];
    if (map) map.clear();
    $("submit-error").hidden = true;
    $("submit-definition").value = "";
    $("submit-name").value = "";
  }

  function signedInAs(env) {
    signedIn = true;
    $("nav").hidden = false;
    $("signout").hidden = false;
    $("who").textContent = "environment: " + env;
    $("who").dataset.environment = env;
  }

  function route() {
    pageToken++;
    stopTimer();
    const decode = (p) => { try { return decodeURIComponent(p); } catch (e) { return p; } };
    const parts = (location.hash.replace(/^#\/?/, "") || "steps").split("/").map(decode);
    if (!signedIn && parts[0] !== "signin") {
      // The steps page is the first one most people open: it reads the
      // session and the steps at once rather than one after the other.
      checkSession();
    }
    switch (parts[0]) {
      case "steps": return parts[1] ? stepPage(parts[1]) : stepsPage();
      case "submit": return submitPage();
      case "cluster": return clusterPage();
      case "catalog": return parts[1] ? layerPage(parts[1]) : catalogPage();
      default: location.hash = "#/steps";
    }
  }

  async function checkSession() {
    try {
      const { data } = await api("GET", "/v1/session");
      signedInAs(data.environment);
    } catch (e) {
      showSignIn("");
    }
  }

  // --- sign in / out --------------------------------------------------------

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("signin-token").value.trim();
    try {
      const { data } = await api("POST", "/v1/session", undefined, { Authorization: "Bearer " + token });
      $("signin-token").value = "";
      signedInAs(data.environment);
      if (!location.hash || location.hash === "#/signin") location.hash = "#/steps";
      else route();
    } catch (e) {
      $("signin-error").textContent = e.status === 401 ? "That token is not known here." : e.message;
    }
  });

  $("signout").addEventListener("click", async () => {
    try { await api("DELETE", "/v1/session"); } catch (e) { /* the cookie is gone either way */ }
    showSignIn("Signed out.");
  });

  // --- steps ----------------------------------------------------------------

  let stepsPainted = false;

  function stepsPage() {
    show("steps");
    poll(async (mine) => {
      const state = $("steps-filter").value;
      const q = "/v1/steps?limit=200" + (state ? "&state=" + encodeURIComponent(state) : "");
      const { data } = await api("GET", q);
      if (mine !== pageToken) return;
      const rows = data.steps.map((s) => {
        const tr = el("tr", { class: "link", data: { id: s.id, state: s.state } },
          el("td", {}, el("a", { href: "#/steps/" + encodeURIComponent(s.id), text: s.id })),
          el("td", { text: s.name }),
          el("td", { text: s.layer + (s.version ? "@" + s.version : "") }),
          el("td", { class: "state s-" + s.state, text: s.state }),
          el("td", {}, progressBar(s.progress)),
          el("td", { text: fmtDuration(s.progress.eta_seconds) }),
          el("td", { text: s.cost ? fmtMoney(s.cost.amount) : "" }),
          el("td", { text: fmtTime(s.created_at) }),
          el("td", { text: fmtTime(s.started_at) }),
          el("td", { text: fmtTime(s.ended_at) }));
        tr.addEventListener("click", (ev) => {
          if (ev.target.tagName !== "A") location.hash = "#/steps/" + encodeURIComponent(s.id);
        });
        return tr;
      });
      replaceRows($("steps-body"), rows);
      searchSteps();
      $("steps-empty").hidden = rows.length > 0;
      $("steps-updated").textContent = "updated " + fmtClock(new Date());
      if (!stepsPainted) {
        stepsPainted = true;
        performance.mark("kiln-steps-filled");
        // The steps page's first meaningful paint: the frame that shows
        // the filled table (bench/console_bench.py reads this mark).
        requestAnimationFrame(() => performance.mark("kiln-steps-table"));
      }
    }, 1000);
  }
  $("steps-filter").addEventListener("change", () => { if (!$("page-steps").hidden) route(); });

  // The "Find" box: shows the rows whose id, name or layer contain its text.
  function searchSteps() {
    const q = $("steps-search").value.trim().toLowerCase();
    for (const tr of $("steps-body").children) {
      const text = [0, 1, 2].map((i) => tr.children[i].textContent).join(" ").toLowerCase();
      tr.hidden = q !== "" && !text.includes(q);
    }
  }
  $("steps-search").addEventListener("input", searchSteps);

  function clearStep() {
    for (const id of ["step-log", "step-message", "step-state", "step-progress"]) $(id).textContent = "";
    $("step-state").dataset.state = "";
    $("step-facts").replaceChildren();
  }

  function stepPage(id) {
    show("step");
    $("step-id").textContent = id;
    clearStep();
    let logOffset = 0;
    let ended = false;
    const cancel = $("step-cancel");
    cancel.disabled = true;
    cancel.onclick = async () => {
      cancel.disabled = true;
      try {
        const { data } = await api("POST", "/v1/steps/" + encodeURIComponent(id) + "/cancel");
        $("step-message").textContent = "";
        $("step-state").textContent = data.state;
      } catch (e) {
        $("step-message").textContent = e.message;
        cancel.disabled = false;
      }
    };
    poll(async (mine) => {
      let s;
      try {
        s = (await api("GET", "/v1/steps/" + encodeURIComponent(id))).data;
      } catch (e) {
        if (e.status === 404 && mine === pageToken) {
          clearStep();
          $("step-message").textContent = e.message;
          return;
        }
        throw e;
      }
      if (mine !== pageToken) return;
      $("step-state").className = "state s-" + s.state;
      $("step-state").textContent = s.state;
      $("step-state").dataset.state = s.state;
      $("step-progress").replaceChildren(progressBar(s.progress));
      const terminal = ["COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"].includes(s.state);
      cancel.disabled = terminal || s.state === "CANCEL_PENDING";
      const facts = [
        ["Name", s.name], ["Environment", s.environment], ["Layer", s.layer],
        ["Version", s.version === null ? "" : s.version], ["Created", fmtTime(s.created_at)],
        ["Started", fmtTime(s.started_at)], ["Ended", fmtTime(s.ended_at)],
        ["ETA", fmtDuration(s.progress.eta_seconds)],
        ["Tasks", s.progress.tasks_done + " / " + s.progress.tasks_total],
        ["Read / written", (s.progress.bytes_read / 1e6).toFixed(1) + " MB / " +
          (s.progress.bytes_written / 1e6).toFixed(1) + " MB"],
        ["Cost", s.cost ? fmtMoney(s.cost.amount) + " (" + s.cost.slot_seconds.toFixed(1) + " slot-seconds)" : ""],
        ["On failure", s.action_on_failure],
      ];
      if (s.failure) facts.push(["Failure", s.failure.reason + ": " + s.failure.message]);
      $("step-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
      // New log text since the last read.
      if (!ended) {
        for (let i = 0; i < 16; i++) {
          const r = await fetch("/v1/steps/" + encodeURIComponent(id) + "/logs?offset=" + logOffset,
            { credentials: "same-origin", cache: "no-store" });
          if (!r.ok || mine !== pageToken) break;
          const text = await r.text();
          const next = Number(r.headers.get("X-Kiln-Log-Offset"));
          const log = $("step-log");
          const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          if (text) log.append(text);
          if (atEnd) log.scrollTop = log.scrollHeight;
          if (!isFinite(next) || next <= logOffset) break;
          logOffset = next;
        }
        ended = terminal;
      }
    }, 1000);
  }

  // --- submit ---------------------------------------------------------------

  const exampleDefinition = {
    layer: "my-layer",
    sources: [{ uri: "/path/to/scene.tif" }],
    max_zoom: 12,
  };

  function submitPage() {
    show("submit");
    const ta = $("submit-definition");
    if (!ta.value) ta.value = JSON.stringify(exampleDefinition, null, 2);
  }

  // "sources[0].uri: required" -> "sources[0].uri"
  function fieldOf(message) {
    const m = /^([A-Za-z_][\w]*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*):/.exec(message || "");
    return m ? m[1] : "";
  }

  // Selects the named field's key in the editor (the last key of its path,
  // after the path's earlier keys), so the error sits next to its line.
  function selectField(ta, field) {
    if (!field) return;
    const keys = field.replace(/\[\d+\]/g, "").split(".");
    let from = 0;
    let at = -1;
    for (const k of keys) {
      const i = ta.value.indexOf('"' + k + '"', from);
      if (i < 0) break;
      at = i;
      from = i + 1;
    }
    if (at >= 0) {
      ta.focus();
      ta.setSelectionRange(at, at + keys[keys.length - 1].length + 2);
    }
  }

  function showSubmitError(field, message) {
    $("submit-error").hidden = false;
    $("submit-error").dataset.field = field;
    $("submit-error-field").textContent = field || "(the request)";
    $("submit-error-message").textContent = message;
    $("submit-definition").classList.add("bad");
  }

  $("submit-button").addEventListener("click", async () => {
    const ta = $("submit-definition");
    $("submit-error").hidden = true;
    ta.classList.remove("bad");
    let def;
    try {
      def = JSON.parse(ta.value);
    } catch (e) {
      return showSubmitError("", "not JSON: " + e.message);
    }
    const body = { action: { ingest: def } };
    const name = $("submit-name").value.trim();
    if (name) body.name = name;
    try {
      const { data } = await api("POST", "/v1/steps", body);
      location.hash = "#/steps/" + encodeURIComponent(data.id);
    } catch (e) {
      if (e.status === 401) return;
      // Messages name the field first ("sources[0].uri: required"); a
      // definition field may come prefixed with "action.ingest.".
      let field = fieldOf(e.message);
      showSubmitError(field, e.message);
      selectField(ta, field.replace(/^action\.ingest\./, ""));
    }
  });

  // --- cluster --------------------------------------------------------------

  // Slots vs demand as [t_ms, total, busy, demand]: the server's history
  // (GET /v1/cluster/history: a sample every 10 s, the last six hours), then
  // what this page has read from /v1/cluster since (every 2 s).
  let serverSamples = [];
  const samples = [];
  const maxSamples = 1800;  // an hour at one sample per 2 s

  function drawChart() {
    const chart = $("c-chart");
    chart.replaceChildren();
    const last = serverSamples.length ? serverSamples[serverSamples.length - 1][0] : 0;
    const all = serverSamples.concat(samples.filter((s) => s[0] > last));
    if (all.length < 1) return;
    const W = 800, H = 200, pad = 4;
    const t0 = all[0][0], t1 = Math.max(all[all.length - 1][0], t0 + 1);
    let ymax = 1;
    for (const s of all) ymax = Math.max(ymax, s[1], s[2], s[3]);
    const x = (t) => pad + (W - 2 * pad) * (t - t0) / (t1 - t0);
    const y = (v) => H - pad - (H - 2 * pad) * v / (ymax * 1.1);
    for (const [i, cls] of [[1, "total"], [2, "busy"], [3, "demand"]]) {
      const pts = all.map((s) => x(s[0]).toFixed(1) + "," + y(s[i]).toFixed(1)).join(" ");
      chart.append(svg("polyline", { points: pts, class: cls }));
    }
    const label = svg("text", { x: W - 6, y: 14, "text-anchor": "end", "font-size": 12, fill: "#6b7280" });
    label.textContent = "max " + ymax + " · " + fmtDuration((t1 - t0) / 1000);
    chart.append(label);
  }

  function clusterPage() {
    show("cluster");
    drawChart();
    let polls = 0;
    poll(async (mine) => {
      if (polls++ % 15 === 0) {
        const { data: h } = await api("GET", "/v1/cluster/history");
        if (mine !== pageToken) return;
        serverSamples = h.samples.map(([t, total, busy, queued]) => [t, total, busy, busy + queued]);
      }
      const { data: c } = await api("GET", "/v1/cluster");
      if (mine !== pageToken) return;
      const demand = c.slots.busy + c.environment.queued_tasks;
      samples.push([Date.now(), c.slots.total, c.slots.busy, demand]);
      if (samples.length > maxSamples) samples.shift();
      drawChart();
      $("c-slots").textContent = c.slots.busy + " / " + c.slots.total;
      $("c-queued").textContent = String(c.environment.queued_tasks);
      const e = c.elastic || {};
      const cost = e.cost || {};
      $("c-cost").textContent = cost.total === undefined ? "n/a" : fmtMoney(cost.total);
      $("c-rate").textContent = cost.rate_per_hour === undefined ? "n/a" : fmtMoney(cost.rate_per_hour) + " / h";
      replaceRows($("c-groups"), (e.groups || []).map((g) => el("tr", {},
        el("td", { text: g.name }), el("td", { text: g.market }), el("td", { text: g.min_nodes }),
        el("td", { text: g.desired_nodes }), el("td", { text: g.max_nodes }),
        el("td", { text: g.slots_per_node }), el("td", { text: fmtMoney(g.price_per_hour) }),
        el("td", { text: Object.entries(g.nodes || {}).map(([k, v]) => k + " " + v).join(", ") || "none" }))));
      replaceRows($("c-nodes"), (e.nodes || []).map((n) => el("tr", { data: { state: n.state } },
        el("td", { text: n.id }), el("td", { text: n.group }), el("td", { text: n.market }),
        el("td", { text: n.state }), el("td", { text: n.slots }), el("td", { text: n.busy }),
        el("td", { text: fmtDuration(n.up_seconds) }),
        el("td", { text: n.drain_reason ? "draining: " + n.drain_reason + ", gone in " + fmtDuration(n.gone_in_seconds)
          : n.stands_in_for ? "stands in for " + n.stands_in_for : "" }))));
      replaceRows($("c-workers"), c.workers.map((w) => el("tr", {},
        el("td", { text: w.id }), el("td", { text: w.host }), el("td", { text: w.slots }),
        el("td", { text: w.busy }), el("td", { text: fmtTime(w.last_seen_at) }))));
      replaceRows($("c-decisions"), (e.decisions || []).slice().reverse().map((d) => el("tr", {},
        el("td", { text: fmtTime(new Date(d.t_ms).toISOString()) }), el("td", { text: d.group }),
        el("td", { text: d.from + " → " + d.to }), el("td", { text: d.policy }),
        el("td", { text: d.reason }))));
    }, 2000);
  }

  // --- catalog --------------------------------------------------------------

  function catalogPage() {
    show("catalog");
    poll(async (mine) => {
      const { data } = await api("GET", "/v1/layers");
      if (mine !== pageToken) return;
      replaceRows($("layers-body"), data.layers.map((l) => {
        const b = l.extent && l.extent.wgs84;
        const tr = el("tr", { class: "link", data: { layer: l.name } },
          el("td", {}, el("a", { href: "#/catalog/" + encodeURIComponent(l.name), text: l.name })),
          el("td", { text: l.current_version || "none" }),
          el("td", { text: (l.versions || []).join(", ") }),
          el("td", { text: l.format || "" }),
          el("td", { text: l.zoom ? l.zoom.min + "–" + l.zoom.max : "" }),
          el("td", { text: b ? b.map((v) => v.toFixed(3)).join(", ") : "" }),
          el("td", { text: fmtTime(l.created_at) }));
        tr.addEventListener("click", (ev) => {
          if (ev.target.tagName !== "A") location.hash = "#/catalog/" + encodeURIComponent(l.name);
        });
        return tr;
      }));
      $("layers-empty").hidden = data.layers.length > 0;
    }, 5000);
  }

  let map = null;

  async function layerPage(name) {
    show("layer");
    const mine = pageToken;
    $("layer-name").textContent = name;
    $("layer-stats").replaceChildren();
    $("layer-facts").replaceChildren();
    if (!map) map = new SlippyMap($("map"));
    map.clear();
    let info;
    try {
      info = (await api("GET", "/v1/layers/" + encodeURIComponent(name))).data;
    } catch (e) {
      if (mine === pageToken) $("layer-facts").replaceChildren(el("dt", { text: "Error" }), el("dd", { class: "error", text: e.message }));
      return;
    }
    if (mine !== pageToken) return;
    const sel = $("layer-version");
    sel.replaceChildren(...info.versions.slice().reverse().map((v) =>
      el("option", { value: v, text: "v" + v + (v === info.current_version ? " (current)" : "") })));
    sel.value = String(info.version);
    sel.onchange = () => showVersion(name, Number(sel.value), mine);
    for (const id of ["layer-bidx", "layer-rescale", "layer-colormap", "layer-hillshade"]) {
      $(id).onchange = () => map.setUrl(tileUrl(name, Number(sel.value), map.format));
    }
    $("layer-fit").onclick = () => map.fit();
    await showVersion(name, info.version, mine, info);
  }

  // The tile URL template of `version` for a layer storing `format` tiles.
  // Picture layers (png, webp) are served as they are; an analytic layer
  // (tif) is asked for as .png, which the server renders with the
  // controls' parameters (docs/rendering.md), or its defaults.
  function tileUrl(name, version, format) {
    const analytic = format === "tif";
    const q = [];
    if (analytic) {
      const bidx = $("layer-bidx").value.trim();
      const rescale = $("layer-rescale").value.trim();
      const cmap = $("layer-colormap").value;
      if (bidx) q.push("bidx=" + encodeURIComponent(bidx));
      if (rescale) q.push("rescale=" + encodeURIComponent(rescale));
      if (cmap) q.push("colormap=" + encodeURIComponent(cmap));
      if ($("layer-hillshade").checked) q.push("hillshade=true");
    }
    return "/v1/layers/" + encodeURIComponent(name) + "@" + version + "/tiles/{z}/{x}/{y}." +
      (analytic ? "png" : format) + (q.length ? "?" + q.join("&") : "");
  }

  async function showVersion(name, version, mine, known) {
    const info = known || (await api("GET", "/v1/layers/" + encodeURIComponent(name) + "@" + version)).data;
    if (mine !== pageToken) return;
    const m = info.metadata || {};
    const facts = [
      ["Version", info.version + (info.version === info.current_version ? " (current)" : "")],
      ["Format", m.format], ["Layout", m.layout],
      ["Bands", m.bands !== undefined ? (Array.isArray(m.bands) ? m.bands.length : m.bands) : ""],
      ["Cell type", m.cell_type || m.data_type || ""],
      ["Zooms", m.zoom ? m.zoom.min + "–" + m.zoom.max : ""],
      ["Created", fmtTime(m.created_at)],
    ];
    $("layer-facts").replaceChildren(...facts.filter(([, v]) => v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
    drawStats(m.statistics || []);
    const format = m.format || "png";
    const analytic = format === "tif";
    for (const id of ["layer-bidx", "layer-rescale", "layer-colormap", "layer-hillshade"]) {
      $(id).disabled = !analytic;
    }
    $("layer-render-note").hidden = analytic;
    if (m.layout && m.layout !== "zoomed" && !info.tilejson) {
      map.clear();
      map.message("This layer uses its own grid (" + m.layout + "): it has no Web Mercator map.");
      return;
    }
    const tj = (await api("GET", "/v1/layers/" + encodeURIComponent(name) + "@" + version + "/tilejson.json")).data;
    if (mine !== pageToken) return;
    map.setLayer(tj, format, tileUrl(name, version, format));
  }

  function drawStats(stats) {
    $("layer-stats").replaceChildren(...stats.map((s) => {
      const h = s.histogram || { buckets: [] };
      const chart = svg("svg", { viewBox: "0 0 256 80", preserveAspectRatio: "none" });
      const n = h.buckets.length;
      const top = Math.max(1, ...h.buckets);
      h.buckets.forEach((c, i) => {
        const bh = 78 * c / top;
        chart.append(svg("rect", { x: (256 * i / n).toFixed(2), y: (80 - bh).toFixed(2),
          width: Math.max(256 / n - 0.3, 0.5).toFixed(2), height: bh.toFixed(2) }));
      });
      const f = (v) => (v === undefined || v === null ? "" : Number(v).toPrecision(6).replace(/\.?0+$/, ""));
      return el("div", { class: "band", data: { band: s.band } },
        el("strong", { text: "Band " + s.band }),
        el("div", { class: "muted", text: "min " + f(s.min) + " · max " + f(s.max) + " · mean " +
          f(s.mean) + " · stddev " + f(s.stddev) + " · " + s.count + " pixels" }),
        chart,
        el("div", { class: "muted", text: "histogram " + f(h.min) + " … " + f(h.max) + ", " + n + " buckets" }));
    }));
  }

  // --- a small slippy map ---------------------------------------------------
  //
  // XYZ tiles (Web Mercator, TileJSON's "xyz" scheme) as <img> elements
  // positioned in a div: drag to pan, wheel or +/- to zoom by one level
  // about the pointer, "Zoom to layer" fits the TileJSON bounds. Only tiles
  // inside the layer's bounds are requested (outside them the server
  // answers 404); a tile with no data (204) is left out.

  class SlippyMap {
    constructor(div) {
      this.div = div;
      this.tiles = new Map();  // key "z/x/y" -> img
      this.tj = null;
      this.z = 0;
      this.cx = 0;  // the view's centre, in pixels of zoom z's world
      this.cy = 0;
      let drag = null;
      div.addEventListener("pointerdown", (e) => {
        if (e.target.tagName === "BUTTON") return;
        drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy };
        div.setPointerCapture(e.pointerId);
        div.classList.add("dragging");
      });
      div.addEventListener("pointermove", (e) => {
        if (!drag) return;
        this.cx = drag.cx - (e.clientX - drag.x);
        this.cy = drag.cy - (e.clientY - drag.y);
        this.render();
      });
      const end = () => { drag = null; div.classList.remove("dragging"); };
      div.addEventListener("pointerup", end);
      div.addEventListener("pointercancel", end);
      div.addEventListener("wheel", (e) => {
        e.preventDefault();
        const r = div.getBoundingClientRect();
        this.zoomBy(e.deltaY < 0 ? 1 : -1, e.clientX - r.left, e.clientY - r.top);
      }, { passive: false });
      $("map-in").addEventListener("click", () => this.zoomBy(1));
      $("map-out").addEventListener("click", () => this.zoomBy(-1));
    }

    get size() { return this.tj ? this.tj.tile_size || 256 : 256; }

    // A tile that did not load: 204 (no data there) is normal; anything
    // else (a rendering parameter refused, ...) is said under the map, in
    // the server's words, once per tile URL template.
    async explain(src) {
      const url = this.url;
      if (this.explained === url) return;
      this.explained = url;
      const r = await fetch(src, { credentials: "same-origin" });
      if (r.status === 204 || r.ok || this.url !== url) return;
      let message = "HTTP " + r.status;
      try { message = (await r.json()).error.message; } catch (e) { /* not JSON */ }
      $("map-error").textContent = "Tiles: " + message;
    }

    clear() {
      for (const img of this.tiles.values()) img.remove();
      this.tiles.clear();
      $("map-error").textContent = "";
      this.explained = null;
      this.tj = null;
      const m = this.div.querySelector(".map-message");
      if (m) m.remove();
    }

    message(text) {
      this.div.append(el("p", { class: "map-message muted", text }));
    }

    setLayer(tj, format, url) {
      const keepView = this.tj && this.tj.name === tj.name;
      const old = this.tj;
      this.clear();
      this.tj = tj;
      this.format = format;
      this.url = url;
      $("layer-url").textContent = url;
      if (keepView && old) this.render();
      else this.fit();
    }

    setUrl(url) {
      this.url = url;
      this.explained = null;
      $("map-error").textContent = "";
      $("layer-url").textContent = url;
      for (const img of this.tiles.values()) img.remove();
      this.tiles.clear();
      this.render();
    }

    // lon/lat -> pixels of zoom z's world.
    project(lon, lat, z) {
      const n = this.size * Math.pow(2, z);
      const s = Math.sin(Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI / 180);
      return [n * (lon + 180) / 360, n * (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI))];
    }

    fit() {
      if (!this.tj) return;
      const [w, s, e, n] = this.tj.bounds;  // TileJSON: west, south, east, north
      const W = this.div.clientWidth, H = this.div.clientHeight;
      let z = this.tj.minzoom;
      for (let k = this.tj.maxzoom; k >= this.tj.minzoom; k--) {
        const [x0, y0] = this.project(w, n, k);
        const [x1, y1] = this.project(e, s, k);
        if (x1 - x0 <= W * 0.9 && y1 - y0 <= H * 0.9) { z = k; break; }
      }
      const [x0, y0] = this.project(w, n, z);
      const [x1, y1] = this.project(e, s, z);
      this.z = z;
      this.cx = (x0 + x1) / 2;
      this.cy = (y0 + y1) / 2;
      this.render();
    }

    zoomBy(d, px, py) {
      if (!this.tj) return;
      const z = Math.max(this.tj.minzoom, Math.min(this.tj.maxzoom, this.z + d));
      if (z === this.z) return;
      const W = this.div.clientWidth, H = this.div.clientHeight;
      if (px === undefined) { px = W / 2; py = H / 2; }
      // Keep the point under the pointer where it is.
      const wx = this.cx - W / 2 + px, wy = this.cy - H / 2 + py;
      const k = Math.pow(2, z - this.z);
      this.cx = wx * k - px + W / 2;
      this.cy = wy * k - py + H / 2;
      this.z = z;
      for (const img of this.tiles.values()) img.remove();
      this.tiles.clear();
      this.render();
    }

    render() {
      if (!this.tj) return;
      const T = this.size, z = this.z;
      const W = this.div.clientWidth, H = this.div.clientHeight;
      const left = this.cx - W / 2, top = this.cy - H / 2;
      const [w, s, e, n] = this.tj.bounds;
      const [bx0, by0] = this.project(w, n, z);
      const [bx1, by1] = this.project(e, s, z);
      const last = Math.pow(2, z) - 1;
      const tx0 = Math.max(0, Math.floor(Math.max(left, bx0) / T));
      const ty0 = Math.max(0, Math.floor(Math.max(top, by0) / T));
      const tx1 = Math.min(last, Math.floor((Math.min(left + W, bx1) - 1e-6) / T));
      const ty1 = Math.min(last, Math.floor((Math.min(top + H, by1) - 1e-6) / T));
      const wanted = new Set();
      for (let ty = ty0; ty <= ty1; ty++) {
        for (let tx = tx0; tx <= tx1; tx++) {
          const key = z + "/" + tx + "/" + ty;
          wanted.add(key);
          let img = this.tiles.get(key);
          if (!img) {
            img = new Image(T, T);
            img.alt = "";
            img.dataset.tile = key;
            img.decoding = "async";
            img.addEventListener("error", () => { img.hidden = true; this.explain(img.src); });
            img.src = this.url.replace("{z}", z).replace("{x}", tx).replace("{y}", ty);
            this.tiles.set(key, img);
            this.div.append(img);
          }
          img.style.left = Math.round(tx * T - left) + "px";
          img.style.top = Math.round(ty * T - top) + "px";
        }
      }
      for (const [key, img] of this.tiles) {
        if (!wanted.has(key)) { img.remove(); this.tiles.delete(key); }
      }
      this.div.dataset.zoom = z;
    }
  }

  // --- start ----------------------------------------------------------------

  window.addEventListener("hashchange", route);
  route();
})();
