/** Longest user- or agent-supplied string shown on a terminal line. */
export const MAX_TERMINAL_TEXT = 500

// ESC sequences (CSI, OSC, DCS/SOS/PM/APC strings, two-character escapes) and their
// 8-bit C1 forms, then any C0/C1 control and DEL left over, then bidi overrides/isolates
// (U+202A–U+202E, U+2066–U+2069) and other invisible direction marks that reorder text.
const ESCAPE_SEQUENCE = new RegExp(
  [
    String.raw`\u001b\[[0-?]*[ -/]*[@-~]?`,
    String.raw`\u009b[0-?]*[ -/]*[@-~]?`,
    String.raw`(?:\u001b[\]PX^_]|[\u0090\u0098\u009d-\u009f])[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?`,
    String.raw`\u001b[ -/]*[0-~]?`,
  ].join('|'),
  'g',
)
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/**
 * A string from a plan, an agent or an error, made safe to print on a terminal: escape
 * sequences are removed (so an agent cannot retitle or clear the terminal, move the
 * cursor or colour a fake line), remaining C0/C1 controls become `�` (a newline too: one
 * value is one line, unless `multiline`), bidi overrides are removed, and the result is at most `maxLength`
 * characters, ending in `…` when cut.
 */
export function terminalText(value: unknown, maxLength = MAX_TERMINAL_TEXT, options: { readonly multiline?: boolean } = {}): string {
  const text = String(value ?? '')
    .replace(ESCAPE_SEQUENCE, '')
    .replace(CONTROL, (c) => (c === '\t' ? ' ' : c === '\n' && options.multiline ? c : '�'))
    .replace(BIDI, '')
  if (text.length <= maxLength) return text
  return maxLength <= 1 ? text.slice(0, maxLength) : `${text.slice(0, maxLength - 1)}…`
}

/** Cuts `text` (already safe) to `width` columns, ending in `…` when cut. */
export function fit(text: string, width: number): string {
  if (width <= 0) return ''
  if (text.length <= width) return text
  return width === 1 ? text.slice(0, 1) : `${text.slice(0, width - 1)}…`
}
