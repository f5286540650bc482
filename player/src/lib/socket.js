// The terminal protocol's WebSocket as the terminal and live-watch pages open it: same
// origin (wss: under https:), binary frames, each decoded and handed to the page by kind.

import { decodeResponse } from './protocol.js';

/**
 * Opens `path` (e.g. `/api/v1/terminal?container=…`) and calls `onOutput(bytes)` for
 * STDOUT/STDERR, `onResize(content)` for RESIZE, `onClose(message)` for CLOSE and
 * `onBadFrame(error)` for a frame that does not decode; PING and kinds this page does not
 * know are ignored. Returns the WebSocket for the page's own open/close listeners.
 */
export function openTerminalSocket(path, { onOutput, onResize = () => {}, onClose, onBadFrame }) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}${path}`);
  ws.binaryType = 'arraybuffer';
  ws.addEventListener('message', (event) => {
    if (!(event.data instanceof ArrayBuffer)) return; // the protocol is binary frames only
    let message;
    try {
      message = decodeResponse(event.data);
    } catch (error) {
      onBadFrame(error);
      return;
    }
    switch (message.msg_type) {
      case 'STDOUT':
      case 'STDERR':
        onOutput(message.content);
        break;
      case 'RESIZE':
        onResize(message.content);
        break;
      case 'CLOSE':
        onClose(message);
        break;
      default:
        break; // PING, and kinds this page does not know
    }
  });
  return ws;
}
