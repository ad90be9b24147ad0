// model.js — TF Serving's REST API as the page uses it: status, metadata, predict, and errors
// worded as the server words them. Calls go to this page's own origin; the playground forwards
// /v1/... to the model server, so the browser needs no CORS from it.
(function (global) {
  "use strict";

  const FLOAT_TYPES = new Set(["DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16"]);
  const INTEGER_TYPES = new Set(["DT_UINT8", "DT_INT8", "DT_INT16", "DT_UINT16", "DT_INT32", "DT_INT64"]);

  // A failed call: `message` is the server's own "error" text when it sent one.
  class ServerError extends Error {
    constructor(status, message, origin) {
      super(message);
      this.status = status;
      this.origin = origin; // "playground" when the playground itself could not get an answer
    }
    describe() {
      if (this.origin === "playground") return `Playground: ${this.message}`;
      return `The model server answered HTTP ${this.status}: ${this.message}`;
    }
  }

  function modelPath(target) {
    let path = `/v1/models/${encodeURIComponent(target.name)}`;
    if (target.label) path += `/labels/${encodeURIComponent(target.label)}`;
    else if (target.version) path += `/versions/${encodeURIComponent(target.version)}`;
    return path;
  }

  async function call(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const started = performance.now();
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ServerError(0, `the playground itself did not answer (${e.message}); is 'tfship playground' still running?`, "playground");
    }
    const text = await response.text();
    const latencyMs = performance.now() - started;
    let doc = null;
    try { doc = JSON.parse(text); } catch (e) { doc = null; }
    if (!response.ok) {
      const message = doc && typeof doc === "object" && "error" in doc ? String(doc.error) : (text.trim().slice(0, 500) || response.statusText);
      throw new ServerError(response.status, message, doc && doc.origin);
    }
    if (doc === null || typeof doc !== "object") {
      throw new ServerError(response.status, `expected a JSON object, got '${text.slice(0, 200)}'`, "playground");
    }
    return { doc, latencyMs, upstreamMs: upstreamMs(response) };
  }

  function upstreamMs(response) {
    const timing = response.headers.get("server-timing") || "";
    const m = /upstream;dur=([0-9.]+)/.exec(timing);
    return m ? Number(m[1]) : null;
  }

  function dims(info) {
    const shape = info.tensor_shape || {};
    if (shape.unknown_rank) return null;
    return (shape.dim || []).map((d) => Number(d.size));
  }

  // metadata -> [{name, method, inputs: [{name, dtype, dims}], outputs: [...], plan, reason}]
  function signatures(metadata) {
    const defs = (((metadata || {}).metadata || {}).signature_def || {}).signature_def || {};
    const tensors = (m) => Object.keys(m || {}).sort().map((name) => ({ name, dtype: m[name].dtype, dims: dims(m[name]) }));
    // TF Serving lists "__saved_model_init_op" (the SavedModel's initializer) among them: not callable.
    return Object.keys(defs).sort().filter((name) => !name.startsWith("__")).map((name) => {
      const sig = { name, method: defs[name].method_name || "", inputs: tensors(defs[name].inputs), outputs: tensors(defs[name].outputs) };
      Object.assign(sig, usability(sig));
      return sig;
    });
  }

  // Whether the page can fill a signature's input from an image, and which outputs are scores.
  function usability(sig) {
    if (sig.inputs.length !== 1) return { plan: null, reason: `takes ${sig.inputs.length} inputs; the page fills one image input` };
    const input = sig.inputs[0];
    if (!FLOAT_TYPES.has(input.dtype) && !INTEGER_TYPES.has(input.dtype)) {
      return { plan: null, reason: `input '${input.name}' is ${input.dtype}; the page sends numbers` };
    }
    if (!input.dims || input.dims.length < 2) return { plan: null, reason: `input '${input.name}' has no batch dimension and image shape` };
    const plan = global.TfshipPreprocess.inputPlan(input.dims.slice(1));
    if (!plan) return { plan: null, reason: `input '${input.name}' of shape ${shapeText(input.dims)} is not an image the page knows` };
    plan.integer = INTEGER_TYPES.has(input.dtype);
    const scores = sig.outputs.filter((o) => FLOAT_TYPES.has(o.dtype) && o.dims && o.dims.length >= 2);
    if (!scores.length) return { plan: null, reason: "no float output of shape [batch, classes]" };
    return { plan, reason: "", scoreOutputs: scores.map((o) => o.name) };
  }

  function shapeText(d) {
    return d === null ? "unknown rank" : `[${d.map((v) => (v === -1 ? "?" : v)).join(", ")}]`;
  }

  // The signature to start with: TF Serving's MNIST example's, then serving_default, then any usable.
  function defaultSignature(sigs) {
    const usable = sigs.filter((s) => s.plan);
    return usable.find((s) => s.name === "predict_images") || usable.find((s) => s.name === "serving_default") || usable[0] || null;
  }

  // The answer's scores for the one image sent, from either JSON form (columnar "outputs": a value
  // or an object by name; row "predictions").
  function scoresFrom(doc, outputName) {
    let value;
    if ("outputs" in doc) {
      const o = doc.outputs;
      value = o !== null && typeof o === "object" && !Array.isArray(o) ? o[outputName] : o;
    } else if ("predictions" in doc) {
      const row = doc.predictions[0];
      value = [row !== null && typeof row === "object" && !Array.isArray(row) ? row[outputName] : row];
    }
    if (!Array.isArray(value)) throw new ServerError(200, `the answer has no output '${outputName}'`, "playground");
    return value.flat(Infinity).map(Number);
  }

  async function status(target) { return call("GET", modelPath(target)); }
  async function metadata(target) { return call("GET", `${modelPath(target)}/metadata`); }

  async function predict(target, signature, values, plan) {
    const input = signature.inputs[0];
    const tensor = [global.TfshipPreprocess.nest(values, plan.dims, plan.integer)];
    const body = { signature_name: signature.name, inputs: { [input.name]: tensor } };
    return call("POST", `${modelPath(target)}:predict`, body);
  }

  global.TfshipModel = { ServerError, status, metadata, predict, signatures, defaultSignature, scoresFrom, shapeText, modelPath };
})(window);
