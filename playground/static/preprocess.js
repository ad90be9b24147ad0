// preprocess.js — turn pixels into a model's input tensor, driven by the input's shape.
//
// The MNIST steps are the contract of clients/images.py (`preprocess`) and of the iOS app
// (ios_demo/MNISTDemo/DigitPreprocessor.swift), step for step, so a digit drawn or dropped here gives
// the model the same pixels as `tfship predict digit.png`. tests/playground checks this file against
// the shared cases (tests/ios/preprocessing_cases.py). Steps, for one grayscale image 0..255:
//   2. a light border (mean > 127) means dark ink on paper: invert (255 - v);
//   3. crop to the pixels brighter than 10% of the maximum (no ink at all: no digit, null);
//   4. resize with Pillow's BOX filter so the longer side is 20 px, aspect kept;
//   5. paste into 28x28 at the offset that puts the centre of mass nearest (14, 14), clamped;
//   6. divide by 255.
// Values are rounded to float32 where the Python side stores float32 (Math.fround).
(function (global) {
  "use strict";

  const SIDE = 28;
  const DIGIT_BOX = 20;
  const INK_FRACTION = 0.1;
  const LIGHT_BACKGROUND = 127;
  const CENTRE = 14;
  const f32 = Math.fround;

  // Step 1 on RGBA bytes (already composited over white): Pillow's "L" conversion, in its integer
  // form (ImagingConvert's L24: 0.299 R + 0.587 G + 0.114 B with 16-bit weights, rounded).
  function grayFromRGBA(data, width, height) {
    const gray = new Float32Array(width * height);
    for (let i = 0, p = 0; i < gray.length; i++, p += 4) {
      gray[i] = (data[p] * 19595 + data[p + 1] * 38470 + data[p + 2] * 7471 + 0x8000) >> 16;
    }
    return { width, height, pixels: gray };
  }

  function borderMean(img) {
    const { width: w, height: h, pixels } = img;
    let sum = 0, count = 0;
    for (let y = 0; y < h; y++) {
      const edgeRow = y === 0 || y === h - 1;
      for (let x = 0; x < w; x++) {
        if (edgeRow || x === 0 || x === w - 1) { sum += pixels[y * w + x]; count++; }
      }
    }
    return sum / count;
  }

  function inverted(img) {
    const out = new Float32Array(img.pixels.length);
    for (let i = 0; i < out.length; i++) out[i] = 255 - img.pixels[i];
    return { width: img.width, height: img.height, pixels: out };
  }

  // Step 3: the bounding box of the ink, or null when nothing is above 0.
  function inkBox(img) {
    const { width: w, height: h, pixels } = img;
    let peak = 0;
    for (const v of pixels) if (v > peak) peak = v;
    if (!(peak > 0)) return null;
    const threshold = f32(INK_FRACTION * peak);  // NumPy 2 compares a float32 array in float32
    let minX = w, minY = h, maxX = -1, maxY = -1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (pixels[y * w + x] > threshold) {
          if (x < minX) minX = x;
          if (x > maxX) maxX = x;
          if (y < minY) minY = y;
          if (y > maxY) maxY = y;
        }
      }
    }
    return { x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
  }

  function cropped(img, box) {
    const out = new Float32Array(box.width * box.height);
    for (let y = 0; y < box.height; y++) {
      for (let x = 0; x < box.width; x++) out[y * box.width + x] = img.pixels[(box.y + y) * img.width + box.x + x];
    }
    return { width: box.width, height: box.height, pixels: out };
  }

  // Pillow's coefficients for the box filter (libImaging/Resample.c, precompute_coeffs): output
  // pixel o is centred on input (o + 0.5) * scale; shrinking widens the filter by the scale.
  function boxTaps(inSize, outSize) {
    const scale = inSize / outSize;
    const filterScale = Math.max(scale, 1);
    const support = 0.5 * filterScale;
    const taps = [];
    for (let o = 0; o < outSize; o++) {
      const centre = (o + 0.5) * scale;
      const first = Math.max(Math.trunc(centre - support + 0.5), 0);
      const end = Math.min(Math.trunc(centre + support + 0.5), inSize);
      const weights = [];
      let total = 0;
      for (let i = first; i < end; i++) {
        const t = (i - centre + 0.5) / filterScale;
        const w = t > -0.5 && t <= 0.5 ? 1 : 0;
        weights.push(w);
        total += w;
      }
      taps.push({ first, weights: total !== 0 ? weights.map((w) => w / total) : weights });
    }
    return taps;
  }

  // Pillow's BOX resize of a float ("F") image: horizontal pass, then vertical, each summed in
  // double precision and stored as float32.
  function boxResize(img, width, height) {
    const columns = boxTaps(img.width, width);
    const horizontal = new Float32Array(width * img.height);
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < width; x++) {
        const { first, weights } = columns[x];
        let sum = 0;
        for (let i = 0; i < weights.length; i++) sum += weights[i] * img.pixels[y * img.width + first + i];
        horizontal[y * width + x] = sum;
      }
    }
    const rows = boxTaps(img.height, height);
    const out = new Float32Array(width * height);
    for (let y = 0; y < height; y++) {
      const { first, weights } = rows[y];
      for (let x = 0; x < width; x++) {
        let sum = 0;
        for (let i = 0; i < weights.length; i++) sum += weights[i] * horizontal[(first + i) * width + x];
        out[y * width + x] = sum;
      }
    }
    return { width, height, pixels: out };
  }

  // Python's floor(x + 0.5): Math.round differs from it for negative halves only, but say it once.
  const roundHalfUp = (x) => Math.floor(x + 0.5);

  function resizedLongerSide(img, target) {
    const longer = Math.max(img.width, img.height);
    const width = Math.max(1, roundHalfUp((img.width * target) / longer));
    const height = Math.max(1, roundHalfUp((img.height * target) / longer));
    return boxResize(img, width, height);
  }

  function pastedCentred(digit, side) {
    const { width: w, height: h, pixels } = digit;
    let mass = 0, sumX = 0, sumY = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = pixels[y * w + x];
        mass += v; sumX += v * x; sumY += v * y;
      }
    }
    const cx = mass > 0 ? sumX / mass : (w - 1) / 2;
    const cy = mass > 0 ? sumY / mass : (h - 1) / 2;
    const left = Math.min(Math.max(roundHalfUp(CENTRE - cx), 0), side - w);
    const top = Math.min(Math.max(roundHalfUp(CENTRE - cy), 0), side - h);
    const out = new Float32Array(side * side);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[(top + y) * side + left + x] = pixels[y * w + x];
    }
    return { width: side, height: side, pixels: out };
  }

  // Steps 2-5: the centred 28x28 digit on the 0..255 scale, or null when there is no ink.
  function mnistDigit(gray) {
    if (!gray.width || !gray.height) return null;
    const lightOnDark = borderMean(gray) > LIGHT_BACKGROUND ? inverted(gray) : gray;
    const box = inkBox(lightOnDark);
    if (box === null) return null;
    return pastedCentred(resizedLongerSide(cropped(lightOnDark, box), DIGIT_BOX), SIDE);
  }

  // Steps 2-6: 784 values in [0, 1], row-major, or null when there is no ink.
  function mnistInput(gray) {
    const digit = mnistDigit(gray);
    if (digit === null) return null;
    return Float32Array.from(digit.pixels, (v) => Math.min(Math.max(f32(v / f32(255)), 0), 1));
  }

  // The input layouts tfship knows how to fill, from a signature input's dims without the batch
  // (-1 = any size): MNIST's 784-vector or 28x28(x1), or an image H x W x C (or C x H x W), C = 1 or 3.
  function inputPlan(dims) {
    const d = dims.map(Number);
    const same = (a) => a.length === d.length && a.every((v, i) => v === d[i]);
    if (same([784]) || same([28, 28]) || same([28, 28, 1]) || same([1, 28, 28])) {
      return { kind: "mnist", height: 28, width: 28, channels: 1, layout: "mnist", dims: d };
    }
    if (d.length === 3) {
      const channelsLast = d[2] === 1 || d[2] === 3;
      const channelsFirst = !channelsLast && (d[0] === 1 || d[0] === 3);
      if (channelsLast || channelsFirst) {
        const [h, w, c] = channelsLast ? [d[0], d[1], d[2]] : [d[1], d[2], d[0]];
        return { kind: "image", height: h, width: w, channels: c, layout: channelsLast ? "hwc" : "chw", dims: d };
      }
    }
    if (d.length === 2 && d[0] !== -1 && d[1] !== -1) {
      return { kind: "image", height: d[0], width: d[1], channels: 1, layout: "hw", dims: d };
    }
    return null;
  }

  // The value ranges an image model may expect, from 0..255 pixels.
  const RANGES = {
    "0..1": (v) => v / 255,
    "0..255": (v) => v,
    "-1..1": (v) => v / 127.5 - 1,
  };

  // RGBA bytes already resized to the model's H x W -> the values of one image in the model's layout.
  function imageValues(data, plan, range) {
    const scale = RANGES[range];
    if (!scale) throw new Error(`unknown value range '${range}'`);
    const { height: h, width: w, channels: c } = plan;
    const out = new Float32Array(h * w * c);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = (y * w + x) * 4;
        const rgb = c === 1
          ? [(data[p] * 19595 + data[p + 1] * 38470 + data[p + 2] * 7471 + 0x8000) >> 16]
          : [data[p], data[p + 1], data[p + 2]];
        for (let k = 0; k < c; k++) {
          const at = plan.layout === "chw" ? (k * h + y) * w + x : (y * w + x) * c + k;
          out[at] = scale(rgb[k]);
        }
      }
    }
    return out;
  }

  // Flat row-major values -> nested arrays of the given dims (one batch row), as TF Serving's JSON takes.
  function nest(values, dims, integer) {
    const sizes = dims.map((v, i) => (v === -1 ? null : v));
    const total = values.length;
    const known = sizes.reduce((a, v) => a * (v || 1), 1);
    const filled = sizes.map((v) => (v === null ? total / known : v));
    let offset = 0;
    const cast = integer ? (v) => Math.round(v) : (v) => v;
    const build = (axis) => {
      if (axis === filled.length) return cast(values[offset++]);
      const row = [];
      for (let i = 0; i < filled[axis]; i++) row.push(build(axis + 1));
      return row;
    };
    return build(0);
  }

  global.TfshipPreprocess = {
    SIDE, DIGIT_BOX, grayFromRGBA, mnistDigit, mnistInput, inputPlan, imageValues, nest, RANGES, boxResize,
  };
})(window);
