// The console's style and script for the deploy wizard and the edit of a running instance.
extension ConsoleAssets {
    static let deployStyle = """
        body[data-role=viewer] .edit-action { display: none !important; }
        ol.wizard-steps { display: flex; flex-wrap: wrap; gap: 6px 18px; list-style: none; margin: 0 0 8px; padding: 0;
          color: var(--muted); font-size: 14px; }
        ol.wizard-steps li { display: flex; align-items: center; gap: 6px; }
        .step-number { display: inline-flex; align-items: center; justify-content: center; width: 22px; height: 22px;
          border-radius: 50%; background: #e5e7eb; color: #374151; font-size: 12px; font-weight: 700; }
        ol.wizard-steps li.done .step-number { background: #dcfce7; color: #166534; }
        ol.wizard-steps li.current { color: var(--ink); font-weight: 600; }
        ol.wizard-steps li.current .step-number { background: var(--accent); color: #fff; }
        .step-panel h2 { margin: 0; width: 100%; }
        form.wizard fieldset, #edit-form fieldset { border: none; margin: 0 0 16px; padding: 0; min-width: 0; }
        form.wizard legend, #edit-form legend { font-size: 18px; font-weight: 600; padding: 0; margin-bottom: 10px; }
        fieldset.grid-form { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr));
          gap: 14px 20px; align-items: start; }
        fieldset.grid-form > p { grid-column: 1 / -1; margin: 0; }
        fieldset.grid-form > label { min-width: 0; }
        form.wizard select, #edit-form select, .step-panel select { width: 100%; max-width: 100%; }
        .step-panel label { min-width: 0; max-width: 100%; }
        textarea { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; padding: 7px 9px;
          border: 1px solid #b8c0cc; border-radius: 6px; width: 100%; min-width: 0; resize: vertical; }
        details.help pre.json { white-space: pre-wrap; overflow-wrap: anywhere; }
        .field-error { color: var(--bad); font-weight: 400; font-size: 13px; }
        .wizard-nav { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 8px 0; }
        button.secondary { background: #e5e7eb; color: var(--ink); }
        #review dd, .changes td { overflow-wrap: anywhere; }
        #review dd ul { margin: 0; padding-left: 18px; }
        .changes td.old { color: var(--muted); text-decoration: line-through; }
        .changes td.new { font-weight: 600; }
        @media (max-width: 600px) {
          dl.facts#review { grid-template-columns: 1fr; }
          fieldset.grid-form { grid-template-columns: 1fr; }
        }
        """

    static let deployScript = #"""
        // Why a parameter's text is refused, as the server would say it (ParameterValue(parsing:) and the
        // manifest's constraintRegex, which the browser checks as the input's pattern); '' when it is fine.
        function parameterProblem(input) {
          const text = input.value.trim();
          if (text === '') return '';
          const type = input.dataset.type;
          const node = input.dataset.parameter;
          if (type === 'int32') {
            const number = Number(text);
            if (!/^[-+]?\d+$/.test(text) || number < -2147483648 || number > 2147483647) {
              return 'parameter ' + node + ' takes an int32 (a whole number), not "' + text + '"';
            }
          } else if (type === 'float32') {
            const number = Number(text);
            if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) || !(Math.abs(number) <= 3.4028234663852886e38)) {
              return 'parameter ' + node + ' takes a float32 (a number), not "' + text + '"';
            }
          } else if (type === 'boolean' && !/^(true|false|1|0)$/i.test(text)) {
            return 'parameter ' + node + ' takes a boolean (true or false), not "' + text + '"';
          }
          return '';
        }

        function fieldError(element, message) {
          element.setCustomValidity(message);
          const box = element.closest('label') && element.closest('label').querySelector('.field-error');
          if (box) {
            box.textContent = message;
            box.hidden = !message;
          }
        }

        // Checks the fields of `container` (the browser's own checks, then the server's rules for parameters and
        // the outputs document); shows the first problem and answers false.
        function checkFields(container) {
          for (const element of container.querySelectorAll('input, select, textarea')) {
            if (element.dataset.parameter) fieldError(element, parameterProblem(element));
            if (element.id === 'outputs') fieldError(element, outputsProblem(element.value));
            if (!element.checkValidity()) {
              if (element.validity.patternMismatch) {
                const help = element.closest('label').querySelector('.help');
                fieldError(element, '"' + element.value + '" does not match the constraint'
                  + (help ? ': ' + help.textContent : ''));
                element.setCustomValidity('');
              }
              element.reportValidity();
              return false;
            }
          }
          return true;
        }

        function outputsProblem(text) {
          if (text.trim() === '') return '';
          try {
            const value = JSON.parse(text);
            if (value === null || typeof value !== 'object' || Array.isArray(value)) {
              return 'outputs: must be a JSON object with events, analytics, sinks and rules (see docs/outputs.md)';
            }
          } catch (error) {
            return 'outputs: not JSON (' + error.message + ')';
          }
          return '';
        }

        function outputsSummary(text) {
          if (text.trim() === '') return 'none: events go to the server only';
          const value = JSON.parse(text);
          const parts = [];
          const sinks = Object.keys(value.sinks || {});
          if (sinks.length) parts.push('sinks ' + sinks.join(', '));
          if (Array.isArray(value.rules)) parts.push(value.rules.length + ' rule' + (value.rules.length === 1 ? '' : 's'));
          if (Array.isArray(value.analytics)) parts.push(value.analytics.length + ' analytics node'
            + (value.analytics.length === 1 ? '' : 's'));
          if (value.events) parts.push('event settings');
          return parts.length ? 'a document with ' + parts.join(', ') : 'an empty document';
        }

        function selectedText(select) {
          const option = select.options[select.selectedIndex];
          return option ? option.textContent.trim() : '';
        }

        function parameterValues(form) {
          const parameters = {};
          for (const input of form.querySelectorAll('[data-parameter]')) {
            const text = input.value.trim();
            if (text !== '') parameters[input.dataset.parameter] = typed(text, input.dataset.type);
          }
          return parameters;
        }

        function parameterDefault(input) {
          return input.tagName === 'SELECT' ? input.options[0].textContent : 'default (' + input.placeholder + ')';
        }

        function modelValues(form) {
          const models = {};
          for (const select of form.querySelectorAll('[data-model-node]')) {
            if (select.value) models[select.dataset.modelNode] = select.value;
          }
          return models;
        }

        // The package step: the version select offers the chosen package's versions (newest first).
        const packageSelect = document.getElementById('wizard-package');
        const versionSelect = document.getElementById('wizard-version');
        if (packageSelect && versionSelect) {
          const placeholder = versionSelect.options[0];
          const versions = Array.from(versionSelect.querySelectorAll('option[data-package]'));
          const offerVersions = () => {
            const keep = versionSelect.value;
            const offered = versions.filter((option) => option.dataset.package === packageSelect.value);
            versionSelect.replaceChildren(placeholder, ...offered);
            versionSelect.value = offered.some((option) => option.value === keep) ? keep
              : (offered.length ? offered[0].value : '');
          };
          packageSelect.addEventListener('change', offerVersions);
          offerVersions();
        }

        // The wizard: one fieldset per step, shown one at a time; Next checks the step before it moves on.
        const wizard = document.getElementById('instance-form');
        if (wizard) {
          const steps = Array.from(wizard.querySelectorAll('fieldset.step'));
          const stepList = document.getElementById('wizard-steps');
          const back = wizard.querySelector('[data-wizard=back]');
          const next = wizard.querySelector('[data-wizard=next]');
          const deploy = wizard.querySelector('[data-wizard=deploy]');
          const catalog = Array.from(document.getElementById('camera-catalog').options);
          const deviceSelect = wizard.elements.deviceId;
          let current = 0;

          const offerCameras = () => {
            const device = deviceSelect.value;
            const own = catalog.filter((option) => device && option.dataset.device === device);
            const free = catalog.filter((option) => device && option.dataset.device === '');
            const offered = own.concat(free);
            const selects = wizard.querySelectorAll('[data-camera-node]');
            for (const select of selects) {
              const keep = select.value;
              const first = new Option(!device ? 'choose a device first'
                : (offered.length ? 'choose a camera' : 'no camera of this device'), '');
              select.replaceChildren(first, ...offered.map((option) => option.cloneNode(true)));
              select.value = offered.some((option) => option.value === keep) ? keep
                : (own.length === 1 && selects.length === 1 ? own[0].value : '');
            }
            wizard.querySelector('.no-cameras').hidden = !device || offered.length > 0 || selects.length === 0;
          };
          deviceSelect.addEventListener('change', offerCameras);
          offerCameras();

          const fillReview = () => {
            const review = document.getElementById('review');
            review.replaceChildren();
            const add = (term, value) => {
              const dt = document.createElement('dt');
              dt.textContent = term;
              const dd = document.createElement('dd');
              if (Array.isArray(value)) {
                const list = document.createElement('ul');
                for (const line of value) {
                  const item = document.createElement('li');
                  item.textContent = line;
                  list.appendChild(item);
                }
                dd.appendChild(list);
              } else {
                dd.textContent = value;
              }
              review.append(dt, dd);
            };
            add('Application', wizard.dataset.packageName + ' version ' + wizard.dataset.version);
            add('Instance', field(wizard, 'name') + (field(wizard, 'description') ? ' — ' + field(wizard, 'description') : ''));
            add('Device', selectedText(deviceSelect));
            const cameras = Array.from(wizard.querySelectorAll('[data-camera-node]'))
              .map((select) => select.dataset.cameraNode + ': ' + selectedText(select));
            add('Cameras', cameras.length ? cameras : 'none');
            const models = Array.from(wizard.querySelectorAll('[data-model-node]'))
              .map((select) => select.dataset.modelNode + ': ' + selectedText(select));
            add('Models', models.length ? models : 'the package\'s own files');
            const parameters = Array.from(wizard.querySelectorAll('[data-parameter]'))
              .filter((input) => input.value.trim() !== '')
              .map((input) => input.dataset.parameter + ' = ' + input.value.trim() + ' (package default: '
                + (input.tagName === 'SELECT' ? input.options[0].textContent : input.placeholder) + ')');
            add('Parameters', parameters.length ? parameters.concat(['every other one at the package\'s default'])
              : 'all at the package\'s defaults');
            add('Outputs', outputsSummary(wizard.elements.outputs.value));
          };

          const show = (index) => {
            current = index;
            steps.forEach((step, i) => { step.hidden = i !== index; });
            back.hidden = index === 0;
            next.hidden = index === steps.length - 1;
            deploy.hidden = !next.hidden;
            const name = steps[index].dataset.step;
            let reached = false;
            for (const item of stepList.children) {
              const isCurrent = item.dataset.step === name;
              if (isCurrent) reached = true;
              item.classList.toggle('current', isCurrent);
              item.classList.toggle('done', !reached);
              if (isCurrent) item.setAttribute('aria-current', 'step'); else item.removeAttribute('aria-current');
            }
            if (name === 'review') fillReview();
            const focus = steps[index].querySelector('input, select, textarea');
            if (focus) focus.focus();
          };

          back.addEventListener('click', () => show(Math.max(0, current - 1)));
          next.addEventListener('click', () => {
            showError(wizard, '');
            if (checkFields(steps[current])) show(current + 1);
          });
          wizard.addEventListener('input', (event) => {
            if (event.target.setCustomValidity) fieldError(event.target, '');
          });
          wizard.addEventListener('submit', async (event) => {
            event.preventDefault();
            if (current < steps.length - 1) {
              next.click();
              return;
            }
            showError(wizard, '');
            deploy.disabled = true;
            try {
              const outputs = wizard.elements.outputs.value.trim();
              const models = modelValues(wizard);
              const cameras = {};
              for (const select of wizard.querySelectorAll('[data-camera-node]')) {
                cameras[select.dataset.cameraNode] = select.value;
              }
              const instance = await api('POST', '/api/v1/instances', {
                name: field(wizard, 'name'), description: optional(field(wizard, 'description')),
                packageId: wizard.dataset.package, packageVersion: wizard.dataset.version, deviceId: deviceSelect.value,
                cameras, parameters: parameterValues(wizard),
                models: Object.keys(models).length ? models : undefined,
                outputs: outputs ? JSON.parse(outputs) : undefined,
              });
              location.href = '/instances/' + encodeURIComponent(instance.id);
            } catch (error) {
              // The server names the field first (cameras.x: …, parameters: …, outputs…): show its step too.
              const named = /^(cameras|models|parameters|outputs)\b/.exec(error.message);
              const step = named ? steps.findIndex((item) => item.dataset.step === named[1]) : -1;
              if (step >= 0) show(step);
              showError(wizard, error.message);
              deploy.disabled = false;
            }
          });
          show(0);
        }

        // The edit of an instance: Review changes lists old → new per field; Save PATCHes only what changed.
        const edit = document.getElementById('edit-form');
        if (edit) {
          const review = document.getElementById('edit-review');
          const save = document.getElementById('edit-save');
          const table = document.getElementById('edit-changes');
          const sameJSON = (a, b) => {
            const normal = (text) => text.trim() === '' ? '' : JSON.stringify(JSON.parse(text));
            return normal(a) === normal(b);
          };
          const compact = (text) => {
            if (text.trim() === '') return 'none';
            const json = JSON.stringify(JSON.parse(text));
            return json.length > 160 ? json.slice(0, 159) + '…' : json;
          };
          const changes = () => {
            const rows = [];
            const body = {};
            const version = edit.elements.packageVersion;
            if (version.value !== version.dataset.current) {
              rows.push(['version', version.dataset.current, version.value]);
              body.packageVersion = version.value;
            }
            for (const input of edit.querySelectorAll('[data-parameter]')) {
              const before = input.dataset.current;
              const after = input.value.trim();
              if (before !== after) {
                rows.push(['parameter ' + input.dataset.parameter, before || parameterDefault(input),
                  after || parameterDefault(input)]);
                body.parameters = parameterValues(edit);
              }
            }
            for (const select of edit.querySelectorAll('[data-model-node]')) {
              if (select.value !== select.dataset.current) {
                const old = Array.from(select.options).find((option) => option.value === select.dataset.current);
                rows.push(['model ' + select.dataset.modelNode, old ? old.textContent.trim() : select.dataset.current,
                  selectedText(select)]);
                body.models = modelValues(edit);
              }
            }
            const outputs = edit.elements.outputs;
            if (!sameJSON(outputs.dataset.current, outputs.value)) {
              rows.push(['outputs', compact(outputs.dataset.current), compact(outputs.value)]);
              body.outputs = outputs.value.trim() ? JSON.parse(outputs.value) : {};
            }
            return {rows, body};
          };
          const showChanges = () => {
            showError(edit, '');
            showStatus(edit, '');
            if (!checkFields(edit)) return null;
            const {rows, body} = changes();
            const tbody = table.querySelector('tbody');
            tbody.replaceChildren();
            for (const [name, before, after] of rows) {
              const row = tbody.insertRow();
              row.insertCell().textContent = name;
              const old = row.insertCell();
              old.textContent = before;
              old.className = 'old';
              const now = row.insertCell();
              now.textContent = after;
              now.className = 'new';
            }
            table.hidden = rows.length === 0;
            save.hidden = rows.length === 0;
            if (rows.length === 0) showStatus(edit, 'Nothing changed yet.');
            return rows.length ? body : null;
          };
          review.addEventListener('click', () => {
            if (showChanges()) save.focus();
          });
          // A change after the review hides Save: what is saved is always what was last shown.
          edit.addEventListener('input', (event) => {
            if (event.target.setCustomValidity) fieldError(event.target, '');
            save.hidden = true;
            table.hidden = true;
          });
          edit.addEventListener('submit', async (event) => {
            event.preventDefault();
            if (save.hidden) {
              review.click();
              return;
            }
            const body = showChanges();
            if (!body) return;
            save.disabled = true;
            try {
              await api('PATCH', '/api/v1/instances/' + encodeURIComponent(edit.dataset.instance), body);
              location.href = '/instances/' + encodeURIComponent(edit.dataset.instance);
            } catch (error) {
              showError(edit, error.message);
              save.disabled = false;
            }
          });
        }
        """#
}
