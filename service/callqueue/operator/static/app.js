// The operator page: polls /api/operator/overview and redraws. Read-only; no framework, no build step.
"use strict";
const EVERY_MS = 2000;
const OVERVIEW = "../api/operator/overview";
const $ = (id) => document.getElementById(id);

function text(id, value) { $(id).textContent = value; }

function age(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function clock(iso) { return iso ? iso.slice(11, 19) : ""; }

function line(points, maxY, color, width) {
  if (!points.length) return "";
  const y = (value) => (135 - (value / maxY) * 125).toFixed(1);
  const path = points.map(([x, value], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y(value)}`).join(" ");
  const dots = points.map(([x, value]) => `<circle cx="${x.toFixed(1)}" cy="${y(value)}" r="2" fill="${color}"/>`).join("");
  return `<path d="${path}" fill="none" stroke="${color}" stroke-width="${width}" vector-effect="non-scaling-stroke"/>${dots}`;
}

function level(value, maxY, color) {
  const y = (135 - (value / maxY) * 125).toFixed(1);
  return `<line x1="0" x2="600" y1="${y}" y2="${y}" stroke="${color}" stroke-dasharray="6 4" vector-effect="non-scaling-stroke"/>`;
}

function chart(svg, history, series, nowMs) {
  const start = nowMs - 3600 * 1000;
  const x = (at) => ((at - start) / (3600 * 1000)) * 600;
  const maxY = Math.max(1, ...history.flatMap((s) => series.map(([key]) => (typeof key === "function" ? key(s) : s[key]))));
  const grid = [0.25, 0.5, 0.75].map((f) => `<line x1="0" x2="600" y1="${135 - f * 125}" y2="${135 - f * 125}" stroke="#e3e6ec"/>`).join("");
  const label = `<text x="4" y="12" font-size="11" fill="#6b7385">max ${Number.isInteger(maxY) ? maxY : maxY.toFixed(2)}</text>`;
  const lines = series.map(([key, color, width]) => typeof key === "function"
    ? level(key(), maxY, color)
    : line(history.map((s) => [x(s.at), s[key]]), maxY, color, width)).join("");
  svg.innerHTML = grid + lines + label;
}

function callRow(call) {
  const row = document.createElement("tr");
  row.dataset.callId = call.call_id;
  row.dataset.status = call.status;
  const steps = call.timeline.map((t) => `<span>${t.status} <small>${clock(t.at)}</small></span>`).join(" → ");
  row.innerHTML =
    `<td><code title="trace ${call.trace_id || "–"}">${call.call_id.slice(0, 12)}</code></td>` +
    `<td>${escapeHtml(call.campaign_id)}</td><td>${escapeHtml(call.phone)}</td>` +
    `<td><span class="status ${call.status}">${call.status}</span></td>` +
    `<td><div class="timeline">${steps}</div>${call.reason ? `<small class="muted">${escapeHtml(call.reason)}</small>` : ""}</td>`;
  return row;
}

function escapeHtml(value) {
  const div = document.createElement("div");
  div.textContent = value ?? "";
  return div.innerHTML;
}

function render(data) {
  const q = data.queue;
  text("queued", q.queued);
  text("oldest", `oldest ${age(q.oldest_queued_age_s)}`);
  text("in-flight", q.in_flight);
  text("in-flight-limit", `of ${data.limits.max_concurrent_calls} (MAX_CONCURRENT_CALLS)`);
  text("pace", q.pace_per_s.toFixed(2));
  text("pace-limit", `starts/s of ${data.limits.dispatch_rate} (DISPATCH_RATE)`);
  text("workers", q.live_workers);
  text("instances", `${q.live_instances} instance${q.live_instances === 1 ? "" : "s"}`);
  text("outbox", data.outbox.pending);
  text("dead", `${data.outbox.dead_letters} dead letter${data.outbox.dead_letters === 1 ? "" : "s"}`);
  const nowMs = Date.parse(data.now);
  // The stored samples (one per 10 s, any instance) plus this moment's reading.
  const history = [...data.history, { at: nowMs, queued: q.queued, in_flight: q.in_flight, pace: q.pace_per_s }];
  chart($("chart-depth"), history, [["queued", "#3867d6", 2], ["in_flight", "#20bf6b", 2]], nowMs);
  chart($("chart-pace"), history, [["pace", "#8854d0", 2], [() => data.limits.dispatch_rate, "#eb3b5a", 1]], nowMs);
  if (data.breaker) text("breaker-state", JSON.stringify(data.breaker));
  if (data.campaigns) text("campaigns-state", JSON.stringify(data.campaigns));
  const body = $("calls");
  body.replaceChildren(...(data.calls.length ? data.calls.map(callRow) : [body.firstElementChild || document.createElement("tr")]));
  const fresh = $("freshness");
  fresh.dataset.state = "ok";
  fresh.textContent = `updated ${clock(data.now)} UTC · ${data.instance}`;
}

async function refresh() {
  try {
    const answer = await fetch(OVERVIEW, { cache: "no-store" });
    if (!answer.ok) throw new Error(`overview answered ${answer.status}`);
    render(await answer.json());
  } catch (error) {
    const fresh = $("freshness");
    fresh.dataset.state = "error";
    fresh.textContent = `not updating: ${error.message}`;
  } finally {
    setTimeout(refresh, EVERY_MS);
  }
}

text("every", EVERY_MS / 1000);
refresh();
