// playground.js — the page: pick a model, draw or drop an image, predict, show the top-k.
(function () {
  "use strict";

  const P = window.TfshipPreprocess;
  const M = window.TfshipModel;
  const $ = (id) => document.getElementById(id);
  const HISTORY_KEY = "tfship.playground.models";
  const HISTORY_SIZE = 12;
  // Pen width as a fraction of the canvas side: the iOS app's (StrokeRasterizer.swift), so a digit
  // drawn here is as thick as MNIST's after scaling to 20 px.
  const LINE_WIDTH_FRACTION = 0.07;
  const AUTO_PREDICT_DELAY_MS = 120;

  const state = {
    config: { server: "", models: [], run: false },
    run: null,            // /playground/run when a run folder is known
    target: null,         // {name, version, label}
    versions: [],
    signatures: [],
    signature: null,
    source: "canvas",     // "canvas" or "file"
    fileBitmap: null,
    inked: false,
    labelsTyped: false,
    request: 0,           // predict requests sent; answers to older ones are dropped
    pending: false,       // a predict is scheduled but not sent yet
  };
  // What tests and curious people can read: the last prediction and the strokes drawn.
  const exposed = { last: null, strokes: [], state };
  window.tfshipPlayground = exposed;

  // ---------------------------------------------------------------- errors and small helpers

  function showError(error) {
    const box = $("error");
    if (!error) { box.hidden = true; box.textContent = ""; return; }
    box.textContent = error instanceof M.ServerError ? error.describe() : String(error.message || error);
    box.hidden = false;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function rememberModel(name) {
    const names = [name, ...history().filter((n) => n !== name)].slice(0, HISTORY_SIZE);
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(names)); } catch (e) { /* storage off: no history */ }
    fillModelNames();
  }

  function history() {
    try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]").filter((n) => typeof n === "string"); } catch (e) { return []; }
  }

  function fillModelNames() {
    const names = [...new Set([...state.config.models, ...history()])];
    $("model-names").replaceChildren(...names.map((n) => { const o = el("option"); o.value = n; return o; }));
  }

  // ---------------------------------------------------------------- the model: status + metadata

  async function loadModel() {
    const name = $("model-name").value.trim();
    if (!name) return;
    state.target = { name, version: $("version").value, label: $("version-label").value.trim() };
    state.signature = null;
    $("model-info").textContent = "loading…";
    try {
      const [status, metadata] = await Promise.all([M.status(state.target), M.metadata(state.target)]);
      showError(null);
      state.versions = status.doc.model_version_status || [];
      state.signatures = M.signatures(metadata.doc);
      state.signature = M.defaultSignature(state.signatures);
      rememberModel(name);
      renderModel(metadata.doc);
      if (state.inked || state.source === "file") predictSoon(0);
    } catch (e) {
      $("model-info").textContent = "";
      state.versions = [];
      state.signatures = [];
      showError(e);
    }
  }

  function renderModel(metadata) {
    const info = $("model-info");
    const spec = metadata.model_spec || {};
    const versions = el("table");
    versions.append(headRow(["version", "state", "status"]));
    state.versions.forEach((v) => {
      const st = v.status || {};
      versions.append(row([v.version, el("span", v.state, `state-${v.state}`), st.error_message || st.error_code || "OK"]));
    });
    const sigs = el("table");
    sigs.append(headRow(["signature", "inputs", "outputs", "playground"]));
    state.signatures.forEach((s) => {
      const io = (ts) => ts.map((t) => `${t.name}: ${t.dtype} ${M.shapeText(t.dims)}`).join("\n");
      sigs.append(row([s.name, io(s.inputs), io(s.outputs),
        el("span", s.plan ? `usable (${s.plan.kind === "mnist" ? "MNIST digit" : `image ${s.plan.height}×${s.plan.width}×${s.plan.channels}`})` : s.reason,
          s.plan ? "sig-usable" : "sig-unusable")]));
    });
    const select = el("select");
    select.id = "signature";
    state.signatures.filter((s) => s.plan).forEach((s) => { const o = el("option", s.name); o.value = s.name; select.append(o); });
    if (state.signature) select.value = state.signature.name;
    select.addEventListener("change", () => { state.signature = state.signatures.find((s) => s.name === select.value); signatureChanged(); predictSoon(0); });
    const pick = el("label", "Signature ");
    pick.append(select);
    info.replaceChildren(
      el("p", `Model ${spec.name || state.target.name}, metadata of version ${spec.version || "?"}`, "muted"),
      versions, sigs,
      state.signature ? pick : el("p", "No signature here takes one image and answers scores; the page cannot use this model.", "sig-unusable"));
    fillVersions();
    signatureChanged();
  }

  function headRow(cells) { const tr = el("tr"); cells.forEach((c) => tr.append(el("th", c))); return tr; }
  function row(cells) {
    const tr = el("tr");
    cells.forEach((c) => { const td = el("td"); td.style.whiteSpace = "pre"; td.append(c instanceof Node ? c : String(c)); tr.append(td); });
    return tr;
  }

  function fillVersions() {
    const select = $("version");
    const chosen = select.value;
    const options = [["", "latest"], ...state.versions.map((v) => [String(v.version), `${v.version} (${v.state})`])];
    select.replaceChildren(...options.map(([value, text]) => { const o = el("option", text); o.value = value; return o; }));
    select.value = options.some(([v]) => v === chosen) ? chosen : "";
  }

  function signatureChanged() {
    const sig = state.signature;
    const outputs = $("output-name");
    outputs.replaceChildren(...(sig ? sig.scoreOutputs : []).map((n) => { const o = el("option", n); o.value = n; return o; }));
    const plan = sig && sig.plan;
    $("image-options").hidden = !plan || plan.kind !== "image";
    $("size-fields").hidden = !plan || !(plan.height === -1 || plan.width === -1);
    $("value-range").disabled = Boolean(plan && plan.integer);
    fillLabels();
  }

  // Class labels: typed by the user, else the run folder's labels.txt for the version served.
  function fillLabels() {
    if (state.labelsTyped) return;
    const versions = (state.run && state.run.versions) || [];
    const wanted = Number(state.target && state.target.version) ||
      Math.max(0, ...state.versions.filter((v) => v.state === "AVAILABLE").map((v) => Number(v.version)));
    const found = versions.find((v) => v.version === wanted && v.labels);
    $("labels").value = found ? found.labels.join("\n") : "";
    $("labels-source").textContent = found
      ? `from ${state.run.run_dir}/saved_model/${found.version}/assets/labels.txt`
      : "no labels known: class indices are shown (type labels above to name them)";
  }

  function labelsFor(count) {
    const typed = $("labels").value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
    return typed.length === count ? typed : Array.from({ length: count }, (_, i) => String(i));
  }

  // ---------------------------------------------------------------- input: the canvas and dropped files

  const canvas = $("draw");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });

  function clearCanvas() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    state.inked = false;
    exposed.strokes = [];
  }

  function canvasPoint(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  }

  function setUpDrawing() {
    let drawing = null;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    canvas.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      canvas.setPointerCapture(e.pointerId);
      if (state.source !== "canvas") { state.source = "canvas"; $("dropped").hidden = true; }
      const [x, y] = canvasPoint(e);
      drawing = { id: e.pointerId, type: e.pointerType, last: [x, y], points: 1 };
      ctx.fillStyle = "#fff";
      ctx.beginPath();
      ctx.arc(x, y, (LINE_WIDTH_FRACTION * canvas.width) / 2, 0, 2 * Math.PI);
      ctx.fill();
      state.inked = true;
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drawing || e.pointerId !== drawing.id) return;
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = LINE_WIDTH_FRACTION * canvas.width;
      ctx.beginPath();
      ctx.moveTo(...drawing.last);
      for (const ev of events.length ? events : [e]) {
        drawing.last = canvasPoint(ev);
        ctx.lineTo(...drawing.last);
        drawing.points++;
      }
      ctx.stroke();
    });
    const end = (e) => {
      if (!drawing || e.pointerId !== drawing.id) return;
      exposed.strokes.push({ pointerType: drawing.type, points: drawing.points });
      drawing = null;
      if ($("auto-predict").checked) predictSoon(AUTO_PREDICT_DELAY_MS);
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  async function useFile(file) {
    if (!file) return;
    try {
      // Pixels as stored: EXIF orientation applied (as the Python clients do), no colour management.
      state.fileBitmap = await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none" });
    } catch (e) {
      showError(new Error(`Cannot read '${file.name}' as an image (${e.message || e}).`));
      return;
    }
    state.source = "file";
    const img = $("dropped");
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    img.title = file.name;
    predictSoon(0);
  }

  function setUpDropZone() {
    const zone = $("drop-zone");
    ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, () => zone.classList.remove("over")));
    zone.addEventListener("drop", (e) => { e.preventDefault(); useFile(e.dataTransfer.files[0]); });
    $("file").addEventListener("change", (e) => useFile(e.target.files[0]));
  }

  // The current input as RGBA pixels: composited over white (files) or the black canvas, at `size`
  // ([w, h]) or its own size.
  function sourcePixels(size) {
    const src = state.source === "file" ? state.fileBitmap : canvas;
    const w = size ? size[0] : src.width;
    const h = size ? size[1] : src.height;
    const scratch = new OffscreenCanvas(w, h);
    const c = scratch.getContext("2d", { willReadFrequently: true });
    c.fillStyle = state.source === "file" ? "#fff" : "#000";
    c.fillRect(0, 0, w, h);
    c.imageSmoothingEnabled = true;
    c.imageSmoothingQuality = "high";
    c.drawImage(src, 0, 0, w, h);
    return c.getImageData(0, 0, w, h);
  }

  // The model's input for the current source: {values, preview: {width, height, rgba}} or null.
  function modelInput(plan) {
    if (plan.kind === "mnist") {
      const pixels = sourcePixels(null);
      const gray = P.grayFromRGBA(pixels.data, pixels.width, pixels.height);
      const values = P.mnistInput(gray);
      if (!values) return null;
      const rgba = new Uint8ClampedArray(28 * 28 * 4);
      values.forEach((v, i) => { rgba.fill(Math.round(v * 255), 4 * i, 4 * i + 3); rgba[4 * i + 3] = 255; });
      return { values, preview: { width: 28, height: 28, rgba } };
    }
    const h = plan.height === -1 ? Number($("size-h").value) : plan.height;
    const w = plan.width === -1 ? Number($("size-w").value) : plan.width;
    const pixels = sourcePixels([w, h]);
    const filled = Object.assign({}, plan, { height: h, width: w, dims: plan.dims.map((d, i) => (d === -1 ? [h, w][plan.layout === "chw" ? i - 1 : i] : d)) });
    const range = plan.integer ? "0..255" : $("value-range").value;
    return { values: P.imageValues(pixels.data, filled, range), plan: filled, preview: { width: w, height: h, rgba: pixels.data } };
  }

  // ---------------------------------------------------------------- predict and show

  let timer = null;
  function predictSoon(delay) {
    clearTimeout(timer);
    state.pending = true;
    timer = setTimeout(predict, delay);
  }

  async function predict() {
    state.pending = false;
    const sig = state.signature;
    if (!sig) { showError(new Error("Load a model with a signature the page can use first.")); return; }
    if (state.source === "canvas" && !state.inked) { showResultMessage("Draw something, or drop an image."); return; }
    const input = modelInput(sig.plan);
    if (!input) { showResultMessage("No digit found: the image has no ink."); return; }
    drawPreview(input.preview);
    const ticket = ++state.request;
    try {
      const answer = await M.predict(state.target, sig, input.values, input.plan || sig.plan);
      if (ticket !== state.request) return; // a newer request has been sent meanwhile
      const outputName = $("output-name").value || sig.scoreOutputs[0];
      const scores = M.scoresFrom(answer.doc, outputName);
      showError(null);
      showScores(scores, answer, sig, outputName, input.values, ticket);
    } catch (e) {
      if (ticket !== state.request) return;
      showResultMessage("");
      showError(e);
    }
  }

  function showResultMessage(text) {
    $("top-label").textContent = "—";
    $("latency").textContent = text;
    $("bars").replaceChildren();
  }

  function drawPreview(preview) {
    const out = $("model-input");
    const c = out.getContext("2d");
    const small = new OffscreenCanvas(preview.width, preview.height);
    small.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(preview.rgba), preview.width, preview.height), 0, 0);
    c.imageSmoothingEnabled = false;
    c.clearRect(0, 0, out.width, out.height);
    c.drawImage(small, 0, 0, out.width, out.height);
  }

  function showScores(scores, answer, sig, outputName, values, ticket) {
    const labels = labelsFor(scores.length);
    const k = Math.max(1, Math.min(Number($("top-k").value) || 5, scores.length));
    const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]).slice(0, k);
    // Probabilities fill the bar as they are; other outputs (logits) relative to the largest |value|.
    const probabilities = scores.every((s) => s >= 0 && s <= 1);
    const scale = probabilities ? 1 : Math.max(...scores.map(Math.abs)) || 1;
    $("bars").replaceChildren(...order.map((i) => {
      const li = el("li");
      li.dataset.label = labels[i];
      li.dataset.score = String(scores[i]);
      const track = el("div", undefined, "track");
      const fill = el("div", undefined, "fill");
      fill.style.width = `${Math.max(0, (100 * scores[i]) / scale).toFixed(1)}%`;
      track.append(fill);
      li.append(el("span", labels[i], "name"), track, el("span", scores[i].toFixed(4), "value"));
      return li;
    }));
    $("top-label").textContent = labels[order[0]];
    const upstream = answer.upstreamMs === null ? "" : `, model server ${answer.upstreamMs.toFixed(1)} ms`;
    $("latency").textContent = `${sig.name} → ${outputName}: ${answer.latencyMs.toFixed(1)} ms round trip${upstream}`;
    exposed.last = {
      label: labels[order[0]], labels, scores, latencyMs: answer.latencyMs, upstreamMs: answer.upstreamMs,
      signature: sig.name, output: outputName, source: state.source, input: Array.from(values), request: ticket,
      model: M.modelPath(state.target),
    };
  }

  // ---------------------------------------------------------------- start

  function setUpTabs() {
    document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
      document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
      document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== tab.dataset.view; });
      if (tab.dataset.view === "view-run") window.TfshipRunView.load();
    }));
  }

  async function start() {
    clearCanvas();
    setUpDrawing();
    setUpDropZone();
    setUpTabs();
    $("clear").addEventListener("click", () => { clearCanvas(); state.source = "canvas"; $("dropped").hidden = true; showResultMessage(""); });
    $("predict").addEventListener("click", () => predictSoon(0));
    $("model-form").addEventListener("submit", (e) => { e.preventDefault(); loadModel(); });
    $("version").addEventListener("change", loadModel);
    $("labels").addEventListener("input", () => { state.labelsTyped = true; });
    ["top-k", "output-name", "value-range", "size-h", "size-w"].forEach((id) => $(id).addEventListener("change", () => predictSoon(0)));
    try {
      state.config = await (await fetch("/playground/config")).json();
    } catch (e) {
      showError(new Error(`Playground: cannot read its own settings (${e.message}).`));
    }
    $("server-url").textContent = state.config.server ? `model server ${state.config.server}` : "";
    fillModelNames();
    if (state.config.run) {
      $("tabs").hidden = false;
      state.run = await window.TfshipRunView.load();
    }
    const wanted = new URLSearchParams(location.search).get("model") || state.config.models[0] || history()[0] || "";
    $("model-name").value = wanted;
    if (wanted) await loadModel();
    document.body.dataset.ready = "true";
  }

  start();
})();
