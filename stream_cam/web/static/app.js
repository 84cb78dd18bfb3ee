// The stream_cam page: the MJPEG stream, live top-k over Server-Sent Events, controls over POST.
"use strict";
// With a token, the server set a cookie when the page was opened; same-origin requests carry it.
const $ = (id) => document.getElementById(id);
let full = {};      // /state: source 0 at the top level, every source in .streams
let state = {};     // the selected source's state
let holding = false;  // the pointer is over the top-k list: its rows hold their classes
let selected = 0;   // which source the list and the controls are about (click a picture to select)
// Colour stops of the page's colormaps (from matplotlib), for the legend bar.
const GRADIENTS = {"jet": ["#000080", "#0000ff", "#0080ff", "#16ffe1", "#7dff7a", "#e4ff13", "#ff9400", "#ff1e00", "#800000"], "turbo": ["#30123b", "#466be3", "#28bceb", "#32f298", "#a4fc3c", "#eecf3a", "#fb7e21", "#d02f05", "#7a0403"], "inferno": ["#000004", "#210c4a", "#57106e", "#8a226a", "#bc3754", "#e45a31", "#f98e09", "#f9cb35", "#fcffa4"], "viridis": ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"], "magma": ["#000004", "#1d1147", "#51127c", "#832681", "#b73779", "#e75263", "#fc8961", "#fec488", "#fcfdbf"], "coolwarm": ["#3b4cc0", "#6282ea", "#8db0fe", "#b9d0f9", "#dddcdc", "#f5c4ac", "#f4987a", "#dd5f4b", "#b40426"]};

$("view").src = "/stream.mjpg";
$("snapshot").href = "/snapshot.jpg";

// Several sources: one picture each (the first is #view), the selected one outlined.
function ensureViews(count) {
  const views = $("views");
  while (views.children.length < count) {
    const n = views.children.length;
    const img = document.createElement("img");
    img.className = "view";
    img.alt = `source ${n}`;
    img.src = `/stream/${n}.mjpg`;
    views.appendChild(img);
  }
  [...views.children].forEach((img, n) => {
    img.classList.toggle("selected", count > 1 && n === selected);
    img.onclick = () => { selected = n; $("snapshot").href = `/snapshot/${n}.jpg`; show(full); };
  });
}

async function control(change) {
  const headers = { "Content-Type": "application/json" };
  const body = JSON.stringify((full.streams || []).length > 1 ? { ...change, stream: selected } : change);
  const response = await fetch("/control", { method: "POST", headers, body, credentials: "same-origin" });
  const reply = await response.json();
  $("error").textContent = response.ok ? "" : reply.error;
  if (response.ok) render({ ...state, ...reply });
}

function show(next) {
  full = next;
  const streams = full.streams || [full];
  ensureViews(streams.length);
  render(streams[Math.min(selected, streams.length - 1)]);
}

// A row's score, as text and as a bar.
function showScore(item, score) {
  item.querySelector(".score").textContent = `${(100 * score).toFixed(1)}%`;
  item.querySelector(".bar span").style.width = `${(100 * score).toFixed(1)}%`;  // CSSOM: allowed by the CSP
}

function render(next) {
  state = next;
  // The rows are updated in place, not rebuilt, and while the pointer is over the list they keep
  // their classes (only the scores move): a row clicked is the class the user saw in it, not the
  // one a refresh (5 times a second) put there a moment before the click.
  const list = $("topk"), top = state.top || [];
  if (holding && list.children.length > 0) {
    for (const item of list.children) {
      const entry = top.find((e) => e.index === Number(item.dataset.index));
      item.className = Number(item.dataset.index) === state.explained?.index ? "explained" : "";
      if (entry) showScore(item, entry.score);
    }
  } else {
    while (list.children.length > top.length) list.lastChild.remove();
    while (list.children.length < top.length) {
      const item = document.createElement("li");
      item.innerHTML = '<span class="label"></span><span class="score"></span><span class="bar"><span></span></span>';
      list.append(item);
    }
    top.forEach((entry, i) => {
      const item = list.children[i];
      item.className = entry.index === state.explained?.index ? "explained" : "";
      item.dataset.rank = i + 1;
      item.dataset.index = entry.index;
      item.querySelector(".label").textContent = entry.label;
      showScore(item, entry.score);
    });
  }
  const fps = (state.fps || 0).toFixed(1), latency = (state.latency_ms || 0).toFixed(0);
  const age = state.heatmap_frame != null && state.frame != null ? state.frame - state.heatmap_frame : 0;
  $("stats").textContent = `${fps} fps · ${latency} ms latency · frame ${state.frame ?? "–"}` +
                           (age > 0 ? ` (heatmap ${age} old)` : "") + ` · ${state.source || ""}` +
                           (state.runtime ? ` · ${state.runtime}` : "") + (state.device ? ` on ${state.device}` : "") +
                           (state.status ? ` · ${state.status}` : "");
  if (document.activeElement !== $("alpha")) $("alpha").value = state.alpha;
  $("alpha-value").textContent = Number(state.alpha ?? 0).toFixed(2);
  if (document.activeElement !== $("colormap")) $("colormap").value = state.colormap;
  if (document.activeElement !== $("method") && state.method) $("method").value = state.method;
  $("method").disabled = state.controls === false;
  for (const option of $("method").options) {  // an exported model offers its one method
    option.disabled = Array.isArray(state.methods) && state.methods.length > 0 && !state.methods.includes(option.value);
  }
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  const stops = GRADIENTS[state.colormap];
  $("legend").style.background = stops ? `linear-gradient(90deg, ${stops.join(", ")})` : "linear-gradient(90deg, #000, #fff)";
  const hot = { jet: "red", turbo: "red", coolwarm: "red", inferno: "yellow", viridis: "yellow", magma: "light" };
  if (state.explained) {
    const pinned = Boolean(state.choice && state.choice.pinned);
    $("legend-text").textContent = `${hot[state.colormap] || "the right end"} = where the model looked for ${state.explained.label}` +
                                   (pinned ? " (pinned: “Next class” follows the ranking again)" : "");
  }
}

$("topk").addEventListener("pointerenter", () => { holding = true; });
$("topk").addEventListener("pointerleave", () => { holding = false; render(state); });
// One listener for the list: the class of the row clicked, as it is at the moment of the click.
$("topk").addEventListener("click", (event) => {
  const item = event.target.closest("li");
  if (item) control({ class: Number(item.dataset.index) });  // pins the class, not its rank
});
$("alpha").addEventListener("input", (e) => control({ alpha: Number(e.target.value) }));
$("colormap").addEventListener("change", (e) => control({ colormap: e.target.value }));
$("method").addEventListener("change", (e) => control({ method: e.target.value }));
$("cycle").addEventListener("click", () => control({ cycle: true }));
$("pause").addEventListener("click", () => control({ pause: !state.paused }));

const events = new EventSource("/events");
events.onmessage = (message) => show(JSON.parse(message.data));
events.onerror = () => { $("stats").textContent = "reconnecting…"; };
