/**
 * llhttp, the parser behind node:http, driven directly as an oracle for tether's
 * HTTP/1 parsers (src/proxy/http/h1). It is initialised as node:http initialises it
 * (`_http_server.js`, `_http_client.js`): `initialize(REQUEST | RESPONSE, resource,
 * maxHeaderSize, kLenientNone)`, and its callbacks are the numbered slots node's
 * `_http_common.js` fills. Headers arrive with kOnHeadersComplete, or earlier in
 * pieces through kOnHeaders when a head is long or split.
 */

type Callback = (...args: never[]) => unknown;
interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  close(): void;
  [slot: number]: Callback;
}
interface LlhttpModule {
  HTTPParser: {
    new (): LlhttpParser;
    REQUEST: number;
    RESPONSE: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kLenientNone: number;
  };
  methods: readonly string[];
}

const common = (await import('node:_http_common' as string)) as LlhttpModule;
const { HTTPParser } = common;

/**
 * llhttp reports a method as its index in node's internal `allMethods`, which the
 * public module does not export (its `methods` is a different, shorter list): learn
 * the index of each method node:http serves by parsing a request line with it.
 */
const methodNames: string[] = [];
for (const name of common.methods) {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, 0, HTTPParser.kLenientNone);
  parser[HTTPParser.kOnHeadersComplete] = ((_major: number, _minor: number, _headers: unknown, method: number) => {
    methodNames[method] = name;
    return 0;
  }) as Callback;
  parser.execute(Buffer.from(`${name} ${name === 'CONNECT' ? 'a:1' : '/'} HTTP/1.1\r\n\r\n`, 'latin1'));
  parser.close();
}

/** One message as llhttp saw it. */
export interface OracleMessage {
  readonly versionMajor: number;
  readonly versionMinor: number;
  /** Request method (null for responses). */
  readonly method: string | null;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly statusCode: number;
  readonly statusMessage: string;
  /** node:http's `upgrade`: Connection: upgrade with Upgrade, or CONNECT. */
  readonly upgrade: boolean;
  readonly keepAlive: boolean;
  bodyBytes: number;
  complete: boolean;
}

export interface OracleResult {
  readonly messages: OracleMessage[];
  /** llhttp's error code (HPE_...), or null. */
  readonly error: string | null;
  /** The message the error belongs to: an index into `messages` when its head was complete, else messages.length. */
  readonly errorMessage: number;
}

export interface OracleOptions {
  readonly maxHeaderSize: number;
  /** For responses: the method of the request they answer (HEAD: no body; CONNECT: the parser stops, as node's client does). */
  readonly requestMethod?: string;
}

/** Parse `input` (one read) as node:http would, recording every message. */
export function llhttpParse(kind: 'request' | 'response', input: Buffer, options: OracleOptions): OracleResult {
  const parser = new HTTPParser();
  parser.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, options.maxHeaderSize, HTTPParser.kLenientNone);
  const messages: OracleMessage[] = [];
  let pendingHeaders: string[] = [];
  let pendingUrl = '';
  parser[HTTPParser.kOnHeaders] = ((headers: string[], url: string) => {
    pendingHeaders.push(...headers);
    pendingUrl += url;
  }) as Callback;
  parser[HTTPParser.kOnHeadersComplete] = ((
    versionMajor: number,
    versionMinor: number,
    headers: string[] | undefined,
    method: number | undefined,
    url: string | undefined,
    statusCode: number,
    statusMessage: string,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    messages.push({
      versionMajor,
      versionMinor,
      method: typeof method === 'number' ? (methodNames[method] ?? `#${method}`) : null,
      url: url ?? pendingUrl,
      rawHeaders: headers ?? pendingHeaders,
      statusCode,
      statusMessage,
      upgrade,
      keepAlive,
      bodyBytes: 0,
      complete: false,
    });
    pendingHeaders = [];
    pendingUrl = '';
    // What node's server and client return: 1 skips the body, 2 also stops (upgrade, CONNECT).
    if (kind === 'response' && options.requestMethod === 'CONNECT') return 2;
    if (upgrade) return 2;
    if (kind === 'response' && options.requestMethod === 'HEAD') return 1;
    return 0;
  }) as Callback;
  parser[HTTPParser.kOnBody] = ((chunk: Buffer) => {
    messages[messages.length - 1]!.bodyBytes += chunk.length;
  }) as Callback;
  parser[HTTPParser.kOnMessageComplete] = (() => {
    messages[messages.length - 1]!.complete = true;
    // Trailer fields came through kOnHeaders: they belong to this message, not the next.
    pendingHeaders = [];
    pendingUrl = '';
  }) as Callback;
  const result = parser.execute(input);
  parser.close();
  if (typeof result === 'number') return { messages, error: null, errorMessage: messages.length };
  const last = messages[messages.length - 1];
  const errorMessage = last !== undefined && !last.complete ? messages.length - 1 : messages.length;
  return { messages, error: result.code ?? 'unknown', errorMessage };
}
