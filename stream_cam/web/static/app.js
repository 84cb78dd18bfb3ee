// The stream_cam page: the MJPEG stream, live top-k over Server-Sent Events, controls over POST.
"use strict";
const token = window.STREAM_CAM_TOKEN || "";
const withToken = (path) => token ? `${path}?token=${encodeURIComponent(token)}` : path;
const $ = (id) => document.getElementById(id);
let state = {};

$("view").src = withToken("/stream.mjpg");
$("snapshot").href = withToken("/snapshot.jpg");

async function control(change) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const response = await fetch("/control", { method: "POST", headers, body: JSON.stringify(change) });
  const body = await response.json();
  $("error").textContent = response.ok ? "" : body.error;
  if (response.ok) render(body);
}

function render(next) {
  state = next;
  const list = $("topk");
  list.replaceChildren(...(state.top || []).map((entry, i) => {
    const item = document.createElement("li");
    item.className = entry.index === state.explained?.index ? "explained" : "";
    item.dataset.rank = i + 1;
    item.innerHTML = `<span class="label"></span><span class="score">${(100 * entry.score).toFixed(1)}%</span>` +
                     `<span class="bar"><span style="width:${(100 * entry.score).toFixed(1)}%"></span></span>`;
    item.querySelector(".label").textContent = entry.label;
    item.addEventListener("click", () => control({ rank: i + 1 }));
    return item;
  }));
  const fps = (state.fps || 0).toFixed(1), latency = (state.latency_ms || 0).toFixed(0);
  $("stats").textContent = `${fps} fps · ${latency} ms latency · frame ${state.frame ?? "–"} · ${state.source || ""}` +
                           (state.status ? ` · ${state.status}` : "");
  if (document.activeElement !== $("alpha")) $("alpha").value = state.alpha;
  $("alpha-value").textContent = Number(state.alpha ?? 0).toFixed(2);
  if (document.activeElement !== $("colormap")) $("colormap").value = state.colormap;
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  if (state.explained) $("legend-text").textContent = `red = where the model looked for ${state.explained.label}`;
}

$("alpha").addEventListener("input", (e) => control({ alpha: Number(e.target.value) }));
$("colormap").addEventListener("change", (e) => control({ colormap: e.target.value }));
$("cycle").addEventListener("click", () => control({ cycle: true }));
$("pause").addEventListener("click", () => control({ pause: !state.paused }));

const events = new EventSource(withToken("/events"));
events.onmessage = (message) => render(JSON.parse(message.data));
events.onerror = () => { $("stats").textContent = "reconnecting…"; };
