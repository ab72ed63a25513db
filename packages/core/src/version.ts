import pkg from '../package.json' with { type: 'json' };

/** The version of @websubsub/core, read from its package.json at build time. */
export const VERSION: string = pkg.version;

/** The `User-Agent` every outbound request sends unless told otherwise. */
export const USER_AGENT = `websubsub/${VERSION} (+https://github.com/websubsub/websubsub)`;
