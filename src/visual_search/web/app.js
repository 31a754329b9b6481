// The search page: the same public API any SDK uses, with the credentials kept in this tab only.

const PAGE_SIZE = 24;
const CREDENTIALS = "visual-search-credentials";
const $ = (id) => document.getElementById(id);
// The API is served where the page is: "" locally, the stage ("/v1") behind API Gateway.
const API_BASE = location.pathname.replace(/\/ui\/[^/]*$/, "");

let query = null; // {kind, value, label}: what "Load more" repeats with next_cursor
let cursor = null;

function credentials() {
  return JSON.parse(sessionStorage.getItem(CREDENTIALS) || "null");
}

function basicAuth({ key, secret }) {
  const bytes = new TextEncoder().encode(`${key}:${secret}`);
  return "Basic " + btoa(String.fromCharCode(...bytes));
}

async function call(path, { method = "GET", params = {}, body = null, cloud = true } = {}) {
  const creds = credentials();
  const prefix = API_BASE + (cloud ? `/v1_1/${encodeURIComponent(creds.cloud)}` : "");
  const url = new URL(prefix + path, location.origin);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  let response;
  try {
    const headers = { Authorization: basicAuth(creds), "X-Requested-With": "visual-search-page" };
    response = await fetch(url, { method, body, headers });
  } catch {
    throw new Error("The server cannot be reached.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) signOut("Those credentials were refused: sign in again.");
    throw new Error(data?.error?.message || `The server answered ${response.status}.`);
  }
  return data;
}

function show(signedIn) {
  $("signin").hidden = signedIn;
  $("search").hidden = !signedIn;
  $("signout").hidden = !signedIn;
  (signedIn ? $("text") : $("key")).focus();
}

function signOut(message) {
  sessionStorage.removeItem(CREDENTIALS);
  show(false);
  if (message) showError(message, "signin-form");
}

function showError(message, near = "error") {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
  if (near === "signin-form" && message) {
    let note = document.querySelector("#signin .error");
    if (!note) {
      note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      $("signin-form").append(note);
    }
    note.textContent = message;
  }
}

function status(text) {
  $("status").textContent = text;
}

function formatBytes(n) {
  if (n == null) return "";
  return n < 1024 * 1024 ? `${Math.round(n / 1024)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function card(resource, extra) {
  const item = document.createElement("li");
  item.className = "card";
  const open = document.createElement("button");
  open.type = "button";
  open.className = "hit";
  open.title = `More like ${resource.public_id}`;
  open.setAttribute("aria-label", `More like ${resource.public_id}`);
  const img = document.createElement("img");
  img.src = resource.thumbnail_url || resource.secure_url;
  img.alt = resource.display_name || resource.public_id;
  img.loading = "lazy";
  img.decoding = "async";
  img.addEventListener("error", () => {
    if (img.src !== resource.secure_url) img.src = resource.secure_url; // no rendition yet
  }, { once: true });
  open.append(img);
  open.addEventListener("click", () => {
    $("duplicates").close(); // a hit inside the duplicates dialog searches the page behind it
    search({ kind: "image_asset_id", value: resource.asset_id, label: `images like ${resource.public_id}` });
  });
  const meta = document.createElement("div");
  meta.className = "meta";
  const lines = [
    ["pid", resource.public_id],
    ["small", extra],
    ["small", `${resource.width}×${resource.height} · ${resource.format} · ${formatBytes(resource.bytes)}`],
  ];
  for (const [cls, text] of lines) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    meta.append(span);
  }
  if (!resource.tier) {
    const dupes = document.createElement("button");
    dupes.type = "button";
    dupes.className = "quiet";
    dupes.textContent = "Duplicates";
    dupes.setAttribute("aria-label", `Duplicates of ${resource.public_id}`);
    dupes.addEventListener("click", () => duplicates(resource));
    meta.append(dupes);
  }
  item.append(open, meta);
  return item;
}

async function search(next, more = false) {
  if (!more) {
    query = next;
    cursor = null;
    $("results").replaceChildren();
  }
  showError("");
  $("more").hidden = true;
  status(more ? "Loading more…" : `Searching ${query.label}…`);
  const params = { max_results: PAGE_SIZE };
  if (cursor) params.next_cursor = cursor;
  try {
    let data;
    if (query.kind === "image_file") {
      const form = new FormData();
      form.append("image_file", query.value);
      for (const [name, value] of Object.entries(params)) form.append(name, value);
      data = await call("/resources/visual_search", { method: "POST", body: form });
    } else {
      data = await call("/resources/visual_search", { params: { ...params, [query.kind]: query.value } });
    }
    for (const resource of data.resources) {
      $("results").append(card(resource, `score ${resource.score.toFixed(3)}`));
    }
    cursor = data.next_cursor || null;
    $("more").hidden = !cursor;
    const shown = $("results").children.length;
    status(shown ? `${shown} result${shown === 1 ? "" : "s"} for ${query.label}` : `Nothing found for ${query.label}`);
  } catch (error) {
    status("");
    showError(error.message);
  }
}

async function duplicates(resource) {
  const dialog = $("duplicates");
  $("duplicates-title").textContent = `Duplicates of ${resource.public_id}`;
  $("duplicates-list").replaceChildren();
  $("duplicates-status").textContent = "Looking…";
  dialog.showModal();
  try {
    const data = await call(`/resources/${encodeURIComponent(resource.asset_id)}/duplicates`);
    for (const dupe of data.duplicates) {
      $("duplicates-list").append(card(dupe, `${dupe.tier} · ${dupe.score.toFixed(3)}`));
    }
    $("duplicates-status").textContent = data.duplicates.length ? "" : "No duplicates.";
  } catch (error) {
    $("duplicates-status").textContent = error.message;
  }
}

function pickFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    showError(`${file.name} is not an image.`);
    return;
  }
  search({ kind: "image_file", value: file, label: file.name });
}

function wire() {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    sessionStorage.setItem(CREDENTIALS, JSON.stringify(Object.fromEntries(form)));
    try {
      await call("/health", { cloud: false });
      document.querySelector("#signin .error")?.remove();
      show(true);
    } catch (error) {
      signOut(error.message);
    }
  });
  $("signout").addEventListener("click", () => signOut());
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (text) search({ kind: "text", value: text, label: `“${text}”` });
  });
  $("url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("url").value.trim();
    if (url) search({ kind: "image_url", value: url, label: url });
  });
  const drop = $("drop");
  drop.addEventListener("click", () => $("file").click());
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pickFile(event.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (event) => pickFile(event.target.files[0]));
  $("more").addEventListener("click", () => search(query, true));
  show(Boolean(credentials()));
}

wire();
