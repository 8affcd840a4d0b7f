/** Types the proxy's files share with each other and with metrics (admin/). */

/** Why a connection ended, as counted in metrics (`outcome`). */
export type Outcome = 'ok' | 'refused' | 'no_upstream' | 'connect_failed' | 'bad_request' | 'timeout';
