import pkg from '../package.json' with { type: 'json' };

/** The version of @websubsub/core, from its package.json (inlined into the bundle by tsup). */
export const VERSION: string = pkg.version;

/** The `User-Agent` every outbound request sends unless told otherwise. */
export const USER_AGENT = `websubsub/${VERSION} (+https://github.com/websubsub/websubsub)`;
