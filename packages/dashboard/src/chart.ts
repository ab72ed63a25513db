import { formatDuration, formatTime } from './format.js';
import type { DeliverySeries } from './history.js';
import { html, type SafeHtml } from './html.js';

const WIDTH = 480;
const HEIGHT = 120;
const TOP = 8;
const BOTTOM = 20;
const LEFT = 28;

/**
 * Deliveries over time as an inline SVG bar chart (no script, no external file): accepted
 * content stacked under refused content, one bar per bucket. The same numbers follow in a
 * table inside `<details>` for screen readers and for anyone who wants the figures.
 */
export function deliveryChart(series: DeliverySeries, id: string, caption: string): SafeHtml {
  const { buckets } = series;
  const accepted = buckets.reduce((sum, bucket) => sum + bucket.accepted, 0);
  const rejected = buckets.reduce((sum, bucket) => sum + bucket.rejected, 0);
  const highest = Math.max(1, ...buckets.map((bucket) => bucket.accepted + bucket.rejected));
  const span = formatDuration(series.bucketMs * buckets.length);
  const summary = `${accepted} accepted and ${rejected} refused in the last ${span}`;

  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = (WIDTH - LEFT) / Math.max(1, buckets.length);
  const barWidth = Math.max(1, slot - 2);
  const scale = (count: number) => (count / highest) * plotHeight;

  const bars = buckets.map((bucket, index) => {
    const x = LEFT + index * slot + 1;
    const acceptedHeight = scale(bucket.accepted);
    const rejectedHeight = scale(bucket.rejected);
    const base = TOP + plotHeight;
    const time = formatTime(bucket.start);
    const label = `${time}: ${bucket.accepted} accepted, ${bucket.rejected} refused`;
    return html`<g
      ><title>${label}</title>${
        bucket.accepted > 0
          ? html`<rect
              class="bar-accepted"
              x="${x.toFixed(1)}"
              y="${(base - acceptedHeight).toFixed(1)}"
              width="${barWidth.toFixed(1)}"
              height="${acceptedHeight.toFixed(1)}"
            ></rect>`
          : ''
      }${
        bucket.rejected > 0
          ? html`<rect
              class="bar-rejected"
              x="${x.toFixed(1)}"
              y="${(base - acceptedHeight - rejectedHeight).toFixed(1)}"
              width="${barWidth.toFixed(1)}"
              height="${rejectedHeight.toFixed(1)}"
            ></rect>`
          : ''
      }</g
    >`;
  });

  const rows = buckets.filter((bucket) => bucket.accepted + bucket.rejected > 0);
  return html`<figure class="chart" aria-labelledby="${id}-caption">
    <figcaption id="${id}-caption">${caption}: ${summary}.</figcaption>
    <svg
      viewBox="0 0 ${WIDTH} ${HEIGHT}"
      role="img"
      aria-labelledby="${id}-title"
      focusable="false"
    >
      <title id="${id}-title">${caption}: ${summary}</title>
      <line
        class="axis"
        x1="${LEFT}"
        y1="${TOP + plotHeight}"
        x2="${WIDTH}"
        y2="${TOP + plotHeight}"
      ></line>
      <text class="tick" x="${LEFT - 4}" y="${TOP + 8}" text-anchor="end">${highest}</text>
      <text class="tick" x="${LEFT - 4}" y="${TOP + plotHeight}" text-anchor="end">0</text>
      ${bars}
      <text class="tick" x="${LEFT}" y="${HEIGHT - 4}">${span} ago</text>
      <text class="tick" x="${WIDTH}" y="${HEIGHT - 4}" text-anchor="end">now</text>
    </svg>
    <p class="legend">
      <span class="key key-accepted"></span> accepted <span class="key key-rejected"></span> refused
    </p>
    <details>
      <summary>Figures</summary>
      ${
        rows.length === 0
          ? html`<p>No content arrived in this period.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">From</th>
                  <th scope="col">Accepted</th>
                  <th scope="col">Refused</th>
                </tr>
              </thead>
              <tbody>
                ${rows.map(
                  (bucket) =>
                    html`<tr>
                      <td>${formatTime(bucket.start)}</td>
                      <td>${bucket.accepted}</td>
                      <td>${bucket.rejected}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
    </details>
  </figure>`;
}
