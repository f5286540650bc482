// A list page's filter form kept in step with the address: submitting the form puts its
// filters in the query string (a new history entry), resetting it clears both, and going back
// or forward shows that entry's filters again, so a filtered list can be linked and reloaded.

import { query } from './api.js';

/**
 * Binds `form` to the page at `path`. `fromLocation()` reads the filters off the address (its
 * defaults when the query is empty), `read()` off the form, `fill(filters)` shows them in the
 * form, and `changed(filters, how)` runs after every change, `how` being `submit`, `reset` or
 * `history`.
 */
export function bindFilters(form, path, { fromLocation, read, fill, changed }) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const filters = read();
    history.pushState(null, '', path + query(filters));
    changed(filters, 'submit');
  });
  form.addEventListener('reset', (event) => {
    event.preventDefault();
    history.pushState(null, '', path);
    const filters = fromLocation();
    fill(filters);
    changed(filters, 'reset');
  });
  window.addEventListener('popstate', () => {
    const filters = fromLocation();
    fill(filters);
    changed(filters, 'history');
  });
}
