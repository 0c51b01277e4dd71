// The console's script for live video relayed from the agents (instance live page, the live grid); its style is
// VantageStyle's, shared with `vantage run`'s live view page.
extension ConsoleAssets {
    static let liveStyle = """
        """

    /// Parts of a page that keep themselves current (`data-refresh="SECONDS"` on an element with an id): the page is
    /// fetched again and those elements' contents replaced, while the tab is visible and nobody types in them. Plain
    /// polling of the page's own URL: no second API for the console to keep in step.
    static let refreshScript = #"""
        const regions = [...document.querySelectorAll('[data-refresh][id]')];
        if (regions.length === 0) return;
        const seconds = Math.max(2, Math.min(...regions.map(r => Number(r.dataset.refresh) || 10)));
        let busy = false;
        async function refresh() {
          if (document.hidden || busy) return;
          const focused = document.activeElement;
          busy = true;
          try {
            const response = await fetch(location.href, { headers: { 'Accept': 'text/html' }, cache: 'no-store' });
            if (!response.ok || response.redirected) return;
            const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
            // As the page's own parts were when it loaded, so that an unchanged part compares equal and is left alone.
            localTimes(fresh);
            for (const region of regions) {
              if (focused && region.contains(focused) && focused.matches('input, select, textarea')) continue;
              const next = fresh.getElementById(region.id);
              if (!next || next.innerHTML === last.get(region)) continue;
              last.set(region, next.innerHTML);
              region.innerHTML = next.innerHTML;
              localTimes(region);
              region.dispatchEvent(new CustomEvent('console:refreshed', { bubbles: true }));
            }
            document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
          } catch (error) {
            // Offline for a moment: the next round tries again.
          } finally {
            busy = false;
          }
        }
        // What the server last sent for each region (kept out of the DOM).
        const last = new Map(regions.map(region => [region, region.innerHTML]));
        setInterval(refresh, seconds * 1000);
        document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
        """#

    static let liveScript = #"""
        // Live tiles: an MJPEG stream (the instance page) or a frame fetched twice a second (the grid), only while
        // the page is visible, so that a hidden tab costs the device and the server nothing.
        const grid = document.getElementById('live');
        if (!grid) return;
        const polling = grid.dataset.liveMode === 'poll';

        function source(tile) {
          const stream = tile.dataset.stream ? 'stream=' + encodeURIComponent(tile.dataset.stream) : '';
          const fresh = polling ? 't=' + Date.now() : '';
          const query = [stream, fresh].filter(Boolean).join('&');
          return tile.dataset.source + (query ? '?' + query : '');
        }

        function showState(tile, text, retry) {
          const state = tile.querySelector('.live-state');
          const img = tile.querySelector('img');
          img.hidden = true;
          tile.querySelector('.live-badge').hidden = true;
          state.hidden = false;
          state.textContent = text;
          if (retry) {
            const button = document.createElement('button');
            button.type = 'button';
            button.textContent = 'Try again';
            button.addEventListener('click', () => start(tile));
            state.append(document.createElement('br'), button);
          }
        }

        function showing(tile) {
          tile.querySelector('img').hidden = false;
          tile.querySelector('.live-state').hidden = true;
          tile.querySelector('.live-badge').hidden = false;
          tile.dataset.frames = String(Number(tile.dataset.frames || 0) + 1);
        }

        function start(tile) {
          const img = tile.querySelector('img');
          clearTimeout(tile._timer);
          showState(tile, 'connecting to the device…', false);
          img.onload = () => {
            showing(tile);
            if (polling && !document.hidden) tile._timer = setTimeout(() => { img.src = source(tile); }, 500);
            if (!polling) findStreams();
          };
          img.onerror = () => {
            if (document.hidden) return;
            showState(tile, polling
              ? 'No frame from the device: it may be offline, or the instance not running.'
              : 'The stream ended: no frame from the device for 15 s (is it online, the instance running, the camera not paused?).',
              true);
            if (polling) tile._timer = setTimeout(() => start(tile), 10000);
          };
          img.src = source(tile);
          // Chromium fires no load event for the frames of a multipart stream after the first: watch the image.
          if (!polling) {
            clearInterval(tile._watch);
            tile._watch = setInterval(() => { if (img.naturalWidth > 0 && img.hidden) showing(tile); }, 500);
          }
        }

        function stop(tile) {
          clearTimeout(tile._timer);
          clearInterval(tile._watch);
          const img = tile.querySelector('img');
          img.onload = img.onerror = null;
          img.removeAttribute('src');
          showState(tile, 'paused while the page is hidden', false);
        }

        // An instance with several cameras: one tile per camera stream, once the device named them.
        let streamsAsked = false;
        async function findStreams() {
          if (streamsAsked || !grid.dataset.streams) return;
          streamsAsked = true;
          try {
            const answer = await api('GET', grid.dataset.streams);
            const streams = answer.streams || [];
            if (streams.length < 2) return;
            const first = grid.querySelector('.live-tile');
            for (const stream of streams) {
              const tile = first.cloneNode(true);
              tile.dataset.stream = stream;
              tile.querySelector('figcaption').firstChild.textContent += ' · ' + stream + ' ';
              grid.append(tile);
              start(tile);
            }
            stop(first);
            first.remove();
            grid.classList.remove('single');
          } catch (error) {
            // One tile of the newest frames stays.
          }
        }

        const tiles = () => grid.querySelectorAll('.live-tile');
        for (const tile of tiles()) start(tile);
        document.addEventListener('visibilitychange', () => {
          for (const tile of tiles()) document.hidden ? stop(tile) : start(tile);
        });
        window.addEventListener('pagehide', () => { for (const tile of tiles()) stop(tile); });

        // Pause and resume camera nodes: the server asks the device and answers once it did.
        const controls = document.getElementById('camera-controls');
        if (controls) {
          for (const button of controls.querySelectorAll('button[data-camera-signal]')) {
            button.addEventListener('click', async () => {
              const status = controls.querySelector('.status');
              const error = controls.querySelector('.form-error');
              error.hidden = true;
              status.textContent = 'asking the device…';
              for (const b of controls.querySelectorAll('button')) b.disabled = true;
              try {
                const path = '/api/v1/instances/' + encodeURIComponent(controls.dataset.instance) + '/nodes/'
                  + encodeURIComponent(button.dataset.node) + '/' + button.dataset.cameraSignal;
                const answer = await api('POST', path);
                status.textContent = answer.message;
              } catch (failure) {
                status.textContent = '';
                showError(controls, failure.message);
              } finally {
                for (const b of controls.querySelectorAll('button')) b.disabled = false;
              }
            });
          }
        }

        for (const select of document.querySelectorAll('select[data-autosubmit]')) {
          select.addEventListener('change', () => select.form.submit());
        }
        """#
}
