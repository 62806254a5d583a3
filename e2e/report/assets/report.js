// report.html's charts: the race timeline and the latency by pod of every judged part, drawn on
// canvases from the JSON in #report-data. Untrusted strings (bodies, errors, pod and customer
// names) reach the page only as textContent or canvas text, never as markup. After the first
// drawing, window.__report holds the counts of what was drawn, for the browser test.
(function () {
  'use strict';

  var report = {
    ready: false, error: '', parts: [], timelineRows: 0, timelineBars: 0, latencyPoints: 0, violationRows: 0,
    renderMs: 0, loadMs: 0, focused: null
  };
  window.__report = report;

  var OUT = [
    { name: '2xx', color: '#35a35a' },
    { name: '2xx in a violation', color: '#e0262f' },
    { name: 'clean error', color: '#f0a020' },
    { name: 'error in a violation', color: '#9b2fb5' },
    { name: 'unknown: transport error or timeout', color: '#a3acb6' },
    { name: 'unknown, in a violation', color: '#5b6470' }
  ];
  // Pods' colours keep clear of the outcomes' (green, red, amber, purple, grey).
  var POD_COLORS = ['#1f77b4', '#17becf', '#8c564b', '#e377c2', '#bcbd22', '#393b79', '#7b4173', '#637939',
    '#6baed6', '#bd9e39', '#5254a3', '#ad494a', '#9c9ede', '#8ca252', '#e7969c', '#843c39'];
  var NO_POD = '#8a929c';
  var FAULT_FILL = 'rgba(255, 140, 0, 0.13)';
  var FAULT_EDGE = 'rgba(214, 110, 0, 0.75)';
  var GUTTER = 190;
  var AXIS_H = 34;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function podColor(p) { return p < 0 ? NO_POD : POD_COLORS[p % POD_COLORS.length]; }

  // pixel is the opaque colour #rrggbb as one pixel of an ImageData seen as a Uint32Array.
  var LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  function pixel(hex) {
    var r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16), b = parseInt(hex.slice(5, 7), 16);
    return (LITTLE_ENDIAN ? ((255 << 24) | (b << 16) | (g << 8) | r) : ((r << 24) | (g << 16) | (b << 8) | 255)) >>> 0;
  }

  function fmtUS(v) {
    var a = Math.abs(v);
    if (a === 0) return '0';
    if (a < 1000) return Math.round(v) + 'µs';
    if (a < 10000) return (v / 1000).toFixed(2) + 'ms';
    if (a < 1000000) return (v / 1000).toFixed(1) + 'ms';
    if (a < 60000000) return (v / 1000000).toFixed(2) + 's';
    var m = Math.floor(a / 60000000), s = (a - m * 60000000) / 1000000;
    return (v < 0 ? '-' : '') + m + 'm' + s.toFixed(1) + 's';
  }

  // fmtShort formats a duration in µs with 3 significant digits at most, and no trailing zeros.
  function fmtShort(v) {
    var a = Math.abs(v), u = a >= 1e6 ? 1e6 : a >= 1e3 ? 1e3 : 1;
    return String(+(v / u).toPrecision(3)) + (u === 1e6 ? 's' : u === 1e3 ? 'ms' : 'µs');
  }

  // fmtTick formats a tick at t of a scale whose ticks are step apart and reach up to mag, in
  // the unit of mag, with no more digits than the step needs.
  function fmtTick(t, step, mag) {
    var unit = mag >= 1e6 ? 1e6 : mag >= 1e3 ? 1e3 : 1, name = unit === 1e6 ? 's' : unit === 1e3 ? 'ms' : 'µs';
    var digits = Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9));
    return (t / unit).toFixed(Math.min(digits, 3)) + name;
  }

  function tickStep(range, target) {
    var raw = range / Math.max(1, target);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  function shortPods(pods) {
    var short = pods.map(function (p) { var i = p.lastIndexOf('-'); return i >= 0 && i < p.length - 1 ? p.slice(i + 1) : p; });
    var seen = {};
    short.forEach(function (s) { seen[s] = (seen[s] || 0) + 1; });
    return short.map(function (s, i) { return seen[s] > 1 ? pods[i] : s; });
  }

  // setupCanvas sizes canvas c to w×h CSS pixels at the screen's resolution and returns its
  // context, scaled to CSS pixels. A canvas whose pixels are read back (readback) says so the
  // first time, so that the browser keeps it in memory.
  function setupCanvas(c, w, h, readback) {
    var dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    c.style.width = w + 'px';
    c.style.height = h + 'px';
    var ctx = c.getContext('2d', readback ? { willReadFrequently: true } : undefined);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  function kvTable(rows) {
    var t = el('table');
    rows.forEach(function (r) {
      var tr = el('tr');
      tr.appendChild(el('th', null, r[0]));
      tr.appendChild(el('td', null, r[1]));
      t.appendChild(tr);
    });
    return t;
  }

  var tooltip = null;
  function showTip(rows, x, y) {
    tooltip.replaceChildren(kvTable(rows));
    tooltip.hidden = false;
    var w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    var left = x + 14, top = y + 14;
    if (left + w > window.innerWidth - 4) left = Math.max(4, x - w - 14);
    if (top + h > window.innerHeight - 4) top = Math.max(4, y - h - 14);
    tooltip.style.left = left + 'px';
    tooltip.style.top = top + 'px';
  }
  function hideTip() { if (tooltip) tooltip.hidden = true; }

  // ---- one judged part -------------------------------------------------------------------
  function Part(root, d, index) {
    this.root = root;
    this.d = d;
    this.index = index;
    var o = d.ops, n = o.dcall.length;
    this.n = n;
    // Undo the delta coding of the columns that have it.
    var call = new Float64Array(n), lat = new Float64Array(n), cust = new Int32Array(n), tok = new Int32Array(n);
    var st = new Int32Array(n), acc = 0, lo = Infinity, ac = 0, at = 0;
    for (var i = 0; i < n; i++) {
      acc += o.dcall[i];
      call[i] = acc;
      lat[i] = o.lat[i];
      if (acc < lo) lo = acc;
      ac += o.dc[i];
      cust[i] = ac;
      at += o.dtok[i];
      tok[i] = at - 1;
      st[i] = d.statuses[o.st[i]];
    }
    this.call = call;
    this.lat = lat;
    this.cust = cust;
    this.tok = tok;
    this.status = st;
    this.podShort = shortPods(d.pods);
    // Requests per customer: offsets into byCust (customer c's are byCust[off[c]..off[c+1]]).
    var nc = d.customers.index.length, off = new Int32Array(nc + 1), byCust = new Int32Array(n);
    for (i = 0; i < n; i++) off[cust[i] + 1]++;
    for (i = 0; i < nc; i++) off[i + 1] += off[i];
    var fill = off.slice(0, nc);
    for (i = 0; i < n; i++) byCust[fill[cust[i]]++] = i;
    this.custOff = off;
    this.byCust = byCust;
    // Each customer's first call, and how long its requests took from there: the timeline opens
    // with every row counted from its customer's first request, over what most bursts took.
    var first = new Float64Array(nc), spans = [];
    for (var c = 0; c < nc; c++) {
      if (off[c] === off[c + 1]) continue;
      var f0 = call[byCust[off[c]]], last = f0;
      for (var j = off[c]; j < off[c + 1]; j++) {
        var q = byCust[j];
        last = Math.max(last, lat[q] >= 0 ? call[q] + lat[q] : call[q]);
      }
      first[c] = f0;
      spans.push(last - f0);
    }
    spans.sort(function (a, b) { return a - b; });
    this.first = first;
    this.burstSpan = spans.length ? Math.max(spans[Math.min(spans.length - 1, Math.floor(spans.length * 0.95))], 50) : 1000;
    this.highlight = new Uint8Array(n);
    this.highlighted = [];
    this.selected = -1;
    // The charts span the traffic and the fault windows, not the clock's zero: a spec's clock
    // starts before its deployment, seconds before the first request.
    (d.events || []).forEach(function (e) { if (e.start < lo) lo = e.start; });
    if (!isFinite(lo)) lo = 0;
    var end = Math.max(d.end, lo + 1);
    lo = lo >= 0 ? Math.max(0, lo - (end - lo) * 0.02) : lo;
    this.full = [lo, end + (end - lo) * 0.02];
    this.view = this.full.slice();
    this.stats = { timelineRows: 0, timelineBars: 0, latencyPoints: 0, violationRows: 0 };

    var tlBox = root.querySelector('[data-chart=timeline]');
    var latBox = root.querySelector('[data-chart=latency]');
    this.timeline = new Timeline(this, tlBox);
    this.latency = new Latency(this, latBox);
    var cuBox = root.querySelector('[data-chart=closeup]');
    this.closeup = cuBox ? new CloseUp(this, cuBox) : null;
    this.detail = el('div', 'selected-op');
    this.detail.appendChild(el('span', 'muted', 'Hover over a request for its details; click one to keep them here. Drag across a chart to zoom in, double-click to zoom out.'));
    tlBox.appendChild(this.detail);
    this.wireViolations();
  }

  Part.prototype.customerLabel = function (c) {
    var cs = this.d.customers;
    return '#' + cs.index[c] + ' ' + cs.mid[c] + '/' + cs.ext[c];
  };

  Part.prototype.opID = function (i) {
    var o = this.d.ops;
    return this.d.customers.index[this.cust[i]] + '/' + o.seq[i] + '/' + o.att[i];
  };

  Part.prototype.opInfo = function (i) {
    var d = this.d, o = d.ops, s = d.strings, rows = [];
    rows.push(['request', this.opID(i) + '  (' + s[o.ph[i]] + ')']);
    rows.push([this.d.names.entity, this.customerLabel(this.cust[i])]);
    rows.push(['outcome', OUT[o.out[i]].name]);
    var status = this.status[i];
    rows.push(['status', status ? String(status) : 'no response']);
    rows.push(['pod', o.pod[i] >= 0 ? d.pods[o.pod[i]] : '(none)']);
    var c = this.call[i], l = this.lat[i];
    rows.push(['call → return', fmtUS(c) + ' → ' + (l >= 0 ? fmtUS(c + l) + '  (latency ' + fmtUS(l) + ')' : 'never returned')]);
    if (o.sd[i] >= 0) {
      rows.push(['server', fmtUS(c + o.ss[i]) + ' → ' + fmtUS(c + o.ss[i] + o.sd[i]) + '  (handler ' + fmtUS(o.sd[i]) + ', pod clock)']);
    }
    var t = this.tok[i];
    if (t >= 0) {
      var tk = d.tokens;
      rows.push([d.names.credential, tk.fp[t] + (s[tk.alg[t]] ? '  (alg ' + s[tk.alg[t]] + ')' : '')]);
      if (!s[tk.alg[t]] && !s[tk.bad[t]]) {
        rows.push(['stands for', tk.sub[t] || '(nobody: empty)']); // an opaque credential: the id its answer named
      } else if (s[tk.bad[t]]) {
        rows.push(['claims', s[tk.bad[t]]]);
      } else {
        var iat = tk.iat[t], when = '';
        if (/^\d+(\.\d+)?$/.test(iat)) {
          var dt = new Date(Number(iat) * 1000);
          if (!isNaN(dt.getTime())) when = ' (' + dt.toISOString().replace('.000Z', 'Z') + ')';
        }
        rows.push(['claims', 'sub ' + (tk.sub[t] || '""') + ', mid ' + tk.mid[t] + ', ext ' + tk.ext[t] + ', iat ' + (iat || '-') + when]);
        if (s[tk.iss[t]]) rows.push(['issuer', s[tk.iss[t]]]);
      }
    }
    if (o.cr[i] >= 0) rows.push(['created', o.cr[i] ? 'true' : 'false']);
    if (o.msg[i] > 0) rows.push([status >= 200 && status < 300 ? 'note' : 'error code', s[o.msg[i]]]);
    if (o.err[i] > 0) rows.push(['error', s[o.err[i]]]);
    return rows;
  };

  // spanOf orders a and b and widens them to 20 µs at least: no use zooming further.
  function spanOf(a, b) {
    if (b < a) { var t = a; a = b; b = t; }
    var span = b - a, min = 20;
    if (span < min) { a -= (min - span) / 2; b = a + min; }
    return [a, b];
  }

  Part.prototype.setView = function (a, b) {
    this.view = spanOf(a, b);
    this.redraw();
  };

  Part.prototype.resetView = function () { this.view = this.full.slice(); this.redraw(); };

  Part.prototype.redraw = function () {
    this.stats.view = [this.view[0], this.view[1]];
    this.timeline.draw();
    this.latency.draw();
  };

  // barPoint returns where the bar of the request with id is on the screen, as client
  // coordinates, or null when it is not in view.
  Part.prototype.barPoint = function (id) {
    var tl = this.timeline;
    for (var i = 0; i < this.n; i++) {
      if (this.opID(i) !== id) continue;
      var r = tl.opRow[i];
      if (r < 0) return null;
      var X = tl.X(), sh = tl.shift(this.cust[i]), a = Math.max(X(this.call[i] - sh), GUTTER);
      var b = this.lat[i] >= 0 ? X(this.call[i] + this.lat[i] - sh) : GUTTER + tl.plotWidth();
      var y = tl.rowTop[r] - tl.scroll.scrollTop + 2 + (tl.opLane[i] + 0.5) * tl.laneH[r];
      var box = tl.canvas.getBoundingClientRect();
      if (y < 0 || y > box.height || b < GUTTER) return null;
      return { x: box.left + (a + Math.min(b, GUTTER + tl.plotWidth())) / 2, y: box.top + y };
    }
    return null;
  };

  Part.prototype.select = function (i) {
    this.selected = i;
    if (i >= 0 && this.closeup) this.closeup.show(this.cust[i], i);
    this.detail.replaceChildren();
    if (i >= 0) {
      this.detail.appendChild(el('b', null, 'Selected request'));
      this.detail.appendChild(kvTable(this.opInfo(i)));
      var self = this, c = this.cust[i];
      if (!this.timeline.hasRow(c)) {
        var b = el('button', null, 'show its ' + this.d.names.entity + ' on the timeline');
        b.addEventListener('click', function () { self.timeline.ensureRow(c); self.timeline.scrollToRow(c); self.redraw(); });
        this.detail.appendChild(b);
      }
    }
    this.redraw();
  };

  Part.prototype.setHighlight = function (ops) {
    var h = this.highlight;
    this.highlighted.forEach(function (i) { h[i] = 0; });
    this.highlighted = ops.slice();
    ops.forEach(function (i) { h[i] = 1; });
  };

  Part.prototype.focusViolation = function (vi, reqID) {
    var v = this.d.violations[vi];
    if (!v) return;
    var self = this;
    this.setHighlight(v.ops);
    this.timeline.ensureRow(v.c);
    var lo = Infinity, hi = -Infinity;
    v.ops.forEach(function (i) {
      lo = Math.min(lo, self.call[i]);
      hi = Math.max(hi, self.lat[i] >= 0 ? self.call[i] + self.lat[i] : self.full[1]);
    });
    if (v.ops.length === 0) { // a customer without requests: show the whole run
      this.view = this.full.slice();
      this.timeline.aview = this.timeline.afull.slice();
    } else {
      var pad = Math.max((hi - lo) * 0.25, 500), from = this.first[v.c];
      this.view = [lo - pad, hi + pad];
      this.timeline.aview = [lo - from - pad, hi - from + pad];
    }
    var sel = v.ops.length ? v.ops[0] : -1;
    if (reqID) v.ops.forEach(function (i) { if (self.opID(i) === reqID) sel = i; });
    if (this.closeup) this.closeup.show(v.c, sel);
    this.select(sel);
    this.timeline.scrollToRow(v.c);
    this.redraw();
    this.timeline.box.scrollIntoView({ block: 'start' });
    var active = this.root.querySelectorAll('tr.active');
    for (var k = 0; k < active.length; k++) active[k].classList.remove('active');
    var tr = this.root.querySelector('tr[data-v="' + vi + '"]');
    if (tr) tr.classList.add('active');
    report.focused = { part: this.index, violation: vi, requests: v.ops.length, highlightedBars: this.timeline.lastHighlighted, selected: sel >= 0 ? this.opID(sel) : '' };
  };

  Part.prototype.wireViolations = function () {
    var self = this, rows = this.root.querySelectorAll('tr[data-v]');
    this.stats.violationRows = rows.length;
    var tbody = this.root.querySelector('.vtable tbody');
    if (!tbody) return;
    function target(ev) {
      var tr = ev.target.closest('tr[data-v]');
      if (!tr) return;
      var req = ev.target.closest('[data-req]');
      self.focusViolation(Number(tr.getAttribute('data-v')), req ? req.getAttribute('data-req') : '');
    }
    tbody.addEventListener('click', target);
    tbody.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); target(ev); } });
  };

  // Drag across a chart to zoom into the dragged time span; a click without a drag picks. While
  // dragging, the chart shows its last drawing and the span: nothing is drawn again.
  // The chart says which view it shows and sets it (chart.view(), chart.setView(a, b),
  // chart.resetView()): the timeline may count each row from its customer's first request.
  function zoomable(part, chart, plotLeft, plotWidth, onClick) {
    var start = null, canvas = chart.canvas, frame = false;
    canvas.classList.add('zoomable');
    canvas.addEventListener('mousedown', function (ev) {
      if (ev.button !== 0) return;
      var r = canvas.getBoundingClientRect(), x = ev.clientX - r.left;
      start = { x: x, cx: ev.clientX, cy: ev.clientY };
      ev.preventDefault();
    });
    window.addEventListener('mousemove', function (ev) {
      if (!start) return;
      var r = canvas.getBoundingClientRect();
      part.drag = { canvas: canvas, a: start.x, b: Math.max(plotLeft(), Math.min(ev.clientX - r.left, plotLeft() + plotWidth())) };
      if (frame) return;
      frame = true;
      requestAnimationFrame(function () { frame = false; if (part.drag) chart.dragFrame(); });
    });
    window.addEventListener('mouseup', function (ev) {
      if (!start) return;
      var s = start;
      start = null;
      part.drag = null;
      var r = canvas.getBoundingClientRect(), x = ev.clientX - r.left;
      if (Math.abs(ev.clientX - s.cx) > 4) {
        var L = plotLeft(), W = plotWidth(), v = chart.view();
        var t = function (px) { return v[0] + (Math.max(L, Math.min(px, L + W)) - L) / W * (v[1] - v[0]); };
        chart.setView(t(s.x), t(x));
      } else {
        onClick(ev);
        part.redraw();
      }
    });
    canvas.addEventListener('dblclick', function () { chart.resetView(); });
  }

  // keepFrame keeps a copy of what chart's canvas shows, for dragFrame.
  function keepFrame(chart) {
    var c = chart.canvas, k = chart.kept || (chart.kept = document.createElement('canvas'));
    if (k.width !== c.width || k.height !== c.height) {
      k.width = c.width;
      k.height = c.height;
    }
    var kc = k.getContext('2d');
    kc.clearRect(0, 0, k.width, k.height);
    kc.drawImage(c, 0, 0);
  }

  // dragFrame shows chart's kept drawing and the span being dragged over it.
  function dragFrame(chart, part, top, h) {
    var ctx = chart.canvas.getContext('2d'), dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, chart.canvas.width, chart.canvas.height);
    if (chart.kept) ctx.drawImage(chart.kept, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawDrag(ctx, part, chart.canvas, top, h);
  }

  function drawDrag(ctx, part, canvas, top, h) {
    var g = part.drag;
    if (!g || g.canvas !== canvas) return;
    ctx.fillStyle = 'rgba(31, 95, 191, 0.15)';
    ctx.strokeStyle = 'rgba(31, 95, 191, 0.8)';
    var a = Math.min(g.a, g.b), w = Math.abs(g.b - g.a);
    ctx.fillRect(a, top, w, h);
    ctx.strokeRect(a + 0.5, top + 0.5, w, h - 1);
  }

  function faultButtons(part, controls) {
    part.d.events.forEach(function (e) {
      var b = el('button', null, 'zoom to ' + (e.name || e.kind));
      b.addEventListener('click', function () {
        var s = e.start, t = e.end >= 0 ? e.end : part.full[1], pad = Math.max((t - s) * 0.3, 1000);
        part.timeline.setAligned(false);
        part.setView(s - pad, t + pad);
      });
      controls.appendChild(b);
    });
  }

  // drawFaults shades the fault windows over [top, top+h], and names them at labelY (when set).
  function drawFaults(ctx, part, X, L, W, top, h, labelY) {
    part.d.events.forEach(function (e) {
      var a = X(e.start), b = X(e.end >= 0 ? e.end : part.full[1]);
      if (b < L || a > L + W) return;
      a = Math.max(a, L);
      b = Math.min(b, L + W);
      ctx.fillStyle = FAULT_FILL;
      ctx.fillRect(a, top, Math.max(b - a, 1), h);
      ctx.fillStyle = FAULT_EDGE;
      ctx.fillRect(a, top, 1, h);
      if (e.end >= 0) ctx.fillRect(b - 1, top, 1, h);
      if (labelY !== undefined) {
        ctx.font = '600 11px system-ui, sans-serif';
        ctx.textBaseline = 'top';
        ctx.fillStyle = '#a04d00';
        var name = (e.name || e.kind) + (e.target ? ' on ' + e.target : '') + (e.end < 0 ? ' (not ended)' : '');
        ctx.save();
        ctx.beginPath();
        ctx.rect(a, labelY, Math.min(Math.max(b - a, 220), L + W - a), 14);
        ctx.clip();
        ctx.fillText(name, a + 3, labelY + 1);
        ctx.restore();
      }
    });
  }

  function drawTimeAxis(ctx, part, X, L, W, y, h, withLabels, view) {
    var v = view || part.view, step = tickStep(v[1] - v[0], Math.max(2, Math.floor(W / 110))), mag = Math.max(Math.abs(v[0]), Math.abs(v[1]));
    ctx.strokeStyle = '#c9ced6';
    ctx.fillStyle = '#4a5361';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    ctx.textAlign = 'center';
    for (var t = Math.ceil(v[0] / step) * step; t <= v[1]; t += step) {
      var x = Math.round(X(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x, y + h);
      ctx.stroke();
      if (withLabels) ctx.fillText(fmtTick(t, step, mag), x, y + h + 2);
    }
    ctx.textAlign = 'left';
  }

  function outcomeLegend(part, box) {
    var lg = el('div', 'legend');
    OUT.forEach(function (o) {
      var it = el('span', 'item'), sw = el('span', 'sw');
      sw.style.background = o.color;
      it.appendChild(sw);
      it.appendChild(el('span', null, o.name));
      lg.appendChild(it);
    });
    if (part.d.events.length) {
      var it = el('span', 'item');
      it.appendChild(el('span', 'sw fault'));
      it.appendChild(el('span', null, 'fault window'));
      lg.appendChild(it);
    }
    var pods = el('div', 'legend');
    pods.appendChild(el('span', 'muted', 'pod (strip on top of a bar, and the square at the left of its lane):'));
    part.d.pods.forEach(function (p, i) {
      var it = el('span', 'item'), sw = el('span', 'sw');
      sw.style.background = podColor(i);
      it.appendChild(sw);
      it.appendChild(el('span', null, p));
      pods.appendChild(it);
    });
    box.appendChild(lg);
    box.appendChild(pods);
  }

  // ---- race close-up ---------------------------------------------------------------------
  // One customer's requests, a lane per pod: each request's client interval (call → return) and,
  // inside it, its handler's interval as the pod reported it; the instants the database created
  // the customer's rows, and which answer said it created one; each answer's credential by
  // fingerprint, so that two credentials, or one whose subject names nobody, show at a glance.
  // Drawn in SVG, whose parts a keyboard and a screen reader reach, and told again as tables.
  var SVGNS = 'http://www.w3.org/2000/svg';
  var CRED_COLORS = ['#1f5fbf', '#8c564b', '#0f8b8d', '#7b4173', '#637939', '#b5651d', '#393b79', '#6b6b6b'];
  var ALARM = '#c9252d';

  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // rel formats t, µs, as time since from.
  function rel(t, from) { var d = t - from; return (d < 0 ? '−' : '+') + fmtUS(Math.abs(d)); }

  function CloseUp(part, box) {
    this.part = part;
    this.box = box;
    this.c = -1;
    var d = part.d, self = this;
    // The customer's rows, by customer.
    this.truth = new Map();
    var tr = d.truth || { c: [], id: [], at: [] };
    for (var k = 0; k < tr.c.length; k++) {
      if (!this.truth.has(tr.c[k])) this.truth.set(tr.c[k], []);
      this.truth.get(tr.c[k]).push(k);
    }
    this.violators = [];
    d.customers.viol.forEach(function (n, c) { if (n > 0) self.violators.push(c); });
    var controls = el('div', 'controls');
    var lab = el('label', null, 'customer ');
    this.picker = el('select');
    this.picker.setAttribute('aria-label', 'customer to show in the race close-up');
    lab.appendChild(this.picker);
    controls.appendChild(lab);
    var prev = el('button', null, '◀ previous'), next = el('button', null, 'next ▶');
    prev.setAttribute('aria-label', 'previous customer with a violation');
    next.setAttribute('aria-label', 'next customer with a violation');
    prev.addEventListener('click', function () { self.step(-1); });
    next.addEventListener('click', function () { self.step(1); });
    controls.appendChild(prev);
    controls.appendChild(next);
    // Any customer by its number, for the keyboard: the timeline's rows are a canvas.
    var go = el('input');
    go.type = 'text';
    go.size = 7;
    go.placeholder = '#number';
    go.setAttribute('aria-label', 'show customer number (Enter)');
    go.addEventListener('keydown', function (ev) {
      if (ev.key !== 'Enter') return;
      var c = d.customers.index.indexOf(Number(go.value.replace(/^#/, '')));
      go.setCustomValidity(c < 0 ? 'no such customer in this run' : '');
      if (c < 0) { go.reportValidity(); return; }
      self.show(c);
    });
    controls.appendChild(go);
    controls.appendChild(el('span', 'muted', this.violators.length
      ? this.violators.length + (this.violators.length === 1 ? ' customer' : ' customers') + ' with violations; click a request on the timeline or a violation below for any other'
      : 'no customer has a violation: click a request on the timeline or press Enter on it to show its customer here'));
    box.appendChild(controls);
    this.fillPicker();
    this.picker.addEventListener('change', function () { self.show(Number(self.picker.value)); });
    this.story = el('div', 'story');
    this.story.setAttribute('aria-live', 'polite');
    this.figure = el('div', 'figure');
    this.tables = el('div', 'tables');
    box.appendChild(this.story);
    box.appendChild(this.figure);
    box.appendChild(this.tables);
    this.stats = null;
    if (this.violators.length) this.show(this.violators[0]);
    else this.story.appendChild(el('p', 'muted', 'No customer chosen.'));
  }

  CloseUp.prototype.fillPicker = function (extra) {
    var part = this.part, d = part.d, p = this.picker;
    p.replaceChildren();
    var list = this.violators.slice();
    if (extra !== undefined && list.indexOf(extra) < 0) list.unshift(extra);
    if (!list.length) {
      var none = el('option', null, '(none chosen)');
      none.value = '-1';
      p.appendChild(none);
    }
    list.forEach(function (c) {
      var o = el('option', null, part.customerLabel(c) + (d.customers.viol[c] ? ' · ' + d.customers.viol[c] + ' violations' : ' · no violation'));
      o.value = String(c);
      p.appendChild(o);
    });
  };

  CloseUp.prototype.step = function (dir) {
    var v = this.violators;
    if (!v.length) return;
    var k = v.indexOf(this.c);
    k = k < 0 ? 0 : (k + dir + v.length) % v.length;
    this.show(v[k]);
  };

  // facts reads customer c's requests and rows into what the drawing, the story and the tables
  // say.
  CloseUp.prototype.facts = function (c) {
    var part = this.part, d = part.d, o = d.ops, s = d.strings, tk = d.tokens;
    var ops = Array.prototype.slice.call(part.byCust, part.custOff[c], part.custOff[c + 1]);
    var rows = (this.truth.get(c) || []).map(function (k, n) {
      return { n: n + 1, id: d.truth.id[k], at: d.truth.at[k], by: -1 };
    });
    var rowByID = {};
    rows.forEach(function (r) { rowByID[r.id] = r; });
    var creds = [], credIdx = {}, reqs = [];
    ops.forEach(function (i) {
      var t = part.tok[i], r = { i: i, id: part.opID(i), pod: o.pod[i], call: part.call[i], ret: part.lat[i] >= 0 ? part.call[i] + part.lat[i] : -1,
        ss: o.sd[i] >= 0 ? part.call[i] + o.ss[i] : -1, se: o.sd[i] >= 0 ? part.call[i] + o.ss[i] + o.sd[i] : -1,
        status: part.status[i], out: o.out[i], created: o.cr[i], fp: '', cred: -1, sub: null, unreadable: '', row: null,
        note: o.msg[i] > 0 ? s[o.msg[i]] : '', err: o.err[i] > 0 ? s[o.err[i]] : '' };
      if (t >= 0) {
        r.fp = tk.fp[t];
        if (credIdx[r.fp] === undefined) { credIdx[r.fp] = creds.length; creds.push(r.fp); }
        r.cred = credIdx[r.fp];
        r.unreadable = s[tk.bad[t]] || '';
        if (!r.unreadable) {
          r.sub = tk.sub[t];
          r.row = rowByID[r.sub] || null;
        }
      }
      r.emptySubject = t >= 0 && !r.unreadable && r.sub === '';
      if (r.created === 1 && r.row && r.row.by < 0) r.row.by = reqs.length;
      reqs.push(r);
    });
    return { c: c, reqs: reqs, rows: rows, creds: creds };
  };

  CloseUp.prototype.show = function (c, sel) {
    var part = this.part;
    if (c < 0 || c >= part.d.customers.index.length) return;
    if (this.violators.indexOf(c) < 0 || this.picker.querySelector('option[value="' + c + '"]') === null) this.fillPicker(c);
    this.picker.value = String(c);
    this.c = c;
    var f = this.facts(c);
    this.writeStory(f);
    this.draw(f, sel === undefined ? part.selected : sel);
    this.writeTables(f);
    var emptyIDs = f.reqs.filter(function (r) { return r.emptySubject; }).map(function (r) { return r.id; });
    this.stats = {
      customer: part.customerLabel(c), requests: f.reqs.length, rows: f.rows.length, credentials: f.creds.length,
      emptySubjects: emptyIDs, lanes: this.lanes, bars: this.figure.querySelectorAll('.cu-req').length,
      tableRows: this.tables.querySelectorAll('table.cu-requests tbody tr').length,
      rowMarks: this.figure.querySelectorAll('.cu-rowmark').length
    };
    part.stats.closeup = this.stats;
  };

  CloseUp.prototype.podName = function (p) { return p < 0 ? 'no answer' : this.part.podShort[p]; };

  CloseUp.prototype.reqWords = function (r) {
    return r.id + ' on pod ' + this.podName(r.pod);
  };

  // writeStory says in words what the drawing shows: the finding first, in plain terms, then
  // the checker's findings as the violations table has them.
  CloseUp.prototype.writeStory = function (f) {
    var part = this.part, d = part.d, self = this, st = this.story;
    st.replaceChildren();
    var first = f.reqs.length ? f.reqs[0].call : 0, last = first, pods = {};
    f.reqs.forEach(function (r) { last = Math.max(last, r.call); if (r.pod >= 0) pods[r.pod] = 1; });
    var head = el('p');
    head.appendChild(el('b', null, 'Customer ' + part.customerLabel(f.c)));
    head.appendChild(document.createTextNode(': ' + f.reqs.length + ' requests' + (d.target ? ' to ' + d.target : '') + ', sent within ' +
      fmtUS(last - first) + ' to ' + Object.keys(pods).length + ' pods; ' + (d.customers.viol[f.c] ? d.customers.viol[f.c] + ' violations.' : 'no violation.')));
    st.appendChild(head);
    var ul = el('ul'), alarm = function (text) { ul.appendChild(el('li', 'alarm', text)); };
    var rowWords = function (r, was) {
      var by = r.by >= 0 ? f.reqs[r.by] : null;
      return 'row ' + r.n + ' (' + r.id.slice(0, 8) + ')' + (was ? ' was' : '') + ' created at ' + rel(r.at, first) +
        (by ? ' by ' + self.reqWords(by) : ', by no answer that said created');
    };
    if (!d.truth || !d.truth.c.length) {
      ul.appendChild(el('li', null, 'The run recorded no database rows.'));
    } else if (f.rows.length === 0) {
      ul.appendChild(el('li', f.reqs.some(function (r) { return r.out <= 1; }) ? 'alarm' : null, 'The database holds no row for this customer.'));
    } else if (f.rows.length === 1) {
      ul.appendChild(el('li', null, 'The database holds one row: ' + rowWords(f.rows[0], false) + '.'));
    } else {
      alarm('The database holds ' + f.rows.length + ' rows for this customer, where one is expected: ' + f.rows.map(function (w) { return rowWords(w); }).join('; ') + '.');
    }
    f.reqs.forEach(function (r) {
      if (!r.emptySubject) return;
      var during = f.rows.filter(function (w) { return r.ss >= 0 && w.at >= r.ss && w.at <= r.se; });
      alarm(self.reqWords(r) + ' answered ' + r.status + ' with a credential (' + r.fp + ') whose subject is empty: it names no row, nobody' +
        (r.ss >= 0 ? '. Its handler ran from ' + rel(r.ss, first) + ' to ' + rel(r.se, first) : '') +
        (during.length ? ', while ' + during.map(function (w) { return rowWords(w, true); }).join(' and ') : '') + '.');
    });
    if (f.creds.length > 1) {
      alarm('Its answers carry ' + f.creds.length + ' different credentials (' + f.creds.join(', ') + '), where one is expected.');
    }
    var created = f.reqs.filter(function (r) { return r.created === 1; });
    if (created.length > 1) {
      alarm(created.length + ' answers say created: ' + created.map(function (r) { return self.reqWords(r); }).join(', ') + '; at most one may.');
    }
    f.reqs.forEach(function (r) {
      if (r.sub && !r.row && f.rows.length) alarm(self.reqWords(r) + ' answered with a credential for ' + r.sub.slice(0, 8) + ', a row the database does not hold.');
    });
    if (ul.children.length) st.appendChild(ul);
    var said = d.violations.filter(function (v) { return v.c === f.c; });
    if (said.length) {
      st.appendChild(el('p', 'said', 'The checker found:'));
      var sl = el('ul', 'said');
      var seen = {};
      said.slice(0, 8).forEach(function (v) {
        (v.say && v.say.length ? v.say : ['']).forEach(function (line) {
          var text = v.rule + (line ? ': ' + line : '');
          if (seen[text]) return; // a finding about two requests is one line
          seen[text] = true;
          sl.appendChild(el('li', null, text));
        });
      });
      if (said.length > 8) sl.appendChild(el('li', null, (said.length - 8) + ' more violations in the table below'));
      st.appendChild(sl);
    }
  };

  CloseUp.prototype.draw = function (f, sel) {
    var part = this.part, d = part.d, self = this;
    this.figure.replaceChildren();
    this.lanes = [];
    if (!f.reqs.length) {
      this.figure.appendChild(el('p', 'cu-note', 'This customer sent no request in this run.'));
      return;
    }
    var first = f.reqs[0].call, lo = first, hi = first;
    f.reqs.forEach(function (r) { hi = Math.max(hi, r.ret >= 0 ? r.ret : r.call, r.se); lo = Math.min(lo, r.ss >= 0 ? r.ss : lo); });
    f.rows.forEach(function (w) { lo = Math.min(lo, w.at); hi = Math.max(hi, w.at); });
    var never = f.reqs.some(function (r) { return r.ret < 0; });
    if (never) hi += (hi - lo) * 0.15 + 1;
    var pad = Math.max((hi - lo) * 0.04, 20);
    lo -= pad;
    hi += pad;
    // Lanes: a pod each, in the order of the pods' table; a request takes the first free track.
    var byPod = {}, order = [];
    f.reqs.forEach(function (r) {
      if (!byPod[r.pod]) { byPod[r.pod] = []; order.push(r.pod); }
      byPod[r.pod].push(r);
    });
    order.sort(function (a, b) { return (a < 0 ? 1e9 : a) - (b < 0 ? 1e9 : b); });
    // The requests' labels take a column of their own at the right, level with their bars.
    var TRACK = 30, LEFT = 150, RIGHT = 300, labelRows = Math.min(Math.max(f.rows.length, 1), 4), TOP = 8 + labelRows * 14, AXIS = 30;
    var lanes = order.map(function (p) {
      var ends = [];
      byPod[p].forEach(function (r) {
        var k = 0, end = r.ret >= 0 ? r.ret : Infinity;
        while (k < ends.length && ends[k] > r.call) k++;
        ends[k] = end;
        r.track = k;
      });
      return { pod: p, tracks: Math.max(ends.length, 1), reqs: byPod[p] };
    });
    var H = TOP + lanes.reduce(function (a, l) { return a + l.tracks * TRACK + 6; }, 0) + AXIS;
    // A fixed width, scaled to the box by the browser: reading the box's width here would lay
    // the page out again for every part's close-up as the page opens.
    var W = 1240, PW = W - LEFT - RIGHT;
    var X = function (t) { return LEFT + (t - lo) / (hi - lo) * PW; };
    var words = 'Race close-up of customer ' + part.customerLabel(f.c) + ': ' + f.reqs.length + ' requests on ' + lanes.length + ' lanes (' +
      lanes.map(function (l) { return self.podName(l.pod); }).join(', ') + '), ' + f.rows.length + ' rows created, ' + f.creds.length + ' credentials' +
      (f.reqs.some(function (r) { return r.emptySubject; }) ? ', and an answer whose credential names nobody' : '') + '. The tables below hold the same.';
    var root = svgEl('svg', { width: '100%', viewBox: '0 0 ' + W + ' ' + H, role: 'group', 'aria-label': words, 'class': 'cu-svg' });
    root.appendChild(svgEl('title', {}, words));
    // Fault windows, as on the timeline.
    d.events.forEach(function (e) {
      var a = Math.max(X(e.start), LEFT), b = Math.min(X(e.end >= 0 ? e.end : hi), LEFT + PW);
      if (b <= a) return;
      root.appendChild(svgEl('rect', { x: a, y: TOP - 4, width: b - a, height: H - TOP - AXIS + 4, fill: FAULT_FILL }));
      root.appendChild(svgEl('text', { x: a + 3, y: H - AXIS - 4, fill: '#a04d00' }, (e.name || e.kind) + ' (fault)'));
    });
    // Time axis: from the customer's first request.
    var step = tickStep(hi - lo, Math.max(2, Math.floor(PW / 100))), axisY = H - AXIS + 2;
    root.appendChild(svgEl('line', { x1: LEFT, x2: LEFT + PW, y1: axisY, y2: axisY, stroke: '#9aa1ab' }));
    for (var t = Math.ceil((lo - first) / step) * step; t <= hi - first; t += step) {
      var x = X(first + t);
      root.appendChild(svgEl('line', { x1: x, x2: x, y1: TOP - 4, y2: axisY + 4, stroke: '#e6e8ec' }));
      root.appendChild(svgEl('text', { x: x, y: axisY + 16, 'text-anchor': 'middle', fill: '#4a5361' }, (t > 0 ? '+' : '') + fmtTick(t, step, Math.max(Math.abs(lo - first), Math.abs(hi - first)))));
    }
    root.appendChild(svgEl('text', { x: 4, y: axisY + 16, fill: '#4a5361' }, 'since its first request'));
    // Lanes and requests.
    var y = TOP;
    lanes.forEach(function (l, li) {
      var h = l.tracks * TRACK;
      var g = svgEl('g', { 'class': 'cu-lane', 'data-pod': l.pod < 0 ? '' : d.pods[l.pod] });
      g.appendChild(svgEl('rect', { x: 0, y: y, width: W, height: h + 2, fill: li % 2 ? '#f4f5f8' : '#ffffff' }));
      g.appendChild(svgEl('rect', { x: 4, y: y + 6, width: 10, height: 10, fill: podColor(l.pod) }));
      var name = svgEl('text', { x: 20, y: y + 15, fill: '#1d232b', 'font-weight': 600 }, 'pod ' + self.podName(l.pod));
      name.appendChild(svgEl('title', {}, l.pod < 0 ? 'requests that got no answer' : d.pods[l.pod]));
      g.appendChild(name);
      root.appendChild(g);
      self.lanes.push(l.pod < 0 ? '' : d.pods[l.pod]);
      l.reqs.forEach(function (r) { root.appendChild(self.drawReq(r, X, y + r.track * TRACK, LEFT, PW, first, f, sel)); });
      y += h + 6;
    });
    // The rows' creation: a line across every lane, named at the top.
    f.rows.forEach(function (w, k) {
      var x = X(w.at), by = w.by >= 0 ? f.reqs[w.by] : null;
      var g = svgEl('g', { 'class': 'cu-rowmark', 'data-row': w.id });
      g.appendChild(svgEl('line', { x1: x, x2: x, y1: 6 + (k % labelRows) * 14 + 4, y2: H - AXIS + 2, stroke: '#111', 'stroke-width': 1.5, 'stroke-dasharray': '5 3' }));
      var text = '▼ row ' + w.n + ' created ' + rel(w.at, first) + (by ? ' (' + by.id + ')' : '');
      var right = x > LEFT + PW * 0.7;
      g.appendChild(svgEl('text', { x: right ? x - 3 : x + 3, y: 6 + (k % labelRows) * 14 + 9, 'text-anchor': right ? 'end' : 'start', fill: '#111', 'font-weight': 600 }, text));
      g.appendChild(svgEl('title', {}, 'row ' + w.id + ' created at ' + rel(w.at, first) + ' on the database\'s clock' + (by ? ', by ' + self.reqWords(by) + ' (it answered created: true)' : '')));
      root.appendChild(g);
    });
    this.figure.appendChild(root);
    var legend = el('div', 'legend');
    [['client: call → return', OUT[0].color, 0.25], ['handler on the pod', OUT[0].color, 1]].forEach(function (it) {
      var s = el('span', 'item'), sw = el('span', 'sw');
      sw.style.background = it[1];
      sw.style.opacity = it[2];
      s.appendChild(sw);
      s.appendChild(el('span', null, it[0]));
      legend.appendChild(s);
    });
    legend.appendChild(el('span', 'item', '▼ ┆ a row created (database clock)'));
    legend.appendChild(el('span', 'item', '★ the answer said created'));
    legend.appendChild(el('span', 'item', 'colour: outcome, as on the timeline; text colour: the credential'));
    var es = el('span', 'item');
    es.appendChild(el('b', null, '∅ EMPTY SUBJECT'));
    es.style.color = ALARM;
    es.appendChild(document.createTextNode(': a credential that names nobody'));
    legend.appendChild(es);
    this.figure.appendChild(legend);
  };

  CloseUp.prototype.drawReq = function (r, X, y, LEFT, PW, first, f, sel) {
    var part = this.part, self = this, color = OUT[r.out].color;
    var a = Math.max(X(r.call), LEFT), b = r.ret >= 0 ? X(r.ret) : LEFT + PW;
    var label = r.id + ' · ' + (r.status || 'no answer') + (r.created === 1 ? ' · ★ created' : '') +
      (r.emptySubject ? ' · ∅ EMPTY SUBJECT' : r.fp ? ' · ' + r.fp + (r.row ? ' → row ' + r.row.n : '') : '') + (r.err ? ' · ' + r.err.slice(0, 40) : '');
    var aria = 'request ' + this.reqWords(r) + ', call ' + rel(r.call, first) + ', ' + (r.ret >= 0 ? 'return ' + rel(r.ret, first) : 'never returned') +
      (r.ss >= 0 ? ', handler ' + rel(r.ss, first) + ' to ' + rel(r.se, first) : '') + ', ' + (r.status ? 'status ' + r.status : 'no answer') +
      ', ' + OUT[r.out].name + (r.created === 1 ? ', said created' : '') +
      (r.emptySubject ? ', credential ' + r.fp + ' with an EMPTY SUBJECT: it names nobody' : r.fp ? ', credential ' + r.fp + (r.row ? ' for row ' + r.row.n : '') : '');
    var g = svgEl('g', { 'class': 'cu-req' + (r.emptySubject ? ' cu-empty-subject' : '') + (r.i === sel ? ' selected' : ''), 'data-op': r.id, tabindex: 0, role: 'button', 'aria-label': aria });
    g.appendChild(svgEl('title', {}, aria));
    g.appendChild(svgEl('rect', { 'class': 'cu-client', x: a, y: y + 3, width: Math.max(b - a, 2), height: 24, rx: 3, fill: color, 'fill-opacity': 0.22, stroke: color, 'stroke-width': 1.5,
      'stroke-dasharray': r.ret >= 0 ? null : '6 3' }));
    if (r.ss >= 0) {
      var ha = X(r.ss), hb = X(r.se);
      g.appendChild(svgEl('rect', { 'class': 'cu-handler', x: ha, y: y + 9, width: Math.max(hb - ha, 2), height: 12, fill: color }));
    }
    if (r.emptySubject) {
      g.appendChild(svgEl('rect', { x: a - 3, y: y + 1, width: Math.max(b - a, 2) + 6, height: 28, rx: 4, fill: 'none', stroke: ALARM, 'stroke-width': 2.5 }));
    }
    var text = svgEl('text', { x: LEFT + PW + 10, y: y + 19,
      fill: r.emptySubject ? ALARM : r.cred >= 0 ? CRED_COLORS[r.cred % CRED_COLORS.length] : '#4a5361', 'font-weight': r.emptySubject || r.created === 1 ? 700 : 400 }, label);
    g.appendChild(text);
    // Selecting draws the close-up again: the keyboard's focus goes back to the same request.
    var pick = function () {
      part.select(r.i);
      var again = self.figure.querySelector('[data-op="' + r.id + '"]');
      if (again) again.focus();
    };
    g.addEventListener('click', pick);
    g.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
    return g;
  };

  CloseUp.prototype.writeTables = function (f) {
    var part = this.part, self = this;
    this.tables.replaceChildren();
    if (!f.reqs.length && !f.rows.length) return;
    var first = f.reqs.length ? f.reqs[0].call : 0;
    var table = function (cls, caption, heads) {
      var t = el('table', 'cu-table ' + cls), thead = el('thead'), tr = el('tr');
      t.appendChild(el('caption', null, caption));
      heads.forEach(function (h) { var th = el('th', null, h); th.setAttribute('scope', 'col'); tr.appendChild(th); });
      thead.appendChild(tr);
      t.appendChild(thead);
      var tb = el('tbody');
      t.appendChild(tb);
      return { t: t, tb: tb };
    };
    var row = function (tb, cells, alarm) {
      var tr = el('tr', alarm ? 'alarm' : null);
      cells.forEach(function (c, k) {
        var cell = el(k === 0 ? 'th' : 'td', null, c);
        if (k === 0) cell.setAttribute('scope', 'row');
        tr.appendChild(cell);
      });
      tb.appendChild(tr);
    };
    var q = table('cu-requests', 'Requests of customer ' + part.customerLabel(f.c) + ', by call time; times since its first request (handler: the pod\'s clock)',
      ['request', 'pod', 'call', 'return', 'handler', 'status', 'outcome', 'created', 'credential', 'subject', 'note']);
    f.reqs.forEach(function (r) {
      row(q.tb, [r.id, r.pod < 0 ? '(no answer)' : part.d.pods[r.pod], rel(r.call, first), r.ret >= 0 ? rel(r.ret, first) : 'never returned',
        r.ss >= 0 ? rel(r.ss, first) + ' → ' + rel(r.se, first) : '-', r.status ? String(r.status) : '-', OUT[r.out].name,
        r.created < 0 ? '-' : r.created ? 'true' : 'false', r.fp || '-',
        r.emptySubject ? '(empty: names nobody)' : r.unreadable ? 'unreadable: ' + r.unreadable : r.sub === null ? '-' : r.sub + (r.row ? ' (row ' + r.row.n + ')' : ''),
        [r.note, r.err].filter(Boolean).join('; ')], r.emptySubject);
    });
    this.tables.appendChild(q.t);
    var w = table('cu-rows', 'Rows the database holds for customer ' + part.customerLabel(f.c) + ', by creation (database clock)', ['row', 'id', 'created', 'by the answer that said created']);
    f.rows.forEach(function (x) {
      var by = x.by >= 0 ? f.reqs[x.by] : null;
      row(w.tb, ['row ' + x.n, x.id, rel(x.at, first), by ? self.reqWords(by) : '-'], f.rows.length > 1);
    });
    if (!f.rows.length) row(w.tb, ['none', '', '', ''], false);
    this.tables.appendChild(w.t);
  };

  // ---- race timeline --------------------------------------------------------------------
  function Timeline(part, box) {
    this.part = part;
    this.box = box;
    var d = part.d, self = this;
    this.rows = d.rows.slice();
    this.expandAll = false;
    var note = box.querySelector('.rows-note');
    if (note) note.textContent = d.rows_note;
    var controls = el('div', 'controls');
    var reset = el('button', null, 'reset zoom');
    reset.addEventListener('click', function () { self.afull && (self.aview = self.afull.slice()); part.resetView(); });
    controls.appendChild(reset);
    faultButtons(part, controls);
    // Aligned: each row counts from its customer's first request, so that bursts a second apart
    // line up and a burst of a millisecond is wider than a tick.
    var pad = part.burstSpan * 0.04;
    this.afull = [-pad, part.burstSpan + pad];
    this.aview = this.afull.slice();
    this.aligned = part.n > 0;
    part.stats.aligned = this.aligned;
    var alab = el('label');
    this.alignBox = el('input');
    this.alignBox.type = 'checkbox';
    this.alignBox.checked = this.aligned;
    this.alignBox.addEventListener('change', function () { self.setAligned(self.alignBox.checked); });
    alab.appendChild(this.alignBox);
    alab.appendChild(document.createTextNode(' align the customers: time since each one\'s first request'));
    controls.appendChild(alab);
    var lab = el('label'), cb = el('input');
    cb.type = 'checkbox';
    cb.addEventListener('change', function () { self.expandAll = cb.checked; self.layout(); part.redraw(); });
    lab.appendChild(cb);
    lab.appendChild(document.createTextNode(' a lane per request in every row (rows with violations always have them)'));
    controls.appendChild(lab);
    box.appendChild(controls);
    outcomeLegend(part, box);
    this.axis = el('canvas', 'tl-axis');
    box.appendChild(this.axis);
    this.scroll = el('div', 'tl-scroll');
    this.canvas = el('canvas');
    this.spacer = el('div');
    this.scroll.appendChild(this.canvas);
    this.scroll.appendChild(this.spacer);
    box.appendChild(this.scroll);
    this.opRow = new Int32Array(part.n).fill(-1);
    this.opLane = new Int16Array(part.n);
    this.layout();
    var pending = false;
    this.scroll.addEventListener('scroll', function () {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; self.draw(); });
    });
    this.canvas.addEventListener('mousemove', function (ev) {
      var i = self.hit(ev);
      if (i >= 0) showTip(part.opInfo(i), ev.clientX, ev.clientY); else hideTip();
    });
    this.canvas.addEventListener('mouseleave', hideTip);
    zoomable(part, this, function () { return GUTTER; }, function () { return self.plotWidth(); }, function (ev) {
      var i = self.hit(ev);
      if (i >= 0) part.select(i);
    });
  }

  Timeline.prototype.dragFrame = function () { dragFrame(this, this.part, 0, this.canvas.height / (window.devicePixelRatio || 1)); };

  Timeline.prototype.plotWidth = function () { return Math.max(50, this.width - GUTTER - 10); };

  // view is the span the timeline shows: on the run's clock, or aligned on each customer's
  // first request.
  Timeline.prototype.view = function () { return this.aligned ? this.aview : this.part.view; };

  Timeline.prototype.setView = function (a, b) {
    if (!this.aligned) { this.part.setView(a, b); return; }
    this.aview = spanOf(a, b);
    this.draw();
  };

  Timeline.prototype.resetView = function () {
    if (!this.aligned) { this.part.resetView(); return; }
    this.aview = this.afull.slice();
    this.draw();
  };

  Timeline.prototype.setAligned = function (on) {
    this.aligned = on;
    this.alignBox.checked = on;
    this.part.stats.aligned = on;
    this.draw();
  };

  // shift is what the row of customer c subtracts from its times.
  Timeline.prototype.shift = function (c) { return this.aligned ? this.part.first[c] : 0; };

  Timeline.prototype.hasRow = function (c) { return this.rowOf && this.rowOf.has(c); };

  Timeline.prototype.ensureRow = function (c) {
    if (this.hasRow(c)) return;
    this.rows.unshift(c); // pinned at the top
    this.layout();
  };

  Timeline.prototype.scrollToRow = function (c) {
    var r = this.rowOf.get(c);
    if (r === undefined) return;
    var vh = this.scroll.clientHeight;
    this.scroll.scrollTop = Math.max(0, this.rowTop[r] - Math.max(0, (vh - this.rowH[r]) / 2));
  };

  Timeline.prototype.layout = function () {
    var part = this.part, d = part.d, o = d.ops, self = this;
    var opRow = this.opRow, opLane = this.opLane;
    opRow.fill(-1);
    this.rowOf = new Map();
    this.rowLanes = [];
    this.rowGroups = [];
    this.rowH = [];
    this.rowTop = [];
    this.laneH = [];
    this.rowOps = [];
    var y = 0, bars = 0;
    this.rows.forEach(function (c, r) {
      self.rowOf.set(c, r);
      var ops = Array.prototype.slice.call(part.byCust, part.custOff[c], part.custOff[c + 1]);
      ops.sort(function (a, b) {
        var pa = o.pod[a] < 0 ? 1e9 : o.pod[a], pb = o.pod[b] < 0 ? 1e9 : o.pod[b];
        return pa - pb || part.call[a] - part.call[b];
      });
      // Lanes grouped by pod: within a pod, a request takes the first lane free at its call.
      var lanes = 0, groups = [], curPod = null, laneEnd = [];
      ops.forEach(function (i) {
        var p = o.pod[i];
        if (p !== curPod) {
          curPod = p;
          groups.push({ pod: p, lane: lanes });
          laneEnd = [];
        }
        var endT = part.lat[i] >= 0 ? part.call[i] + part.lat[i] : Infinity, k = 0;
        while (k < laneEnd.length && laneEnd[k] > part.call[i]) k++;
        laneEnd[k] = endT;
        var lane = groups[groups.length - 1].lane + k;
        if (lane + 1 > lanes) lanes = lane + 1;
        opRow[i] = r;
        opLane[i] = lane;
        bars++;
      });
      lanes = Math.max(lanes, 1);
      var expanded = self.expandAll || d.customers.viol[c] > 0;
      var h = expanded ? Math.max(20, lanes * 11 + 4) : 20;
      self.rowLanes.push(lanes);
      self.rowGroups.push(groups);
      self.laneH.push((h - 4) / lanes);
      self.rowH.push(h);
      self.rowTop.push(y);
      self.rowOps[r] = ops;
      y += h;
    });
    this.total = y;
    part.stats.timelineRows = this.rows.length;
    part.stats.timelineBars = bars;
  };

  Timeline.prototype.rowAt = function (y) {
    var lo = 0, hi = this.rows.length - 1, top = this.rowTop, h = this.rowH;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (y < top[mid]) hi = mid - 1;
      else if (y >= top[mid] + h[mid]) lo = mid + 1;
      else return mid;
    }
    return -1;
  };

  Timeline.prototype.X = function () {
    var v = this.view(), L = GUTTER, W = this.plotWidth();
    return function (t) { return L + (t - v[0]) / (v[1] - v[0]) * W; };
  };

  Timeline.prototype.hit = function (ev) {
    var r0 = this.canvas.getBoundingClientRect(), x = ev.clientX - r0.left, y = ev.clientY - r0.top + this.scroll.scrollTop;
    if (x < GUTTER) return -1;
    var r = this.rowAt(y);
    if (r < 0) return -1;
    var lane = Math.floor((y - this.rowTop[r] - 2) / this.laneH[r]);
    var X = this.X(), part = this.part, best = -1, bestD = Infinity, self = this, sh = this.shift(this.rows[r]);
    this.rowOps[r].forEach(function (i) {
      if (self.opLane[i] !== lane) return;
      var a = X(part.call[i] - sh), b = part.lat[i] >= 0 ? X(part.call[i] + part.lat[i] - sh) : GUTTER + self.plotWidth();
      if (b - a < 3) { a -= 2; b += 2; }
      if (x < a - 2 || x > b + 2) return;
      var dd = Math.abs(x - (a + b) / 2);
      if (dd < bestD) { bestD = dd; best = i; }
    });
    return best;
  };

  Timeline.prototype.draw = function () {
    var part = this.part, d = part.d, o = d.ops;
    // Size the scroll box first: its scroll bar, if any, narrows the plot.
    var viewH = Math.min(460, Math.max(this.total, 40));
    this.scroll.style.height = (viewH + 2) + 'px';
    var H = this.scroll.clientHeight || viewH;
    this.spacer.style.height = Math.max(0, this.total - H) + 'px';
    this.width = Math.max(300, this.scroll.clientWidth || this.box.clientWidth);
    var W = this.width, L = GUTTER, PW = this.plotWidth(), X = this.X();
    // The time axis above the rows.
    var actx = setupCanvas(this.axis, W, AXIS_H), view = this.view();
    part.stats.timelineView = [view[0], view[1]];
    actx.clearRect(0, 0, W, AXIS_H);
    if (!this.aligned) drawFaults(actx, part, X, L, PW, 0, AXIS_H, 0);
    drawTimeAxis(actx, part, X, L, PW, AXIS_H - 6, 6, false, view);
    actx.fillStyle = '#4a5361';
    actx.font = '11px system-ui, sans-serif';
    actx.textBaseline = 'bottom';
    actx.textAlign = 'center';
    var step = tickStep(view[1] - view[0], Math.max(2, Math.floor(PW / 110)));
    var mag = Math.max(Math.abs(view[0]), Math.abs(view[1]));
    for (var t = Math.ceil(view[0] / step) * step; t <= view[1]; t += step) actx.fillText((this.aligned && t > 0 ? '+' : '') + fmtTick(t, step, mag), X(t), AXIS_H - 7);
    actx.textAlign = 'left';
    actx.fillText(this.aligned ? part.d.names.entity + ' · since its 1st request' : part.d.names.entity, 6, AXIS_H - 7);

    var ctx = setupCanvas(this.canvas, W, H);
    var top = this.scroll.scrollTop;
    ctx.clearRect(0, 0, W, H);
    if (!this.rows.length) {
      ctx.fillStyle = '#667085';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      ctx.fillText('no requests', L, 12);
      this.drawn = 0;
      return;
    }
    if (!this.aligned) drawFaults(ctx, part, X, L, PW, 0, H);
    drawTimeAxis(ctx, part, X, L, PW, 0, H, false, view);
    var first = Math.max(0, this.rowAt(top)), drawn = 0, hl = 0;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (var r = first; r < this.rows.length && this.rowTop[r] < top + H; r++) {
      var c = this.rows[r], y0 = this.rowTop[r] - top, h = this.rowH[r], lh = this.laneH[r], bad = d.customers.viol[c] > 0;
      var sh = this.shift(c);
      ctx.fillStyle = bad ? '#fdecec' : (r % 2 ? '#f7f8fa' : '#ffffff');
      ctx.fillRect(0, y0, L - 2, h);
      if (this.aligned && d.events.length) { // each row's own instant of the fault windows
        drawFaults(ctx, part, function (t) { return X(t - sh); }, L, PW, y0, h);
      }
      ctx.fillStyle = '#e4e7ec';
      ctx.fillRect(0, y0 + h - 1, W, 1);
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, y0, L - 16, h);
      ctx.clip();
      ctx.fillStyle = bad ? '#b4141c' : '#2b3340';
      ctx.fillText((bad ? '✖ ' : '') + part.customerLabel(c), 4, y0 + Math.min(h / 2, 10));
      ctx.restore();
      var groups = this.rowGroups[r];
      for (var g = 0; g < groups.length; g++) {
        ctx.fillStyle = podColor(groups[g].pod);
        ctx.fillRect(L - 12, y0 + 2 + groups[g].lane * lh, 8, Math.max(2, Math.min(lh - 1, 9)));
      }
      var ops = this.rowOps[r];
      for (var k = 0; k < ops.length; k++) {
        var i = ops[k], a = X(part.call[i] - sh), never = part.lat[i] < 0;
        var b = never ? L + PW : X(part.call[i] + part.lat[i] - sh);
        if (b < L || a > L + PW) continue;
        a = Math.max(a, L);
        b = Math.min(b, L + PW);
        var w = Math.max(b - a, 2), by = y0 + 2 + this.opLane[i] * lh, bh = Math.max(lh - 1, 1);
        ctx.fillStyle = OUT[o.out[i]].color;
        ctx.globalAlpha = never ? 0.45 : 1;
        ctx.fillRect(a, by, w, bh);
        ctx.globalAlpha = 1;
        if (bh >= 7 && o.pod[i] >= 0) {
          ctx.fillStyle = podColor(o.pod[i]);
          ctx.fillRect(a, by, w, 2);
          if (w > 40 && bh >= 9) {
            var label = part.podShort[o.pod[i]];
            if (ctx.measureText(label).width + 6 < w) {
              ctx.fillStyle = o.out[i] === 2 || o.out[i] === 4 ? '#1d232b' : '#ffffff';
              ctx.fillText(label, a + 3, by + 1 + bh / 2);
            }
          }
        }
        if (part.highlight[i]) {
          ctx.strokeStyle = '#111';
          ctx.lineWidth = 2;
          ctx.strokeRect(a - 1, by - 1, w + 2, bh + 2);
          ctx.lineWidth = 1;
          hl++;
        }
        if (i === part.selected) {
          ctx.strokeStyle = '#1f5fbf';
          ctx.lineWidth = 3;
          ctx.strokeRect(a - 2, by - 2, w + 4, bh + 4);
          ctx.lineWidth = 1;
        }
        drawn++;
      }
    }
    keepFrame(this);
    this.drawn = drawn;
    this.lastHighlighted = hl;
    part.stats.timelineDrawn = drawn;
  };

  // ---- latency over time by pod -------------------------------------------------------------
  function Latency(part, box) {
    this.part = part;
    this.box = box;
    var d = part.d, o = d.ops, self = this, n = part.n;
    this.log = true;
    this.hidden = {};
    // Points per pod (index pods.length for no pod), returned requests only.
    var np = d.pods.length, buckets = [], minL = Infinity, maxL = 0, never = 0;
    for (var p = 0; p <= np; p++) buckets.push([]);
    for (var i = 0; i < n; i++) {
      var l = part.lat[i];
      if (l < 0) { never++; continue; }
      buckets[o.pod[i] < 0 ? np : o.pod[i]].push(i);
      if (l > 0 && l < minL) minL = l;
      if (l > maxL) maxL = l;
    }
    this.buckets = buckets.map(function (b) { return Int32Array.from(b); });
    if (!isFinite(minL)) minL = 1;
    this.minL = minL;
    this.maxL = Math.max(maxL, minL * 10);
    this.never = never;
    var controls = el('div', 'controls');
    var reset = el('button', null, 'reset zoom');
    reset.addEventListener('click', function () { part.resetView(); });
    controls.appendChild(reset);
    var lab = el('label'), cb = el('input');
    cb.type = 'checkbox';
    cb.checked = true;
    cb.addEventListener('change', function () { self.log = cb.checked; self.draw(); });
    lab.appendChild(cb);
    lab.appendChild(document.createTextNode(' logarithmic latency'));
    controls.appendChild(lab);
    controls.appendChild(el('span', 'muted', '● 2xx   ✕ error or unknown' + (never ? '   (' + never + ' requests never returned and are not plotted)' : '')));
    box.appendChild(controls);
    // Legend: a pod per item, with its counts and percentiles; a click hides or shows its points.
    var lg = el('div', 'legend');
    var names = d.pods.concat(['(no response)']);
    this.buckets.forEach(function (b, p) {
      if (!b.length) return;
      var lats = Float64Array.from(b, function (i) { return part.lat[i]; }).sort();
      var q = function (f) { return lats[Math.min(lats.length - 1, Math.max(0, Math.ceil(f * lats.length) - 1))]; };
      var it = el('span', 'item toggle'), sw = el('span', 'sw');
      sw.style.background = p === np ? NO_POD : podColor(p);
      it.appendChild(sw);
      it.appendChild(el('span', null, names[p] + ': ' + b.length + ', p50 ' + fmtUS(q(0.5)) + ', p99 ' + fmtUS(q(0.99))));
      it.title = 'show or hide';
      it.addEventListener('click', function () {
        self.hidden[p] = !self.hidden[p];
        it.classList.toggle('off', !!self.hidden[p]);
        self.draw();
      });
      lg.appendChild(it);
    });
    if (d.events.length) {
      var it = el('span', 'item');
      it.appendChild(el('span', 'sw fault'));
      it.appendChild(el('span', null, 'fault window'));
      lg.appendChild(it);
    }
    box.appendChild(lg);
    this.canvas = el('canvas', 'lat-canvas');
    box.appendChild(this.canvas);
    this.height = 300;
    var pending = null;
    this.canvas.addEventListener('mousemove', function (ev) {
      pending = ev;
      requestAnimationFrame(function () {
        if (!pending) return;
        var e = pending;
        pending = null;
        var i = self.hit(e);
        if (i >= 0) showTip(part.opInfo(i), e.clientX, e.clientY); else hideTip();
      });
    });
    this.canvas.addEventListener('mouseleave', function () { pending = null; hideTip(); });
    zoomable(part, this, function () { return self.L; }, function () { return self.PW; }, function (ev) {
      var i = self.hit(ev);
      if (i < 0) return;
      part.timeline.ensureRow(part.cust[i]);
      part.timeline.scrollToRow(part.cust[i]);
      part.select(i);
    });
  }

  var LAT_TOP = 18, LAT_BOTTOM = 26;

  // The latency plot shows the run's clock: the part's view.
  Latency.prototype.view = function () { return this.part.view; };
  Latency.prototype.setView = function (a, b) { this.part.setView(a, b); };
  Latency.prototype.resetView = function () { this.part.resetView(); };

  Latency.prototype.dragFrame = function () { dragFrame(this, this.part, LAT_TOP, this.height - LAT_BOTTOM - LAT_TOP); };

  Latency.prototype.Y = function () {
    var T = LAT_TOP, H = this.height - LAT_BOTTOM - T, lo = this.minL, hi = this.maxL;
    if (this.log) {
      var a = Math.log10(Math.max(lo, 1)) - 0.05, b = Math.log10(hi) + 0.08;
      return function (l) { return T + H - (Math.log10(Math.max(l, 1)) - a) / (b - a) * H; };
    }
    return function (l) { return T + H - l / (hi * 1.06) * H; };
  };

  Latency.prototype.hit = function (ev) {
    var r = this.canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    var part = this.part, v = part.view, L = this.L, PW = this.PW, Y = this.Y(), best = -1, bestD = 36;
    var k = PW / (v[1] - v[0]);
    for (var p = 0; p < this.buckets.length; p++) {
      if (this.hidden[p]) continue;
      var b = this.buckets[p];
      for (var j = 0; j < b.length; j++) {
        var i = b[j], px = L + (part.call[i] - v[0]) * k;
        var dx = px - x;
        if (dx > 6 || dx < -6) continue;
        var dy = Y(part.lat[i]) - y, dd = dx * dx + dy * dy;
        if (dd < bestD) { bestD = dd; best = i; }
      }
    }
    return best;
  };

  Latency.prototype.draw = function () {
    var part = this.part, d = part.d, o = d.ops;
    var W = Math.max(300, this.box.clientWidth - 2), H = this.height;
    var ctx = setupCanvas(this.canvas, W, H, true);
    // The same time scale as the timeline above, so that the two line up.
    this.L = GUTTER;
    this.PW = Math.max(50, Math.min(part.timeline.plotWidth(), W - GUTTER - 10));
    var L = this.L, PW = this.PW, T = LAT_TOP, PH = H - LAT_BOTTOM - T, v = part.view, Y = this.Y();
    var X = function (t) { return L + (t - v[0]) / (v[1] - v[0]) * PW; };
    ctx.clearRect(0, 0, W, H);
    drawFaults(ctx, part, X, L, PW, T, PH, 2);
    // Axes and grid.
    ctx.strokeStyle = '#e1e4e9';
    ctx.fillStyle = '#4a5361';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    var ticks = [];
    if (this.log) {
      for (var e = Math.floor(Math.log10(Math.max(this.minL, 1))); e <= Math.ceil(Math.log10(this.maxL)); e++) {
        [1, 2, 5].forEach(function (m) { ticks.push(m * Math.pow(10, e)); });
      }
    } else {
      var st = tickStep(this.maxL * 1.06, 6);
      for (var t = 0; t <= this.maxL * 1.06; t += st) ticks.push(t);
    }
    ticks.forEach(function (t) {
      var y = Y(t);
      if (y < T - 0.5 || y > T + PH + 0.5) return;
      ctx.beginPath();
      ctx.moveTo(L, Math.round(y) + 0.5);
      ctx.lineTo(L + PW, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(fmtShort(t), L - 6, y);
    });
    drawTimeAxis(ctx, part, X, L, PW, T + PH, 4, true);
    ctx.strokeStyle = '#9aa1ab';
    ctx.strokeRect(L + 0.5, T + 0.5, PW, PH);
    ctx.textAlign = 'left';
    ctx.fillText('latency (' + (this.log ? 'log' : 'linear') + ')', 6, T + PH / 2);
    ctx.fillText('call time →', 6, T + PH + 10);
    // Points: a square per 2xx, a cross per error or unknown, in the pod's colour. They are
    // written into the plot's pixels: 100,000 of them take a few milliseconds so, where as
    // many canvas calls take a quarter of a second.
    var dpr = window.devicePixelRatio || 1;
    var x0 = Math.ceil(L * dpr), y0 = Math.ceil(T * dpr), pw = Math.floor(PW * dpr) - 1, ph = Math.floor(PH * dpr) - 1;
    var img = ctx.getImageData(x0, y0, pw, ph), px = new Uint32Array(img.data.buffer);
    var np = d.pods.length, drawn = 0, kx = PW / (v[1] - v[0]);
    // Bigger points when fewer are in view (estimated from the span shown).
    var inView = part.n * Math.min(1, (v[1] - v[0]) / (part.full[1] - part.full[0]));
    var sq = Math.max(1, Math.round((inView < 2000 ? 4 : inView < 20000 ? 3 : 2) * dpr)), arm = Math.round(2 * dpr);
    for (var p = 0; p < this.buckets.length; p++) {
      if (this.hidden[p]) continue;
      var b = this.buckets[p], col = pixel(p === np ? NO_POD : podColor(p));
      for (var j = 0; j < b.length; j++) {
        var i = b[j], x = L + (part.call[i] - v[0]) * kx;
        if (x < L - 3 || x > L + PW + 3) continue;
        var cx = Math.round(x * dpr) - x0, cy = Math.round(Y(part.lat[i]) * dpr) - y0, out = o.out[i];
        if (out === 0 || out === 1) {
          var a = cx - (sq >> 1), c = cy - (sq >> 1);
          for (var yy = Math.max(c, 0); yy < Math.min(c + sq, ph); yy++) {
            for (var xx = Math.max(a, 0); xx < Math.min(a + sq, pw); xx++) px[yy * pw + xx] = col;
          }
        } else {
          for (var k = -arm; k <= arm; k++) {
            var xk = cx + k, y1 = cy + k, y2 = cy - k;
            if (xk < 0 || xk >= pw) continue;
            if (y1 >= 0 && y1 < ph) px[y1 * pw + xk] = col;
            if (y2 >= 0 && y2 < ph) px[y2 * pw + xk] = col;
          }
        }
        drawn++;
      }
    }
    ctx.putImageData(img, x0, y0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(L, T, PW, PH);
    ctx.clip();
    // Requests of the violation in focus, and the selected one.
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 1.5;
    part.highlighted.forEach(function (i) {
      if (part.lat[i] < 0) return;
      ctx.beginPath();
      ctx.arc(L + (part.call[i] - v[0]) * kx, Y(part.lat[i]), 5, 0, 2 * Math.PI);
      ctx.stroke();
    });
    if (part.selected >= 0 && part.lat[part.selected] >= 0) {
      ctx.strokeStyle = '#1f5fbf';
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.arc(L + (part.call[part.selected] - v[0]) * kx, Y(part.lat[part.selected]), 7, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.lineWidth = 1;
    ctx.restore();
    keepFrame(this);
    this.drawn = drawn;
    part.stats.latencyPoints = drawn;
  };

  // openFromHash shows the customer a link names, #<part's anchor>-closeup-c<customer index>,
  // in that part's close-up: a link to one race, for a bug report or a screenshot.
  function openFromHash(parts) {
    var m = /^#(.+)-closeup-c(\d+)$/.exec(decodeURIComponent(location.hash || ''));
    if (!m) return;
    parts.forEach(function (p) {
      if (p.root.id !== m[1] || !p.closeup) return;
      var c = p.d.customers.index.indexOf(Number(m[2]));
      if (c < 0) return;
      p.closeup.show(c);
      p.closeup.box.scrollIntoView({ block: 'start' });
    });
  }

  // ---- start ---------------------------------------------------------------------------------
  function start() {
    var t0 = performance.now();
    tooltip = document.getElementById('tooltip');
    var data = JSON.parse(document.getElementById('report-data').textContent);
    report.parseMs = performance.now() - t0;
    var nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    if (nav) report.domInteractiveMs = nav.domInteractive;
    var parts = [];
    var roots = document.querySelectorAll('[data-part]');
    for (var k = 0; k < roots.length; k++) {
      var idx = Number(roots[k].getAttribute('data-part'));
      parts.push(new Part(roots[k], data.parts[idx], idx));
    }
    report.buildMs = performance.now() - t0 - report.parseMs;
    var t1 = performance.now();
    parts.forEach(function (p) { p.timeline.draw(); });
    report.timelineMs = performance.now() - t1;
    t1 = performance.now();
    parts.forEach(function (p) { p.latency.draw(); });
    report.latencyMs = performance.now() - t1;
    var pending = false;
    window.addEventListener('resize', function () {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; parts.forEach(function (p) { p.redraw(); }); });
    });
    parts.forEach(function (p) {
      report.parts.push(p.stats);
      report.timelineRows += p.stats.timelineRows;
      report.timelineBars += p.stats.timelineBars;
      report.latencyPoints += p.stats.latencyPoints;
      report.violationRows += p.stats.violationRows;
    });
    report.barPoint = function (part, id) { return parts[part] ? parts[part].barPoint(id) : null; };
    openFromHash(parts);
    window.addEventListener('hashchange', function () { openFromHash(parts); });
    report.renderMs = performance.now() - t0;
    report.loadMs = performance.now();
    report.ready = true;
    document.documentElement.setAttribute('data-rendered', 'true');
  }

  function run() {
    try {
      start();
    } catch (e) {
      report.error = String(e && e.stack || e);
      throw e;
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run); else run();
})();
