// Loaded by mocha before any test file. The tests read the shared real-world fixtures, which
// live outside the repository; without them a test file fails while mocha loads it, and mocha
// then reports an unrelated error about top-level await. Say what is missing instead.
import { sharedFixturesDir } from '@websubsub/core/testing';

try {
  sharedFixturesDir();
} catch (error) {
  console.error(`\n${error instanceof Error ? error.message : String(error)}`);
  console.error('The tests need the shared fixtures: see "Development" in README.md.\n');
  process.exit(1);
}
