// The console's style and script for the access page's users (ConsolePages+Users.swift): create, change a role,
// delete, each through /api/v1/users, showing the API's message when it refuses.
extension ConsoleAssets {
    static let usersStyle = """
        tr.current-user td:first-child { font-weight: 600; }
        .user-form input { max-width: 100%; }
        .user-form label { max-width: 100%; }
        """

    static let usersScript = #"""
        const userError = document.getElementById('user-error');
        if (!userError) return;
        const say = (message) => {
          userError.textContent = message;
          userError.hidden = !message;
          if (message) userError.scrollIntoView({block: 'nearest'});
        };
        const userPath = (name) => '/api/v1/users/' + encodeURIComponent(name);

        onSubmit('user-form', async (form) => {
          if (form.elements.password.value !== form.elements.again.value) {
            throw new Error('the two passwords differ: type the same password in both fields');
          }
          await api('POST', '/api/v1/users', {
            name: field(form, 'name'), role: field(form, 'role'), password: form.elements.password.value,
          });
          location.reload();
        });

        for (const select of document.querySelectorAll('select[data-user-role]')) {
          select.addEventListener('change', async () => {
            say('');
            select.disabled = true;
            try {
              await api('PATCH', userPath(select.dataset.userRole), {role: select.value});
              location.reload();
            } catch (error) {
              select.value = select.dataset.was;
              say(error.message);
            } finally {
              select.disabled = false;
            }
          });
        }

        for (const button of document.querySelectorAll('button[data-delete-user]')) {
          button.addEventListener('click', async () => {
            const name = button.dataset.deleteUser;
            if (!confirm('Delete the user ' + name + '? They are signed out and can no longer sign in.')) return;
            say('');
            button.disabled = true;
            try {
              await api('DELETE', userPath(name));
              location.reload();
            } catch (error) {
              say(error.message);
            } finally {
              button.disabled = false;
            }
          });
        }
        """#
}
