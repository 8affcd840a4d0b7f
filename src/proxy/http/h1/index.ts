export { H1Error, h1ErrorName, h1ErrorStatus, NEED_MORE, FAILED, type H1ErrorCode } from './errors.js';
export { Body, HeadParser, type BodyKind } from './head-parser.js';
export { RequestHead } from './request-head.js';
export { ResponseHead } from './response-head.js';
export { ChunkedFramer, type ChunkedLimits } from './chunked.js';
export { LengthFramer } from './length-body.js';
export { Connection } from './field-values.js';
export { KNOWN_METHODS, type KnownMethod } from './methods.js';
