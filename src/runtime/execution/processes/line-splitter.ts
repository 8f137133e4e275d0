import { StringDecoder } from 'node:string_decoder'

/**
 * Splits a byte stream into lines (UTF-8, `\n` or `\r\n`), across chunk boundaries. A line
 * longer than `maxLine` characters is cut there (the rest up to its newline is dropped and
 * counted), so one runaway line cannot exhaust memory.
 */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8')
  readonly #maxLine: number
  readonly #onLine: (line: string, droppedChars: number) => void
  #partial = ''
  /** While > 0, the current line was cut and this many characters were dropped so far. */
  #dropped = 0

  constructor(maxLine: number, onLine: (line: string, droppedChars: number) => void) {
    this.#maxLine = maxLine
    this.#onLine = onLine
  }

  push(chunk: Buffer | string): void {
    this.#take(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk))
  }

  /** Flushes the last line if the stream did not end with a newline. */
  end(): void {
    this.#take(this.#decoder.end())
    if (this.#partial.length > 0 || this.#dropped > 0) this.#emit()
  }

  #take(text: string): void {
    let start = 0
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      this.#append(text.slice(start, nl))
      this.#emit()
      start = nl + 1
    }
    if (start < text.length) this.#append(text.slice(start))
  }

  #append(text: string): void {
    if (this.#dropped > 0) {
      this.#dropped += text.length
      return
    }
    const room = this.#maxLine - this.#partial.length
    if (text.length <= room) {
      this.#partial += text
      return
    }
    this.#partial += text.slice(0, room)
    this.#dropped = text.length - room
  }

  #emit(): void {
    const line = this.#partial.endsWith('\r') ? this.#partial.slice(0, -1) : this.#partial
    const dropped = this.#dropped
    this.#partial = ''
    this.#dropped = 0
    this.#onLine(line, dropped)
  }
}

/** The last `limit` characters of a text stream, in O(limit) memory. */
export class Tail {
  readonly #limit: number
  #text = ''
  #total = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  append(text: string): void {
    this.#total += text.length
    this.#text += text
    if (this.#text.length > 2 * this.#limit) this.#text = this.#text.slice(-this.#limit)
  }

  /** The tail; prefixed with a marker when earlier text was dropped. */
  toString(): string {
    if (this.#total <= this.#limit) return this.#text
    return `[… ${this.#total - this.#limit} earlier characters in the attempt log]\n${this.#text.slice(-this.#limit)}`
  }
}
