// DOM helpers. Everything that came from the API goes in through text nodes
// and attribute setters: no HTML string is ever parsed, so span names such as
// `<img src=x onerror=…>` render as the text they are.

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined;
export type Attrs = {
  [key: string]: AttrValue | ((event: any) => void) | Partial<CSSStyleDeclaration>;
};

/** Creates `<tag>` with attributes (`on*` functions become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element; attributes are set, never parsed. */
export function svg(tag: string, attrs?: Record<string, string | number>, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag) as SVGElement;
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

function setAttrs(el: HTMLElement, attrs: Attrs): void {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === 'style' && typeof value === 'object') {
      Object.assign(el.style, value);
    } else if (key === 'class') {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

/** Appends children: strings and numbers as text nodes, arrays flattened, falsy skipped. */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function replace(el: Node, ...children: Child[]): void {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, children);
}

/**
 * A finding message with its `code` spans (the detectors quote statements and
 * operations in backticks) as <code>, all as text.
 */
export function messageText(message: string): Node[] {
  return message.split('`').map((part, i) => (i % 2 === 1 ? h('code', null, part) : document.createTextNode(part)));
}

/** A small "loading…", "nothing here" or error line. */
export function note(text: string, kind: 'info' | 'error' = 'info'): HTMLElement {
  return h('p', { class: `note note-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** Options for a <select>; `selected` picks one by value. */
export function options(values: Array<[string, string]>, selected: string): HTMLOptionElement[] {
  return values.map(([value, label]) => {
    const o = h('option', { value }, label);
    o.selected = value === selected;
    return o;
  });
}
