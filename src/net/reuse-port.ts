/**
 * SO_REUSEPORT for TETHER_WORKERS: where Node has `reusePort` (22.12 and 23.1 on),
 * each worker binds a listening socket of its own to the same address and the kernel
 * hashes each new connection to one of them. Elsewhere workers share the one socket
 * cluster gives them (SCHED_NONE), and whichever worker wakes first accepts.
 * docs/architecture.md, "Workers", says what each costs.
 */

/** How a listener's socket is had: its own (single process), shared by the workers, or one per worker. */
export type ListenSocket = 'own' | 'shared' | 'reuseport';

/** Node versions with `reusePort` on server.listen (added in 23.1.0, backported to 22.12.0). */
export function nodeHasReusePort(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major >= 24) return true;
  if (major === 23) return minor >= 1;
  return major === 22 && minor >= 12;
}

/**
 * How a listener listens. In a worker, one socket per worker where Node and the
 * system have it and the port is fixed: with port 0 each would bind a port of its
 * own, so the workers share the socket cluster made.
 */
export function listenSocketFor(inWorker: boolean, port: number, version: string = process.versions.node, platform: NodeJS.Platform = process.platform): ListenSocket {
  if (!inWorker) return 'own';
  return port !== 0 && platform === 'linux' && nodeHasReusePort(version) ? 'reuseport' : 'shared';
}
