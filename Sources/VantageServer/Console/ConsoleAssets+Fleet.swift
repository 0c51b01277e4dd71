// The console's style and script for fleet actions: devices, cameras, models, packages, users, tokens, audit log.
extension ConsoleAssets {
    /// Role-aware controls: whoever may not use a button does not see it (the API would refuse them anyway).
    static let fleetStyle = """
        body:not([data-role="operator"]):not([data-role="admin"]) :is(.needs-operator, [data-instance-action],
          .edit-action, a[href^="/instances/new"], a[href$="/edit"], section.panel:has(#device-form, #camera-form,
          #model-form, #package-form)) { display: none !important; }
        body:not([data-role="admin"]) :is(.needs-admin, nav a[href="/access"]) { display: none !important; }
        button.small { padding: 3px 10px; font-size: 13px; }
        td.used-by a { display: inline-block; margin-right: 8px; }
        td.row-actions { white-space: nowrap; }
        #device-actions form.inline { margin-bottom: 12px; }
        #device-actions h2 .badge { vertical-align: middle; }
        .table-scroll { overflow-x: auto; max-width: 100%; }
        code.wrap { overflow-wrap: anywhere; }
        pre.device-command, pre.secret { white-space: pre-wrap; overflow-wrap: anywhere; }
        /* At phone width the bar wraps and wide tables scroll inside themselves, not the page. */
        @media (max-width: 600px) {
          .topbar { flex-wrap: wrap; height: auto; gap: 6px 12px; padding: 6px 12px; }
          .topbar nav { flex-wrap: wrap; flex-basis: 100%; order: 3; }
          table.list { display: block; overflow-x: auto; max-width: 100%; }
          form.inline > label, form.inline input { max-width: 100%; }
        }
        """

    static let fleetScript = #"""
        function showIn(box, message) {
          box.textContent = message;
          box.hidden = !message;
          if (message) box.scrollIntoView({block: 'nearest'});
        }

        // Runs `work` for a button, showing its error in the .form-error element `box`; asks first when the button
        // has data-confirm.
        function wire(button, box, work) {
          button.addEventListener('click', async () => {
            if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
            showIn(box, '');
            button.disabled = true;
            try {
              await work();
            } catch (error) {
              showIn(box, error.message);
              button.disabled = false;
            }
          });
        }

        const device = document.getElementById('device-actions');
        if (device) {
          const path = '/api/v1/devices/' + encodeURIComponent(device.dataset.device);
          onSubmit('device-edit', async (form) => {
            await api('PATCH', path, {name: field(form, 'name'), description: field(form, 'description')});
            location.reload();
          });
          const buttons = device.querySelector('.actions');
          for (const button of buttons.querySelectorAll('button[data-device-action]')) {
            wire(button, buttons.querySelector('.form-error'), async () => {
              const action = button.dataset.deviceAction;
              if (action === 'token') {
                const created = await api('POST', path + '/provisioning-token');
                const box = document.getElementById('device-token');
                box.querySelector('.device-token').textContent = created.provisioningToken;
                box.querySelector('.device-expiry').textContent = created.tokenExpiresAt.slice(0, 19).replace('T', ' ') + ' UTC';
                const command = box.querySelector('.device-command');
                command.textContent = 'vantage agent enroll --force --server '
                  + (command.dataset.endpoint || 'https://HOST:8443') + ' --token ' + created.provisioningToken
                  + ' --ca-hash ' + created.caFingerprint;
                box.hidden = false;
                button.disabled = false;
              } else if (action === 'revoke') {
                await api('POST', path + '/revoke');
                location.reload();
              } else if (action === 'delete') {
                await api('DELETE', path);
                location.href = '/devices';
              }
            });
          }
        }

        // Delete buttons of cameras, models and packages: the question names what uses it; the API's refusal
        // (still in use) is shown as it says it.
        for (const button of document.querySelectorAll('button[data-delete]')) {
          const users = button.dataset.usedBy;
          button.dataset.confirm = 'Delete ' + button.dataset.name + '?'
            + (users ? ' It is used by ' + users + ': the server refuses until they are removed.' : '');
          wire(button, document.getElementById('delete-error'), async () => {
            await api('DELETE', '/api/v1/' + button.dataset.delete + '/' + encodeURIComponent(button.dataset.id));
            location.reload();
          });
        }

        const cameraPanel = document.getElementById('camera-edit-panel');
        if (cameraPanel) {
          const form = document.getElementById('camera-edit');
          for (const button of document.querySelectorAll('button[data-edit-camera]')) {
            button.addEventListener('click', () => {
              form.dataset.camera = button.dataset.editCamera;
              cameraPanel.querySelector('.camera-edit-name').textContent = button.dataset.name;
              form.elements.name.value = button.dataset.name;
              form.elements.url.value = button.dataset.url;
              form.elements.detectUrl.value = button.dataset.detectUrl;
              form.elements.description.value = button.dataset.description;
              form.elements.username.value = '';
              form.elements.password.value = '';
              form.elements.deviceId.value = '';
              showError(form, '');
              cameraPanel.hidden = false;
              cameraPanel.scrollIntoView({block: 'nearest'});
              form.elements.name.focus();
            });
          }
          onSubmit('camera-edit', async (form) => {
            await api('PATCH', '/api/v1/cameras/' + encodeURIComponent(form.dataset.camera), {
              name: field(form, 'name'), url: field(form, 'url'), detectUrl: field(form, 'detectUrl') || null,
              description: field(form, 'description'), username: optional(field(form, 'username')), password: optional(form.elements.password.value),
              deviceId: optional(field(form, 'deviceId')),
            });
            location.reload();
          });
        }

        onSubmit('token-form', async (form) => {
          const created = await api('POST', '/api/v1/tokens', {name: field(form, 'name'), role: field(form, 'role')});
          const box = document.getElementById('token-created');
          box.querySelector('.token-name').textContent = created.token.name;
          box.querySelector('.token-secret').textContent = created.secret;
          box.hidden = false;
          form.reset();
        });

        for (const button of document.querySelectorAll('button[data-revoke-token]')) {
          button.dataset.confirm = 'Revoke the API token ' + button.dataset.name
            + '? Whatever uses it is refused from its next request.';
          wire(button, document.getElementById('token-error'), async () => {
            await api('DELETE', '/api/v1/tokens/' + encodeURIComponent(button.dataset.revokeToken));
            location.reload();
          });
        }
        """#
}
