/** Most characters of one task's output a `wait_tasks` answer carries. */
export const MAX_OUTPUT_CHARS = 16_000
/** Most characters of all outputs of one `wait_tasks` answer together (each gets an equal share, up to MAX_OUTPUT_CHARS). */
export const MAX_ANSWER_CHARS = 256 * 1024

/** ANSI escape sequences (CSI, OSC and single-character escapes), then any other control character but tab and newline. */
const ESCAPES = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])|\u009b[0-?]*[ -/]*[@-~]/g
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * A task's output as text another agent may read: a string as it is, anything else as JSON;
 * escape sequences and control characters (but tab and newline) removed, bidirectional
 * overrides too (they make text read other than it is); cut at `max` characters with a marker
 * saying how much was left out. An agent's output is hostile: it reaches another agent's model.
 */
export function outputText(value: unknown, max = MAX_OUTPUT_CHARS): string {
  const text = cleanText(typeof value === 'string' ? value : jsonText(value))
  return text.length > max ? `${text.slice(0, max)}… [cut: ${text.length - max} more characters]` : text
}

/** Text without escape sequences, control characters (but tab and newline) or bidirectional overrides. */
export function cleanText(text: string): string {
  return text.replace(ESCAPES, '').replace(CONTROLS, '')
}

function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch (error) {
    return `[output not shown: ${(error as Error).message}]`
  }
}
