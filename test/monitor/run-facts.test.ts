import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  MAX_MESSAGES_READ_BYTES,
  MAX_REPAIR_DETAIL_CHARS,
  MAX_SHOWN_MESSAGE_CHARS,
  MAX_SHOWN_MESSAGES,
  messageViews,
  readRunMessages,
  repairViews,
  visibleText,
} from '../../src/monitor/run-facts.ts'

const HOSTILE = '<img src=x onerror=alert(1)>\u001b[31mred\u001b]8;;http://evil\u0007\u202eevil\u2066x\u200b\r'

describe('visibleText', () => {
  it('shows escape, control, bidi and zero-width characters as �, keeping newline and tab', () => {
    expect(visibleText(HOSTILE, 1000)).toBe('<img src=x onerror=alert(1)>�[31mred�]8;;http://evil��evil�x��')
    expect(visibleText('a\n\tb', 10)).toBe('a\n\tb')
  })

  it('keeps the head or the tail, exactly `max` characters with the ellipsis, and is stable when applied again', () => {
    const text = 'abcdefghij'
    expect(visibleText(text, 5)).toBe('abcd…')
    expect(visibleText(text, 5, 'tail')).toBe('…ghij')
    expect(visibleText(visibleText(text, 5, 'tail'), 5, 'tail')).toBe('…ghij')
  })
})

describe('repairViews', () => {
  it('is undefined for a task without repairs', () => {
    expect(repairViews(undefined)).toBeUndefined()
    expect(repairViews([])).toBeUndefined()
  })

  it('numbers the repairs in order and keeps each sanitised detail tail', () => {
    const long = `${'x'.repeat(MAX_REPAIR_DETAIL_CHARS)}LAST LINE`
    const views = repairViews([
      { attempt: 1, reason: 'check', detail: HOSTILE },
      { attempt: 2, reason: 'conflict', detail: long },
    ])!
    expect(views.map((r) => [r.number, r.attempt, r.reason])).toEqual([
      [1, 1, 'check'],
      [2, 2, 'conflict'],
    ])
    expect(views[0]!.detail).not.toMatch(/[\u001b\u0007\u202e\u2066\u200b\r]/)
    expect(views[1]!.detail).toHaveLength(MAX_REPAIR_DETAIL_CHARS)
    expect(views[1]!.detail.endsWith('LAST LINE')).toBe(true)
  })

  it('shows a reason it does not know as verify and a non-string detail as empty (a hand-edited result.json)', () => {
    const odd = [{ attempt: 1, reason: '<b>', detail: 42 }] as never
    expect(repairViews(odd)).toEqual([{ number: 1, attempt: 1, reason: 'verify', detail: '' }])
  })
})

describe('messageViews', () => {
  it('keeps the newest messages, newest last, and counts the ones left out', () => {
    const all = Array.from({ length: MAX_SHOWN_MESSAGES + 3 }, (_, i) => ({ from: 'a', to: 'b', at: i, text: `m${i}` }))
    const view = messageViews(all)
    expect(view.messages).toHaveLength(MAX_SHOWN_MESSAGES)
    expect(view.messages.at(-1)!.text).toBe(`m${MAX_SHOWN_MESSAGES + 2}`)
    expect(view.messages[0]!.text).toBe('m3')
    expect(view.omitted).toBe(3)
  })

  it('cuts a long text to its head and sanitises text and task ids', () => {
    const view = messageViews([{ from: `a\u202e`, to: 'b\u001b[2J', at: 1, text: `${HOSTILE}${'y'.repeat(MAX_SHOWN_MESSAGE_CHARS)}` }])
    const [m] = view.messages
    expect(m!.from).toBe('a�')
    expect(m!.to).toBe('b�[2J')
    expect(m!.text).toHaveLength(MAX_SHOWN_MESSAGE_CHARS)
    expect(m!.text.startsWith('<img src=x onerror=alert(1)>�[31m')).toBe(true)
  })
})

describe('readRunMessages', () => {
  it('reads messages.jsonl, dropping a torn last line and foreign lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-facts-'))
    const line = (text: string, at: number) => `${JSON.stringify({ seq: 0, from: 'a', to: 'b', at, text })}\n`
    writeFileSync(join(dir, 'messages.jsonl'), `${line('first', 1)}not json\n${line('second', 2)}{"from":"a","to":"b","at":3,"te`)
    const view = readRunMessages(dir)
    expect(view.messages.map((m) => m.text)).toEqual(['first', 'second'])
    expect(view.omitted).toBe(0)
  })

  it('is empty for a run without a mailbox file', () => {
    expect(readRunMessages(mkdtempSync(join(tmpdir(), 'troupe-facts-')))).toEqual({ messages: [], omitted: 0 })
  })

  it('reads only the end of a mailbox larger than MAX_MESSAGES_READ_BYTES, saying earlier ones are left out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-facts-'))
    const file = join(dir, 'messages.jsonl')
    const text = 'z'.repeat(7_900)
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ seq: i, from: 'a', to: 'b', at: i, text })).join('\n')
    writeFileSync(file, '')
    for (let written = 0; written <= MAX_MESSAGES_READ_BYTES; written += lines.length + 1) appendFileSync(file, `${lines}\n`)
    appendFileSync(file, `${JSON.stringify({ seq: 0, from: 'a', to: 'b', at: 99, text: 'the newest' })}\n`)
    const view = readRunMessages(dir)
    expect(view.omitted).toBe(true)
    expect(view.messages).toHaveLength(MAX_SHOWN_MESSAGES)
    expect(view.messages.at(-1)!.text).toBe('the newest')
  })
})
