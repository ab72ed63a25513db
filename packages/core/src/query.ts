/** One decoded query parameter: its bytes as sent, and as UTF-8 text when they are valid UTF-8. */
export interface QueryValue {
  bytes: Buffer;
  text: string | null;
}

/** A query string decoded strictly, or the reason it could not be. */
export type ParsedQuery =
  { ok: true; params: Map<string, QueryValue[]> } | { ok: false; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decode a raw query string (without `?`) byte for byte, as `application/x-www-form-urlencoded`:
 * `+` is a space and `%XX` a byte. Unlike `URLSearchParams`, a malformed escape in a `hub.*`
 * parameter is an error rather than being passed on (other parameters that do not decode are
 * left out), and values keep their exact bytes so that a challenge can be echoed unchanged
 * whatever a hub put in it.
 */
export function parseQuery(raw: string): ParsedQuery {
  const params = new Map<string, QueryValue[]>();
  if (raw === '') return { ok: true, params };

  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const separator = pair.indexOf('=');
    const rawKey = separator === -1 ? pair : pair.slice(0, separator);
    const rawValue = separator === -1 ? '' : pair.slice(separator + 1);

    const key = decodeComponent(rawKey);
    const name = key === null ? null : decodeText(key);
    const value = decodeComponent(rawValue);
    // Only the protocol's own parameters must be whole: a broken one the callback URL or the
    // hub added for itself is left out rather than failing the verification.
    if (name === null || value === null) {
      if (!isProtocolParameter(name ?? rawKey)) continue;
      return {
        ok: false,
        reason: name === null ? 'Parameter name is not UTF-8' : 'Invalid percent-encoding',
      };
    }

    const values = params.get(name) ?? [];
    values.push({ bytes: value, text: decodeText(value) });
    params.set(name, values);
  }
  return { ok: true, params };
}

function isProtocolParameter(name: string): boolean {
  return name.slice(0, 4).toLowerCase() === 'hub.' || name.slice(0, 6).toLowerCase() === 'hub%2e';
}

function decodeText(bytes: Buffer): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

function decodeComponent(raw: string): Buffer | null {
  const out: number[] = [];
  const source = Buffer.from(raw.replace(/\+/g, ' '), 'utf8');

  for (let index = 0; index < source.length; index++) {
    const byte = source[index] as number;
    if (byte !== 0x25) {
      out.push(byte);
      continue;
    }
    const hex = source.subarray(index + 1, index + 3).toString('latin1');
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
    out.push(parseInt(hex, 16));
    index += 2;
  }
  return Buffer.from(out);
}
