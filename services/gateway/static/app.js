// The jobs page: submit a job, watch it live over Server-Sent Events, show its result.
// Plain ES2020, no dependencies. Result text only ever reaches the page as text nodes.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TERMINAL = new Set(["JOB_STATUS_SUCCEEDED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED"]);
  const WAITING_JOB = "JOB_STATUS_WAITING_INPUT";
  const WAITING_STEP = "STEP_STATUS_WAITING_INPUT";
  const TOKEN_KEY = "jobs.token";
  const MAX_BACKOFF_MS = 30000;

  // Read by the browser tests: every event sequence received, in order, exactly once.
  const page = (window.__jobsPage = {
    jobId: null, status: null, sequences: [], lastSequence: 0, connection: "idle",
    streams: 0, // EventSources opened
    rewatches: 0, // times the page reopened a stream that had closed for good
  });

  let token = "";
  let jobTypes = [];
  let job = null; // the job shown: from GET, then kept current by its events
  let watch = null; // {es}: the open EventSource
  let retryTimer = 0;
  let backoffMs = 1000;
  let generation = 0; // bumped when another job is opened; stale async work checks it
  let idempotencyKey = null;
  let nextPageToken = "";
  let renderQueued = false;
  let exampleRequest = 0;
  const outputs = new Map(); // step name -> text written so far by its current attempt
  let stepNodes = new Map(); // step name -> its <li> parts
  let inputCards = new Map(); // waiting step name -> {node, key}: its input request's card
  let forkKey = null; // the idempotency key of the fork being asked for

  // ---------------------------------------------------------------- helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const words = (name) => String(name || "").replace(/[_-]+/g, " ").trim();
  const humanise = (name) => {
    const text = words(name).replace(/\bcv\b/gi, "CV");
    return text.charAt(0).toUpperCase() + text.slice(1);
  };
  const short = (state) => String(state || "").replace(/^(JOB_STATUS|STEP_STATUS|JOB_EVENT_TYPE)_/, "");
  // A state in words; a job or step waiting for input is waiting for the person looking.
  const label = (state) => (/WAITING_INPUT$/.test(String(state)) ? "Waiting for you" : humanise(short(state).toLowerCase()));
  const jobPath = (id) => `/v1/jobs/${encodeURIComponent(id)}`;

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function ago(iso) {
    const then = Date.parse(iso);
    if (!then) return "";
    const s = Math.round((then - Date.now()) / 1000);
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    if (Math.abs(s) < 60) return rtf.format(s, "second");
    if (Math.abs(s) < 3600) return rtf.format(Math.round(s / 60), "minute");
    if (Math.abs(s) < 86400) return rtf.format(Math.round(s / 3600), "hour");
    return rtf.format(Math.round(s / 86400), "day");
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, body, retryAfter) {
      super((body && body.message) || (status ? `HTTP ${status}` : "The server cannot be reached."));
      this.status = status;
      this.retryAfter = retryAfter;
      // A 400's google.rpc.BadRequest: [{field, description}], each naming what is wrong.
      const details = (body && Array.isArray(body.details)) ? body.details : [];
      this.violations = details
        .filter((d) => d && /google\.rpc\.BadRequest$/.test(String(d["@type"] || "")))
        .flatMap((d) => d.fieldViolations || [])
        .map((v) => ({ field: String(v.field || ""), description: String(v.description || "") }));
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, null, null);
    }
    const text = await res.text();
    let data = {};
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = { message: text.slice(0, 200) }; }
    }
    if (!res.ok) throw new ApiError(res.status, data, res.headers.get("Retry-After"));
    return data;
  }

  function explain(err) {
    if (!(err instanceof ApiError)) return String((err && err.message) || err);
    if (err.status === 401) return `${err.message} — check your token.`;
    if (err.status === 429) return `${err.message} — try again in ${err.retryAfter || "a few"} s.`;
    return err.message;
  }

  function showError(err) {
    $("banner-text").textContent = typeof err === "string" ? err : explain(err);
    $("banner").hidden = false;
  }

  function hideError() { $("banner").hidden = true; }

  // ---------------------------------------------------------------- token

  function initToken() {
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    setToken(sessionStorage.getItem(TOKEN_KEY) || "");
  }

  function setToken(value) {
    token = value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = token;
    let who = "No token yet: paste one to start.";
    $("user").hidden = true;
    try {
      const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      who = `Signed in as ${claims.sub}`;
      $("user").textContent = String(claims.sub);
      $("user").dataset.initial = String(claims.sub).charAt(0).toUpperCase();
      $("user").hidden = !claims.sub;
      if (claims.exp) {
        who += claims.exp * 1000 < Date.now() ? " (token expired)" : `, token expires ${ago(new Date(claims.exp * 1000).toISOString())}`;
      }
    } catch (err) {
      if (token) who = "Token set.";
    }
    $("whoami").textContent = who;
  }

  // ---------------------------------------------------------------- the form

  async function loadTypes() {
    const select = $("job-type");
    const current = select.value || "cv_tailoring";
    try {
      jobTypes = (await api("GET", "/v1/jobTypes")).jobTypes || [];
    } catch (err) {
      showError(err);
      jobTypes = [];
    }
    let names = jobTypes.map((t) => t.name);
    if (!names.length) {
      // No token yet, or the API is down: the types that have an example (public).
      try {
        names = (await (await fetch("/examples/index.json", { cache: "no-store" })).json()).types || [];
      } catch (err) { /* nothing to offer */ }
    }
    select.replaceChildren(...names.map((name) => {
      const option = el("option", "", humanise(name));
      option.value = name;
      return option;
    }));
    select.value = names.includes(current) ? current : names[0];
    if (job) render(); // the steps of the job shown: which run in parallel is known now
    await loadExample(select.value);
  }

  async function loadExample(type) {
    const mine = ++exampleRequest;
    const spec = jobTypes.find((t) => t.name === type);
    const description = (spec && spec.description) || "Run a multi-step AI job.";
    $("type-description").textContent = description;
    $("type-description").title = description;
    let input = {};
    try {
      const res = await fetch(`/examples/${type}.json`, { cache: "no-store" });
      if (res.ok) {
        const doc = await res.json();
        input = doc.input || doc;
      }
    } catch (err) { /* start from an empty object */ }
    if (mine !== exampleRequest) return; // another type was picked, or the user typed
    const editor = $("input-json");
    editor.value = JSON.stringify(input, null, 2);
    editor.dataset.example = type; // which example it holds (tests wait for it)
    editor.rows = Math.max(6, Math.min(22, editor.value.split("\n").length + 1));
    idempotencyKey = null;
    // A type that takes an upload (bulk_import): offer a file, which fills in upload_id.
    const takesFile = Boolean(spec && spec.inputSchema && spec.inputSchema.properties &&
      spec.inputSchema.properties.upload_id);
    $("upload-field").hidden = !takesFile;
    $("upload-file").value = "";
    $("upload-status").textContent = "Choose a file: it is uploaded, and its id goes into the input.";
    validate();
  }

  // The chosen file goes up as the request's raw body (POST /v1/uploads), streamed by the
  // browser; its uploadId replaces the input's upload_id.
  async function uploadFile() {
    const file = $("upload-file").files[0];
    if (!file) return;
    if (!token) { showError("Paste your API token first."); $("token").focus(); return; }
    hideError();
    const status = $("upload-status");
    status.textContent = `Uploading ${file.name}…`;
    $("submit").disabled = true;
    try {
      const res = await fetch("/v1/uploads", {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-ndjson" },
        body: file,
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new ApiError(res.status, data, res.headers.get("Retry-After"));
      const parsed = parseInput();
      const input = parsed.error ? {} : parsed.value;
      input.upload_id = data.uploadId;
      $("input-json").value = JSON.stringify(input, null, 2);
      status.textContent = `Uploaded ${file.name}: ${formatBytes(Number(data.size) || 0)}, sha256 ${String(data.sha256).slice(0, 12)}…`;
      status.dataset.uploadId = data.uploadId; // read by the browser tests
    } catch (err) {
      status.textContent = `Not uploaded: ${explain(err)}`;
      showError(err);
    } finally {
      validate();
    }
  }

  function parseInput() {
    try {
      const value = JSON.parse($("input-json").value);
      if (!value || typeof value !== "object" || Array.isArray(value)) {
        return { error: "The input must be a JSON object: { … }." };
      }
      return { value };
    } catch (err) {
      return { error: err.message };
    }
  }

  function validate() {
    const parsed = parseInput();
    // The type's published JSON Schema names its required members: say which are missing
    // before a round trip would (the API still checks everything, field by field).
    const spec = jobTypes.find((t) => t.name === $("job-type").value);
    const required = (spec && spec.inputSchema && spec.inputSchema.required) || [];
    const missing = parsed.error ? [] : required.filter((k) => parsed.value[k] == null);
    const problem = parsed.error ? `Invalid JSON: ${parsed.error}`
      : missing.length ? `Missing: ${missing.join(", ")}` : "";
    const status = $("json-status");
    status.textContent = problem || "Valid JSON";
    status.className = `json-status ${problem ? "bad" : "good"}`;
    $("input-json").setAttribute("aria-invalid", problem ? "true" : "false");
    $("submit").disabled = Boolean(problem);
    syncOptions(spec, parsed.value);
    const v = parsed.value || {};
    const resume = v.resume || {};
    const posting = v.job_posting || v.jobPosting || {};
    const hasSummary = Boolean(resume.name || posting.title);
    $("summary").hidden = !hasSummary;
    if (hasSummary) {
      $("summary-resume").textContent = [resume.name, resume.headline].filter(Boolean).join(" · ") || "—";
      $("summary-posting").textContent = [posting.title, posting.company].filter(Boolean).join(" at ") || v.target_role || "—";
    }
    return parsed;
  }

  // A type's yes/no options (its input schema's top-level booleans, such as
  // cv_tailoring's "review") as checkboxes over the JSON: each box and its member agree,
  // whichever is changed.
  function syncOptions(spec, value) {
    const box = $("options");
    const props = (spec && spec.inputSchema && spec.inputSchema.properties) || {};
    const flags = Object.keys(props).filter((k) => props[k] && props[k].type === "boolean");
    const typeName = spec ? spec.name : "";
    if (box.dataset.type !== typeName) {
      box.dataset.type = typeName;
      box.replaceChildren(...flags.map((name) => {
        const label = document.createElement("label");
        label.className = "option";
        const check = document.createElement("input");
        check.type = "checkbox";
        check.dataset.member = name;
        check.addEventListener("change", () => setOption(name, check.checked));
        const words = document.createElement("span");
        words.textContent = props[name].description || name;
        const code = document.createElement("code");
        code.textContent = name;
        label.append(check, words, code);
        return label;
      }));
    }
    box.hidden = flags.length === 0;
    for (const check of box.querySelectorAll("input[type=checkbox]")) {
      check.checked = Boolean(value && value[check.dataset.member] === true);
      check.disabled = !value;
    }
  }

  function setOption(name, on) {
    const parsed = parseInput();
    if (!parsed.value) return;
    const value = { ...parsed.value };
    if (on) value[name] = true; else delete value[name];
    $("input-json").value = JSON.stringify(value, null, 2);
    exampleRequest += 1;
    idempotencyKey = null;
    validate();
  }

  async function submit(event) {
    event.preventDefault();
    const parsed = validate();
    if (parsed.error) { $("input-json").focus(); return; }
    if (!token) { showError("Paste your API token first."); $("token").focus(); return; }
    hideError();
    const button = $("submit");
    button.disabled = true;
    button.textContent = "Starting…";
    idempotencyKey = idempotencyKey || newKey(); // the same key if this very request is re-sent
    try {
      const created = await api("POST", "/v1/jobs", {
        type: $("job-type").value, input: parsed.value, idempotencyKey,
      });
      idempotencyKey = null;
      openJob(created.jobId, created);
      refreshRecent();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
      button.textContent = "Start job";
    }
  }

  // ---------------------------------------------------------------- watching a job

  function setConnection(state) {
    const text = { idle: "Not watching", connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };
    page.connection = state;
    $("connection").className = `conn conn-${state}`;
    $("connection-text").textContent = text[state];
  }

  function stopWatching() {
    clearTimeout(retryTimer);
    if (watch) watch.es.close();
    watch = null;
  }

  async function openJob(jobId, known) {
    stopWatching();
    const gen = ++generation;
    Object.assign(page, { jobId, status: null, sequences: [], lastSequence: 0 });
    outputs.clear();
    stepNodes = new Map();
    inputCards = new Map();
    $("steps").replaceChildren();
    $("inputs").replaceChildren();
    closeFork();
    $("result").hidden = true;
    $("job").hidden = false;
    $("job").dataset.lastSequence = "0";
    history.replaceState(null, "", `${location.pathname}${location.search}#job=${encodeURIComponent(jobId)}`);
    job = known || null;
    if (!job) {
      try {
        job = await api("GET", jobPath(jobId));
      } catch (err) {
        if (gen === generation) { showError(err); $("job").hidden = true; }
        return;
      }
      if (gen !== generation) return;
    }
    render();
    highlightRecent();
    $("job").scrollIntoView({ behavior: "smooth", block: "start" });
    if (TERMINAL.has(job.status)) finish(gen, job);
    else startWatch(gen);
  }

  // Opens the event stream after page.lastSequence. With probe (a resumption after the stream
  // closed for good), asks first: 204 means the job ended with nothing more to read, which an
  // EventSource cannot tell apart from an error.
  async function startWatch(gen, probe) {
    clearTimeout(retryTimer);
    setConnection(page.connection === "reconnecting" ? "reconnecting" : "connecting");
    let grant;
    try {
      grant = await api("POST", `${jobPath(page.jobId)}:watchToken`, {});
    } catch (err) {
      if (gen !== generation) return;
      if ([401, 403, 404].includes(err.status)) { showError(err); setConnection("idle"); return; }
      scheduleRewatch(gen);
      return;
    }
    if (gen !== generation) return;
    const url = `${jobPath(page.jobId)}/events?after_sequence=${page.lastSequence}` +
      `&access_token=${encodeURIComponent(grant.token)}`;
    if (probe) {
      const abort = new AbortController();
      let status = 0;
      try {
        status = (await fetch(url, { signal: abort.signal, cache: "no-store" })).status;
      } catch (err) { /* unreachable: back off */ }
      abort.abort();
      if (gen !== generation) return;
      if (status === 204) { finish(gen); return; }
      if (status !== 200) { scheduleRewatch(gen); return; }
    }
    const es = new EventSource(url);
    const w = (watch = { es });
    page.streams += 1;
    es.onopen = () => {
      if (watch !== w) return;
      backoffMs = 1000;
      setConnection("live");
    };
    es.onmessage = (message) => { if (watch === w) onEvent(message); };
    es.addEventListener("end", () => {
      if (watch !== w) return;
      // The server ends the response right after this message: close once it has (closing
      // first would abort the request), before EventSource would reconnect.
      watch = null;
      const closing = setTimeout(() => es.close(), 3000);
      es.onerror = () => { clearTimeout(closing); es.close(); };
      finish(gen);
    });
    es.onerror = () => {
      if (watch !== w) return;
      // CONNECTING: EventSource retries by itself and resumes with Last-Event-ID.
      if (es.readyState === EventSource.CONNECTING) { setConnection("reconnecting"); return; }
      // CLOSED for good: 204 (nothing more), 401 (watch token expired), a 5xx...
      stopWatching();
      if (TERMINAL.has(job.status)) finish(gen); // the terminal event is in: nothing is missing
      else scheduleRewatch(gen);
    };
  }

  function scheduleRewatch(gen) {
    page.rewatches += 1;
    setConnection("reconnecting");
    const delay = backoffMs * (0.75 + Math.random() * 0.5);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    retryTimer = setTimeout(() => { if (gen === generation) startWatch(gen, true); }, delay);
  }

  function onEvent(message) {
    let event;
    try { event = JSON.parse(message.data); } catch (err) { return; }
    const sequence = Number(event.sequence || message.lastEventId);
    if (!Number.isFinite(sequence) || sequence <= page.lastSequence) return; // seen already
    page.lastSequence = sequence;
    page.sequences.push(sequence);
    $("job").dataset.lastSequence = String(sequence);
    applyEvent(event);
    if (!renderQueued) {
      renderQueued = true;
      requestAnimationFrame(() => { renderQueued = false; render(); });
    }
  }

  function applyEvent(event) {
    if (event.status && event.status !== "JOB_STATUS_UNSPECIFIED") job.status = event.status;
    if (typeof event.progress === "number") job.progress = event.progress;
    if (event.phase) job.phase = event.phase;
    const type = short(event.type);
    job.steps = job.steps || [];
    let step = event.step ? job.steps.find((s) => s.name === event.step) : null;
    if (event.step && !step) {
      step = { name: event.step, status: "STEP_STATUS_PENDING", attempt: 0 };
      job.steps.push(step);
    }
    if (step) {
      if (event.attempt) step.attempt = event.attempt;
      if (type !== "PROGRESS") delete step.inputRequest; // asked anew, answered, or ended
      if (type === "INPUT_REQUIRED") {
        Object.assign(step, { status: WAITING_STEP, inputRequest: event.inputRequest || {} });
      } else if (type === "STEP_STARTED") {
        Object.assign(step, { status: "STEP_STATUS_RUNNING", error: null, retryDelay: "" });
        outputs.delete(step.name);
      } else if (type === "PROGRESS") {
        if (step.status === "STEP_STATUS_PENDING") step.status = "STEP_STATUS_RUNNING";
        if (event.partialOutput) outputs.set(step.name, event.partialOutput);
      } else if (type === "STEP_SUCCEEDED") {
        step.status = "STEP_STATUS_SUCCEEDED";
      } else if (type === "STEP_RETRYING") {
        Object.assign(step, { status: "STEP_STATUS_RETRYING", error: { message: event.message }, retryDelay: event.retryDelay });
      } else if (type === "STEP_FAILED") {
        Object.assign(step, { status: "STEP_STATUS_FAILED", error: { message: event.message } });
      }
    }
    if (type === "CANCELLED") {
      for (const s of job.steps) {
        if (!/SUCCEEDED|FAILED/.test(s.status)) s.status = "STEP_STATUS_CANCELLED";
        delete s.inputRequest;
      }
    }
    if (type === "FAILED" && !job.error) job.error = { message: event.message };
  }

  async function finish(gen, known) {
    stopWatching();
    setConnection("idle");
    let final = known;
    if (!final) {
      try { final = await api("GET", jobPath(page.jobId)); } catch (err) { showError(err); }
    }
    if (gen !== generation) return;
    if (final) job = final;
    render();
    if (job.status === "JOB_STATUS_SUCCEEDED") renderResult(job.result || {});
    refreshRecent();
  }

  // ---------------------------------------------------------------- rendering the job

  function render() {
    if (!job) return;
    // A job that starts, waits for its owner or resumes: the recent-jobs list says so too
    // (its end refreshes the list in finish()).
    if (page.status && page.status !== job.status && !TERMINAL.has(job.status)) refreshRecent();
    page.status = job.status;
    const status = short(job.status).toLowerCase();
    const progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
    $("job-title").textContent = humanise(job.type);
    $("job-id").textContent = `Job ${job.jobId}` + (job.createdAt ? ` · started ${ago(job.createdAt)}` : "");
    renderSchedule();
    renderOrigin();
    const badge = $("job-status");
    badge.textContent = label(job.status);
    badge.className = `badge status-${status}`;
    $("job").dataset.status = status;
    $("progress").setAttribute("aria-valuenow", String(progress));
    $("progress-fill").style.width = `${progress}%`; // CSSOM, allowed by the CSP
    $("progress-fill").className = `progress-fill fill-${status}`;
    $("progress-pct").textContent = `${progress}%`;
    $("job-phase").textContent = job.phase || label(job.status);
    renderSteps(job.steps || []);
    renderInputs(job.steps || []);
    const failed = job.status === "JOB_STATUS_FAILED";
    $("job-error").hidden = !failed;
    if (failed) {
      const e = job.error || {};
      $("job-error-text").textContent = [e.message, e.code ? `(${e.code})` : ""].filter(Boolean).join(" ");
    }
    const terminal = TERMINAL.has(job.status);
    $("cancel").hidden = terminal;
    $("retry").hidden = !(failed || job.status === "JOB_STATUS_CANCELLED");
    $("delete").hidden = !terminal;
    $("fork").hidden = !terminal;
    if (!terminal) closeFork();
  }

  // A whole number of hours, minutes or seconds, in the largest unit that fits.
  function span(seconds) {
    if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
    if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }

  // Scheduling, when the job asked for any: its priority, when it may start, its deadline
  // (a Duration from creation, "2s" in JSON) and its concurrency key, with the most of
  // its jobs that may run at once when it set a limit.
  function renderSchedule() {
    const parts = [];
    const priority = Number(job.priority) || 5;
    if (priority !== 5) parts.push(`Priority ${priority}`);
    if (job.notBefore) {
      const when = new Date(job.notBefore);
      parts.push(when > new Date() ? `starts ${ago(job.notBefore)}` : `not before ${when.toLocaleTimeString()}`);
    }
    if (job.deadline) parts.push(`deadline ${span(parseFloat(job.deadline))} after creation`);
    if (job.concurrencyKey) {
      const limit = Number(job.concurrencyLimit) || 0;
      parts.push(`key ${job.concurrencyKey}` + (limit ? ` (at most ${limit} at once)` : ""));
    }
    $("job-schedule").textContent = parts.join(" · ");
    $("job-schedule").hidden = !parts.length;
  }

  // Where the job came from: the job it was forked from (ForkJob), or the job whose step
  // created it (a bulk import's row); a click opens that job.
  function renderOrigin() {
    const box = $("job-origin");
    const from = job.forkedFromJobId ? ["Forked from job", job.forkedFromJobId]
      : job.parentJobId ? ["Created by job", job.parentJobId] : null;
    box.hidden = !from;
    if (!from || box.dataset.jobId === from[1]) return;
    box.dataset.jobId = from[1];
    const open = el("button", "btn ghost small mono", from[1]);
    open.type = "button";
    open.addEventListener("click", () => { hideError(); openJob(from[1]); });
    box.replaceChildren(`${from[0]} `, open);
  }

  // Which steps of a job type may run at the same time as each other: by its graph
  // (ListJobTypes), two steps neither of which waits, however indirectly, for the other.
  const peerCache = new Map();
  function parallelPeers(typeName) {
    if (peerCache.has(typeName)) return peerCache.get(typeName);
    const spec = jobTypes.find((t) => t.name === typeName);
    const graph = (spec && Array.isArray(spec.graph)) ? spec.graph : [];
    const peers = new Map();
    if (!graph.length) return peers; // not known yet (no token, types still loading)
    const after = new Map(graph.map((g) => [g.name, g.after || []]));
    const ancestors = new Map();
    const up = (name, seen = new Set()) => {
      for (const parent of after.get(name) || []) {
        if (!seen.has(parent)) { seen.add(parent); up(parent, seen); }
      }
      return seen;
    };
    for (const name of after.keys()) ancestors.set(name, up(name));
    for (const a of after.keys()) {
      peers.set(a, [...after.keys()].filter((b) => b !== a && !ancestors.get(a).has(b) && !ancestors.get(b).has(a)));
    }
    peerCache.set(typeName, peers);
    return peers;
  }

  function renderSteps(steps) {
    const list = $("steps");
    const peers = parallelPeers(job.type);
    const unfinished = new Set(steps.filter((s) => /PENDING|RUNNING|RETRYING|WAITING_INPUT/.test(s.status || "STEP_STATUS_PENDING")).map((s) => s.name));
    for (const step of steps) {
      let node = stepNodes.get(step.name);
      if (!node) {
        node = { li: el("li", "step"), icon: el("span", "step-icon"), name: el("span", "step-name", humanise(step.name)),
          meta: el("span", "step-meta"), out: el("pre", "step-output") };
        node.icon.setAttribute("aria-hidden", "true");
        const head = el("div", "step-head");
        head.append(node.icon, node.name, node.meta);
        node.li.append(head, node.out);
        node.li.dataset.step = step.name;
        stepNodes.set(step.name, node);
        list.append(node.li);
      }
      const state = short(step.status).toLowerCase() || "pending";
      node.li.className = `step step-${state}`;
      node.li.dataset.state = state;
      const bits = [label(step.status)];
      const alongside = peers.get(step.name) || [];
      node.li.dataset.parallel = alongside.join(" ");
      // Said while this step and some of those it may run with are still to finish.
      const open = alongside.filter((name) => unfinished.has(name));
      if (open.length && unfinished.has(step.name)) {
        const names = open.map(humanise);
        bits.push(`in parallel with ${names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names[0]}`);
      }
      if (step.attempt > 1) bits.push(`attempt ${step.attempt}`);
      if (state === "retrying" && step.retryDelay) bits.push(`next try in ${parseFloat(step.retryDelay).toFixed(1)} s`);
      if ((state === "retrying" || state === "failed") && step.error && step.error.message) bits.push(step.error.message);
      node.meta.textContent = bits.join(" · ");
      const text = outputs.get(step.name) || "";
      node.out.hidden = !text;
      if (node.out.textContent !== text) {
        const follow = node.out.scrollTop + node.out.clientHeight >= node.out.scrollHeight - 8;
        node.out.textContent = text;
        if (follow) node.out.scrollTop = node.out.scrollHeight;
      }
      node.out.classList.toggle("writing", state === "running");
    }
  }

  // ---------------------------------------------------------------- waiting for input

  // One card per step waiting for input: its prompt, its draft, and the ways to answer.
  // A card is rebuilt only when what its step asks changes, so an answer being written is
  // never wiped by the events of a step running alongside.
  function renderInputs(steps) {
    const waiting = steps.filter((s) => s.status === WAITING_STEP && s.inputRequest);
    const box = $("inputs");
    const keep = new Set();
    for (const step of waiting) {
      const key = `${step.attempt}:${JSON.stringify(step.inputRequest)}`;
      let card = inputCards.get(step.name);
      if (!card || card.key !== key) {
        const node = inputCard(step.name, step.inputRequest);
        if (card) card.node.replaceWith(node); else box.append(node);
        if (!card) requestAnimationFrame(() => node.scrollIntoView({ behavior: "smooth", block: "nearest" }));
        card = { node, key };
        inputCards.set(step.name, card);
      }
      keep.add(step.name);
    }
    for (const [name, card] of inputCards) {
      if (!keep.has(name)) { card.node.remove(); inputCards.delete(name); }
    }
    page.waiting = waiting.map((s) => s.name);
    box.hidden = !waiting.length;
  }

  const isObject = (v) => Boolean(v) && typeof v === "object" && !Array.isArray(v);

  // Whether an answer may be {"approved": true}: the schema names `approved`, or one of
  // its alternatives does.
  function acceptsApproval(schema) {
    if (!isObject(schema)) return false;
    if (isObject(schema.properties) && "approved" in schema.properties) return true;
    return ["oneOf", "anyOf", "allOf"].some((k) => Array.isArray(schema[k]) && schema[k].some(acceptsApproval));
  }

  function inputCard(stepName, request) {
    const draft = isObject(request.draft) ? request.draft : null;
    const cv = draft && isObject(draft.tailored_cv) ? draft.tailored_cv : null;
    const card = el("section", "input-request");
    card.dataset.step = stepName;
    const titleId = `input-title-${stepName}`;
    card.setAttribute("aria-labelledby", titleId);

    const head = el("div", "input-head");
    const title = el("h3", "input-title", humanise(stepName));
    title.id = titleId;
    head.append(el("span", "badge status-waiting_input", "Waiting for you"), title);
    if (request.expiresAt) {
      const when = new Date(request.expiresAt);
      head.append(el("span", "input-expiry", `answer by ${when.toLocaleString()} (${ago(request.expiresAt)})`));
    }
    card.append(head, el("p", "input-prompt", request.prompt || "This step needs your answer to go on."));

    const errors = el("div", "input-errors");
    errors.setAttribute("role", "alert");
    errors.hidden = true;
    const actions = el("div", "input-actions");
    const button = (text, className, onClick) => {
      const b = el("button", `btn ${className}`, text);
      b.type = "button";
      b.addEventListener("click", onClick);
      return b;
    };
    const send = (answer, pressed) => submitInput(stepName, answer, card, pressed);

    if (cv) {
      const view = el("article", "markdown input-draft");
      view.setAttribute("aria-label", "The draft");
      view.append(renderMarkdown(cvMarkdown(cv)));
      const editor = cvEditor(cv);
      editor.form.hidden = true;
      const approve = button("Approve", "primary", () => send({ approved: true }, approve));
      const edit = button("Edit", "", () => {
        view.hidden = true;
        editor.form.hidden = false;
        approve.hidden = true;
        edit.hidden = true;
        submit.hidden = false;
        cancel.hidden = false;
        editor.focus();
      });
      const submit = button("Submit", "primary", () => {
        const edited = editor.value();
        if (edited.error) { showViolations(card, [{ field: "tailored_cv", description: edited.error }]); return; }
        send({ tailored_cv: edited.value }, submit);
      });
      const cancel = button("Cancel", "ghost", () => {
        view.hidden = false;
        editor.form.hidden = true;
        approve.hidden = false;
        edit.hidden = false;
        submit.hidden = true;
        cancel.hidden = true;
        showViolations(card, []);
      });
      submit.hidden = true;
      cancel.hidden = true;
      actions.append(approve, edit, submit, cancel);
      card.append(view, editor.form, errors, actions);
    } else {
      const field = el("div", "field");
      const area = el("textarea", "editor input-json");
      area.id = `input-answer-${stepName}`;
      area.rows = 8;
      area.spellcheck = false;
      area.dataset.field = "";
      area.value = JSON.stringify(draft || {}, null, 2);
      area.rows = Math.max(4, Math.min(18, area.value.split("\n").length + 1));
      const lab = el("label", "", "Your answer ");
      lab.htmlFor = area.id;
      lab.append(el("span", "muted", "(JSON)"));
      field.append(lab, area, fieldError(area));
      const submit = button("Submit", "primary", () => {
        let value;
        try { value = JSON.parse(area.value); } catch (err) { value = undefined; }
        if (!isObject(value)) {
          showViolations(card, [{ field: "", description: "The answer must be a JSON object: { … }." }]);
          return;
        }
        send(value, submit);
      });
      actions.append(submit);
      if (acceptsApproval(request.schema)) actions.prepend(button("Approve", "", (e) => send({ approved: true }, e.currentTarget)));
      card.append(field, errors, actions);
    }
    return card;
  }

  // A tailored CV as Markdown, drawn by the same renderer as the job's preview.
  function cvMarkdown(cv) {
    const text = (v) => String(v == null ? "" : v).trim();
    const lines = [`# ${text(cv.name) || "Tailored CV"}`, ""];
    if (text(cv.headline)) lines.push(`**${text(cv.headline)}**`, "");
    const contact = [cv.email, cv.phone, cv.location].map(text).filter(Boolean);
    if (contact.length) lines.push(contact.join(" · "), "");
    if (text(cv.summary)) lines.push("## Summary", "", text(cv.summary), "");
    const skills = (Array.isArray(cv.skills) ? cv.skills : []).map(text).filter(Boolean);
    if (skills.length) lines.push("## Skills", "", skills.join(", "), "");
    const roles = Array.isArray(cv.experience) ? cv.experience.filter(isObject) : [];
    if (roles.length) {
      lines.push("## Experience", "");
      for (const role of roles) {
        lines.push(`### ${roleTitle(role)}`, "");
        for (const bullet of Array.isArray(role.bullets) ? role.bullets : []) {
          if (text(bullet)) lines.push(`- ${text(bullet)}`);
        }
        lines.push("");
      }
    }
    const degrees = Array.isArray(cv.education) ? cv.education.filter(isObject) : [];
    if (degrees.length) {
      lines.push("## Education", "");
      for (const d of degrees) {
        lines.push(`- ${[d.degree, d.institution].map(text).filter(Boolean).join(" — ")}${text(d.year) ? ` (${text(d.year)})` : ""}`);
      }
      lines.push("");
    }
    return lines.join("\n");
  }

  function roleTitle(role) {
    const name = [role.title, role.company].map((v) => String(v || "").trim()).filter(Boolean).join(" — ");
    const start = String(role.start || "").trim();
    const end = String(role.end || "").trim();
    const dates = start ? ` (${start} – ${end || "Present"})` : end ? ` (${end})` : "";
    return `${name || "Role"}${dates}`;
  }

  // The CV's fields a person edits most: headline, summary, skills and each role's
  // bullets; everything else goes back as drafted. "Edit JSON instead" edits it all.
  function cvEditor(cv) {
    const form = el("div", "cv-editor");
    const controls = [];
    let ids = 0;
    const uid = () => `cv-${Date.now().toString(36)}-${(ids += 1)}`;
    const add = (parent, labelText, control, fieldName, hint) => {
      const wrap = el("div", "field");
      control.id = uid();
      control.dataset.field = fieldName;
      const lab = el("label", "", labelText);
      lab.htmlFor = control.id;
      if (hint) lab.append(" ", el("span", "muted", hint));
      wrap.append(lab, control, fieldError(control));
      parent.append(wrap);
      controls.push(control);
      return control;
    };
    const input = (value) => { const c = el("input"); c.type = "text"; c.value = value || ""; return c; };
    const area = (value, rows) => { const c = el("textarea"); c.rows = rows; c.value = value || ""; return c; };

    const fields = el("div", "cv-fields");
    const headline = add(fields, "Headline", input(cv.headline), "tailored_cv.headline");
    const summary = add(fields, "Summary", area(cv.summary, 4), "tailored_cv.summary");
    const skills = add(fields, "Skills", input((cv.skills || []).join(", ")), "tailored_cv.skills", "(comma-separated)");
    const roles = Array.isArray(cv.experience) ? cv.experience : [];
    const bullets = roles.map((role, i) => {
      if (!isObject(role)) return null;
      const box = el("fieldset", "cv-role");
      box.append(el("legend", "", roleTitle(role)));
      fields.append(box);
      const lines = Array.isArray(role.bullets) ? role.bullets : [];
      return add(box, "Bullets", area(lines.join("\n"), Math.max(2, Math.min(8, lines.length + 1))),
        `tailored_cv.experience[${i}].bullets`, "(one per line)");
    });

    const jsonWrap = el("div", "field");
    const json = area("", 16);
    json.className = "editor";
    json.spellcheck = false;
    json.id = uid();
    json.dataset.field = "tailored_cv";
    const jsonLabel = el("label", "", "The tailored CV ");
    jsonLabel.htmlFor = json.id;
    jsonLabel.append(el("span", "muted", "(JSON)"));
    jsonWrap.append(jsonLabel, json, fieldError(json));
    jsonWrap.hidden = true;
    controls.push(json);

    const fromFields = () => {
      const edited = JSON.parse(JSON.stringify(cv));
      edited.headline = headline.value.trim();
      edited.summary = summary.value.trim();
      edited.skills = skills.value.split(",").map((x) => x.trim()).filter(Boolean);
      bullets.forEach((box, i) => {
        if (box) edited.experience[i].bullets = box.value.split("\n").map((x) => x.trim()).filter(Boolean);
      });
      return edited;
    };
    const toggle = el("button", "btn ghost small", "Edit JSON instead");
    toggle.type = "button";
    toggle.addEventListener("click", () => {
      json.value = JSON.stringify(fromFields(), null, 2);
      fields.hidden = true;
      jsonWrap.hidden = false;
      toggle.hidden = true;
      json.focus();
    });
    form.append(fields, jsonWrap, toggle);
    return {
      form,
      controls,
      focus: () => summary.focus(),
      value: () => {
        if (jsonWrap.hidden) return { value: fromFields() };
        try {
          const value = JSON.parse(json.value);
          return isObject(value) ? { value } : { error: "The CV must be a JSON object: { … }." };
        } catch (err) {
          return { error: `Invalid JSON: ${err.message}` };
        }
      },
    };
  }

  // The message under a control, filled by showViolations; the control points at it.
  function fieldError(control) {
    const message = el("p", "field-error");
    message.id = `${control.id}-error`;
    message.hidden = true;
    control.setAttribute("aria-describedby", message.id);
    return message;
  }

  // A 400's field violations: each under the field it names (its path below the answer,
  // as "tailored_cv.summary"; a JSON box takes those of everything in it), and any that
  // no field on show takes, listed above the buttons.
  function showViolations(card, violations) {
    const named = violations.map((v) => ({ ...v, field: v.field.replace(/^input(\.|$)/, "") }));
    const placed = new Set();
    for (const control of card.querySelectorAll("[data-field]")) {
      const f = control.dataset.field;
      const shown = !control.closest("[hidden]");
      const mine = shown ? named.filter((v) => f === "" || v.field === f || v.field.startsWith(`${f}.`) || v.field.startsWith(`${f}[`)) : [];
      for (const v of mine) placed.add(v);
      if (mine.length) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
      const message = document.getElementById(`${control.id}-error`);
      if (message) {
        message.textContent = mine.map((v) => (v.field === f || !v.field ? v.description : `${v.field}: ${v.description}`)).join("; ");
        message.hidden = !mine.length;
      }
    }
    const rest = named.filter((v) => !placed.has(v));
    const box = card.querySelector(".input-errors");
    box.replaceChildren();
    if (rest.length) {
      box.append(el("strong", "", "The answer was not taken:"));
      const list = el("ul");
      for (const v of rest) {
        const item = el("li");
        if (v.field) item.append(el("code", "", v.field), " ");
        item.append(v.description);
        list.append(item);
      }
      box.append(list);
    }
    box.hidden = !rest.length;
  }

  async function submitInput(stepName, answer, card, pressed) {
    const gen = generation;
    const buttons = [...card.querySelectorAll(".input-actions button")];
    for (const b of buttons) b.disabled = true;
    const before = pressed.textContent;
    pressed.textContent = "Sending…";
    hideError();
    try {
      const updated = await api("POST", `${jobPath(page.jobId)}:submitInput`, { step: stepName, input: answer });
      if (gen !== generation) return;
      showViolations(card, []);
      card.classList.add("answered");
      page.answered = (page.answered || 0) + 1;
      // The job as the answer left it; the stream brings the rest.
      job = updated;
      render();
    } catch (err) {
      if (gen !== generation) return;
      if (err.status === 400) {
        showViolations(card, err.violations.length ? err.violations : [{ field: "", description: err.message }]);
      } else if (err.status === 409) {
        // Answered elsewhere, or the job moved on: show it as it stands.
        showViolations(card, [{ field: "", description: err.message }]);
        try { job = await api("GET", jobPath(page.jobId)); render(); } catch (again) { showError(again); }
      } else {
        showError(err);
      }
    } finally {
      pressed.textContent = before;
      for (const b of buttons) b.disabled = false;
    }
  }

  // ---------------------------------------------------------------- fork

  function openFork() {
    const form = $("fork-form");
    if (!form.hidden) { closeFork(); return; }
    const steps = job.steps || [];
    const firstUnfinished = steps.findIndex((s) => s.status !== "STEP_STATUS_SUCCEEDED");
    $("fork-step").replaceChildren(...steps.map((step, i) => {
      const state = step.status === "STEP_STATUS_SUCCEEDED" ? "" : ` (${label(step.status).toLowerCase()})`;
      const option = el("option", "", `${humanise(step.name)}${i === 0 ? ": run everything again" : state}`);
      option.value = i === 0 ? "" : step.name;
      option.dataset.step = step.name;
      return option;
    }));
    $("fork-step").selectedIndex = Math.max(0, firstUnfinished);
    $("fork-overrides").value = "";
    $("fork-overrides").removeAttribute("aria-invalid");
    $("fork-error").hidden = true;
    forkKey = newKey();
    form.hidden = false;
    $("fork").setAttribute("aria-expanded", "true");
    $("fork-step").focus();
  }

  function closeFork() {
    $("fork-form").hidden = true;
    $("fork").setAttribute("aria-expanded", "false");
    forkKey = null;
  }

  async function forkJob(event) {
    event.preventDefault();
    const problem = (text) => { $("fork-error").textContent = text; $("fork-error").hidden = false; };
    let overrides = {};
    const raw = $("fork-overrides").value.trim();
    if (raw) {
      try { overrides = JSON.parse(raw); } catch (err) { overrides = null; }
      if (!isObject(overrides)) {
        $("fork-overrides").setAttribute("aria-invalid", "true");
        problem("Input changes must be a JSON object: { … }.");
        return;
      }
    }
    $("fork-overrides").removeAttribute("aria-invalid");
    $("fork-error").hidden = true;
    const button = $("fork-submit");
    button.disabled = true;
    const source = page.jobId;
    const gen = generation;
    try {
      const created = await api("POST", `${jobPath(source)}:fork`, {
        fromStep: $("fork-step").value, inputOverrides: overrides, idempotencyKey: forkKey,
      });
      if (gen !== generation) return;
      closeFork();
      openJob(created.jobId, created);
      refreshRecent();
    } catch (err) {
      const details = err.violations && err.violations.length
        ? err.violations.map((v) => `${v.field} ${v.description}`).join("; ") : explain(err);
      problem(details);
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- the result

  function renderResult(result) {
    const markdownKey = ["preview_markdown", "report_markdown"].find((k) => typeof result[k] === "string") ||
      Object.keys(result).find((k) => k.endsWith("_markdown") && typeof result[k] === "string");
    const scoreKey = ["match_score", "coverage_score", "score"].find((k) => typeof result[k] === "number");
    const matched = Array.isArray(result.matched_skills) ? result.matched_skills : [];
    const missing = Array.isArray(result.missing_skills) ? result.missing_skills : [];

    $("score-box").hidden = !scoreKey;
    if (scoreKey) {
      const score = Math.round(result[scoreKey]);
      $("score-label").textContent = humanise(scoreKey);
      $("score").textContent = String(score);
      $("score-fill").style.width = `${Math.max(0, Math.min(100, score))}%`;
      $("score-fill").className = `meter-fill ${score >= 75 ? "high" : score >= 50 ? "mid" : "low"}`;
    }
    fillChips("matched", matched);
    fillChips("missing", missing);
    $("insights").hidden = !scoreKey && !matched.length && !missing.length;

    $("preview").replaceChildren(renderMarkdown(markdownKey ? result[markdownKey] : ""));
    $("tab-preview").hidden = !markdownKey;
    const letter = typeof result.cover_letter === "string" ? result.cover_letter : "";
    $("cover-letter").replaceChildren(renderMarkdown(letter));
    $("tab-letter").hidden = !letter;
    $("result-json").textContent = JSON.stringify(result, null, 2);
    renderFiles(Array.isArray(result.artifacts) ? result.artifacts : []);
    selectTab(markdownKey ? "preview" : letter ? "letter" : "raw");
    $("result").hidden = false;
  }

  // A job's artifacts: each a button that downloads it with the user's token (a plain
  // link could not send the Authorization header), then saves it under its name.
  function renderFiles(artifacts) {
    const files = artifacts.filter((a) => a && typeof a.name === "string");
    $("files-box").hidden = !files.length;
    $("files").replaceChildren(...files.map((artifact) => {
      const item = el("li", "file");
      const button = el("button", "btn", `Download ${artifact.name}`);
      button.type = "button";
      button.addEventListener("click", () => downloadArtifact(page.jobId, artifact.name, button));
      const size = Number(artifact.size) || 0;
      item.append(button, el("span", "file-meta", `${formatBytes(size)} · ${artifact.content_type || ""}`));
      return item;
    }));
  }

  async function downloadArtifact(jobId, name, button) {
    button.disabled = true;
    try {
      const res = await fetch(`${jobPath(jobId)}/artifacts/${encodeURIComponent(name)}`, {
        headers: { Authorization: `Bearer ${token}` }, cache: "no-store",
      });
      if (!res.ok) {
        let body = null;
        try { body = await res.json(); } catch (err) { body = null; }
        throw new ApiError(res.status, body, res.headers.get("Retry-After"));
      }
      const url = URL.createObjectURL(await res.blob());
      const link = el("a");
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  function formatBytes(size) {
    if (size < 1024) return `${size} B`;
    if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
    return `${(size / 1024 / 1024).toFixed(1)} MiB`;
  }

  function fillChips(which, skills) {
    $(`${which}-box`).hidden = !skills.length;
    $(`${which}-skills`).replaceChildren(...skills.map((s) => el("li", `chip chip-${which}`, s)));
  }

  function selectTab(name) {
    for (const tab of ["preview", "letter", "raw"]) {
      const on = tab === name;
      $(`tab-${tab}`).setAttribute("aria-selected", String(on));
      $(`tab-${tab}`).tabIndex = on ? 0 : -1;
      $(`panel-${tab}`).hidden = !on;
    }
  }

  // A small Markdown subset, built as DOM nodes: headings, paragraphs, lists, quotes, rules,
  // fenced code, **bold**, *italic*, `code` and http(s) links. Never innerHTML.
  function renderMarkdown(source) {
    const root = document.createDocumentFragment();
    const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) { i += 1; continue; }
      if (/^```/.test(line)) {
        const code = [];
        for (i += 1; i < lines.length && !/^```/.test(lines[i]); i += 1) code.push(lines[i]);
        i += 1;
        const pre = el("pre");
        pre.append(el("code", "", code.join("\n")));
        root.append(pre);
      } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
        root.append(inline(m[2].replace(/\s+#+\s*$/, ""), el(`h${Math.min(6, m[1].length + 1)}`)));
        i += 1;
      } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
        root.append(el("hr"));
        i += 1;
      } else if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
        const ordered = /^\s*\d/.test(line);
        const list = el(ordered ? "ol" : "ul");
        while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i]) && /^\s*\d/.test(lines[i]) === ordered) {
          list.append(inline(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ""), el("li")));
          i += 1;
        }
        root.append(list);
      } else if (/^\s*\|/.test(line) && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
        const rows = [];
        for (; i < lines.length && /^\s*\|/.test(lines[i]); i += 1) {
          if (!TABLE_RULE.test(lines[i])) rows.push(cells(lines[i]));
        }
        root.append(table(rows));
      } else if (/^>/.test(line)) {
        const quote = [];
        for (; i < lines.length && /^>/.test(lines[i]); i += 1) quote.push(lines[i].replace(/^>\s?/, ""));
        root.append(inline(quote.join(" "), el("blockquote")));
      } else {
        const para = [];
        for (; i < lines.length && lines[i].trim() && !/^(#{1,6}\s|```|>|\s*\||\s*([-*+]|\d+[.)])\s+)/.test(lines[i]); i += 1) {
          para.push(lines[i].trim());
        }
        if (!para.length) { para.push(line.trim()); i += 1; }
        root.append(inline(para.join(" "), el("p")));
      }
    }
    return root;
  }

  // A GitHub-style table: a header row, a rule of dashes (with colons for alignment,
  // which is not kept), then body rows; cells are split on unescaped pipes.
  const TABLE_RULE = /^\s*\|?(\s*:?-{3,}:?\s*\|)+\s*(:?-{3,}:?\s*)?\|?\s*$/;

  function cells(row) {
    return row.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replace(/\\\|/g, "|"));
  }

  function table(rows) {
    const node = el("table", "md-table");
    const [head, ...body] = rows;
    const thead = el("thead");
    const headRow = el("tr");
    for (const cell of head || []) headRow.append(inline(cell, el("th")));
    thead.append(headRow);
    const tbody = el("tbody");
    for (const row of body) {
      const tr = el("tr");
      for (const cell of row) tr.append(inline(cell, el("td")));
      tbody.append(tr);
    }
    node.append(thead, tbody);
    const wrap = el("div", "md-table-wrap");
    wrap.append(node);
    return wrap;
  }

  const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s](?:[^*]*[^*\s])?)\*|(?<![\w])_([^_]+)_(?![\w])|\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)/;

  function inline(text, parent) {
    let rest = text;
    while (rest) {
      const m = INLINE.exec(rest);
      if (!m) { parent.append(rest); break; }
      if (m.index) parent.append(rest.slice(0, m.index));
      if (m[1] !== undefined) parent.append(el("code", "", m[1]));
      else if (m[2] !== undefined) parent.append(inline(m[2], el("strong")));
      else if (m[3] !== undefined || m[4] !== undefined) parent.append(inline(m[3] || m[4], el("em")));
      else parent.append(link(m[5], m[6]));
      rest = rest.slice(m.index + m[0].length);
    }
    return parent;
  }

  function link(text, href) {
    let url = null;
    try { url = new URL(href); } catch (err) { /* relative or malformed: not a link */ }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) return document.createTextNode(text);
    const a = el("a");
    a.href = url.href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    return inline(text, a);
  }

  // ---------------------------------------------------------------- recent jobs

  async function refreshRecent(more) {
    if (!token) return;
    const query = new URLSearchParams({ pageSize: "10" });
    if (more && nextPageToken) query.set("pageToken", nextPageToken);
    let data;
    try { data = await api("GET", `/v1/jobs?${query}`); } catch (err) { showError(err); return; }
    const items = (data.jobs || []).map((j) => {
      const li = el("li");
      const button = el("button", "recent-item");
      button.type = "button";
      button.dataset.jobId = j.jobId;
      const status = short(j.status).toLowerCase();
      const top = el("span", "recent-top");
      top.append(el("span", `dot-status status-${status}`), el("span", "recent-type", humanise(j.type)),
        el("span", "recent-when", ago(j.createdAt)));
      const bottom = el("span", "recent-bottom",
        j.status === "JOB_STATUS_RUNNING" ? `${j.progress}% · ${j.phase}`
          : j.status === WAITING_JOB ? `Waiting for you · ${j.progress}%` : label(j.status));
      button.append(top, bottom);
      button.addEventListener("click", () => { hideError(); openJob(j.jobId); });
      li.append(button);
      return li;
    });
    if (more) $("recent").append(...items);
    else $("recent").replaceChildren(...items);
    nextPageToken = data.nextPageToken || "";
    $("more").hidden = !nextPageToken;
    $("recent-empty").hidden = $("recent").children.length > 0;
    highlightRecent();
  }

  function highlightRecent() {
    for (const b of document.querySelectorAll(".recent-item")) {
      if (b.dataset.jobId === page.jobId) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
  }

  // ---------------------------------------------------------------- actions

  async function jobAction(button, run) {
    button.disabled = true;
    hideError();
    try { await run(); } catch (err) { showError(err); } finally { button.disabled = false; }
  }

  function cancelJob() {
    return jobAction($("cancel"), async () => {
      const updated = await api("POST", `${jobPath(page.jobId)}:cancel`, {});
      if (updated.jobId !== page.jobId) return;
      // The stream brings the CANCELLED event; until then, show what the API said.
      job.phase = updated.phase || "Cancelling…";
      render();
    });
  }

  function retryJob() {
    return jobAction($("retry"), async () => {
      const gen = generation;
      const updated = await api("POST", `${jobPath(page.jobId)}:retry`, {});
      if (gen !== generation) return;
      job = updated;
      job.error = null;
      $("result").hidden = true;
      render();
      startWatch(gen);
    });
  }

  let deleteArmed = 0;
  function deleteJob() {
    const button = $("delete");
    if (!deleteArmed) {
      button.textContent = "Click again to delete";
      deleteArmed = setTimeout(() => { deleteArmed = 0; button.textContent = "Delete job"; }, 4000);
      return undefined;
    }
    clearTimeout(deleteArmed);
    deleteArmed = 0;
    button.textContent = "Delete job";
    return jobAction(button, async () => {
      await api("DELETE", jobPath(page.jobId));
      stopWatching();
      generation += 1;
      Object.assign(page, { jobId: null, status: null });
      $("job").hidden = true;
      $("result").hidden = true;
      history.replaceState(null, "", location.pathname + location.search);
      refreshRecent();
    });
  }

  // ---------------------------------------------------------------- start

  function init() {
    initToken();
    $("job-form").addEventListener("submit", submit);
    $("job-type").addEventListener("change", () => loadExample($("job-type").value));
    $("upload-file").addEventListener("change", uploadFile);
    $("input-json").addEventListener("input", () => {
      exampleRequest += 1;
      idempotencyKey = null;
      validate();
    });
    $("input-json").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("job-form").requestSubmit();
    });
    $("format").addEventListener("click", () => {
      const parsed = parseInput();
      if (parsed.value) $("input-json").value = JSON.stringify(parsed.value, null, 2);
      validate();
    });
    $("reset").addEventListener("click", () => loadExample($("job-type").value));
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      hideError();
      setToken($("token").value);
      loadTypes();
      refreshRecent();
    });
    $("banner-close").addEventListener("click", hideError);
    $("cancel").addEventListener("click", cancelJob);
    $("retry").addEventListener("click", retryJob);
    $("delete").addEventListener("click", deleteJob);
    $("fork").addEventListener("click", openFork);
    $("fork-close").addEventListener("click", closeFork);
    $("fork-form").addEventListener("submit", forkJob);
    $("refresh").addEventListener("click", () => refreshRecent());
    $("more").addEventListener("click", () => refreshRecent(true));
    for (const tab of ["preview", "letter", "raw"]) $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));
    $("copy-letter").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("cover-letter").innerText);
        $("copy-letter").textContent = "Copied";
        setTimeout(() => { $("copy-letter").textContent = "Copy"; }, 1500);
      } catch (err) { showError("Copying needs clipboard permission."); }
    });

    if (!token) {
      showError("Paste your API token (Access, on the right) to start.");
      const option = el("option", "", "CV tailoring");
      option.value = "cv_tailoring";
      $("job-type").replaceChildren(option);
      loadExample("cv_tailoring");
      return;
    }
    loadTypes();
    refreshRecent();
    const fromHash = /^#job=(.+)$/.exec(location.hash);
    if (fromHash) openJob(decodeURIComponent(fromHash[1]));
  }

  init();
})();
