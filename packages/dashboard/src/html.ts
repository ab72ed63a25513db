import escapeHtml from 'escape-html';

/** Markup that is already safe to send: built by `html`, never from untrusted text. */
export class SafeHtml {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/** What may be put into an `html` template: escaped unless it is `SafeHtml`; lists are joined. */
export type HtmlValue =
  SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map((item: HtmlValue) => render(item)).join('');
  return escapeHtml(String(value));
}

/**
 * A template tag that escapes every interpolated value for element content and quoted
 * attributes, so that topics, hub answers and denial reasons (all chosen by others) can never
 * become markup. Only values that are themselves `html` results pass through unescaped.
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] as string;
  for (let index = 0; index < values.length; index++) {
    out += render(values[index] as HtmlValue) + (strings[index + 1] as string);
  }
  return new SafeHtml(out);
}
