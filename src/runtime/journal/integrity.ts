import { crc32 } from 'node:zlib'

/**
 * The integrity seal of a journal line: every record is written as its JSON object with
 * a sequence number first and a checksum last,
 *
 *   {"seq":12,"type":"task",…,"crc":"1c291ca3"}
 *
 * where `seq` counts the file's lines from 1 and `crc` is the CRC-32 (hex, 8 digits) of the
 * line's UTF-8 bytes without its `,"crc":"…"` suffix. So a line edited in place fails its
 * checksum, and a deleted, repeated or moved line breaks the sequence.
 */

const SUFFIX_LENGTH = ',"crc":"00000000"}'.length

/** `json` (one JSON object's text, `{…}`) with `seq` set first and the checksum appended. */
export function seal(seq: number, json: string): string {
  const body = json === '{}' ? `{"seq":${seq}}` : `{"seq":${seq},${json.slice(1)}`
  return `${body.slice(0, -1)},"crc":"${checksum(body)}"}`
}

/** Why a line does not carry a valid seal, or undefined when it does (then `seq` is its number). */
export function unseal(line: string): { readonly seq: number } | { readonly problem: string } {
  if (!line.endsWith('"}') || line.slice(-SUFFIX_LENGTH, -10) !== ',"crc":"') return { problem: 'it has no checksum' }
  const body = `${line.slice(0, -SUFFIX_LENGTH)}}`
  if (line.slice(-10, -2) !== checksum(body)) return { problem: 'its checksum does not match its content (the line was changed)' }
  const seq = /^\{"seq":(\d{1,15})[,}]/.exec(body)
  if (seq === null) return { problem: 'it has no sequence number' }
  return { seq: Number(seq[1]) }
}

/** Whether a line looks written before seals existed (no `seq`, no `crc`). */
export function isUnsealed(line: string): boolean {
  return !line.startsWith('{"seq":') && !line.includes('"crc":"')
}

function checksum(text: string): string {
  // A string is checksummed as its UTF-8 bytes.
  return crc32(text).toString(16).padStart(8, '0')
}
