import net from 'node:net';

/** The client address for index i: 127.0.0.2 .. 127.0.0.250, then 127.0.1.x, ... */
export function clientAddress(i: number): string {
  const n = i % (249 * 250);
  return `127.0.${Math.floor(n / 249)}.${2 + (n % 249)}`;
}

export interface Greeting {
  /** The upstream's name, or null when the connection was closed before a greeting. */
  readonly upstream: string | null;
  readonly socket: net.Socket;
}

/**
 * Connect from `localAddress` to the balancer and read the upstream's greeting line.
 * Resolves null when the balancer closes the connection instead; never hangs past
 * `timeoutMs` (rejects then).
 */
export function connectAndGreet(port: number, localAddress = '127.0.0.1', timeoutMs = 5_000): Promise<Greeting> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let buffered = '';
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no greeting within ${timeoutMs} ms from ${localAddress}`)), timeoutMs);
    const finish = (err: Error | null, upstream: string | null = null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve({ upstream, socket });
      }
    };
    // No setEncoding: the caller may relay binary data on this socket afterwards.
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const nl = buffered.indexOf('\n');
      if (nl >= 0) finish(null, buffered.slice(0, nl));
    });
    socket.on('error', () => finish(null, null));
    socket.on('close', () => finish(null, null));
  });
}

/** Connect, read the greeting, close: which upstream does this address reach? */
export async function whoServes(port: number, localAddress: string): Promise<string | null> {
  const { upstream, socket } = await connectAndGreet(port, localAddress);
  socket.destroy();
  return upstream;
}

export async function mapAddresses(port: number, addresses: readonly string[], concurrency = 20): Promise<Map<string, string | null>> {
  const result = new Map<string, string | null>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < addresses.length) {
      const address = addresses[next++]!;
      result.set(address, await whoServes(port, address));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return result;
}

export function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed && socket.closed) return resolve();
    socket.once('close', () => resolve());
  });
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
