// Screen-reader announcements the visual updates do not make on their own: while a Train runs,
// the progress line (phase, steps, time left — redrawn many times a second) is repeated in a
// polite live region at most every ANNOUNCE_MS, so a screen reader hears how far it is without
// being drowned. The status line (#status, role=status), Try it's predictions and the saved
// models' messages are live regions themselves.
import { $ } from './dom.js';
import { state } from './state.js';

const ANNOUNCE_MS = 15000;

export function initAnnouncements() {
  let last = 0;
  let wasRunning = false;
  setInterval(() => {
    const region = $('progress-announce');
    if (!state.running) {
      if (wasRunning) region.textContent = '';
      wasRunning = false;
      return;
    }
    const line = $('progress-text');
    const now = performance.now();
    if (!wasRunning) last = now - ANNOUNCE_MS + 3000; // the first one a few seconds in
    wasRunning = true;
    if (line.hidden || !line.textContent || now - last < ANNOUNCE_MS) return;
    last = now;
    region.textContent = line.textContent;
  }, 1000);
}
