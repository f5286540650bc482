// Small DOM helpers. Text from the API is only ever inserted as text (textContent or text
// nodes), never parsed as HTML.

/**
 * Creates an element: el('a', {href: '/x', className: 'replay'}, 'Replay').
 * Attributes: `className`, `dataset` (an object), `hidden`, properties starting with `on`
 * are event listeners, anything else is set with setAttribute. Children are nodes or
 * strings (made text nodes); null and undefined children are skipped.
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'className') element.className = value;
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.filter((child) => child !== undefined && child !== null).map(toNode));
  return element;
}

function toNode(child) {
  return child instanceof Node ? child : document.createTextNode(String(child));
}

/**
 * Shows a message in the page's `#error` alert box; children may be nodes (a link, say).
 * No message (or an empty one) hides the box.
 */
export function showError(...children) {
  const box = document.getElementById('error');
  if (!box) return;
  const parts = children.filter((child) => child !== '' && child !== null && child !== undefined);
  box.replaceChildren(...parts.map(toNode));
  box.hidden = parts.length === 0;
}

/** Hides the `#error` box. */
export function clearError() {
  showError();
}

/** Shows a message in the page's `#notice` status box; children may be nodes. */
export function showNotice(...children) {
  const box = document.getElementById('notice');
  if (!box) return;
  box.replaceChildren(...children.map(toNode));
  box.hidden = children.length === 0;
}
