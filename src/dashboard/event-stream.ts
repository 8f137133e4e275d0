import type { Monitor, MonitorSnapshot } from '../monitor/monitor.ts'
import type { RunSnapshot, TaskView } from '../monitor/run-monitor.ts'

/** How a broadcast is paced and bounded. */
export interface BroadcastOptions {
  /** Changes are gathered and sent at most this often. @default 100 */
  readonly intervalMs?: number
  /** A comment line is sent this often, so proxies keep the connection open. @default 15000 */
  readonly heartbeatMs?: number
  /** A client with more unsent bytes than this, and no progress since the last frame, is dropped. @default 1 MiB */
  readonly maxBufferedBytes?: number
  /** Clients connected at once at most; more are refused. @default 16 */
  readonly maxClients?: number
}

/** Where frames go: an `http.ServerResponse` fits. */
export interface FrameSink {
  write(chunk: string): unknown
  /** Bytes written but not yet sent. */
  readonly writableLength: number
  end(): unknown
  destroy(): unknown
  once(event: 'finish' | 'close', listener: () => void): unknown
}

/** A change of some runs: run fields, and only the tasks that changed since the last frame. */
export interface SnapshotDelta {
  /** Ids of every run kept, in order: a run missing here was dropped. */
  readonly runIds: readonly string[]
  readonly runs: readonly (Omit<RunSnapshot, 'tasks'> & { readonly tasks: readonly TaskView[] })[]
  readonly governor: MonitorSnapshot['governor']
}

/**
 * One Server-Sent Events frame. JSON never contains a raw newline, so one `data:` line
 * always carries the whole payload.
 */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/**
 * Streams a {@link Monitor} to many Server-Sent Events clients at the cost of one: every
 * `intervalMs` while anything changes, the snapshot is taken once and compared with the
 * last one task by task, and one `delta` frame (run figures plus the tasks that changed)
 * is serialised once and shared by every client. A new client gets the last full
 * `snapshot` and then the deltas. A client that does not read is dropped once its unsent
 * bytes exceed `maxBufferedBytes`, so memory stays bounded whatever the clients do.
 *
 * @example
 * const broadcast = new Broadcast(monitor)
 * if (!broadcast.add(res)) res.writeHead(503).end()
 */
export class Broadcast {
  readonly #monitor: Monitor
  readonly #intervalMs: number
  readonly #maxBuffered: number
  readonly #maxClients: number
  readonly #clients = new Set<FrameSink>()
  /** Unsent bytes of each client right after its last frame. */
  readonly #unsent = new WeakMap<FrameSink, number>()
  readonly #unsubscribe: () => void
  readonly #heartbeat: NodeJS.Timeout
  #timer: NodeJS.Timeout | undefined
  /** The task views last sent, serialised, by run then task id. */
  #sent = new Map<string, Map<string, string>>()
  #snapshotFrame: string | undefined
  #dirty = true
  #running = false
  #dropped = 0
  #status: 'open' | 'closing' | 'closed' = 'open'

  constructor(monitor: Monitor, options: BroadcastOptions = {}) {
    this.#monitor = monitor
    this.#intervalMs = options.intervalMs ?? 100
    this.#maxBuffered = options.maxBufferedBytes ?? 1024 * 1024
    this.#maxClients = options.maxClients ?? 16
    this.#unsubscribe = monitor.subscribe((event) => {
      this.#dirty = true
      if (event.name === 'run:end') this.flush()
    })
    this.#heartbeat = setInterval(() => this.#send(': heartbeat\n\n'), options.heartbeatMs ?? 15_000)
    this.#heartbeat.unref()
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size
  }

  /** Clients dropped so far for not reading. */
  get dropped(): number {
    return this.#dropped
  }

  /** Adds a client, sending it the current state. False when the cap is reached or closing. */
  add(sink: FrameSink): boolean {
    if (this.#status !== 'open' || this.#clients.size >= this.#maxClients) return false
    this.#clients.add(sink)
    sink.once('close', () => this.#clients.delete(sink))
    if (this.#snapshotFrame === undefined) this.flush()
    this.#write(sink, `retry: 1000\n\n${this.#snapshotFrame ?? ''}`)
    this.#timer ??= setInterval(() => {
      if (this.#dirty || this.#running) this.flush()
    }, this.#intervalMs)
    this.#timer.unref()
    return true
  }

  /** Sends what changed since the last frame to every client, now. */
  flush(): void {
    if (this.#status === 'closed') return
    this.#dirty = false
    const snapshot = this.#monitor.snapshot()
    this.#running = snapshot.runs.some((r) => r.status === 'running')
    const sent = new Map<string, Map<string, string>>()
    const runs = snapshot.runs.map((run) => {
      const before = this.#sent.get(run.runId)
      const now = new Map<string, string>()
      const changed: TaskView[] = []
      for (const task of run.tasks) {
        const json = JSON.stringify(task)
        now.set(task.id, json)
        if (before?.get(task.id) !== json) changed.push(task)
      }
      sent.set(run.runId, now)
      return { ...run, tasks: changed }
    })
    this.#sent = sent
    this.#snapshotFrame = sseFrame('snapshot', snapshot)
    const delta: SnapshotDelta = { runIds: snapshot.runs.map((r) => r.runId), runs, governor: snapshot.governor }
    if (this.#clients.size > 0) this.#send(sseFrame('delta', delta))
  }

  /**
   * Sends the final state and an `end` frame, ends every response and resolves once they
   * were sent (or after `graceMs`, for clients that stopped reading).
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.#status !== 'open') return
    this.flush()
    this.#status = 'closing'
    this.#unsubscribe()
    clearInterval(this.#heartbeat)
    if (this.#timer) clearInterval(this.#timer)
    const finished = [...this.#clients].map(
      (sink) =>
        new Promise<void>((resolve) => {
          sink.once('finish', resolve)
          sink.once('close', resolve)
          sink.write('event: end\ndata: {}\n\n')
          sink.end()
        }),
    )
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(finished), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))])
    clearTimeout(timer)
    for (const sink of this.#clients) sink.destroy()
    this.#clients.clear()
    this.#status = 'closed'
  }

  #send(frame: string): void {
    for (const sink of this.#clients) this.#write(sink, frame)
  }

  /**
   * A client holding more than `maxBufferedBytes` unsent when the next frame comes, and
   * none of it sent since the last frame, is not reading: it is dropped. One that reads,
   * but too slowly to keep up, is dropped at 16 × `maxBufferedBytes`.
   */
  #write(sink: FrameSink, frame: string): void {
    const unsent = sink.writableLength
    const before = this.#unsent.get(sink) ?? 0
    if ((unsent > this.#maxBuffered && unsent >= before) || unsent > 16 * this.#maxBuffered) {
      this.#clients.delete(sink)
      this.#dropped++
      sink.destroy()
      return
    }
    sink.write(frame)
    this.#unsent.set(sink, sink.writableLength)
  }
}
