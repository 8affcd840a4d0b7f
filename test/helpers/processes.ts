import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const UPSTREAM_SCRIPT = fileURLToPath(new URL('../fixtures/upstream.mjs', import.meta.url));

export interface UpstreamProcess {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** An upstream in its own process, so a test can kill it as a crash would. */
export function spawnUpstream(name: string, port = 0): Promise<UpstreamProcess> {
  const child = spawn(process.execPath, [UPSTREAM_SCRIPT, name, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`upstream ${name} exited early (${code})`)));
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const match = /ready (\d+)/.exec(out);
      if (!match) return;
      child.removeAllListeners('exit');
      const bound = Number(match[1]);
      resolve({
        name,
        port: bound,
        address: `127.0.0.1:${bound}`,
        child,
        kill: (signal = 'SIGKILL') =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill(signal);
          }),
      });
    });
  });
}
