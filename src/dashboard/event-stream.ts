import type { Monitor, MonitorEvent } from '../monitor/monitor.ts'

/** How a stream is paced. */
export interface EventStreamOptions {
  /** Snapshots are sent at most this often while events arrive. @default 100 */
  readonly snapshotIntervalMs?: number
  /** A comment line is sent this often, so proxies keep the connection open. @default 15000 */
  readonly heartbeatMs?: number
}

/** Where frames go: an `http.ServerResponse` fits. */
export interface FrameSink {
  write(chunk: string): unknown
}

/**
 * One Server-Sent Events frame. JSON never contains a raw newline, so one `data:` line
 * always carries the whole payload.
 */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/**
 * Streams a {@link Monitor} as Server-Sent Events: a `snapshot` frame at once, then every
 * run and governor event as a frame named after it (`task:state`, `governor:throttled`, …),
 * and a fresh `snapshot` at most every `snapshotIntervalMs` while anything changes, and at
 * once when a run ends. A UI can render the snapshots alone, or fold the raw events itself.
 *
 * @example
 * res.writeHead(200, { 'content-type': 'text/event-stream' })
 * const stream = new EventStream(monitor, res)
 * req.on('close', () => stream.close())
 */
export class EventStream {
  readonly #monitor: Monitor
  readonly #sink: FrameSink
  readonly #intervalMs: number
  readonly #unsubscribe: () => void
  readonly #heartbeat: NodeJS.Timeout
  #pending: NodeJS.Timeout | undefined
  #lastSnapshotAt = 0
  #status: 'open' | 'closed' = 'open'

  constructor(monitor: Monitor, sink: FrameSink, options: EventStreamOptions = {}) {
    this.#monitor = monitor
    this.#sink = sink
    this.#intervalMs = options.snapshotIntervalMs ?? 100
    sink.write('retry: 1000\n\n')
    this.#sendSnapshot()
    this.#unsubscribe = monitor.subscribe((event) => this.#onEvent(event))
    this.#heartbeat = setInterval(() => sink.write(': heartbeat\n\n'), options.heartbeatMs ?? 15_000)
    this.#heartbeat.unref()
  }

  close(): void {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.#unsubscribe()
    clearInterval(this.#heartbeat)
    if (this.#pending) clearTimeout(this.#pending)
  }

  #onEvent(event: MonitorEvent): void {
    this.#sink.write(sseFrame(event.name, event.data))
    if (event.name === 'run:end') return this.#sendSnapshot()
    if (this.#pending) return
    const wait = Math.max(0, this.#lastSnapshotAt + this.#intervalMs - Date.now())
    this.#pending = setTimeout(() => {
      this.#pending = undefined
      this.#sendSnapshot()
    }, wait)
  }

  #sendSnapshot(): void {
    if (this.#status === 'closed') return
    if (this.#pending) {
      clearTimeout(this.#pending)
      this.#pending = undefined
    }
    this.#lastSnapshotAt = Date.now()
    this.#sink.write(sseFrame('snapshot', this.#monitor.snapshot()))
  }
}
