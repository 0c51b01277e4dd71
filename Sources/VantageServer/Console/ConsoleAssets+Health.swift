// The console's style and script for health charts, device system page, camera status.
extension ConsoleAssets {
    static let healthStyle = """
        .range-picker { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; margin: 0 0 12px; }
        .range-picker a { padding: 2px 8px; border-radius: 6px; border: 1px solid var(--line); text-decoration: none; }
        .range-picker a[aria-current] { background: var(--accent); border-color: var(--accent); color: #fff; }
        .health-group h3 { margin: 16px 0 8px; font-size: 15px; }
        figure.chart figcaption { display: flex; flex-wrap: wrap; gap: 2px 8px; align-items: baseline; }
        .chart-readout { font-size: 12px; color: var(--ink); font-variant-numeric: tabular-nums; }
        .chart-readout:empty { display: none; }
        .chart-point { fill: var(--accent); stroke: transparent; stroke-width: 8; cursor: crosshair; }
        .chart-point:hover, .chart-point.active { fill: #1e3a8a; r: 4; }
        #system-figures td.value { font-variant-numeric: tabular-nums; }
        .camera-fps { font-variant-numeric: tabular-nums; }
        @media (max-width: 600px) {
          .charts { grid-template-columns: 1fr; }
          /* Smaller thumbnails, so that a camera's status fits beside its name on a phone. */
          #cameras img.thumb, #cameras .no-snapshot { width: 72px; height: 40px; font-size: 10px; }
          #cameras code.muted { font-size: 10px; }
        }
        """

    // Hovering (or focusing) a point of a chart shows its time and value above the chart.
    static let healthScript = #"""
        function show(point) {
          const figure = point.closest('figure.chart');
          if (!figure) return;
          figure.querySelectorAll('.chart-point.active').forEach((p) => p.classList.remove('active'));
          point.classList.add('active');
          const readout = figure.querySelector('.chart-readout');
          if (readout) readout.textContent = point.dataset.label || '';
        }
        document.addEventListener('mouseover', (event) => {
          const point = event.target.closest && event.target.closest('.chart-point');
          if (point) show(point);
        });
        document.addEventListener('focusin', (event) => {
          const point = event.target.closest && event.target.closest('.chart-point');
          if (point) show(point);
        });
        """#
}
