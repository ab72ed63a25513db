/** What went wrong, as a stable string a test can branch on. */
export type TestHubErrorCode =
  /** An argument to a test hub method was invalid (a path without a leading `/`, n < 0). */
  | 'invalid_argument'
  /** `waitFor` gave up, or a callback did not answer within `requestTimeoutMs`. */
  | 'timeout'
  /** A request the test sent by hand (`verify`, `deny`) got no answer at all. */
  | 'request_failed'
  /** The hub was used after `close()`. */
  | 'closed';

/** The one error class the test hub throws; `code` says why, `cause` holds the original error. */
export class TestHubError extends Error {
  /** A stable machine-readable code. */
  readonly code: TestHubErrorCode;

  constructor(code: TestHubErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TestHubError';
    this.code = code;
  }
}
