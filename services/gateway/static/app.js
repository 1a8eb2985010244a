// The jobs page: submit a job, watch it live over Server-Sent Events, show its result.
// Plain ES2020, no dependencies. Result text only ever reaches the page as text nodes.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TERMINAL = new Set(["JOB_STATUS_SUCCEEDED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED"]);
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
  const label = (state) => humanise(short(state).toLowerCase());
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
    $("steps").replaceChildren();
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
      if (type === "STEP_STARTED") {
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

  function renderSteps(steps) {
    const list = $("steps");
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
        j.status === "JOB_STATUS_RUNNING" ? `${j.progress}% · ${j.phase}` : label(j.status));
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
