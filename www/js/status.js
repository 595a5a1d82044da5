// The status line, the error box (with its "Use the local model" offer) and the warning box
// of the Training panel.
import { ErrorCode } from './protocol.js';
import { $, el } from './dom.js';
import { state } from './state.js';

export function setStatus(text) {
  $('status').textContent = text;
}

/** Show `message`; `code` (an ErrorCode) decides whether to offer the local model. */
export function showError(message, code) {
  state.lastError = { message, code };
  $('error-text').textContent = message;
  $('use-local-btn').hidden = !(code === ErrorCode.HUB_UNREACHABLE || code === ErrorCode.HUB_HTTP) || $('model-select').value === 'local';
  $('error-box').hidden = false;
}

export function clearError() {
  state.lastError = null;
  $('error-box').hidden = true;
  $('error-text').textContent = '';
}

export function showWarning(message) {
  let box = $('warning-box');
  if (!box) {
    box = el('div', { id: 'warning-box', class: 'warning', role: 'status' });
    $('error-box').before(box);
  }
  box.textContent = message;
}
