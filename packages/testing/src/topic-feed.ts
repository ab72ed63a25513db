/** Escape a value for an XML attribute or text node. */
function escapeXml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/**
 * A minimal Atom feed that advertises its hub and self in the document too, so that discovery
 * works with or without the `Link` header fields.
 */
export function atomFeed(topic: string, hub: string, updated: Date): string {
  const id = escapeXml(topic);

  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    '  <title>Test topic</title>',
    `  <id>${id}</id>`,
    `  <updated>${updated.toISOString()}</updated>`,
    `  <link rel="hub" href="${escapeXml(hub)}"/>`,
    `  <link rel="self" href="${id}"/>`,
    '</feed>',
    '',
  ].join('\n');
}
