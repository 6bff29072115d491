// The Ferry dashboard's page. It renders the snapshots the server pushes
// (Server-Sent Events on api/events, or api/snapshot polled when the
// stream fails). Every string from the system is set as text (textContent,
// attribute values through setAttribute): nothing is parsed as HTML.
"use strict";

(function () {
  const token = document.querySelector('meta[name="ferry-dashboard-token"]').getAttribute("content");
  const SVG = "http://www.w3.org/2000/svg";
  let interval = 2000;
  let lastSnapshot = null;
  let selectedRun = null;

  // el makes an element; children are nodes or strings (as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function table(headers, rows, empty) {
    if (rows.length === 0) return el("p", { class: "empty" }, empty);
    const head = el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : null }, h.text || h)));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
  }

  const num = (v) => el("td", { class: "num" }, v);

  function duration(seconds) {
    if (!isFinite(seconds) || seconds < 0) return "";
    if (seconds < 60) return Math.floor(seconds) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + Math.floor(seconds % 60) + "s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
    return Math.floor(seconds / 86400) + "d " + Math.floor((seconds % 86400) / 3600) + "h";
  }

  function since(iso, now) {
    const t = Date.parse(iso);
    return isNaN(t) || t <= 0 ? "" : duration((now - t) / 1000);
  }

  function time(iso) {
    const t = new Date(iso);
    return isNaN(t) ? "" : t.toLocaleTimeString();
  }

  const rate = (r) => (r >= 10 ? r.toFixed(0) : r.toFixed(2)) + "/s";
  const pct = (errors, requests) => (requests ? ((100 * errors) / requests).toFixed(1) + "%" : "–");
  const msText = (v) => (v ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " ms" : "–");

  function replace(id, node) {
    const box = document.getElementById(id);
    box.replaceChildren(node);
  }

  function showError(section, errors) {
    const p = document.getElementById(section + "-error");
    if (!p) return;
    const msg = errors && errors[section.replace("-", "_")];
    p.hidden = !msg;
    p.textContent = msg ? "Could not read: " + msg : "";
  }

  // ---- actions ---------------------------------------------------------

  async function post(path) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Ferry-Dashboard-Token": token },
      body: "{}",
      credentials: "same-origin",
    });
    let body = {};
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) throw new Error(body.detail || body.title || "HTTP " + resp.status);
    return body;
  }

  function notice(text, bad) {
    const p = document.getElementById("action-result");
    p.hidden = false;
    p.className = bad ? "error" : "notice";
    p.textContent = text;
  }

  function action(label, path, cls, done) {
    return el("button", {
      type: "button", class: cls, "data-action": label.toLowerCase(),
      onclick: async (ev) => {
        const b = ev.currentTarget;
        b.disabled = true;
        try {
          const body = await post(path);
          if (done) done(body);
        } catch (e) {
          notice(label + " failed: " + e.message, true);
        } finally {
          b.disabled = false;
        }
      },
    }, label);
  }

  document.getElementById("replay-all").addEventListener("click", async (ev) => {
    const b = ev.currentTarget;
    if (!window.confirm("Replay every dead letter?")) return;
    b.disabled = true;
    try {
      const body = await post("api/dead-letters/replay-all");
      notice(body.replayed + " dead letters replayed");
    } catch (e) {
      notice("Replay all failed: " + e.message, true);
    } finally {
      b.disabled = false;
    }
  });

  // ---- sections --------------------------------------------------------

  function renderServices(s, now) {
    document.getElementById("services-count").textContent = s.services.length + " running";
    showError("services", s.errors);
    const rows = [];
    for (const svc of s.services) {
      const oldest = Math.min(...svc.instances.map((i) => Date.parse(i.started) || now));
      rows.push(el("tr", { class: "service", "data-service": svc.name },
        el("td", {}, el("span", { class: "dot", title: "answering discovery" }), el("strong", {}, svc.name),
          svc.description ? el("div", { class: "notice" }, svc.description) : null),
        num(svc.instances.length),
        el("td", {}, svc.versions.join(", ")),
        el("td", {}, duration((now - oldest) / 1000)),
        el("td", {}, svc.instances.map((i) =>
          el("div", { class: "mono", title: i.id }, "…" + i.id.slice(-8) + " · " + i.version + " · up " + since(i.started, now) + (i.http ? " · " + i.http : ""))))));
    }
    replace("services", table(["service", { text: "instances", num: true }, "version", "uptime", "instances (id · version · uptime · HTTP)"],
      rows, "No service answers discovery."));
  }

  function traffic(t) {
    return [num(rate(t.rate)), num(pct(t.errors, t.requests)), num(msText(t.p50_ms)), num(msText(t.p99_ms))];
  }

  function renderEndpoints(s) {
    const rows = [];
    for (const svc of s.services) {
      for (const ep of svc.endpoints) {
        rows.push(el("tr", {},
          el("td", {}, svc.name), el("td", {}, ep.name),
          el("td", { class: "mono" }, ep.method ? ep.method + " " + ep.path : ep.subject),
          ep.recent ? traffic(ep.http) : el("td", { colspan: 4, class: "empty" }, "no figures"),
          ep.recent ? traffic(ep.nats) : el("td", { colspan: 4, class: "empty" }, "")));
      }
    }
    const h = (t) => ({ text: t, num: true });
    replace("endpoints", table(["service", "endpoint", "route",
      h("HTTP rate"), h("errors"), h("p50"), h("p99"), h("NATS rate"), h("errors"), h("p50"), h("p99")], rows, "No endpoints."));
  }

  function renderTopics(s) {
    document.getElementById("topics-count").textContent = s.topics.length + "";
    showError("topics", s.errors);
    const rows = [];
    for (const t of s.topics) {
      const cs = t.consumers.length ? t.consumers : [null];
      cs.forEach((c, i) => {
        rows.push(el("tr", { "data-topic": t.name },
          el("td", {}, i === 0 ? el("strong", {}, t.name) : ""),
          el("td", { class: "mono" }, i === 0 ? t.subject : ""),
          num(i === 0 ? t.messages : ""),
          el("td", {}, c ? c.service + " / " + c.consumer + (c.paused ? " (paused)" : "") : el("span", { class: "empty" }, "no subscription")),
          num(c ? c.pending : ""), num(c ? c.ack_pending : ""), num(c ? c.redelivered : "")));
      });
    }
    replace("topics", table(["topic", "subject", { text: "stored", num: true }, "subscription",
      { text: "pending (lag)", num: true }, { text: "ack pending", num: true }, { text: "redelivered", num: true }], rows, "No topics on this broker."));
  }

  function renderDeadLetters(s) {
    const d = s.dead_letters;
    document.getElementById("dead-letters-count").textContent = d.total > d.items.length
      ? "newest " + d.items.length + " of " + d.total : d.total + "";
    document.getElementById("replay-all").disabled = d.total === 0;
    showError("dead-letters", s.errors);
    const rows = d.items.map((m) => el("tr", { class: "dead-letter", "data-seq": m.seq },
      num(m.seq), el("td", {}, time(m.time)),
      el("td", {}, m.job ? "job " + m.topic : m.topic),
      el("td", {}, m.job ? "" : m.service + " / " + m.consumer),
      num(m.deliveries),
      el("td", { class: "err" }, m.error),
      el("td", {}, el("pre", { class: "payload", title: m.size + " bytes" }, m.preview)),
      el("td", {},
        action("Replay", "api/dead-letters/" + m.seq + "/replay", "replay", () => notice("Dead letter " + m.seq + " replayed")),
        " ",
        action("Delete", "api/dead-letters/" + m.seq + "/delete", "delete danger", () => notice("Dead letter " + m.seq + " deleted")))));
    replace("dead-letters", table([{ text: "#", num: true }, "time", "topic", "service / consumer",
      { text: "deliveries", num: true }, "error", "payload", ""], rows, "No dead letters."));
  }

  function renderJobs(s, now) {
    showError("jobs", s.errors);
    const kinds = s.jobs.kinds.map((k) => el("tr", {},
      el("td", {}, k.job + (k.paused ? " (paused)" : "")), num(k.queued), num(k.running), num(k.scheduled)));
    replace("job-kinds", table(["job kind", { text: "queued", num: true }, { text: "running", num: true }, { text: "scheduled", num: true }],
      kinds, "No job kinds are running."));
    const rows = s.jobs.latest.map((j) => {
      const open = j.state === "queued" || j.state === "running" || j.state === "scheduled";
      const tr = el("tr", { class: (j.workflow ? "run" : "job") + (selectedRun === j.id ? " selected" : ""), "data-job": j.id },
        el("td", { class: "mono", title: j.id }, j.id.slice(0, 12)),
        el("td", {}, (j.workflow ? "workflow " : "") + j.job),
        el("td", {}, el("span", { class: "state " + j.state }, j.state + (j.cancel_requested ? " (cancelling)" : "")),
          j.waiting ? el("div", { class: "notice" }, "waits: " + j.waiting) : null),
        num(j.attempts + (j.max_attempts ? "/" + j.max_attempts : "")),
        el("td", {}, j.progress ? [el("progress", { max: 100, value: j.progress.percent }), " " + (j.progress.message || "")]
          : (j.workflow && j.steps ? j.steps + " steps" : "")),
        el("td", {}, since(j.updated_at, now) + " ago"),
        el("td", { class: "err" }, j.last_error || ""),
        el("td", {},
          open ? action("Cancel", "api/jobs/" + encodeURIComponent(j.id) + "/cancel", "cancel danger", () => notice("Cancel of " + j.id + " requested")) : null,
          j.state === "failed" ? action("Retry", "api/jobs/" + encodeURIComponent(j.id) + "/retry", "retry", () => notice(j.id + " retried")) : null));
      if (j.workflow) {
        tr.addEventListener("click", (ev) => {
          if (ev.target.closest("button")) return;
          showSteps(j.id, j.job);
        });
      }
      return tr;
    });
    replace("jobs", table(["id", "kind", "state", { text: "attempts", num: true }, "progress", "updated", "last error", ""],
      rows, "No jobs yet."));
  }

  async function showSteps(id, job) {
    selectedRun = id;
    const box = document.getElementById("steps");
    box.hidden = false;
    box.replaceChildren(el("p", { class: "notice" }, "Reading the steps of " + id + "…"));
    try {
      const resp = await fetch("api/runs/" + encodeURIComponent(id) + "/steps", { credentials: "same-origin" });
      const body = await resp.json();
      if (!resp.ok) throw new Error(body.detail || body.title || "HTTP " + resp.status);
      const rows = body.steps.map((st, i) => el("tr", {},
        num(i + 1), el("td", {}, (st.compensation ? "↩ " : "") + st.name), num(st.attempts || ""),
        el("td", {}, time(st.at)), el("td", { class: "err" }, st.error || ""),
        el("td", {}, st.result !== undefined ? el("pre", { class: "payload" }, JSON.stringify(st.result)) : "")));
      box.replaceChildren(el("h3", {}, "Steps of " + job + " run " + id + " ",
        el("button", { type: "button", onclick: () => { selectedRun = null; box.hidden = true; } }, "close")),
        table([{ text: "#", num: true }, "step", { text: "attempts", num: true }, "at", "error", "result"], rows,
          "No steps recorded (a finished run's steps are removed with its end)."));
    } catch (e) {
      box.replaceChildren(el("p", { class: "error" }, "Steps of " + id + ": " + e.message));
    }
  }

  // ---- the picture -----------------------------------------------------

  function renderPicture(g) {
    const boxW = 150, boxH = 46, gap = 36, topicW = 150, topicH = 28;
    const services = g.services, topics = g.topics;
    // Topics sorted by the position of their first publisher, to spare crossings.
    const sx = new Map(services.map((s, i) => [s, i]));
    const firstPub = (t) => {
      const e = g.edges.find((e) => e.kind === "publish" && e.to === t);
      return e && sx.has(e.from) ? sx.get(e.from) : services.length;
    };
    const tops = topics.slice().sort((a, b) => firstPub(a) - firstPub(b) || a.localeCompare(b));
    const width = Math.max(services.length * (boxW + gap), tops.length * (topicW + gap), 400) + gap;
    const calls = g.edges.filter((e) => e.kind === "call");
    const callSpace = calls.length ? 70 : 20;
    const svcY = callSpace, topicY = svcY + boxH + 110, height = topicY + topicH + 20;
    const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "services, topics and their edges" });
    const defs = svgEl("defs");
    for (const kind of ["publish", "consume", "call"]) {
      const m = svgEl("marker", { id: "arrow-" + kind, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
      m.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", class: "edge-head " + kind, fill: { publish: "#2f6feb", consume: "#8250df", call: "#d9480f" }[kind] }));
      defs.append(m);
    }
    svg.append(defs);
    const rowX = (n, w, i) => { const total = n * w + (n - 1) * gap; return (width - total) / 2 + i * (w + gap); };
    const svcPos = new Map(services.map((s, i) => [s, { x: rowX(services.length, boxW, i), y: svcY }]));
    const topicPos = new Map(tops.map((t, i) => [t, { x: rowX(tops.length, topicW, i), y: topicY }]));
    const edges = svgEl("g");
    for (const e of g.edges) {
      let d, label;
      if (e.kind === "publish" && svcPos.has(e.from) && topicPos.has(e.to)) {
        const a = svcPos.get(e.from), b = topicPos.get(e.to);
        const x1 = a.x + boxW * 0.35, y1 = a.y + boxH, x2 = b.x + topicW * 0.35, y2 = b.y;
        d = `M${x1},${y1} C${x1},${y1 + 50} ${x2},${y2 - 50} ${x2},${y2}`;
      } else if (e.kind === "consume" && topicPos.has(e.from) && svcPos.has(e.to)) {
        const a = topicPos.get(e.from), b = svcPos.get(e.to);
        const x1 = a.x + topicW * 0.65, y1 = a.y, x2 = b.x + boxW * 0.65, y2 = b.y + boxH;
        d = `M${x1},${y1} C${x1},${y1 - 50} ${x2},${y2 + 50} ${x2},${y2}`;
      } else if (e.kind === "call" && svcPos.has(e.from) && svcPos.has(e.to)) {
        const a = svcPos.get(e.from), b = svcPos.get(e.to);
        const x1 = a.x + boxW / 2 - 8, x2 = b.x + boxW / 2 + 8, lift = 20 + Math.min(40, Math.abs(x2 - x1) / 6);
        d = `M${x1},${svcY} C${x1},${svcY - lift} ${x2},${svcY - lift} ${x2},${svcY}`;
        label = { x: (x1 + x2) / 2, y: svcY - lift * 0.75 - 3, text: e.label };
      } else {
        continue;
      }
      const path = svgEl("path", { d, class: "edge " + e.kind, "marker-end": `url(#arrow-${e.kind})` });
      path.append(svgEl("title", {}, `${e.from} ${e.kind === "call" ? "calls" : e.kind === "publish" ? "publishes to" : "delivers to"} ${e.to}${e.label ? " (" + e.label + ")" : ""}`));
      edges.append(path);
      if (label && label.text) edges.append(svgEl("text", { x: label.x, y: label.y, "text-anchor": "middle", class: "label" }, label.text));
    }
    svg.append(edges);
    const byName = new Map((lastSnapshot ? lastSnapshot.services : []).map((s) => [s.name, s]));
    for (const s of services) {
      const p = svcPos.get(s), info = byName.get(s);
      const grp = svgEl("g", { class: "svc", "data-service": s });
      grp.append(svgEl("rect", { x: p.x, y: p.y, width: boxW, height: boxH, rx: 6 }));
      grp.append(svgEl("text", { x: p.x + boxW / 2, y: p.y + 19, "text-anchor": "middle" }, s));
      if (info) grp.append(svgEl("text", { x: p.x + boxW / 2, y: p.y + 36, "text-anchor": "middle", class: "sub" },
        info.instances.length + " × " + info.versions.join(", ")));
      svg.append(grp);
    }
    for (const t of tops) {
      const p = topicPos.get(t);
      const queue = t.startsWith("job-") || t.startsWith("workflow-"); // a job kind's or workflow's queue
      const grp = svgEl("g", { class: queue ? "topic queue" : "topic", "data-topic": t });
      grp.append(svgEl("rect", { x: p.x, y: p.y, width: topicW, height: topicH, rx: 14 }));
      grp.append(svgEl("text", { x: p.x + topicW / 2, y: p.y + 18, "text-anchor": "middle" }, t));
      svg.append(grp);
    }
    if (services.length === 0) svg.append(svgEl("text", { x: 20, y: 30 }, "No service answers discovery."));
    replace("picture", svg);
  }

  // ---- live data -------------------------------------------------------

  function render(s) {
    lastSnapshot = s;
    if (s.interval) interval = s.interval * 1000;
    const now = Date.parse(s.at) || Date.now();
    document.getElementById("updated").textContent = "updated " + time(s.at);
    const parts = [["services", renderServices], ["endpoints", renderEndpoints], ["topics", renderTopics],
      ["dead letters", renderDeadLetters], ["jobs", renderJobs], ["picture", (x) => renderPicture(x.graph)]];
    for (const [name, f] of parts) {
      try { f(s, now); } catch (e) { console.error("render " + name, e); }
    }
  }

  function setStatus(cls, text) {
    const st = document.getElementById("status");
    st.className = "status " + cls;
    st.textContent = text;
  }

  let pollTimer = null;
  async function poll() {
    try {
      const resp = await fetch("api/snapshot", { credentials: "same-origin" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      render(await resp.json());
      setStatus("polling", "polling");
    } catch (e) {
      setStatus("down", "disconnected");
    }
    pollTimer = setTimeout(poll, interval);
  }

  function connect() {
    if (!window.EventSource) { poll(); return; }
    let failures = 0;
    const es = new EventSource("api/events");
    es.addEventListener("open", () => { failures = 0; setStatus("live", "live"); });
    es.addEventListener("snapshot", (ev) => {
      failures = 0;
      setStatus("live", "live");
      try { render(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    });
    es.addEventListener("error", () => {
      failures++;
      setStatus("down", "reconnecting…");
      if (failures >= 3 || es.readyState === EventSource.CLOSED) {
        es.close();
        if (!pollTimer) poll();
      }
    });
  }

  connect();
})();
