import { Body, ChunkedFramer, FAILED, NEED_MORE, RequestHead, ResponseHead, type H1ErrorCode } from '../../src/proxy/http/h1/index.js';

/**
 * Runs tether's HTTP/1 parsers over one read the way the relay will: a head, then
 * its body by its framing, then the next message, recording what each message was,
 * in the shape of llhttp-oracle's results so the two can be compared.
 */

export interface DrivenMessage {
  /** Offset in the input where the message (its leading empty lines included) starts. */
  readonly start: number;
  readonly method: string | null;
  readonly target: string;
  readonly versionMinor: number;
  readonly rawHeaders: string[];
  readonly status: number;
  readonly reason: string;
  readonly upgrade: boolean;
  readonly isConnect: boolean;
  readonly keepAlive: boolean;
  readonly bodyKind: number;
  readonly contentLength: number;
  readonly chunked: boolean;
  bodyBytes: number;
  complete: boolean;
}

export interface DrivenResult {
  readonly messages: DrivenMessage[];
  readonly error: H1ErrorCode | null;
  /** As OracleResult.errorMessage: the message the error belongs to. */
  readonly errorMessage: number;
  /** Where the message that failed (or was cut short) started. */
  readonly lastStart: number;
  /** Parsing stopped after the last message on purpose (tunnel, close-delimited, not keep-alive). */
  readonly stopped: boolean;
}

export interface DriveOptions {
  readonly maxHeadBytes: number;
  readonly requestMethod?: string;
}

export function driveTether(kind: 'request' | 'response', input: Buffer, options: DriveOptions): DrivenResult {
  const request = kind === 'request' ? new RequestHead(options.maxHeadBytes) : null;
  const response = kind === 'response' ? new ResponseHead(options.maxHeadBytes) : null;
  const head = (request ?? response)!;
  const chunks = new ChunkedFramer();
  const messages: DrivenMessage[] = [];
  let at = 0;
  let messageStart = 0;
  const result = (error: H1ErrorCode | null, errorMessage: number, stopped: boolean): DrivenResult => ({ messages, error, errorMessage, lastStart: messageStart, stopped });
  while (at < input.length) {
    messageStart = at;
    if (response !== null) response.reset(options.requestMethod ?? 'GET');
    else request!.reset();
    const end = head.execute(input, at, input.length);
    if (end === FAILED) return result(head.error, messages.length, false);
    if (end === NEED_MORE) return result(null, messages.length, false);
    const message: DrivenMessage = {
      start: at,
      method: request !== null ? request.method : null,
      target: request !== null ? request.target : '',
      versionMinor: head.versionMinor,
      rawHeaders: head.rawHeaders(),
      status: response !== null ? response.status : 0,
      reason: response !== null ? response.reason : '',
      upgrade: request !== null ? request.upgrade : false,
      isConnect: request !== null ? request.isConnect : false,
      keepAlive: head.keepAlive,
      bodyKind: head.bodyKind,
      contentLength: head.contentLength,
      chunked: head.chunked,
      bodyBytes: 0,
      complete: false,
    };
    messages.push(message);
    at = end;
    // Where node:http hands the connection over after the head (an upgrade or CONNECT
    // request; any answer to CONNECT on the client side), llhttp reads no body: nor does this.
    if ((request !== null && (request.upgrade || request.isConnect)) || (response !== null && options.requestMethod === 'CONNECT')) {
      message.complete = true;
      return result(null, messages.length, true);
    }
    switch (head.bodyKind) {
      case Body.Length: {
        const available = Math.min(head.contentLength, input.length - at);
        message.bodyBytes = available;
        at += available;
        if (available < head.contentLength) return result(null, messages.length, false);
        break;
      }
      case Body.Chunked: {
        chunks.reset();
        const bodyEnd = chunks.execute(input, at, input.length);
        message.bodyBytes = chunks.dataBytes;
        if (bodyEnd === FAILED) return result(chunks.error, messages.length - 1, false);
        if (bodyEnd === NEED_MORE) return result(null, messages.length, false);
        at = bodyEnd;
        break;
      }
      case Body.UntilClose:
        message.bodyBytes = input.length - at;
        return result(null, messages.length, true);
      case Body.Tunnel:
        message.complete = true;
        return result(null, messages.length, true);
    }
    message.complete = true;
    if (!head.keepAlive) return result(null, messages.length, true);
  }
  return result(null, messages.length, false);
}
