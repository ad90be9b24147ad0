// runview.js — the run folder's exports manifest and parity report (`tfship playground --model RUN`).
(function (global) {
  "use strict";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function table(headers, rows) {
    return el("table", {}, [
      el("thead", {}, [el("tr", {}, headers.map((h) => el("th", { text: h })))]),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node ? el("td", {}, [c]) : el("td", { text: c })))))),
    ]);
  }

  const num = (v, digits, style) => {
    if (v === null || v === undefined) return "—";
    if (typeof v === "string") return v; // "inf" / "nan" as the server's JSON carries them
    // Two exponent digits, as parity.md writes them (Python's "{:.2e}").
    if (style === "exp") return v.toExponential(digits).replace(/e([+-])(\d)$/, "e$10$2");
    if (style === "pct") return `${(100 * v).toFixed(digits)}%`;
    return v.toFixed(digits);
  };
  const mb = (bytes) => (typeof bytes === "number" ? (bytes / 1e6).toFixed(2) : "—");
  const verdict = (passed, text) => el("span", { class: passed ? "pass" : "fail", text });

  function manifestView(manifest) {
    const source = manifest.source || {};
    const lines = [
      `Source: ${source.path || "?"}, version ${source.version ?? "?"}, signature ${source.signature || "?"}`,
      source.labels ? `Labels: ${source.labels.join(", ")}` : "",
      `Schema version ${manifest.schema_version ?? "?"}, ${(manifest.artifacts || []).length} artifacts`,
    ].filter(Boolean);
    const rows = (manifest.artifacts || []).map((a) => {
      const parity = a.parity ? verdict(a.parity.passed, a.parity.passed ? "pass" : "FAIL") : "not verified";
      const status = a.status ? (a.status === "verified" ? verdict(true, a.status) : verdict(false, a.status)) : "—";
      return [a.path, a.format, a.precision, status, a.reason || "", mb(a.size_bytes), (a.sha256 || "").slice(0, 12), parity];
    });
    return el("div", {}, [
      ...lines.map((t) => el("p", { class: "muted", text: t })),
      table(["artifact", "format", "precision", "status", "reason", "size MB", "sha256", "parity"], rows),
    ]);
  }

  function parityView(report) {
    const ref = report.reference || {};
    const inputs = report.inputs || {};
    const head = `Parity against the SavedModel on ${inputs.count ?? "?"} inputs (${inputs.source || "?"}); `
      + `reference accuracy ${num(ref.accuracy, 2, "pct")}: ${report.passed ? "all pass" : "FAILURES"}.`;
    const rows = (report.artifacts || []).map((a) => [
      a.path, a.precision,
      verdict(a.passed, a.passed ? "pass" : `FAIL: ${(a.failures || []).join("; ")}`),
      num(a.max_abs_diff, 2, "exp"), num(a.mean_abs_diff, 2, "exp"), String(a.worst_index ?? "—"),
      num(a.top1_agreement, 2, "pct"), num(a.accuracy, 2, "pct"), mb(a.size_bytes),
      num(a.latency_ms_batch1, 2), num(a.latency_ms_per_image_batch64, 3),
    ]);
    return el("div", {}, [
      el("p", { class: "muted", text: head }),
      table(["artifact", "precision", "verdict", "max abs diff", "mean abs diff", "worst image", "top-1 agreement",
        "accuracy", "size MB", "ms batch 1", "ms/image batch 64"], rows),
    ]);
  }

  async function load() {
    const error = document.getElementById("run-error");
    error.hidden = true;
    let run;
    try {
      const response = await fetch("/playground/run");
      const doc = await response.json();
      if (!response.ok) throw new Error(doc.error || response.statusText);
      run = doc;
    } catch (e) {
      error.textContent = `Playground: ${e.message}`;
      error.hidden = false;
      return null;
    }
    document.getElementById("run-dir").textContent =
      `${run.run_dir} — versions ${run.versions.map((v) => v.version).join(", ") || "none"}`;
    const manifest = document.getElementById("manifest");
    manifest.replaceChildren(run.manifest ? manifestView(run.manifest) : el("p", { class: "muted", text: run.manifest_error }));
    const parity = document.getElementById("parity");
    parity.replaceChildren(run.parity ? parityView(run.parity) : el("p", { class: "muted", text: run.parity_error }));
    const png = document.getElementById("parity-png");
    png.hidden = !run.parity_png;
    if (run.parity_png) png.src = `/playground/run/parity.png?t=${Date.now()}`;
    return run;
  }

  global.TfshipRunView = { load };
})(window);
