export * from './agenda-queue.js';
