import pkg from '../package.json' with { type: 'json' };

/** The version of @websubsub/cli, from its package.json (inlined into the bundle by tsup). */
export const VERSION: string = pkg.version;
