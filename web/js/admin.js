// The admin token: asked for once, kept for this browser tab (sessionStorage).

import { adminToken, setAdminToken } from './api.js';
import { clear, h } from './dom.js';

// Shows the token dialog; resolves to the token, or null when cancelled.
export function askAdminToken(reason) {
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  const error = document.getElementById('token-error');
  error.textContent = reason || '';
  input.value = '';
  return new Promise((resolve) => {
    const done = (token) => {
      form.removeEventListener('submit', onSubmit);
      document.getElementById('token-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      resolve(token);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!/^bla_[0-9]+_.+/.test(t)) {
        error.textContent = 'An admin token looks like bla_<id>_<secret>.';
        input.focus();
        return;
      }
      setAdminToken(t);
      done(t);
    };
    const onCancel = (e) => {
      e.preventDefault();
      done(null);
    };
    form.addEventListener('submit', onSubmit);
    document.getElementById('token-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    input.focus();
  });
}

// The header's sign-in state.
export function renderAdminBox() {
  const box = document.getElementById('admin');
  clear(box);
  if (adminToken()) {
    box.append(h('span', { class: 'small' }, 'Admin token set (this tab)'),
      h('button', { type: 'button', onclick: () => setAdminToken(null) }, 'Sign out'));
  } else {
    box.append(h('button', { type: 'button', onclick: () => askAdminToken() }, 'Admin sign-in'));
  }
}
