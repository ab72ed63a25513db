import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { signBody } from '@websubsub/core';

/** Size of every benchmark delivery, in bytes. */
export const BODY_BYTES = 2048;

/** The subscription's `hub.secret` (placeholder, as in the fixtures). */
export const SECRET = 'bench-secret-0123456789abcdef0123456789abcd';

/** The one verified subscription each server holds; its id is the callback's last segment. */
export const SUBSCRIPTION_ID = '3f0c6a52-9d1e-4b7a-8c21-5e4f7a9b0d13';

/** Handler (and callback path segment) of the benchmark subscription. */
export const HANDLER = 'bench';

/** Callback path the deliveries are POSTed to. */
export const CALLBACK_PATH = `/websub/${HANDLER}/${SUBSCRIPTION_ID}`;

export const TOPIC = 'https://blog.example.com/feed/atom/';
export const HUB = 'https://websubhub.example.org/hub';

const FIXTURE = fileURLToPath(
  new URL(
    '../../../shared/fixtures/notifications/wordpress-atom-two-entries.body',
    import.meta.url,
  ),
);

/**
 * A WordPress Atom feed with one entry, cut from the shared fixture and padded inside the
 * entry's content to exactly `BODY_BYTES`, so that every case receives the same bytes.
 */
export function atomBody(): Buffer {
  const fixture = readFileSync(FIXTURE, 'utf8');
  const end = fixture.indexOf('</entry>') + '</entry>'.length;
  const closing = '\n</feed>\n';

  const head = fixture.slice(0, end);
  const contentEnd = head.lastIndexOf(']]></content>');
  if (end < '</entry>'.length || contentEnd < 0) throw new Error('Fixture has no Atom entry');

  const before = head.slice(0, contentEnd);
  const after = head.slice(contentEnd) + closing;
  const room = BODY_BYTES - Buffer.byteLength(before) - Buffer.byteLength(after);
  if (room < 0) throw new Error(`The fixture entry is longer than ${BODY_BYTES} bytes`);

  const filler = '\n<p>More notes on the release follow in the next post.</p>'
    .repeat(Math.ceil(room / 10))
    .slice(0, room);
  const body = Buffer.from(before + filler + after, 'utf8');
  if (body.length !== BODY_BYTES) throw new Error(`Body is ${body.length} bytes`);
  return body;
}

/**
 * Headers a WebSub hub sends with a delivery: content type, one combined `Link` (self first,
 * which the `pubsubhubbub` peer needs to find the topic) and the sha256 signature.
 */
export function deliveryHeaders(body: Buffer, secret: string = SECRET): Record<string, string> {
  return {
    'content-type': 'application/atom+xml; charset=UTF-8',
    link: `<${TOPIC}>; rel="self", <${HUB}>; rel="hub"`,
    'x-hub-signature': signBody(body, secret, 'sha256'),
  };
}
