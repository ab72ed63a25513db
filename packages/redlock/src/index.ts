export * from './redlock-lock.js';
