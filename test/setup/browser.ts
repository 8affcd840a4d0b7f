/**
 * The browser the stats-page test drives: the Chromium build that the devDependency
 * `@sparticuz/chromium` ships inside its npm package (so `npm ci` alone brings it),
 * unpacked once per version under node_modules/.cache/. `TETHER_TEST_CHROMIUM=PATH`
 * picks another binary (a system chromium, say).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

export interface BrowserSetup {
  readonly executablePath: string;
  /** Environment for the browser process (its bundled libraries and fonts). */
  readonly env: Record<string, string>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGE = '@sparticuz/chromium';

/** Unpacks `bin/NAME.br` (a brotli file, or a brotli tarball) into `dir`. */
function unpack(bin: string, name: string, dir: string): void {
  const data = brotliDecompressSync(readFileSync(join(bin, name)));
  if (!name.endsWith('.tar.br')) {
    writeFileSync(join(dir, name.slice(0, -'.br'.length)), data, { mode: 0o755 });
    return;
  }
  const tar = spawnSync('tar', ['-x', '-C', dir], { input: data });
  if (tar.status !== 0) throw new Error(`unpacking ${name}: tar exited ${tar.status}: ${tar.stderr.toString().trim()}`);
}

function packaged(): BrowserSetup {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`${PACKAGE} ships Chromium for linux-x64 only: on ${process.platform}-${process.arch}, set TETHER_TEST_CHROMIUM to a Chromium binary`);
  }
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(PACKAGE);
  } catch {
    throw new Error(`${PACKAGE} is not installed: run \`npm ci\``);
  }
  const bin = join(dirname(entry), '..', '..', 'bin');
  const version = (JSON.parse(readFileSync(join(bin, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(ROOT, 'node_modules', '.cache', `tether-chromium-${version}`);
  if (!existsSync(join(dir, 'chromium'))) {
    // Unpacked beside, then renamed: a run stopped half-way leaves no half browser.
    const partial = `${dir}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    // al2023: NSS and expat, so the browser does not need the system's.
    for (const name of ['chromium.br', 'swiftshader.tar.br', 'fonts.tar.br', 'al2023.tar.br']) unpack(bin, name, partial);
    // The package's fonts.conf names Lambda's folders; ours names the unpacked fonts
    // and the system's, with a cache of its own.
    writeFileSync(
      join(partial, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${dir}/fonts</dir>\n  <dir>/usr/share/fonts</dir>\n  <cachedir>${dir}/fonts-cache</cachedir>\n</fontconfig>\n`,
    );
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  return {
    executablePath: join(dir, 'chromium'),
    env: { LD_LIBRARY_PATH: [join(dir, 'lib'), dir, process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':'), FONTCONFIG_PATH: dir },
  };
}

/** The browser to launch; throws one line saying what to do when there is none. */
export function ensureBrowser(): BrowserSetup {
  const chosen = process.env['TETHER_TEST_CHROMIUM'];
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`TETHER_TEST_CHROMIUM=${chosen}: no such file`);
    return { executablePath: chosen, env: {} };
  }
  return packaged();
}
