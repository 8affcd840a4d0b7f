/** tether's own answers in http mode. */

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** The plain-text body of tether's own error answers. */
export function errorBody(status: number, detail: string): string {
  return `${status} ${REASONS[status] ?? 'Error'}: ${detail}\n`;
}

/** A complete error response that closes the connection, for a raw socket. */
export function errorResponse(status: number, detail: string): Buffer {
  const reason = REASONS[status] ?? 'Error';
  const body = errorBody(status, detail);
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n${body}`,
    'latin1',
  );
}
