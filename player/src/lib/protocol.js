// Entry's terminal protocol (the project's own `proto/entry/v1/message.proto`): one binary
// WebSocket frame is one `entry.v1.ResponseMessage` from the gateway, or one
// `entry.v1.RequestMessage` to it.
//
// The encoders and decoders are static code that protobufjs-cli generates from the .proto at
// build time (build.mjs writes generated/message.js), running on protobufjs/minimal only:
// protobufjs's usual run-time code generation (`new Function`) is forbidden by the pages'
// Content-Security-Policy.

import { entry } from '../../generated/message.js';

const { CloseReason, RequestMessage, RequestType, ResponseMessage, ResponseType } = entry.v1;

/** Enum number -> name (the generated enum objects' own keys are the names). */
const names = (enumObject) => new Map(Object.entries(enumObject).map(([name, number]) => [number, name]));
const responseTypeNames = names(ResponseType);
const closeReasonNames = names(CloseReason);

/**
 * Decodes one frame (ArrayBuffer or Uint8Array) into a plain object with the .proto's field
 * names: enums as their names (`msg_type: 'STDOUT'`, `close_reason: 'CLOSE_REASON_EXITED'`;
 * a value this .proto does not know stays a number), `content` as a Uint8Array, `exit_code`
 * undefined unless it was on the wire. Unknown fields are skipped.
 */
export function decodeResponse(frame) {
  const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
  const message = ResponseMessage.decode(bytes);
  // Fields absent from the wire are the prototype's defaults; `exit_code` has presence
  // (`optional`), so it is an own property exactly when it was sent.
  return {
    msg_type: responseTypeNames.get(message.msg_type) ?? message.msg_type,
    content: message.content,
    exit_code: Object.hasOwn(message, 'exit_code') ? message.exit_code : undefined,
    close_reason: closeReasonNames.get(message.close_reason) ?? message.close_reason,
  };
}

/**
 * Encodes one `entry.v1.RequestMessage` frame: `type` is 'PLAIN' (stdin bytes), 'WINCH'
 * (ASCII "<cols> <rows>") or 'STDIN_EOF' (no content), `content` a Uint8Array.
 */
export function encodeRequest({ type, content = new Uint8Array(0) }) {
  if (!Object.hasOwn(RequestType, type)) throw new Error(`unknown request type ${type}`);
  if (!(content instanceof Uint8Array)) throw new TypeError('request content must be a Uint8Array');
  return RequestMessage.encode({ msg_type: RequestType[type], content }).finish();
}
