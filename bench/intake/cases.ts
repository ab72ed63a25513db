/** How a case's server is assembled. */
export type Mount = 'node' | 'koa' | 'express';

/** One server the intake benchmark loads. */
export interface IntakeCase {
  /** Name passed to the server process. */
  name: string;
  /** Row label in the report. */
  label: string;
  /** The case whose throughput this one is compared with, and the least ratio wanted. */
  baseline?: { name: string; atLeast: number };
  /** Needs PostgreSQL and Redis. */
  durable?: boolean;
}

/** Every case, in the order they run (each baseline before the cases compared with it). */
export const INTAKE_CASES: readonly IntakeCase[] = [
  { name: 'bare-node', label: 'bare `node:http` (ceiling)' },
  { name: 'bare-koa', label: 'bare Koa 3' },
  { name: 'bare-express', label: 'bare Express 5' },
  {
    name: 'bare-node-hmac',
    label: 'bare `node:http` + the HMAC-SHA256 check alone (reference)',
    baseline: { name: 'bare-node', atLeast: 0 },
  },
  {
    name: 'bare-node-turn',
    label: 'bare `node:http`, answers written at the end of the turn as core does (reference)',
    baseline: { name: 'bare-node', atLeast: 0 },
  },
  {
    name: 'core-node',
    label: 'core `createNodeListener` on `node:http`, embedded',
    baseline: { name: 'bare-node', atLeast: 0.7 },
  },
  {
    name: 'core-koa',
    label: '`@websubsub/koa` middleware, embedded',
    baseline: { name: 'bare-koa', atLeast: 0.85 },
  },
  {
    name: 'core-express',
    label: '`@websubsub/express` middleware, embedded',
    baseline: { name: 'bare-express', atLeast: 0.85 },
  },
  {
    name: 'durable-node',
    label: '`createNodeListener`, PostgreSQL + Agenda/Redis + Redlock',
    baseline: { name: 'bare-node', atLeast: 0 },
    durable: true,
  },
  {
    name: 'durable-koa',
    label: '`@websubsub/koa`, PostgreSQL + Agenda/Redis + Redlock',
    baseline: { name: 'bare-koa', atLeast: 0 },
    durable: true,
  },
  {
    name: 'durable-express',
    label: '`@websubsub/express`, PostgreSQL + Agenda/Redis + Redlock',
    baseline: { name: 'bare-express', atLeast: 0 },
    durable: true,
  },
  {
    name: 'durablepg-node',
    label: '`createNodeListener`, PostgreSQL + Agenda/PostgreSQL + Redlock',
    baseline: { name: 'bare-node', atLeast: 0 },
    durable: true,
  },
  {
    name: 'durablepgq-node',
    label: '`createNodeListener`, PostgreSQL store + PostgreSQL queue + Redlock',
    baseline: { name: 'bare-node', atLeast: 0 },
    durable: true,
  },
  {
    name: 'peer',
    label: 'npm `pubsubhubbub` 1.0.2 (the peer)',
    baseline: { name: 'bare-node', atLeast: 0 },
  },
];

/** The mount a case's server uses. */
export function mountOf(name: string): Mount {
  if (name.endsWith('-koa')) return 'koa';
  if (name.endsWith('-express')) return 'express';
  return 'node';
}
