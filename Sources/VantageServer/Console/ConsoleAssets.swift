import VantageCore

/// The console's style sheet, script and icon, served from memory (`/console.css`, `/console.js`, `/favicon.svg`).
/// Pages carry no inline script or style, so the Content-Security-Policy can allow only these files.
enum ConsoleAssets {
    /// The style sheet: the base rules here, then each feature's own (ConsoleAssets+<Feature>.swift).
    static let style = [
        VantageStyle.css, baseStyle, liveStyle, deployStyle, eventsStyle, healthStyle, fleetStyle, logsStyle,
        usersStyle,
    ].joined(separator: "\n")

    /// The script: the base (api(), forms, times) here, then each feature's own, each wrapped so its names stay its
    /// own.
    static let script =
        ([baseScript]
        + [
            liveScript, refreshScript, deployScript, eventsScript, healthScript, fleetScript, logsScript, usersScript,
        ].map {
            $0.isEmpty ? "" : "(() => {\n" + $0 + "\n})();\n"
        }).joined(separator: "\n")

    static let baseStyle = """
        td.empty, p.empty { color: var(--muted); font-style: italic; }
        ul.plain { list-style: none; margin: 0; padding: 0; }
        ul.plain li + li { margin-top: 4px; }
        .badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
          background: #e5e7eb; color: #374151; vertical-align: middle; }
        .badge.ok { background: #dcfce7; color: #166534; }
        .badge.bad { background: #fee2e2; color: #991b1b; }
        .badge.busy { background: #dbeafe; color: #1e40af; }
        .badge.warn { background: #fef3c7; color: #92400e; }
        .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 16px; }
        .tile { display: block; background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
          padding: 16px 20px; color: inherit; text-decoration: none; }
        .tile:hover { border-color: var(--accent); }
        .tile h2 { margin: 0 0 8px; }
        .tile dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 12px; margin: 0; }
        .tile dd { margin: 0; font-size: 20px; font-weight: 700; }
        .tile p { margin: 8px 0 0; font-size: 12px; }
        dl.facts { display: grid; grid-template-columns: 160px 1fr; gap: 6px 16px; background: var(--panel);
          border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; }
        form.inline { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 12px; }
        form.grid-form { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px 20px;
          align-items: start; }
        form.grid-form > h2, form.grid-form > p, form.grid-form > .help { grid-column: 1 / -1; margin: 8px 0 0; }
        form.grid-form > button { justify-self: start; grid-column: 1 / -1; }
        form.stack { display: grid; gap: 14px; }
        label { display: flex; flex-direction: column; gap: 4px; font-weight: 600; font-size: 14px; }
        label .muted, label .help { font-weight: 400; }
        input, select { font: inherit; font-weight: 400; padding: 7px 9px; border: 1px solid #b8c0cc; border-radius: 6px;
          background: #fff; min-width: 0; }
        input:focus, select:focus { outline: 2px solid #93c5fd; border-color: var(--accent); }
        input:user-invalid, select:user-invalid { border-color: var(--bad); }
        button, a.button { font: inherit; font-weight: 600; padding: 7px 14px; border-radius: 6px; border: none;
          background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
        button:disabled { opacity: .6; cursor: progress; }
        button.danger { background: var(--bad); }
        button.link { background: none; color: #e5e7eb; padding: 4px 6px; text-decoration: underline; font-weight: 400; }
        .actions { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-bottom: 12px; }
        .actions .form-error { margin: 0; }
        .form-error { color: var(--bad); background: #fef2f2; border: 1px solid #fecaca; border-radius: 6px;
          padding: 8px 12px; white-space: pre-wrap; }
        .status { color: var(--muted); margin: 0; }
        .notice { background: #fffbeb; border: 1px solid #fde68a; border-radius: 8px; padding: 8px 16px; margin-top: 16px; }
        pre.secret { user-select: all; background: #fff; border: 1px dashed #d97706; padding: 8px 12px;
          overflow-wrap: anywhere; white-space: pre-wrap; }
        pre.logs, pre.device-command { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
          padding: 8px 12px; max-height: 28em; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
        pre.json { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
          overflow: auto; }
        img.thumb { width: 160px; height: 90px; object-fit: cover; border-radius: 4px; background: #e5e7eb; display: block; }
        img.snapshot { max-width: 100%; border-radius: 8px; border: 1px solid var(--line); }
        .no-snapshot { display: flex; align-items: center; justify-content: center; width: 160px; height: 90px;
          border-radius: 4px; background: #e5e7eb; color: var(--muted); font-size: 12px; }
        .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 16px; }
        figure.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
          padding: 8px 12px; }
        figure.chart svg { width: 100%; height: auto; display: block; }
        .chart-line { stroke: var(--accent); stroke-width: 2; fill: var(--accent); }
        polyline.chart-line { fill: none; stroke-linejoin: round; }
        .chart-axis { stroke: #c4cad4; stroke-width: 1; }
        .chart-label { font-size: 10px; fill: var(--muted); }
        .login { max-width: 380px; margin: 60px auto; }
        .paging { display: flex; gap: 16px; }

        """

    /// The console's one script. `api(method, path, body)` calls the REST API with the session's CSRF token and
    /// throws the server's message; the rest wires the page's forms and buttons to it.
    static let baseScript = #"""
        // Vantage console: the forms call the REST API (/api/v1) with the session cookie and the CSRF token.
        'use strict';

        function csrfToken() {
          const meta = document.querySelector('meta[name="csrf-token"]');
          return meta ? meta.content : '';
        }

        // Calls the API. `body` is an object (sent as JSON), a File or Blob (sent as it is, with `contentType`), or
        // absent. Resolves to the answer's JSON (null when empty); throws an Error with the server's message.
        async function api(method, path, body, contentType) {
          const headers = {'X-CSRF-Token': csrfToken(), 'Accept': 'application/json'};
          let payload;
          if (body instanceof Blob) {
            payload = body;
            headers['Content-Type'] = contentType || body.type || 'application/octet-stream';
          } else if (body !== undefined) {
            payload = JSON.stringify(body);
            headers['Content-Type'] = 'application/json';
          }
          let response;
          try {
            response = await fetch(path, {method, headers, body: payload, credentials: 'same-origin'});
          } catch (error) {
            throw new Error('the server cannot be reached (' + error.message + ')');
          }
          const text = await response.text();
          let json = null;
          try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
          if (!response.ok) {
            const message = json && json.error && json.error.message;
            throw new Error(message || ('the server answered ' + response.status + ' ' + response.statusText));
          }
          return json;
        }

        function field(form, name) {
          const element = form.elements[name];
          return element ? element.value.trim() : '';
        }

        // Empty text becomes undefined, which JSON.stringify leaves out.
        function optional(text) {
          return text === '' ? undefined : text;
        }

        function showError(container, message) {
          const box = container.querySelector('.form-error');
          box.textContent = message;
          box.hidden = !message;
          if (message) box.scrollIntoView({block: 'nearest'});
        }

        function showStatus(form, message) {
          const status = form.querySelector('.status');
          if (status) status.textContent = message;
        }

        // Runs `handler(form)` on submit (after the browser's own checks), showing any error in the form.
        function onSubmit(id, handler) {
          const form = document.getElementById(id);
          if (!form) return;
          form.addEventListener('submit', async (event) => {
            event.preventDefault();
            const button = form.querySelector('button[type=submit]');
            showError(form, '');
            button.disabled = true;
            try {
              await handler(form);
            } catch (error) {
              showStatus(form, '');
              showError(form, error.message);
            } finally {
              button.disabled = false;
            }
          });
        }

        // The id of the resource named `name` in a <datalist> of existing ones, or undefined.
        function existingID(listID, name) {
          for (const option of document.getElementById(listID).options) {
            if (option.value === name) return option.dataset.id;
          }
          return undefined;
        }

        function remember(listID, name, id) {
          const option = document.createElement('option');
          option.value = name;
          option.dataset.id = id;
          document.getElementById(listID).appendChild(option);
        }

        // A parameter's text as the JSON type its manifest declares. Text that is not plainly a number or a boolean is
        // sent as it is: the server says what is wrong with it.
        function typed(text, type) {
          if ((type === 'int32' || type === 'float32') && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
            return Number(text);
          }
          if (type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
          return text;
        }

        onSubmit('device-form', async (form) => {
          const created = await api('POST', '/api/v1/devices', {
            name: field(form, 'name'), description: optional(field(form, 'description')),
          });
          const box = document.getElementById('device-created');
          box.querySelector('.device-name').textContent = created.device.name;
          box.querySelector('.device-token').textContent = created.provisioningToken;
          box.querySelector('.device-expiry').textContent = created.tokenExpiresAt.slice(0, 19).replace('T', ' ') + ' UTC';
          const command = box.querySelector('.device-command');
          command.textContent = 'vantage agent enroll --server ' + (command.dataset.endpoint || 'https://HOST:8443')
            + ' --token ' + created.provisioningToken + ' --ca-hash ' + created.caFingerprint;
          box.hidden = false;
          form.reset();
        });

        onSubmit('camera-form', async (form) => {
          await api('POST', '/api/v1/cameras', {
            name: field(form, 'name'), url: field(form, 'url'), detectUrl: optional(field(form, 'detectUrl')),
            username: optional(field(form, 'username')), password: optional(form.elements.password.value), deviceId: optional(field(form, 'deviceId')),
            description: optional(field(form, 'description')),
          });
          location.reload();
        });

        onSubmit('model-form', async (form) => {
          const name = field(form, 'name');
          const file = form.elements.file.files[0];
          let id = existingID('model-names', name);
          if (!id) {
            showStatus(form, 'creating model ' + name + '…');
            id = (await api('POST', '/api/v1/models', {name, description: optional(field(form, 'description'))})).id;
            remember('model-names', name, id);
          }
          showStatus(form, 'uploading ' + file.name + '…');
          await api('POST', '/api/v1/models/' + encodeURIComponent(id) + '/versions?filename=' +
            encodeURIComponent(file.name), file, 'application/octet-stream');
          location.reload();
        });

        onSubmit('package-form', async (form) => {
          const name = field(form, 'name');
          const version = field(form, 'version');
          const file = form.elements.file.files[0];
          let id = existingID('package-names', name);
          if (!id) {
            showStatus(form, 'creating package ' + name + '…');
            id = (await api('POST', '/api/v1/packages', {name})).id;
            remember('package-names', name, id);
          }
          showStatus(form, 'uploading ' + file.name + ' and checking its manifest…');
          await api('POST', '/api/v1/packages/' + encodeURIComponent(id) + '/versions?version=' +
            encodeURIComponent(version), file, 'application/zip');
          location.href = '/packages/' + encodeURIComponent(id) + '#version-' + encodeURIComponent(version);
        });

        const actions = document.getElementById('instance-actions');
        if (actions) {
          const path = '/api/v1/instances/' + encodeURIComponent(actions.dataset.instance);
          for (const button of actions.querySelectorAll('button[data-instance-action]')) {
            button.addEventListener('click', async () => {
              const action = button.dataset.instanceAction;
              if (action === 'remove' && !confirm('Remove this application instance from its device?')) return;
              showError(actions, '');
              button.disabled = true;
              try {
                if (action === 'remove') {
                  await api('DELETE', path);
                } else {
                  await api('PATCH', path, {desiredState: action === 'stop' ? 'STOPPED' : 'RUNNING'});
                }
                location.reload();
              } catch (error) {
                showError(actions, error.message);
                button.disabled = false;
              }
            });
          }
        }

        // Every time on every page is in UTC and says so (one zone, as in the charts, events and logs); the browser's
        // own time is its tooltip. Also called on the parts of a page that refresh themselves.
        function localTimes(root) {
          for (const time of root.querySelectorAll('time[datetime]')) {
            const date = new Date(time.getAttribute('datetime'));
            if (!isNaN(date)) time.title = date.toLocaleString() + ' in your time zone';
          }
        }
        localTimes(document);

        """#

    static let icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1f2a37"/>\
        <circle cx="16" cy="16" r="9" fill="none" stroke="#60a5fa" stroke-width="3"/><circle cx="16" cy="16" r="3.5" \
        fill="#e5e7eb"/></svg>

        """
}
