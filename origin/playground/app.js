// image-origin playground: plain JavaScript against the origin's own HTTP API (same origin).
// The management token lives in sessionStorage only and travels in the Authorization header,
// never in a URL. Results are fetched (to read X-Cache, Server-Timing and the byte size) and
// shown from a blob: URL, which the page's Content-Security-Policy allows.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "image-origin-token";
const PAGE_SIZE = 24;
const IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";
const state = { key: null, cursors: [null], page: 0, next: null, selected: new Set(), blobs: [] };
let timer = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function say(text, error) { const s = $("status"); s.textContent = text; s.className = error ? "error" : "muted"; }
function path(key) { return "/" + key.split("/").map(encodeURIComponent).join("/"); }

async function manage(method, url, body, headers) {
  const response = await fetch(url, { method, body, headers: { Authorization: "Bearer " + token(), ...(headers || {}) } });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data && data.error ? data.error.code + ": " + data.error.message : "HTTP " + response.status;
    throw new Error(message);
  }
  return data;
}

// --- token -------------------------------------------------------------------------------
function showToken() { $("token-state").textContent = token() ? "token set for this tab" : "no token yet"; }
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  showToken();
  list(0);
});

// --- listing, upload, delete ---------------------------------------------------------------
async function list(page) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if ($("prefix").value) query.set("prefix", $("prefix").value);
  const cursor = state.cursors[page];
  if (cursor) query.set("cursor", cursor);
  try {
    const data = await manage("GET", "/?" + query);
    state.page = page;
    state.next = data.next_cursor;
    state.cursors[page + 1] = data.next_cursor;
    renderList(data.images);
    say(data.images.length ? "" : "no images yet: drop some above");
  } catch (error) { say("listing failed: " + error.message, true); }
}

function renderList(images) {
  const ul = $("list");
  ul.replaceChildren();
  for (const image of images) {
    const li = document.createElement("li");
    li.dataset.key = image.key;
    if (image.key === state.key) li.className = "chosen";
    const img = document.createElement("img");
    img.src = image.url + "?w=96&h=96&fit=crop";
    img.alt = image.key;
    img.addEventListener("click", () => choose(image.key));
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = state.selected.has(image.key);
    box.addEventListener("change", () => { box.checked ? state.selected.add(image.key) : state.selected.delete(image.key); updateButtons(); });
    const label = document.createElement("label");
    label.append(box, " " + image.key + " ", Object.assign(document.createElement("span"), { className: "muted", textContent: bytes(image.size) }));
    li.append(img, label);
    ul.append(li);
  }
  $("page").textContent = "page " + (state.page + 1);
  updateButtons();
}

function updateButtons() {
  $("prev").disabled = state.page === 0;
  $("next").disabled = !state.next;
  $("delete").disabled = state.selected.size === 0;
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("data", file, file.name);
  const folder = $("folder").value.replace(/^\/+|\/+$/g, "");
  say("uploading " + files.length + " file(s)...");
  try {
    const data = await manage("POST", folder ? path(folder) : "/", form);
    state.cursors = [null];
    await list(0);
    say("stored " + data.images.map((i) => i.key + " (" + i.width + "x" + i.height + " " + i.format + ")").join(", "));
    choose(data.images[0].key);
  } catch (error) { say("upload failed: " + error.message, true); }
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); upload([...event.dataTransfer.files]); });
$("file").addEventListener("change", () => { upload([...$("file").files]); $("file").value = ""; });
$("refresh").addEventListener("click", () => { state.cursors = [null]; list(0); });
$("prev").addEventListener("click", () => list(state.page - 1));
$("next").addEventListener("click", () => list(state.page + 1));
$("delete").addEventListener("click", async () => {
  const keys = [...state.selected];
  if (!confirm("Delete " + keys.join(", ") + "?")) return;
  try {
    const data = await manage("DELETE", "/", JSON.stringify({ images: keys }), { "Content-Type": "application/json" });
    state.selected.clear();
    if (keys.includes(state.key)) { state.key = null; $("editor").hidden = true; }
    state.cursors = [null];
    await list(0);
    say("deleted " + data.deleted.join(", "));
  } catch (error) { say("delete failed: " + error.message, true); }
});

// --- the transform ---------------------------------------------------------------------------
function params() {
  const query = new URLSearchParams();
  for (const element of $("controls").elements) {
    if (!element.name || element.value === "") continue;
    if (element.type === "checkbox") { if (element.checked) query.set(element.name, element.value); continue; }
    if (element.type === "range" && element.value === element.defaultValue) continue;
    query.set(element.name, element.value);
  }
  const auto = [];
  if ($("auto-format").checked) auto.push("format");
  if ($("auto-compress").checked) auto.push("compress");
  if (auto.length) query.set("auto", auto.join(","));
  if (query.get("crop") !== "focalpoint") { query.delete("fp-x"); query.delete("fp-y"); query.delete("fp-z"); }
  return query;
}

function url(query) {
  const text = query.toString();
  return path(state.key) + (text ? "?" + text : "");
}

function choose(key) {
  state.key = key;
  $("editor").hidden = false;
  $("key").textContent = key;
  for (const li of $("list").children) li.classList.toggle("chosen", li.dataset.key === key);
  show(path(key), $("original-img"), $("original-meta"));
  update();
}

function schedule() { clearTimeout(timer); timer = setTimeout(update, 250); }

function update() {
  if (!state.key) return;
  const target = url(params());
  $("url").value = location.origin + target;
  show(target, $("result-img"), $("result-meta"));
  srcset();
}

async function show(target, img, meta) {
  const started = performance.now();
  try {
    // fetch() sends Accept: */*; an <img> would send the browser's image Accept, which auto=format reads.
    const response = await fetch(target, { headers: { Accept: IMAGE_ACCEPT } });
    const blob = await response.blob();
    const elapsed = performance.now() - started;
    if (!response.ok) {
      const text = await blob.text();
      meta.replaceChildren(row("error", text));
      img.removeAttribute("src");
      img.dataset.url = target;
      return null;
    }
    const objectUrl = URL.createObjectURL(blob);
    state.blobs.push(objectUrl);
    await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = objectUrl; });
    img.dataset.url = target;
    img.dataset.type = response.headers.get("Content-Type") || "";
    meta.replaceChildren(
      row("size", img.naturalWidth + " x " + img.naturalHeight),
      row("bytes", bytes(blob.size)),
      row("format", response.headers.get("Content-Type")),
      row("X-Cache", response.headers.get("X-Cache") || "-"),
      row("Server-Timing", response.headers.get("Server-Timing") || "-"),
      row("fetched in", elapsed.toFixed(0) + " ms"),
    );
    return { blob, response, elapsed, objectUrl };
  } catch (error) {
    meta.replaceChildren(row("error", error.message));
    return null;
  }
}

function row(name, value) {
  const fragment = document.createDocumentFragment();
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dd.dataset.field = name;
  fragment.append(dt, dd);
  return fragment;
}

function bytes(size) {
  return size < 1024 ? size + " B" : size < 1048576 ? (size / 1024).toFixed(1) + " KiB" : (size / 1048576).toFixed(2) + " MiB";
}

// Focal point: a click on the original sets fp-x / fp-y as shares of its size.
$("original-img").addEventListener("click", (event) => {
  const box = event.target.getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  const y = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
  $("fp-x").value = x.toFixed(2);
  $("fp-y").value = y.toFixed(2);
  $("crop").value = "focalpoint";
  if (!$("fit").value) $("fit").value = "crop";
  const mark = $("fp-mark");
  mark.hidden = false;
  mark.style.left = x * 100 + "%";
  mark.style.top = y * 100 + "%";
  update();
});

$("controls").addEventListener("input", schedule);
$("controls").addEventListener("change", schedule);
$("controls").addEventListener("reset", () => { $("fp-mark").hidden = true; setTimeout(update, 0); });

$("copy").addEventListener("click", async () => {
  try { await navigator.clipboard.writeText($("url").value); say("URL copied"); }
  catch { $("url").select(); say("select the URL and copy it (the clipboard needs a secure context)"); }
});

// --- srcset for a width ladder ---------------------------------------------------------------
function srcset() {
  const widths = $("ladder").value.split(",").map((w) => parseInt(w, 10)).filter((w) => w > 0);
  const base = params();
  base.delete("w");
  base.delete("dpr");
  const entries = widths.map((w) => { const q = new URLSearchParams(base); q.set("w", String(w)); return location.origin + url(q) + " " + w + "w"; });
  const largest = widths.length ? location.origin + url(new URLSearchParams([...base, ["w", String(widths[widths.length - 1])]])) : "";
  $("srcset").textContent = '<img src="' + largest + '"\n     srcset="' + entries.join(",\n             ") + '"\n     sizes="100vw" alt="">';
}
$("ladder").addEventListener("input", srcset);

// --- presets side by side ---------------------------------------------------------------------
$("presets-run").addEventListener("click", async () => {
  const grid = $("presets");
  grid.replaceChildren();
  try {
    const data = await manage("GET", "/_/presets");
    if (data.allowed_widths.length) { $("ladder").value = data.allowed_widths.join(","); srcset(); }
    if (!data.presets.length) { grid.textContent = "presets.yaml names no presets"; return; }
    for (const preset of data.presets) {
      const figure = document.createElement("figure");
      figure.dataset.preset = preset.name;
      const caption = document.createElement("figcaption");
      caption.textContent = preset.name + " " + new URLSearchParams(preset.params);
      const img = document.createElement("img");
      img.alt = preset.name;
      const meta = document.createElement("dl");
      meta.className = "meta";
      figure.append(caption, img, meta);
      grid.append(figure);
      await show(path(state.key) + "?preset=" + encodeURIComponent(preset.name), img, meta);
    }
  } catch (error) { say("presets failed: " + error.message, true); }
});

showToken();
if (token()) list(0);
