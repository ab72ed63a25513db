import { createHash } from 'node:crypto';

/**
 * The dashboard's only style sheet, sent inline so that a page is one request. Colours keep a
 * contrast of at least 4.5:1 with their background, status is always written as well as
 * coloured, focus is always visible, and below 48rem the table turns into one card per row.
 */
export const STYLE = `
:root { color-scheme: light; --ink: #1b1b1f; --muted: #4a4a55; --line: #c9c9d1; --bg: #ffffff;
  --soft: #f3f3f6; --link: #0b4fc4; --focus: #a34900; --good-bg: #dcf3e1; --good: #0a5a20;
  --pending-bg: #fff1c9; --pending: #5c4300; --bad-bg: #fde3e1; --bad: #8f1a12;
  --ended-bg: #e9e9ee; --ended: #34343d; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
a { color: var(--link); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible,
  summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem 1rem; }
.skip:focus { left: .5rem; z-index: 10; }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center;
  justify-content: space-between; padding: .75rem 1rem; border-bottom: 1px solid var(--line);
  background: var(--soft); }
header.top a.home { font-weight: 700; color: var(--ink); text-decoration: none; font-size: 1.1rem; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .25rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
.muted { color: var(--muted); }
.notice { padding: .75rem 1rem; border-radius: .375rem; margin: 0 0 1rem; border: 1px solid; }
.notice.ok { background: var(--good-bg); color: var(--good); border-color: var(--good); }
.notice.error { background: var(--bad-bg); color: var(--bad); border-color: var(--bad); }
.summary { display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; margin: 0 0 1rem;
  list-style: none; }
.summary a { display: inline-block; padding: .25rem .6rem; border: 1px solid var(--line);
  border-radius: 1rem; text-decoration: none; color: var(--ink); background: var(--bg); }
.summary a[aria-current="true"] { border-color: var(--ink); font-weight: 700; }
form.filters { display: grid; gap: .75rem;
  grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr));
  align-items: end; padding: 1rem; background: var(--soft); border-radius: .5rem;
  margin-bottom: 1rem; }
label { display: block; font-weight: 600; font-size: .9rem; margin-bottom: .25rem; }
input, select { width: 100%; font: inherit; padding: .45rem .5rem; border: 1px solid #6b6b76;
  border-radius: .375rem; background: var(--bg); color: var(--ink); min-height: 2.75rem; }
button, .button { font: inherit; font-weight: 600; padding: .5rem 1rem; min-height: 2.75rem;
  border-radius: .375rem; border: 1px solid var(--link); background: var(--link); color: #fff;
  cursor: pointer; text-decoration: none; display: inline-flex; align-items: center; }
button.secondary, .button.secondary { background: var(--bg); color: var(--link); }
button.danger { background: var(--bad); border-color: var(--bad); }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; }
.actions form { margin: 0; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .5rem;
  border-bottom: 1px solid var(--line); }
thead th { background: var(--soft); position: sticky; top: 0; }
td.url { overflow-wrap: anywhere; word-break: break-word; min-width: 12rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 1rem; font-size: .85rem;
  font-weight: 600; white-space: nowrap; }
.badge.good { background: var(--good-bg); color: var(--good); }
.badge.pending { background: var(--pending-bg); color: var(--pending); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.ended { background: var(--ended-bg); color: var(--ended); }
dl.fields { display: grid; grid-template-columns: minmax(9rem, 14rem) 1fr; gap: .4rem 1rem;
  margin: 0; }
dl.fields dt { font-weight: 600; color: var(--muted); }
dl.fields dd { margin: 0; overflow-wrap: anywhere; }
nav.pages { display: flex; gap: .75rem; flex-wrap: wrap; align-items: center; margin: 1rem 0; }
.chart svg { width: 100%; max-width: 40rem; height: auto; display: block; }
.chart .axis { stroke: #6b6b76; stroke-width: 1; }
.chart .tick { font-size: 9px; fill: var(--muted); }
.bar-accepted, .key-accepted { fill: #1f6f3a; background: #1f6f3a; }
.bar-rejected, .key-rejected { fill: #b3261e; background: #b3261e; }
.legend .key { display: inline-block; width: .8rem; height: .8rem; vertical-align: middle;
  margin-left: .5rem; }
figure.chart { margin: 0 0 1rem; }
.level-success { color: var(--good); font-weight: 600; }
.level-error { color: var(--bad); font-weight: 600; }
.level-info { color: var(--muted); font-weight: 600; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 48rem) {
  table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden;
    clip: rect(0 0 0 0); }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: 100%; }
  table.cards tr { border: 1px solid var(--line); border-radius: .5rem; margin-bottom: .75rem;
    padding: .25rem .5rem; }
  table.cards td { display: grid; grid-template-columns: 6.5rem minmax(0, 1fr); gap: .5rem;
    border: 0; padding: .2rem 0; text-align: left; min-width: 0; }
  table.cards td::before { content: attr(data-label); font-size: .85rem; font-weight: 600;
    color: var(--muted); }
  dl.fields { grid-template-columns: 1fr; }
  dl.fields dd { margin-bottom: .5rem; }
}
`;

/** The Content-Security-Policy source that allows exactly this style sheet and no other. */
export const STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;
