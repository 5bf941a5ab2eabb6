// @ts-check
// Reading a poll answer (`{epoch, events, next}`, or with `topics=`
// `{events, topics, next}`) the way the socket needs it.

/**
 * Where a poll answer places a reader that had no position yet ("from
 * now"): before its first event when it holds any (an event may be
 * published between the server placing the reader and reading), else at
 * `next`.
 * @param {{ seq: number }[]} events
 * @param {number} next
 */
export function placedAt(events, next) {
  return events.length > 0 ? events[0].seq - 1 : next;
}

/**
 * The events of a poll body as the server wrote them, so that `data` is
 * the same text on every transport (re-serialising would reformat numbers
 * such as 99.90). Returns null when the body is not as expected.
 * @param {string} body
 * @param {number} count how many events the body holds
 * @returns {string[] | null}
 */
export function eventTexts(body, count) {
  const start = body.indexOf('"events":[');
  if (start < 0) return null;
  const out = [];
  let i = start + '"events":['.length;
  while (out.length < count) {
    if (body[i] === ',') i += 1;
    if (body[i] !== '{') return null;
    const from = i;
    let depth = 0;
    let inString = false;
    for (; i < body.length; i += 1) {
      const c = body[i];
      if (inString) {
        if (c === '\\') i += 1;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth += 1;
      else if ((c === '}' || c === ']') && --depth === 0) break;
    }
    if (i >= body.length) return null;
    i += 1;
    out.push(body.slice(from, i));
  }
  return out;
}
