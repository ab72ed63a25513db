export {
  defineConfig,
  loadCliConfig,
  closeCliConfig,
  findConfigFile,
  CONFIG_FILES,
  type CliConfig,
  type CliConfigSource,
  type LoadConfigOptions,
  type LoadedConfig,
} from './config.js';
export { runCli, processIo } from './program.js';
export { EXIT, UsageError, CliConfigError, exitCodeOf } from './errors.js';
export { NotConfirmedError } from './prompt.js';
export {
  serialiseRecord,
  statusOf,
  type CliIo,
  type CliStream,
  type RecordJson,
} from './output.js';
export type { DoctorCheck } from './commands/doctor.js';
export { VERSION } from './version.js';
