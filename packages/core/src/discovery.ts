import LinkHeader from 'http-link-header';
import { parse as parseHtml, type DefaultTreeAdapterTypes } from 'parse5';
import { SaxesParser, type SaxesTag } from 'saxes';
import { DiscoveryError } from './errors.js';
import { httpRequest, type HttpOptions, type HttpResponse } from './http-client.js';

/** Where the hubs were found: `Link` headers, an HTML `<head>`, an Atom feed or an RSS channel. */
export type DiscoverySource = 'link-header' | 'html' | 'atom' | 'rss';

/** The hub and self links one response advertises, as absolute http(s) URLs. */
export interface DiscoveredLinks {
  /** Every advertised hub, in document order, without duplicates. */
  hubs: string[];
  /** The first `rel="self"` URL, or `null` when there is none. */
  self: string | null;
  /** Where the hubs were found. */
  source: DiscoverySource;
}

/** What discovery found for a topic URL. */
export interface DiscoveryResult {
  /** The topic to subscribe to: the `rel="self"` URL, else the URL finally fetched. */
  topic: string;
  /** Every advertised hub, in order, at least one. */
  hubs: string[];
  /** The URL discovery was asked to fetch. */
  requestedUrl: string;
  /** The URL the document came from, after redirects; keep it to discover again at renewal. */
  fetchedUrl: string;
  /** Where the hubs were found. */
  source: DiscoverySource;
  /** Whether the topic came from a `rel="self"` link rather than the fetched URL. */
  selfFound: boolean;
}

/** Options of `discover`: the limits of the topic fetch. */
export interface DiscoveryOptions extends HttpOptions {}

const ATOM_NS = 'http://www.w3.org/2005/Atom';

// Feeds first, then HTML; anything else still gets a chance through its Link headers.
const ACCEPT = [
  'application/atom+xml',
  'application/rss+xml',
  'application/rdf+xml;q=0.9',
  'application/xml;q=0.8',
  'text/xml;q=0.8',
  'text/html;q=0.7',
  'application/xhtml+xml;q=0.7',
  '*/*;q=0.1',
].join(', ');

// Only the start of a document is searched for its encoding and its root element.
const PRESCAN_BYTES = 1024;

type Headers = Record<string, string | string[] | undefined>;

/**
 * Find the hubs and the self link in one response, the way a WebSub subscriber must: `Link`
 * headers first; only when they name no hub, the document (`<link>` in an HTML `<head>`, or
 * Atom-namespace `<link>` children of an Atom `<feed>` or an RSS `<channel>`). `rel` is a list
 * of tokens compared case-insensitively; relative URLs resolve against `url` (and an HTML
 * `<base href>` or XML `xml:base`). When several links say `rel="self"` the first one wins.
 * When the document supplies the hubs but no self, a self from the `Link` headers is used.
 * Links that are not http(s) URLs are skipped. The body is decoded by its byte-order mark,
 * the `Content-Type` charset, or the encoding it declares, in that order (UTF-8 otherwise).
 * Pure: no I/O.
 *
 * @param url The URL the response came from, after redirects.
 * @returns The links, or `null` when the response advertises no hub.
 */
export function parseDiscovery(
  url: string,
  headers: Headers,
  body: Buffer | string,
): DiscoveredLinks | null {
  const fromHeaders = linkHeaders(url, headers);
  if (fromHeaders.hubs.length > 0) {
    return { hubs: fromHeaders.hubs, self: fromHeaders.self, source: 'link-header' };
  }

  const contentType = headerValues(headers, 'content-type')[0] ?? null;
  const fromDocument = parseDocument(url, contentType, body);
  if (fromDocument === null || fromDocument.links.hubs.length === 0) return null;

  return {
    hubs: fromDocument.links.hubs,
    self: fromDocument.links.self ?? fromHeaders.self,
    source: fromDocument.source,
  };
}

/**
 * Fetch a topic URL (GET, following redirects within the limits of `options`) and discover its
 * hubs and topic with `parseDiscovery`. Without a `rel="self"` link the topic is the URL
 * finally fetched, after redirects (`selfFound` is then `false`). A redirect whose own `Link`
 * headers name a hub ends the walk there: some publishers advertise the hub on a stable URL
 * that redirects to a page that names none (chat.indieweb.org's channel pages do).
 *
 * @throws DiscoveryError `fetch_failed` when no response came (the `HttpRequestError` is the
 *   `cause`), `bad_status` when the final response is not 2xx, `no_hub` when it names no hub.
 */
export async function discover(
  url: string,
  options: DiscoveryOptions = {},
): Promise<DiscoveryResult> {
  let response: HttpResponse;
  try {
    response = await httpRequest(
      url,
      { method: 'GET', headers: { accept: ACCEPT }, endsAtRedirect: advertisesHub },
      options,
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DiscoveryError('fetch_failed', `Could not fetch the topic ${url}: ${reason}`, {
      cause: error,
    });
  }

  const atRedirect = response.status >= 300 && response.status < 400;
  if (!atRedirect && (response.status < 200 || response.status > 299)) {
    throw new DiscoveryError('bad_status', `The topic ${response.url} answered ${response.status}`);
  }

  // A redirect's body is only a note for browsers: its Link headers are what it advertises.
  let links: DiscoveredLinks | null;
  try {
    links = parseDiscovery(response.url, response.headers, atRedirect ? '' : response.body);
  } catch (error) {
    // The parsers are lenient; should one still give up on a document, no hub is found in it.
    const reason = error instanceof Error ? error.message : String(error);
    throw new DiscoveryError('no_hub', `${response.url} could not be read: ${reason}`, {
      cause: error,
    });
  }
  if (links === null) {
    throw new DiscoveryError('no_hub', `${response.url} advertises no hub`);
  }

  return {
    topic: links.self ?? response.url,
    hubs: links.hubs,
    requestedUrl: new URL(url).href,
    fetchedUrl: response.url,
    source: links.source,
    selfFound: links.self !== null,
  };
}

/** The hub and self links collected from one source, deduplicated and resolved. */
class LinkSet {
  readonly hubs: string[] = [];
  self: string | null = null;

  add(rel: string | undefined, href: string | undefined, base: string): void {
    if (rel === undefined || href === undefined) return;

    // HTML splits rel on ASCII whitespace; Link headers and feeds are read the same way.
    const tokens = rel.toLowerCase().split(/[\t\n\f\r ]+/);
    const isHub = tokens.includes('hub');
    const isSelf = tokens.includes('self');
    if (!isHub && !isSelf) return;

    const resolved = resolveHttpUrl(href, base);
    if (resolved === null) return;

    if (isHub && !this.hubs.includes(resolved)) this.hubs.push(resolved);
    if (isSelf && this.self === null) this.self = resolved;
  }
}

/** The hub and self links of a response's `Link` headers. */
function linkHeaders(url: string, headers: Headers): LinkSet {
  const links = new LinkSet();
  for (const value of headerValues(headers, 'link')) addLinkHeader(links, value, url);
  return links;
}

/** Whether a response's `Link` headers name a hub. */
function advertisesHub(url: string, headers: Headers): boolean {
  return linkHeaders(url, headers).hubs.length > 0;
}

function addLinkHeader(links: LinkSet, value: string, base: string): void {
  let parsed: LinkHeader;
  try {
    parsed = LinkHeader.parse(value);
  } catch {
    // One malformed header must not hide the links in the others.
    return;
  }

  for (const ref of parsed.refs) links.add(ref.rel, ref.uri, base);
}

function parseDocument(
  url: string,
  contentType: string | null,
  body: Buffer | string,
): { links: LinkSet; source: DiscoverySource } | null {
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? null;
  const text = typeof body === 'string' ? body.replace(/^\uFEFF/, '') : decode(body, contentType);

  switch (documentKind(mediaType, text)) {
    case 'html':
      return { links: linksFromHtml(url, text), source: 'html' };
    case 'xml':
      return linksFromFeed(url, text);
    default:
      return null;
  }
}

/**
 * HTML or XML, from the root element when the document shows one (feeds are often served as
 * text/html or text/plain), else from the media type. JSON and other non-markup bodies: none.
 */
function documentKind(mediaType: string | null, text: string): 'html' | 'xml' | null {
  if (mediaType !== null && (mediaType.endsWith('/json') || mediaType.endsWith('+json'))) {
    return null;
  }

  const root = rootElementName(text);
  if (root === 'rss' || root === 'feed' || root === 'rdf') return 'xml';
  if (root === 'html') return 'html';

  if (mediaType === 'text/html' || mediaType === 'application/xhtml+xml') return 'html';
  if (mediaType !== null && (mediaType.endsWith('/xml') || mediaType.endsWith('+xml'))) {
    return 'xml';
  }
  return root === null ? null : 'html';
}

/**
 * The local name of the root element, lower-cased, after the prolog: white space, processing instructions,
 * comments and a doctype (with its internal subset). Scanned by hand, each step with
 * `indexOf`, so the time stays linear: a regular expression for the same backtracked
 * exponentially on a page of empty comments and no element (`<!---->` 33 times took 50 s).
 */
function rootElementName(text: string): string | null {
  const head = text.slice(0, 16 * PRESCAN_BYTES);
  let at = 0;
  const skipTo = (end: string, from: number): boolean => {
    const found = head.indexOf(end, from);
    at = found === -1 ? head.length : found + end.length;
    return found !== -1;
  };
  while (at < head.length) {
    if (/\s/.test(head[at] as string)) at += 1;
    else if (head.startsWith('<?', at)) {
      if (!skipTo('?>', at + 2)) return null;
    } else if (head.startsWith('<!--', at)) {
      if (!skipTo('-->', at + 4)) return null;
    } else if (head.slice(at, at + 9).toLowerCase() === '<!doctype') {
      const bracket = head.indexOf('[', at);
      const close = head.indexOf('>', at);
      if (bracket !== -1 && (close === -1 || bracket < close)) {
        if (!skipTo(']', bracket + 1)) return null;
      }
      if (!skipTo('>', at)) return null;
    } else break;
  }
  const name = /^<([A-Za-z_][^\s/>]*)/.exec(head.slice(at))?.[1];
  if (name === undefined) return null;
  return (name.split(':').pop() ?? name).toLowerCase();
}

function decode(bytes: Buffer, contentType: string | null): string {
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(sniffEncoding(bytes, contentType));
  } catch {
    // An encoding nobody knows: UTF-8 gets the ASCII-range markup right at least.
    decoder = new TextDecoder('utf-8');
  }

  // The WHATWG label set maps latin1, iso-8859-1 and ascii here too.
  if (decoder.encoding === 'windows-1252') return decodeWindows1252(bytes);
  return decoder.decode(bytes);
}

// windows-1252 bytes 0x80-0x9F as the WHATWG Encoding Standard maps them.
const WINDOWS_1252_C1 =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021' +
  '\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014' +
  '\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

/**
 * Node 20.18.3 and later decode windows-1252 as ISO-8859-1, turning 0x80-0x9F (€, ’, “…)
 * into control characters (nodejs/node#60888), so those 32 bytes are mapped here.
 */
function decodeWindows1252(bytes: Buffer): string {
  return bytes
    .toString('latin1')
    .replace(/[\u0080-\u009f]/g, (char) => WINDOWS_1252_C1[char.charCodeAt(0) - 0x80] ?? char);
}

/** The encoding label of a body: byte-order mark, then Content-Type, then the document's own. */
function sniffEncoding(bytes: Buffer, contentType: string | null): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';

  const declared =
    contentType === null ? undefined : /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  if (declared !== undefined) return declared;

  // Every encoding a document can name in its own text agrees with ASCII on the markup.
  const start = bytes.subarray(0, PRESCAN_BYTES).toString('latin1');
  const xmlDeclaration = /^<\?xml\s[^>]*?encoding\s*=\s*["']([^"']+)["']/.exec(start);
  if (xmlDeclaration?.[1] !== undefined) return xmlDeclaration[1];
  if (start.startsWith('<?xml')) return 'utf-8';

  const meta = /<meta\s[^>]*?charset\s*=\s*["']?\s*([^"'\s;/>]+)/i.exec(start)?.[1];
  // HTML reads a meta claiming UTF-16 as UTF-8: bytes that parsed as ASCII cannot be UTF-16.
  if (meta !== undefined) return /^utf-?16/i.test(meta) ? 'utf-8' : meta;
  return 'utf-8';
}

function linksFromHtml(url: string, text: string): LinkSet {
  const links = new LinkSet();
  const document = parseHtml(text);
  const html = childElements(document).find((node) => node.tagName === 'html');
  const head =
    html === undefined ? undefined : childElements(html).find((node) => node.tagName === 'head');
  if (head === undefined) return links;

  const base = htmlBase(document, url);
  for (const node of childElements(head)) {
    if (node.tagName === 'link') links.add(attribute(node, 'rel'), attribute(node, 'href'), base);
  }
  return links;
}

/** The document's base URL: the first `<base href>` in tree order, resolved, else the URL. */
function htmlBase(document: DefaultTreeAdapterTypes.Document, url: string): string {
  const href = firstBaseHref(document);
  return href === undefined ? url : (resolveHttpUrl(href, url) ?? url);
}

/** Walked with a stack of its own: a page nested thousands deep would overflow the call stack. */
function firstBaseHref(document: DefaultTreeAdapterTypes.Document): string | undefined {
  const pending: DefaultTreeAdapterTypes.Element[] = childElements(document).reverse();
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (node.tagName === 'base') {
      const href = attribute(node, 'href');
      if (href !== undefined) return href;
    }
    const children = childElements(node);
    for (let index = children.length - 1; index >= 0; index--) {
      pending.push(children[index] as DefaultTreeAdapterTypes.Element);
    }
  }
  return undefined;
}

function childElements(
  node: DefaultTreeAdapterTypes.ParentNode,
): DefaultTreeAdapterTypes.Element[] {
  return node.childNodes.filter(
    (child): child is DefaultTreeAdapterTypes.Element => 'tagName' in child,
  );
}

function attribute(node: DefaultTreeAdapterTypes.Element, name: string): string | undefined {
  return node.attrs.find((attr) => attr.name === name)?.value;
}

/** An element of the top three levels: the only ones that can hold a feed's own links. */
interface OpenElement {
  local: string;
  uri: string;
  base: string;
  /** Namespace prefixes in scope (`''` for the default namespace). */
  prefixes: ReadonlyMap<string, string>;
}

/** Depth of the deepest element that matters: `<link>` in `<rss><channel>`. */
const FEED_LEVELS = 3;

/** Nesting past which a feed is read no further (XHTML content in real feeds stays far below). */
const MAX_FEED_DEPTH = 1000;
const FEED_SLICE = 16_384;

/**
 * Atom-namespace `<link>` elements that are children of an Atom `<feed>` or of the `<channel>`
 * of an RSS 2.0 or RSS 1.0 (RDF) document; entry- and item-level links describe entries, not
 * the feed. Matched by namespace and local name, so any prefix (or none) works. Parsing is
 * lenient: a feed that is not well-formed still yields the links before and after the flaw.
 *
 * Namespaces are resolved here for the top three levels only: the parser's own resolution
 * walks every open element for every tag, which took minutes on a few hundred kilobytes of
 * nesting; deeper elements are only counted.
 */
function linksFromFeed(url: string, text: string): { links: LinkSet; source: DiscoverySource } {
  const links = new LinkSet();
  let source: DiscoverySource = 'rss';
  const open: OpenElement[] = [];
  let depth = 0;
  const parser = new SaxesParser({ position: false });

  parser.on('error', () => {});
  parser.on('opentag', (tag: SaxesTag) => {
    depth += 1;
    if (depth > FEED_LEVELS) return;
    const parent = open[open.length - 1];
    const element = openElement(tag, parent, url);
    open.push(element);

    const level = open.length - 1;
    if (level === 0 && element.uri === ATOM_NS && element.local === 'feed') source = 'atom';
    if (element.uri !== ATOM_NS || element.local !== 'link' || parent === undefined) return;

    const root = open[0] as OpenElement;
    const feedLevel =
      (level === 1 && root.uri === ATOM_NS && root.local === 'feed') ||
      (level === 2 && (root.local === 'rss' || root.local === 'RDF') && parent.local === 'channel');
    if (feedLevel) links.add(attributeOf(tag, 'rel'), attributeOf(tag, 'href'), element.base);
  });
  parser.on('closetag', () => {
    if (depth <= FEED_LEVELS) open.pop();
    depth = Math.max(0, depth - 1);
  });

  // Written in slices, so that a document nested past any real feed is left there: its
  // feed-level links come first, and closing thousands of open tags costs an error each.
  for (let at = 0; at < text.length && depth <= MAX_FEED_DEPTH; at += FEED_SLICE) {
    parser.write(text.slice(at, at + FEED_SLICE));
  }
  if (depth <= MAX_FEED_DEPTH) parser.close();
  return { links, source };
}

function attributeOf(tag: SaxesTag, name: string): string | undefined {
  const value: unknown = tag.attributes[name];
  return typeof value === 'string' ? value : undefined;
}

/** An element's namespace, local name and base URL, from its own and its parent's. */
function openElement(tag: SaxesTag, parent: OpenElement | undefined, url: string): OpenElement {
  let prefixes = parent?.prefixes ?? new Map<string, string>();
  for (const name of Object.keys(tag.attributes)) {
    if (name !== 'xmlns' && !name.startsWith('xmlns:')) continue;
    if (prefixes === parent?.prefixes) prefixes = new Map(prefixes);
    (prefixes as Map<string, string>).set(name.slice(6), attributeOf(tag, name) ?? '');
  }
  const colon = tag.name.indexOf(':');
  const prefix = colon === -1 ? '' : tag.name.slice(0, colon);
  const inherited = parent?.base ?? url;
  const declared = attributeOf(tag, 'xml:base');
  return {
    local: tag.name.slice(colon + 1),
    uri: prefixes.get(prefix) ?? '',
    base: declared === undefined ? inherited : (resolveHttpUrl(declared, inherited) ?? inherited),
    prefixes,
  };
}

function resolveHttpUrl(href: string, base: string): string | null {
  try {
    const resolved = new URL(href, base);
    return resolved.protocol === 'http:' || resolved.protocol === 'https:' ? resolved.href : null;
  } catch {
    return null;
  }
}

function headerValues(headers: Headers, name: string): string[] {
  const values: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    values.push(...(Array.isArray(value) ? value : [value]));
  }
  return values;
}
