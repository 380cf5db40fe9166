/* mnistgen's interactive figures: the chapter's own networks, run in this page.
 *
 * A chapter's page holds <div class="mnistgen-widget" data-src="widgets/<profile>/<name>.js">;
 * this runtime loads that script (it calls mnistgenRegister with the model's float32 weights,
 * written by src/mnistgen/widgets.py when the chapter rendered) and draws the widget into the div.
 * Scripts, not fetch(): a book opened from file:// may load scripts, not fetch local files.
 *
 * Page API (used by tests/test_widgets.py, documented in the README), once ready:
 *   mnistgen.widgets.gan    .setZ(a, b) .setT(t) .setPath('lerp'|'slerp') .pixels() .time(n)
 *   mnistgen.widgets.acgan  .setZ(z) .setClass(c) .pixels() .rowPixels(c) .time(n)
 *   mnistgen.widgets.vae    .setPoint(z1, z2) .pixels() .time(n)
 * pixels(): the 784 grey levels of the large image as drawn on its canvas (0..255).
 * mnistgen.ready(name) is a promise of the widget's API.
 */
(function () {
  'use strict';
  const api = (window.mnistgen = window.mnistgen || {});
  api.widgets = api.widgets || {};
  const pending = {};  // name -> [resolve]
  const specs = {};

  api.ready = function (name) {
    if (api.widgets[name]) return Promise.resolve(api.widgets[name]);
    return new Promise((resolve) => (pending[name] = pending[name] || []).push(resolve));
  };

  function f32(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  function u8(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }

  const ACT = {
    none: () => (v) => v,
    relu: () => (v) => (v > 0 ? v : 0),
    leaky_relu: (a) => (v) => (v > 0 ? v : a.slope * v),
    tanh: () => Math.tanh,
    sigmoid: () => (v) => 1 / (1 + Math.exp(-v)),
  };

  // The network: affine layers (weights n_in x n_out, row-major, as in SeedLinear) in float64.
  function network(layers) {
    const net = layers.map((l) => ({ n_in: l.n_in, n_out: l.n_out, w: f32(l.w), b: f32(l.b), act: ACT[l.act.fn](l.act) }));
    return function forward(x) {
      let h = Float64Array.from(x);
      for (const l of net) {
        const y = Float64Array.from(l.b);
        for (let i = 0; i < l.n_in; i++) {
          const xi = h[i];
          if (xi === 0) continue;
          const row = i * l.n_out;
          for (let j = 0; j < l.n_out; j++) y[j] += xi * l.w[row + j];
        }
        for (let j = 0; j < l.n_out; j++) y[j] = l.act(y[j]);
        h = y;
      }
      return h;
    };
  }

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children || []) e.appendChild(c);
    return e;
  }

  function digitCanvas(px, cls) {
    const c = el('canvas', { width: 28, height: 28, class: 'mnistgen-digit ' + (cls || '') });
    c.style.width = c.style.height = px + 'px';
    return c;
  }

  // Draw a model output (784 values in out_range) on a 28 x 28 canvas as grey levels.
  function draw(canvas, y, range) {
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const img = ctx.createImageData(28, 28);
    const lo = range[0], span = range[1] - range[0];
    for (let p = 0; p < 784; p++) {
      const g = Math.min(1, Math.max(0, (y[p] - lo) / span)) * 255;  // Uint8ClampedArray rounds
      img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = g;
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function readPixels(canvas) {
    const d = canvas.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, 28, 28).data;
    const out = new Array(784);
    for (let p = 0; p < 784; p++) out[p] = d[4 * p];
    return out;
  }

  // Standard normal draws (Box-Muller on Math.random: a reader's resample, never a reported number).
  function gaussian(n) {
    const z = new Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - Math.random(), v = Math.random();
      const r = Math.sqrt(-2 * Math.log(u));
      z[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) z[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return z;
  }

  const norm = (a) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));

  function lerp(a, b, t) { return a.map((v, i) => v * (1 - t) + b[i] * t); }

  // As plots.slerp (White 2016): the angle between the unit vectors, then sin-weighted sums.
  function slerp(a, b, t) {
    const na = norm(a), nb = norm(b);
    const dot = Math.min(1, Math.max(-1, a.reduce((s, v, i) => s + (v / na) * (b[i] / nb), 0)));
    const omega = Math.acos(dot), so = Math.sin(omega);
    if (Math.abs(so) < 1e-6) return lerp(a, b, t);
    const wa = Math.sin((1 - t) * omega) / so, wb = Math.sin(t * omega) / so;
    return a.map((v, i) => wa * v + wb * b[i]);
  }

  function timer(render) {
    return function time(n) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) render();
      return (performance.now() - t0) / n;
    };
  }

  function check(vec, n, what) {
    if (!Array.isArray(vec) && !(vec instanceof Float32Array) && !(vec instanceof Float64Array)) throw new Error(what + ' must be an array');
    if (vec.length !== n) throw new Error(what + ' must have ' + n + ' values, got ' + vec.length);
    return Array.from(vec, Number);
  }

  const BUILD = {
    interpolation(root, spec) {
      const G = network(spec.layers), d = spec.z_dim;
      const s = { a: spec.z0[0].slice(), b: spec.z0[1].slice(), t: 0.5, path: 'slerp' };
      const ca = digitCanvas(84), cb = digitCanvas(84), cm = digitCanvas(168, 'mnistgen-main');
      const slider = el('input', { type: 'range', min: 0, max: 1, step: 0.01, value: s.t, 'aria-label': 't' });
      const readout = el('span', { class: 'mnistgen-readout' });
      const pathSel = el('select', { 'aria-label': 'path' }, [el('option', { value: 'slerp', text: 'spherical (slerp)' }),
                                                              el('option', { value: 'lerp', text: 'linear (lerp)' })]);
      const newA = el('button', { type: 'button', text: 'new z₀' }), newB = el('button', { type: 'button', text: 'new z₁' });
      root.append(
        el('div', { class: 'mnistgen-row' }, [
          el('figure', {}, [ca, el('figcaption', { text: 'G(z₀)' })]),
          el('figure', {}, [cm, el('figcaption', { text: 'G(z_t)' })]),
          el('figure', {}, [cb, el('figcaption', { text: 'G(z₁)' })])]),
        el('div', { class: 'mnistgen-controls' }, [newA, el('label', {}, [document.createTextNode('t '), slider]), newB,
                                                   pathSel, readout]));
      const zt = () => (s.path === 'lerp' ? lerp : slerp)(s.a, s.b, s.t);
      function render() {
        const z = zt();
        draw(cm, G(z), spec.out_range);
        readout.textContent = 't = ' + s.t.toFixed(2) + ', ‖z_t‖ = ' + norm(z).toFixed(1);
      }
      function renderAll() { draw(ca, G(s.a), spec.out_range); draw(cb, G(s.b), spec.out_range); render(); }
      slider.addEventListener('input', () => { s.t = Number(slider.value); render(); });
      pathSel.addEventListener('change', () => { s.path = pathSel.value; render(); });
      newA.addEventListener('click', () => { s.a = gaussian(d); renderAll(); });
      newB.addEventListener('click', () => { s.b = gaussian(d); renderAll(); });
      renderAll();
      return {
        setZ(a, b) { s.a = check(a, d, 'z₀'); s.b = check(b, d, 'z₁'); renderAll(); },
        setT(t) { s.t = Number(t); slider.value = s.t; render(); },
        setPath(p) { if (p !== 'lerp' && p !== 'slerp') throw new Error("path must be 'lerp' or 'slerp'"); s.path = pathSel.value = p; render(); },
        pixels: () => readPixels(cm),
        time: timer(render),
      };
    },

    digit_picker(root, spec) {
      const G = network(spec.layers), d = spec.z_dim, K = spec.n_classes;
      const E = f32(spec.embed);  // K x d class embeddings: G's input is z * E[c]
      const s = { z: spec.z0[0].slice(), c: 0 };
      const row = [], buttons = [];
      for (let c = 0; c < K; c++) {
        row.push(digitCanvas(42));
        buttons.push(el('button', { type: 'button', text: String(c), 'aria-pressed': 'false' }));
      }
      const cm = digitCanvas(168, 'mnistgen-main');
      const again = el('button', { type: 'button', text: 'new z' });
      root.append(
        el('div', { class: 'mnistgen-row' }, [el('figure', {}, [cm, el('figcaption', { text: 'G(z, c)' })])]),
        el('div', { class: 'mnistgen-controls mnistgen-picker' }, buttons.map((b, c) => el('div', {}, [row[c], b]))),
        el('div', { class: 'mnistgen-controls' }, [again]));
      const input = (c) => s.z.map((v, i) => v * E[c * d + i]);
      function renderMain() {
        draw(cm, G(input(s.c)), spec.out_range);
        buttons.forEach((b, c) => b.setAttribute('aria-pressed', String(c === s.c)));
      }
      function renderAll() { for (let c = 0; c < K; c++) draw(row[c], G(input(c)), spec.out_range); renderMain(); }
      buttons.forEach((b, c) => b.addEventListener('click', () => { s.c = c; renderMain(); }));
      row.forEach((cv, c) => cv.addEventListener('click', () => { s.c = c; renderMain(); }));
      again.addEventListener('click', () => { s.z = gaussian(d); renderAll(); });
      renderAll();
      return {
        setZ(z) { s.z = check(z, d, 'z'); renderAll(); },
        setClass(c) { if (!(Number.isInteger(c) && c >= 0 && c < K)) throw new Error('class must be 0..' + (K - 1)); s.c = c; renderMain(); },
        pixels: () => readPixels(cm),
        rowPixels: (c) => readPixels(row[c]),
        time: timer(renderMain),
      };
    },

    latent_pointer(root, spec) {
      const dec = network(spec.layers), X = spec.extent;
      const pts = f32(spec.points), labels = u8(spec.labels);
      const PAD = 240;
      const pad = el('canvas', { width: PAD, height: PAD, class: 'mnistgen-pad', 'aria-label': 'latent plane' });
      const cm = digitCanvas(168, 'mnistgen-main');
      const readout = el('span', { class: 'mnistgen-readout' });
      root.append(el('div', { class: 'mnistgen-row' }, [
        el('figure', {}, [pad, el('figcaption', { text: 'z₁ → , z₂ ↑ (dots: test images\' posterior means)' })]),
        el('figure', {}, [cm, el('figcaption', {}, [readout])])]));
      const s = { z: [0, 0] };
      // tab10, as the static figure's scatter
      const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
      const toPx = (v) => ((v + X) / (2 * X)) * PAD;
      function drawPad() {
        const ctx = pad.getContext('2d');
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, PAD, PAD);
        for (let i = 0; i < labels.length; i++) {
          ctx.fillStyle = TAB10[labels[i] % 10];
          ctx.fillRect(toPx(pts[2 * i]) - 1, PAD - toPx(pts[2 * i + 1]) - 1, 2, 2);
        }
        ctx.strokeStyle = '#000';
        ctx.lineWidth = 1.5;
        const x = toPx(s.z[0]), y = PAD - toPx(s.z[1]);
        ctx.beginPath();
        ctx.arc(x, y, 6, 0, 2 * Math.PI);
        ctx.moveTo(x - 10, y); ctx.lineTo(x + 10, y);
        ctx.moveTo(x, y - 10); ctx.lineTo(x, y + 10);
        ctx.stroke();
      }
      function render() {
        draw(cm, dec(s.z), spec.out_range);
        readout.textContent = 'decoder mean at z = (' + s.z[0].toFixed(2) + ', ' + s.z[1].toFixed(2) + ')';
      }
      function point(ev) {
        const r = pad.getBoundingClientRect();
        const u = (ev.clientX - r.left) / r.width, v = (ev.clientY - r.top) / r.height;
        s.z = [(2 * u - 1) * X, (1 - 2 * v) * X];
        render();
        drawPad();
      }
      pad.addEventListener('pointermove', point);
      pad.addEventListener('pointerdown', point);
      render();
      drawPad();
      return {
        setPoint(z1, z2) { s.z = [Number(z1), Number(z2)]; render(); drawPad(); },
        pixels: () => readPixels(cm),
        time: timer(render),
      };
    },
  };

  function mount(name) {
    const spec = specs[name];
    document.querySelectorAll('.mnistgen-widget[data-widget="' + name + '"]').forEach((root) => {
      if (root.dataset.mounted) return;
      root.dataset.mounted = '1';
      const widget = BUILD[spec.kind](root, spec);
      root.appendChild(el('p', { class: 'mnistgen-caption', text: root.dataset.caption || '' }));
      widget.spec = { name: spec.name, kind: spec.kind, run: spec.run, profile: spec.profile, seed: spec.seed, epochs: spec.epochs, out_range: spec.out_range };
      api.widgets[name] = widget;
      (pending[name] || []).forEach((resolve) => resolve(widget));
      delete pending[name];
    });
  }

  window.mnistgenRegister = function (spec) {
    specs[spec.name] = spec;
    mount(spec.name);
  };

  function start() {
    const root = document.documentElement.dataset.content_root
      || (window.DOCUMENTATION_OPTIONS && DOCUMENTATION_OPTIONS.URL_ROOT) || '';
    const seen = new Set();
    document.querySelectorAll('.mnistgen-widget[data-src]').forEach((div) => {
      const src = div.dataset.src;
      if (seen.has(src)) return;
      seen.add(src);
      const s = document.createElement('script');
      s.src = root + '_static/' + src;
      s.onerror = () => { div.textContent = 'The interactive figure could not load its weights (' + s.src + ').'; };
      document.head.appendChild(s);
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
