/** Types routing shares with the proxy and admin. */

/** Which link of the key chain gave a connection's or request's key (`none`: no key). */
export type KeySourceName = 'source-ip' | 'header' | 'cookie' | 'query' | 'path' | 'learned' | 'none';
