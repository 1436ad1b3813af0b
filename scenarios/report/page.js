(function () {
  const SHADED_GAPS = 300;  // more shaded gaps would hide the price
  const CONFIG = {displaylogo: false, responsive: true,
                  modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d']};
  const figures = JSON.parse(document.getElementById('figures').textContent);
  for (const [id, fig] of Object.entries(figures)) Plotly.newPlot(id, fig.data, fig.layout, CONFIG);

  const P = JSON.parse(document.getElementById('price-data').textContent);
  const layout = JSON.parse(document.getElementById('price-layout').textContent);
  function bytes(s) { const b = atob(s); const u = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i); return u.buffer; }
  const f32 = s => new Float32Array(bytes(s));
  const f64 = s => new Float64Array(bytes(s));
  const X = f64(P.x);
  const symbol = document.getElementById('symbol');
  const derived = document.getElementById('derived');
  const note = document.getElementById('derived-note');

  function draw() {
    const d = P.symbols[symbol.value];
    const traces = [];
    const close = f32(d.close);
    let lo = Infinity, hi = -Infinity;
    const low = d.low ? f32(d.low) : close, high = d.high ? f32(d.high) : close;
    for (let i = 0; i < close.length; i++) {
      if (low[i] < lo) lo = low[i];
      if (high[i] > hi) hi = high[i];
    }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (d.low) {
      traces.push({x: X, y: low, type: 'scatter', mode: 'lines', line: {width: 0},
                   hoverinfo: 'skip', showlegend: false});
      traces.push({x: X, y: high, type: 'scatter', mode: 'lines', line: {width: 0},
                   fill: 'tonexty', fillcolor: 'rgba(52,58,64,0.15)', hoverinfo: 'skip',
                   name: 'lowest to highest close'});
    }
    traces.push({x: X, y: close, type: 'scatter', mode: 'lines', name: 'close',
                 line: {color: '#343a40', width: 1.3},
                 hovertemplate: '%{x|%Y-%m-%d %H:%M}: %{y:.4f}<extra></extra>'});
    const gx = f64(d.gaps.x);
    P.outcomes.forEach((name, k) => {
      const xs = [], mid = [], widths = [], text = [];
      for (let i = 0; i < gx.length; i++) if (d.gaps.outcome[i] === k) {
        const w = d.gaps.minutes[i] * 60000;
        xs.push(gx[i]); mid.push(gx[i] + w / 2); widths.push(w); text.push(d.gaps.minutes[i] + ' min');
      }
      if (!xs.length) return;
      const colour = P.colours[name];
      if (gx.length <= SHADED_GAPS) traces.push({x: mid, y: xs.map(() => hi - lo || 1), base: lo, width: widths, type: 'bar',
                   marker: {color: colour, opacity: 0.25}, hoverinfo: 'skip', showlegend: false,
                   legendgroup: name});
      traces.push({x: xs, y: xs.map(() => 0.5), yaxis: 'y2', type: 'scatter', mode: 'markers',
                   name: 'gap ' + name, legendgroup: name, text: text,
                   marker: {symbol: 'line-ns-open', size: 14, color: colour, line: {width: 2, color: colour}},
                   hovertemplate: '%{x|%Y-%m-%d %H:%M}: %{text} ' + name + '<extra></extra>'});
    });
    const interval = derived.value;
    note.textContent = '';
    if (interval && P.derived[interval]) {
      const bars = P.derived[interval].symbols[symbol.value];
      if (bars) {
        traces.push({type: 'candlestick', name: interval + 'm derived bars', x: f64(bars.x),
                     open: f32(bars.open), high: f32(bars.high), low: f32(bars.low),
                     close: f32(bars.close), increasing: {line: {color: '#2f9e44'}},
                     decreasing: {line: {color: '#e03131'}}});
      }
      note.textContent = 'derived bars from ' + P.derived[interval].from + ' on';
    }
    layout.xaxis.rangeslider = {visible: false};
    Plotly.react("price-chart", traces, layout, CONFIG);
  }
  // A link may pick the price chart's symbol and derived bars: report.html#symbol=IBM&derived=15
  const asked = new URLSearchParams(location.hash.slice(1));
  if (asked.has('symbol') && P.symbols[asked.get('symbol')]) symbol.value = asked.get('symbol');
  if (asked.has('derived') && P.derived[asked.get('derived')]) derived.value = asked.get('derived');
  symbol.addEventListener('change', draw);
  derived.addEventListener('change', draw);
  draw();
  document.body.dataset.drawn = document.querySelectorAll('.js-plotly-plot').length;
})();
