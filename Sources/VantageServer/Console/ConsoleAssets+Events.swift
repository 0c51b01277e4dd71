// The console's style and script for event review: filters, groups, timeline, clips.
extension ConsoleAssets {
    static let eventsStyle = """
        .utc { white-space: nowrap; }
        .type-chips { list-style: none; display: flex; flex-wrap: wrap; gap: 8px; padding: 0; margin: 12px 0; }
        .type-chip { display: inline-flex; gap: 6px; align-items: center; padding: 3px 10px; border-radius: 999px;
          border: 1px solid var(--line); background: var(--panel); text-decoration: none; color: var(--ink); }
        .type-chip.current { border-color: var(--accent); background: #eff6ff; }
        .type-chip .count, .event-group .count { font-weight: 700; }
        .timelines { display: grid; gap: 12px; }
        figure.timeline { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
          padding: 8px 12px; min-width: 0; }
        figure.timeline svg { width: 100%; height: auto; display: block; }
        .timeline .mark.info { fill: #94a3b8; }
        .timeline .mark.notable { fill: #d97706; }
        .timeline a:hover .mark { fill: var(--accent); }
        .event-group { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
          padding: 8px 12px; margin: 8px 0; min-width: 0; }
        .event-group.notable { border-left: 4px solid #d97706; }
        .event-group summary { cursor: pointer; overflow-wrap: anywhere; }
        .event-group img.thumb { margin: 8px 0; }
        ol.event-rows { list-style: none; padding: 0; margin: 8px 0 0; }
        .event-row { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; padding: 4px 0;
          border-top: 1px solid var(--line); }
        code.event-data { overflow-wrap: anywhere; white-space: pre-wrap; font-size: 13px; min-width: 0; }
        .tag { font-size: 12px; padding: 0 6px; border-radius: 4px; background: #eef1f6; }
        .tag.clip { background: #fef3c7; }
        .event-media { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 16px; }
        .event-media > div { min-width: 0; }
        video.clip { width: 100%; max-height: 480px; background: #000; border-radius: 8px; }
        details.event-json { margin-top: 16px; }
        details.event-json pre.json { white-space: pre-wrap; overflow-wrap: anywhere; }
        dl.facts dd { min-width: 0; overflow-wrap: anywhere; }
        @media (max-width: 600px) {
          #event-filters label, #event-filters select, #event-filters input { width: 100%; }
          dl.facts { grid-template-columns: 1fr; }
        }
        """

    static let eventsScript = #"""
        // The custom range's inputs show only with "from – to"; typing a bound picks it.
        const range = document.getElementById('event-range');
        if (range) {
          const custom = document.querySelectorAll('#event-filters .custom-range');
          const show = () => { for (const label of custom) label.hidden = range.value !== 'custom'; };
          range.addEventListener('change', show);
          for (const input of document.querySelectorAll('#event-filters .custom-range input')) {
            input.addEventListener('change', () => { range.value = 'custom'; show(); });
          }
          show();
        }
        """#
}
