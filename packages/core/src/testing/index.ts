export * from './store-contract.js';
export * from './queue-contract.js';
export * from './lock-contract.js';
export * from './http-adapter-suite.js';
export * from './unavailable.js';
