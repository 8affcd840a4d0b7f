/**
 * The ring-build threads' task file as piscina loads it, in CommonJS. piscina loads
 * its task file with require() first, and on Node 20 a require() of an ES module cut
 * short by the thread being stopped mid-load (a worker process that cannot listen
 * exits while its threads still start) aborts the whole process: V8's "FATAL ERROR:
 * v8::Module::IsGraphAsync must be used on an instantiated module". This file loads
 * ring-build.js with import(), which a stopped thread ends quietly.
 */
type RingBuildModule = typeof import('./ring-build.js');

let loading: Promise<RingBuildModule> | undefined;

export = async function ringBuildThread(task: Parameters<RingBuildModule['default']>[0]): Promise<unknown> {
  loading ??= import('./ring-build.js');
  return (await loading).default(task);
};
