// The console's style and script for the log view (ConsolePages+Logs.swift): level and text filters, and Follow,
// which polls the logs API every two seconds while the tab is visible.
extension ConsoleAssets {
    static let logsStyle = """
        .log-filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: flex-end; margin: 0 0 6px; }
        .log-filters label.check { flex-direction: row; align-items: center; gap: 6px; padding-bottom: 6px; }
        .log-filters label.log-search input { width: 16em; max-width: 100%; }
        .log-filters label { max-width: 100%; }
        ol.log-lines { list-style: none; margin: 0; padding: 8px 10px; background: var(--panel);
          border: 1px solid var(--line); border-radius: 8px; max-height: 32em; overflow-y: auto;
          font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
        ol.log-lines:empty { display: none; }
        .log-line { white-space: pre-wrap; overflow-wrap: anywhere; padding: 1px 0; }
        .log-time { color: var(--muted); }
        .log-level { display: inline-block; min-width: 5.5em; text-align: center; border-radius: 4px; padding: 0 4px;
          font-size: 11px; font-weight: 600; background: #eef1f5; color: #475467; }
        .log-level.level-warning { background: #fef0c7; color: #93370d; }
        .log-level.level-error, .log-level.level-critical { background: #fee4e2; color: #b42318; }
        .log-level.level-notice { background: #dbeafe; color: #1e40af; }
        .log-node { color: #5b21b6; font-weight: 600; }
        """

    static let logsScript = #"""
        const view = document.getElementById('log-view');
        if (!view) return;
        const list = document.getElementById('logs');
        const empty = document.getElementById('no-logs');
        const level = document.getElementById('log-level');
        const search = document.getElementById('log-search');
        const follow = document.getElementById('log-follow');
        const error = document.getElementById('log-error');
        const limit = Number(view.dataset.limit) || 500;
        let generation = 0;

        function element(tag, className, text) {
          const node = document.createElement(tag);
          node.className = className;
          node.textContent = text;
          return node;
        }

        // The same markup as ConsolePages.logLine.
        function lineElement(line) {
          const item = element('li', 'log-line', '');
          item.dataset.time = line.time;
          let message = line.message;
          let node = null;
          const match = /(^|\s)app\.node=(\S+)/.exec(message);
          if (match) {
            node = match[2];
            message = (message.slice(0, match.index) + message.slice(match.index + match[0].length)).trim();
          }
          const utc = new Date(line.time).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
          item.append(element('span', 'log-time', utc), ' ');
          item.append(element('span', 'log-level level-' + line.level, line.level.toUpperCase()), ' ');
          if (node) item.append(element('span', 'log-node', node), ' ');
          item.append(element('span', 'log-message', message));
          return item;
        }

        function key(item) { return item.dataset.time + '|' + item.textContent; }

        function query(since) {
          const params = new URLSearchParams({limit: String(limit)});
          if (level.value) params.set('level', level.value);
          if (search.value.trim()) params.set('contains', search.value.trim());
          if (since) params.set('since', since);
          return view.dataset.logs + '?' + params;
        }

        function show(lines, replace) {
          const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
          if (replace) list.replaceChildren();
          // Lines at the last shown time come again (since= is inclusive): skip those already shown.
          const last = list.lastElementChild ? list.lastElementChild.dataset.time : null;
          const seen = new Set();
          if (last) {
            for (const item of list.children) if (item.dataset.time === last) seen.add(key(item));
          }
          for (const line of lines) {
            const item = lineElement(line);
            if (last && line.time <= last && (line.time < last || seen.has(key(item)))) continue;
            list.append(item);
          }
          while (list.children.length > limit) list.firstElementChild.remove();
          empty.hidden = list.children.length > 0;
          empty.textContent = (level.value || search.value.trim())
            ? 'No log lines match the filter.' : 'No log lines from the device yet.';
          if (replace || atBottom) list.scrollTop = list.scrollHeight;
        }

        async function load(replace) {
          const mine = replace ? ++generation : generation;
          const last = replace ? null : (list.lastElementChild ? list.lastElementChild.dataset.time : null);
          try {
            const answer = await api('GET', query(last));
            if (mine !== generation) return;  // a newer filter's answer wins
            error.hidden = true;
            show(answer.items, replace);
          } catch (failure) {
            error.textContent = 'Could not load the log lines: ' + failure.message;
            error.hidden = false;
          }
        }

        let typing;
        level.addEventListener('change', () => load(true));
        search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(() => load(true), 300); });
        document.getElementById('log-filters').addEventListener('submit', (event) => {
          event.preventDefault();
          load(true);
        });
        follow.addEventListener('change', () => { if (follow.checked) load(false); });
        list.scrollTop = list.scrollHeight;
        setInterval(() => {
          if (follow.checked && document.visibilityState === 'visible') load(false);
        }, 2000);
        """#
}
