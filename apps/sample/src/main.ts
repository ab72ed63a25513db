import { ConfigError, createSampleApp, readConfig } from './index.js';
import { createLogger } from './logging.js';

const logger = (() => {
  try {
    return createLogger(process.env['LOG_LEVEL'] ?? 'info');
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
})();

async function main(): Promise<void> {
  const config = readConfig();
  const sample = await createSampleApp(config, logger);
  const { description } = sample.roles;
  logger.info(
    description,
    `Roles: ${description.store}, ${description.queue}, ${description.lock}`,
  );
  logger.info({}, `Notifications kept in ${description.notifications.replace(/^in /, '')}`);
  if (description.lock.startsWith('embedded') && !description.queue.startsWith('embedded')) {
    logger.warn(
      {},
      'The lock is in-process: run several instances only with REDIS_URL or ' +
        'WEBSUBSUB_LOCK=postgres',
    );
  }

  const port = await sample.listen();
  logger.info({ port, siteUrl: config.siteUrl }, `websubsub sample listening on port ${port}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal does not wait for a job that may never end: durable jobs still
      // running are run again by another instance once their locks run out.
      logger.warn({ signal }, 'Second signal: exiting without waiting for running jobs');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'Shutting down: draining running jobs (a second signal exits now)');
    sample
      .close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ error }, 'Shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) logger.error(error.message);
  else logger.error({ error }, `The sample app could not start: ${(error as Error).message}`);
  process.exit(1);
});
