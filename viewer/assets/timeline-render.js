// The render scheduler. Anything that changes what is shown asks for a draw
// (`requestDraw`): draws are coalesced into one per animation frame. A navigation input
// (pan, zoom, scroll) draws at once (`drawNow`), from what the page holds: no input waits
// for the network, nor for the next frame, to be seen.
import { draw } from "./timeline-drawing.js";

let frame = null;

/** Draws on the next animation frame (once, however many ask before it). */
export function requestDraw() {
  if (frame != null) return;
  frame = requestAnimationFrame(() => {
    frame = null;
    draw();
  });
}

/** Draws now; a draw already scheduled is then not needed. */
export function drawNow() {
  if (frame != null) {
    cancelAnimationFrame(frame);
    frame = null;
  }
  draw();
}
