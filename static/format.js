// Light formatting of message texts: **bold**, *italics* and _italics_,
// `inline code`, ``` fenced code blocks ```, links (http(s):// and bare
// www. addresses) and @mentions, built as DOM nodes. Nothing a person types
// is ever parsed as HTML: every piece of their text ends up in a text node,
// so `<b>x</b>` shows as typed. No dependencies; it imports nothing.
//
// Two passes over the text:
//   1. "Atoms", pieces taken whole, whose insides are never formatted, in
//      order of precedence: code (so a URL or a * inside code stays as
//      typed), then links (so the _ of https://x.org/a_b_c stays in the
//      address), then mentions.
//   2. Emphasis over everything else, the atoms passed over as opaque.
//
// Emphasis follows the rule most chats use, so that markers inside words
// (snake_case_names, 2*3*4) stay literal: an opening marker has no letter
// or digit right before it (the start counts as none) and a non-space
// after it; a closing one has a non-space before it and no letter or digit
// right after it. A marker is a run of exactly `*`, `**` or `_` (so
// __init__ stays as typed); a closer must be a run of the same length
// (`*a **b** c*` is italics around bold). Emphasis stays within a line, so
// one stray `*` cannot slant a whole message. Markers left without a
// partner stay literal.

const WORD = /[\p{L}\p{N}_]/u;
const ALNUM = /[\p{L}\p{N}]/u;
const SPACE = /\s/u;
const isWord = (ch) => ch !== undefined && WORD.test(ch);
// Next to an emphasis marker, the other marker is no word: _**both**_.
const isLetterOrDigit = (ch) => ch !== undefined && ALNUM.test(ch);
// The start and the end of the text count as space.
const isSpace = (ch) => ch === undefined || SPACE.test(ch);

/// The text as a DocumentFragment. `me`: this reader's display name (its
/// mentions get `.mention.me`); `names`: other names worth a `.mention`.
export function formatText(text, { me = "", names = [] } = {}) {
  const atoms = [];
  findCode(text, atoms);
  findLinks(text, atoms);
  findMentions(text, atoms, me, names);
  const byStart = new Map(atoms.map((atom) => [atom.start, atom]));
  const fragment = document.createDocumentFragment();
  inline(text, 0, text.length, byStart, fragment);
  return fragment;
}

/// Whether [start, end) overlaps an atom already found.
function taken(atoms, start, end) {
  return atoms.some((atom) => start < atom.end && atom.start < end);
}

// ---- code --------------------------------------------------------------------

/// A run of n backticks opens code that the next run of exactly n closes
/// (so ``a `b` c`` can show backticks). Three or more make a block, which
/// may span lines; one or two make inline code, which may not (an
/// unclosed backtick cannot swallow the lines after it).
function findCode(text, atoms) {
  let i = text.indexOf("`");
  while (i !== -1) {
    const n = runLength(text, i, "`", text.length);
    const close = closingRun(text, i + n, n, n < 3);
    if (close === -1) {
      i = text.indexOf("`", i + n); // the whole run is literal
      continue;
    }
    let content = text.slice(i + n, close);
    let end = close + n;
    let language = "";
    if (n >= 3) {
      // A word right after the opening fence, alone on its line, names the
      // language (```js), as on GitHub: it is kept out of the code. Only
      // in a block whose closing fence has a line of its own, too, so that
      // ```one\ntwo``` keeps its first line.
      const info = content.match(/^([\w+#.-]{1,20})\n(?=[^]*\S)/);
      if (info && content.endsWith("\n")) {
        language = info[1];
        content = content.slice(info[1].length);
      }
      // The newlines next to the fences belong to the fences, and so does
      // one right after the closing fence: the block is a line of its own.
      if (content.startsWith("\n")) content = content.slice(1);
      if (content.endsWith("\n")) content = content.slice(0, -1);
      if (text[end] === "\n") end += 1;
    }
    if (content.trim() !== "") {
      atoms.push({ start: i, end, node: () => codeNode(content, n >= 3, language) });
    }
    i = text.indexOf("`", end);
  }
}

/// The index of the next run of exactly `n` backticks from `from`, or -1
/// (also when `oneLine` and a newline comes first).
function closingRun(text, from, n, oneLine) {
  for (let j = from; j < text.length; ) {
    if (oneLine && text[j] === "\n") return -1;
    if (text[j] !== "`") {
      j += 1;
      continue;
    }
    const m = runLength(text, j, "`", text.length);
    if (m === n) return j;
    j += m;
  }
  return -1;
}

function codeNode(content, block, language) {
  const code = document.createElement("code");
  code.textContent = content;
  if (!block) return code;
  if (language) code.dataset.language = language;
  const pre = document.createElement("pre");
  pre.className = "code-block";
  // Scrolls sideways: reachable by keyboard too.
  pre.tabIndex = 0;
  pre.append(code);
  return pre;
}

// ---- links -------------------------------------------------------------------

// Where an address starts: a scheme, or www. on its own (not in the middle
// of a word, an e-mail address or another address; after an _ or * it may
// be in italics). It runs to the first
// space, quote, angle bracket or backtick; markup around it ends it.
const ADDRESS = /(?<![\p{L}\p{N}])https?:\/\/[^\s<>"'`]+|(?<![\p{L}\p{N}@.\/:-])www\.[^\s<>"'`]+/giu;
// Ends a sentence, or an emphasis around the address, rather than the address.
const TRAILING = new Set([".", ",", ";", ":", "!", "?", "*", "_", "~"]);
const PAIRS = { ")": "(", "]": "[", "}": "{" };

function findLinks(text, atoms) {
  for (const match of text.matchAll(ADDRESS)) {
    const address = trimAddress(match[0]);
    const bare = !/^https?:/i.test(address);
    // A scheme needs a host after it; a bare address needs a dot after www.something.
    const valid = bare ? /^www\.[\p{L}\p{N}-]+(\.[\p{L}\p{N}-]+)+/iu.test(address) : /^https?:\/\/[^/?#]/i.test(address);
    const start = match.index;
    const end = start + address.length;
    if (!valid || taken(atoms, start, end)) continue;
    const href = bare ? `https://${address}` : address;
    atoms.push({ start, end, node: () => linkNode(href, address) });
  }
}

/// Without the punctuation after it: `(see https://x.org/a.)` links
/// https://x.org/a, while https://en.wikipedia.org/wiki/Rust_(language)
/// keeps its closing parenthesis, which has a partner inside.
function trimAddress(address) {
  for (;;) {
    const last = address.at(-1);
    const opener = PAIRS[last];
    if (TRAILING.has(last) || (opener && count(address, opener) < count(address, last))) {
      address = address.slice(0, -1);
    } else {
      return address;
    }
  }
}

function count(text, ch) {
  return text.split(ch).length - 1;
}

function linkNode(href, label) {
  const link = document.createElement("a");
  link.href = href; // always http(s): the patterns above allow no other scheme
  link.textContent = label;
  link.target = "_blank";
  // No access to this page from the one opened, no referrer, and no
  // endorsement of the address for search engines.
  link.rel = "noopener noreferrer nofollow";
  return link;
}

// ---- mentions ----------------------------------------------------------------

/// `@Name`: an `@` that does not follow a word character (not an e-mail
/// address), then a known name, compared case-insensitively, then a non-word
/// character or the end. Names may hold spaces and any letters, so they are
/// compared whole, the longest first (`@Ann Lee` is not `@Ann`).
function findMentions(text, atoms, me, names) {
  const meLower = me.toLowerCase();
  const candidates = [...new Set([me, ...names])].filter((name) => name !== "").sort((a, b) => b.length - a.length);
  if (candidates.length === 0) return;
  for (let i = text.indexOf("@"); i !== -1; i = text.indexOf("@", i + 1)) {
    if (isWord(text[i - 1])) continue;
    for (const name of candidates) {
      const end = i + 1 + name.length;
      const typed = text.slice(i + 1, end);
      if (typed.length !== name.length || typed.toLowerCase() !== name.toLowerCase()) continue;
      if (isWord(text[end]) || taken(atoms, i, end)) continue;
      const mine = meLower !== "" && name.toLowerCase() === meLower;
      const label = text.slice(i, end); // as typed, with its @
      atoms.push({ start: i, end, node: () => mentionNode(label, mine) });
      i = end - 1;
      break;
    }
  }
}

function mentionNode(label, mine) {
  const span = document.createElement("span");
  span.className = mine ? "mention me" : "mention";
  span.textContent = label;
  return span;
}

// ---- emphasis ----------------------------------------------------------------

/// How many `ch` in a row from `i` (not past `end`).
function runLength(text, i, ch, end) {
  let j = i;
  while (j < end && text[j] === ch) j += 1;
  return j - i;
}

/// Appends text[start, end) to `parent`: plain text, atoms, and emphasis
/// (whose insides go through here again).
function inline(text, start, end, atoms, parent) {
  let plainFrom = start;
  const flush = (to) => {
    if (to > plainFrom) parent.append(text.slice(plainFrom, to));
  };
  let i = start;
  while (i < end) {
    const atom = atoms.get(i);
    if (atom) {
      flush(i);
      parent.append(atom.node());
      i = atom.end;
      plainFrom = i;
      continue;
    }
    const ch = text[i];
    if (ch !== "*" && ch !== "_") {
      i += 1;
      continue;
    }
    const r = runLength(text, i, ch, end);
    const tag = r === 1 ? "em" : r === 2 && ch === "*" ? "strong" : null;
    const close = tag && !isLetterOrDigit(text[i - 1]) && !isSpace(text[i + r]) ? closer(text, i + r, end, ch, r, atoms) : -1;
    if (close === -1) {
      i += r; // literal, the whole run, and part of the plain text
      continue;
    }
    flush(i);
    const el = document.createElement(tag);
    inline(text, i + r, close, atoms, el);
    parent.append(el);
    i = close + r;
    plainFrom = i;
  }
  flush(end);
}

/// Where the run of `r` × `ch` opened before `from` closes on its line, or -1.
function closer(text, from, end, ch, r, atoms) {
  let j = from;
  while (j < end && text[j] !== "\n") {
    const atom = atoms.get(j);
    if (atom) {
      j = atom.end;
      continue;
    }
    if (text[j] !== ch) {
      j += 1;
      continue;
    }
    const m = runLength(text, j, ch, end);
    if (m === r && !isSpace(text[j - 1]) && !isLetterOrDigit(text[j + m])) return j;
    j += m;
  }
  return -1;
}
