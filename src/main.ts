/**
 * argv -> check | run | help | version. The only module that calls process.exit:
 * 0 on success and after a graceful stop, 2 on a bad setting, 1 on anything else.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { assertAvailable } from './config/available.js';
import { effectiveSettings } from './config/effective.js';
import { loadConfigWithWarnings } from './config/load.js';
import type { Config } from './config/types.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { Tether } from './app/tether.js';
import { fitYoungGeneration } from './young-generation.js';
import { ControlPlane } from './workers/control-plane.js';
import { workerCount, workersNote } from './workers/count.js';
import { WorkerProcess } from './workers/worker.js';

const HELP = `Usage: tether [run]        start the balancer
       tether check       validate the configuration, print the effective settings as JSON
       tether --help | --version

Configured by environment variables (TETHER_*) and the JSON file named by
TETHER_CONFIG. Required: TETHER_UPSTREAMS, e.g.
  TETHER_UPSTREAMS=db1=10.0.0.1:5432,db2=10.0.0.2:5432*2 npx tether
Every setting: README.md, section "Settings".
More than one core busy relaying? TETHER_WORKERS=auto runs one relaying process
per CPU behind a control plane (README.md, section "Every core").
Signals: SIGTERM/SIGINT drain and exit 0 (a second one closes at once);
SIGHUP reloads TETHER_CONFIG without dropping connections.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `warn`: print the warnings (a worker does not: the control plane did). */
function loadOrExit(warn = true): Config {
  try {
    const { config, warnings } = loadConfigWithWarnings(process.env);
    assertAvailable(config, process.env);
    if (warn) for (const warning of warnings) process.stderr.write(`tether: warning: ${warning}\n`);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tether: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function run(): Promise<void> {
  if (cluster.isWorker) return runWorker();
  const config = loadOrExit();
  fitYoungGeneration(config);
  const logger = createLogger(config.logLevel);
  let tether: Tether;
  try {
    // TETHER_WORKERS > 1: this process is the control plane and forks the workers (src/workers/).
    tether = workerCount(config) > 1 ? await ControlPlane.start(config, logger) : await Tether.start(config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`tether: ${errorMessage(err)}\n`);
    logger.flush();
    process.exit(1);
  }
  installSignals(tether, logger);
}

/** A worker of TETHER_WORKERS > 1: the control plane tells it what to do (signals included). */
function runWorker(): void {
  const config = loadOrExit(false);
  fitYoungGeneration(config);
  const logger = createLogger(config.logLevel);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception in a worker');
    exit(logger, 1);
  });
  new WorkerProcess(config, logger).run();
}

function installSignals(tether: Tether, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: closing now');
      void tether.close().then(() => exit(logger, 0));
      return;
    }
    stopping = true;
    logger.info({ signal }, 'stopping');
    tether.shutdown().then(
      () => exit(logger, 0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(logger, 1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    let config: Config;
    try {
      config = loadConfigWithWarnings(process.env).config;
      assertAvailable(config, process.env);
    } catch (err) {
      // A bad file on reload must not take the running balancer down.
      logger.error({ error: errorMessage(err) }, 'reload rejected; keeping the running configuration');
      return;
    }
    fitYoungGeneration(config);
    tether.reload(config).catch((err: unknown) => logger.error({ err }, 'reload failed'));
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    exit(logger, 1);
  });
}

function exit(logger: Logger, code: number): void {
  logger.flush(() => process.exit(code));
}

function main(argv: readonly string[]): void {
  const command = argv[0] ?? 'run';
  switch (command) {
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return;
    case '--version':
    case '-v':
      process.stdout.write(`${version()}\n`);
      return;
    case 'check': {
      const config = loadOrExit();
      process.stdout.write(`${JSON.stringify(effectiveSettings(config), null, 2)}\n`);
      const note = workersNote(config);
      if (note !== null) process.stderr.write(`tether: note: ${note}\n`);
      return;
    }
    case 'run':
      void run();
      return;
    default:
      process.stderr.write(`tether: unknown command ${JSON.stringify(command)}\n${HELP}`);
      process.exit(2);
  }
}

main(process.argv.slice(2));
