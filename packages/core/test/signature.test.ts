import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { signBody, verifySignature } from '../src/index.js';
import { sharedFixturesDir } from '../src/testing/index.js';

const FIXTURES = join(sharedFixturesDir(), 'notifications');
const fixture = (name: string, part: string) => readFileSync(join(FIXTURES, `${name}.${part}`));

/** The `X-Hub-Signature` a real hub sent with a fixture delivery. */
function signatureOf(name: string): string {
  const line = fixture(name, 'headers')
    .toString('utf8')
    .split('\n')
    .find((header) => header.toLowerCase().startsWith('x-hub-signature:'));
  if (!line) throw new Error(`${name} has no X-Hub-Signature`);
  return line.slice(line.indexOf(':') + 1).trim();
}

describe('verifySignature', () => {
  for (const [name, algorithm] of [
    ['empty-ping', 'sha1'],
    ['jsonfeed', 'sha256'],
    ['rss-item', 'sha512'],
    ['youtube-new-video', 'sha1'],
  ] as const) {
    it(`accepts the ${algorithm} signature a hub sent with ${name}`, () => {
      const secret = fixture(name, 'secret').toString('utf8').trim();
      const check = verifySignature(signatureOf(name), fixture(name, 'body'), secret);
      expect(check).to.deep.equal({ valid: true, algorithm });
    });
  }

  const body = fixture('wordpress-atom-two-entries', 'body');
  const secret = fixture('wordpress-atom-two-entries', 'secret').toString('utf8').trim();
  const header = signatureOf('wordpress-atom-two-entries');
  const hex = header.slice('sha256='.length);

  it('takes hex digits in either case and the method name in any case', () => {
    expect(verifySignature(`SHA256=${hex.toUpperCase()}`, body, secret).valid).to.equal(true);
  });

  it('finds a changed byte, a wrong secret and a digest of another algorithm', () => {
    const changed = Buffer.from(body);
    changed[100] = (changed[100] as number) ^ 1;
    expect(verifySignature(header, changed, secret)).to.deep.equal({
      valid: false,
      reason: 'mismatch',
    });
    expect(verifySignature(header, body, `${secret}x`)).to.deep.include({ reason: 'mismatch' });
    expect(verifySignature(signBody(body, secret, 'sha512'), body, secret).valid).to.equal(true);
  });

  it('tells a missing header from a malformed one and from an unknown algorithm', () => {
    const reason = (value: string | undefined) => {
      const check = verifySignature(value, body, secret);
      return check.valid ? 'valid' : check.reason;
    };
    expect(reason(undefined)).to.equal('missing');
    expect(reason('  ')).to.equal('missing');
    expect(reason(hex)).to.equal('malformed');
    expect(reason(`=${hex}`)).to.equal('malformed');
    expect(reason(`sha256=${hex.slice(0, -1)}`)).to.equal('malformed');
    expect(reason(`sha256=${hex}0`)).to.equal('malformed');
    // One character that is not a hex digit, at the end, in the middle, at the start.
    expect(reason(`sha256=${hex.slice(0, -1)}g`)).to.equal('malformed');
    expect(reason(`sha256=${hex.slice(0, 31)}z${hex.slice(32)}`)).to.equal('malformed');
    expect(reason(`sha256=z${hex.slice(1)}`)).to.equal('malformed');
    // Characters whose low byte is a hex digit: Node's hex decoder would read them as one.
    expect(reason(`sha256=${hex.slice(0, -1)}\u0130`)).to.equal('malformed');
    expect(reason(`sha256=${hex.replace(/a/g, '\u0161')}`)).to.equal('malformed');
    expect(reason(`md5=${hex.slice(0, 32)}`)).to.equal('unsupported_algorithm');
  });
});
