import type { Piscina } from 'piscina'
import type { WorkerResult, WorkerTask } from './protocol.ts'

/** The attempt as sharing needs it: its key, its abort state, and where to put how it is abandoned. */
export interface Abandonable {
  readonly id: number
  readonly aborted: boolean
  abandon: (() => void) | undefined
}

/** Shared attempts on one thread: those still wanted, and how many abandoned ones still run there. */
interface ThreadLoad {
  readonly live: Set<number>
  abandoned: number
}

/**
 * Runs attempts of agents that mostly wait so that they share worker threads: piscina gets
 * them without a signal, so its balancer ({@link sharingBalancer}) may put many on a thread.
 *
 * piscina starts a new thread for every task submitted while its queue is not empty, so a
 * burst of such attempts while a thread boots would start a thread each — the cost sharing
 * avoids. They wait here instead, and go one at a time once no thread is booting and
 * piscina's queue is empty: each then lands on a thread at once, or starts exactly one.
 *
 * An attempt on a shared thread cannot be stopped by terminating its thread (its neighbours
 * would die with it): aborted, it is settled as aborted at once and its code left to finish —
 * until no attempt still wanted runs on that thread: then the thread is terminated, so that
 * abandoned code (an agent that ignores `ctx.signal`) does not outlive its run, nor keep
 * writing beside its own retry. Each shared attempt's thread tells which it is ({@link located}).
 */
export class SharedThreads {
  readonly #piscina: Piscina<WorkerTask, WorkerResult>
  /** Ids of the threads piscina reported ready. */
  readonly #ready = new Set<number>()
  readonly #held: (() => void)[] = []
  #abandoned = 0
  /** Shared attempts by thread id, once their thread has told; and each located attempt's thread. */
  readonly #threads = new Map<number, ThreadLoad>()
  readonly #threadOf = new Map<number, number>()
  /** Shared attempts submitted whose thread has not told yet (none may be on a thread being ended). */
  readonly #unlocated = new Set<number>()
  /** Abandoned attempts whose code still runs. */
  readonly #abandonedKeys = new Set<number>()
  /** Threads being terminated: the balancer gives them nothing new (it holds the same set). */
  readonly #retiring: Set<number>

  constructor(piscina: Piscina<WorkerTask, WorkerResult>, retiring: Set<number>) {
    this.#piscina = piscina
    this.#retiring = retiring
    piscina.on('workerCreate', (thread: { id: number }) => {
      this.#ready.add(thread.id)
      // piscina hands its queue to the new thread after this event: look once it has.
      queueMicrotask(() => this.flush())
    })
    piscina.on('workerDestroy', (thread: { id: number }) => {
      this.#ready.delete(thread.id)
      this.#retiring.delete(thread.id)
      this.#threads.delete(thread.id)
      queueMicrotask(() => this.flush())
    })
  }

  /** Abandoned attempts whose code still runs: closing must not wait for them. */
  get abandoned(): number {
    return this.#abandoned
  }

  run(task: WorkerTask, attempt: Abandonable): Promise<WorkerResult> {
    const key = attempt.id
    return new Promise<WorkerResult>((resolve, reject) => {
      let running: Promise<WorkerResult> | undefined
      attempt.abandon = () => {
        if (running !== undefined) {
          this.#abandoned++
          const done = () => {
            this.#abandoned--
            this.#ranOut(key)
          }
          running.then(done, done)
          this.#abandon(key)
        }
        reject(Object.assign(new Error(`Attempt ${task.attempt} of task "${task.taskId}" was abandoned on its shared thread`), { name: 'AbortError' }))
      }
      const submit = () => {
        if (attempt.aborted) return
        this.#unlocated.add(key)
        running = this.#piscina.run({ ...task, shared: true })
        running.then(
          (result) => {
            this.#ended(key)
            resolve(result)
          },
          (error: unknown) => {
            this.#ended(key)
            reject(error)
          },
        )
      }
      if (this.#held.length === 0 && this.#quiet()) submit()
      else this.#held.push(submit)
    })
  }

  /** A shared attempt's thread told which it is (it posts that as the attempt starts). */
  located(key: number, threadId: number): void {
    if (!this.#unlocated.delete(key)) return
    let load = this.#threads.get(threadId)
    if (load === undefined) {
      load = { live: new Set(), abandoned: 0 }
      this.#threads.set(threadId, load)
    }
    this.#threadOf.set(key, threadId)
    if (this.#abandonedKeys.has(key)) load.abandoned++
    else load.live.add(key)
    this.#retireIdle()
  }

  /** A shared attempt's promise settled (wanted or abandoned: an abandoned one is counted out by {@link ranOut}). */
  #ended(key: number): void {
    this.#unlocated.delete(key)
    if (this.#abandonedKeys.has(key)) return
    const threadId = this.#threadOf.get(key)
    if (threadId === undefined) return
    this.#threadOf.delete(key)
    this.#threads.get(threadId)?.live.delete(key)
    this.#retireIdle()
  }

  #abandon(key: number): void {
    this.#abandonedKeys.add(key)
    const threadId = this.#threadOf.get(key)
    const load = threadId === undefined ? undefined : this.#threads.get(threadId)
    if (load === undefined) return
    load.live.delete(key)
    load.abandoned++
    this.#retireIdle()
  }

  /** An abandoned attempt's code ended after all (or its thread did): its thread no longer runs it. */
  #ranOut(key: number): void {
    this.#abandonedKeys.delete(key)
    const threadId = this.#threadOf.get(key)
    if (threadId === undefined) return
    this.#threadOf.delete(key)
    const load = this.#threads.get(threadId)
    if (load !== undefined) load.abandoned--
  }

  /**
   * Terminates each thread that runs abandoned attempts and none still wanted. Not while a shared
   * attempt has not told its thread: it could be on one of those.
   */
  #retireIdle(): void {
    if (this.#abandonedKeys.size === 0 || this.#unlocated.size > 0) return
    for (const [threadId, load] of this.#threads) {
      if (load.abandoned === 0 || load.live.size > 0 || this.#retiring.has(threadId)) continue
      const thread = this.#piscina.threads.find((worker) => worker.threadId === threadId)
      if (thread === undefined) continue
      this.#retiring.add(threadId)
      void thread.terminate()
    }
  }

  /** Submits held attempts while piscina can place them without starting a thread per task. Call when an attempt settles. */
  flush(): void {
    while (this.#held.length > 0 && this.#quiet()) this.#held.shift()!()
  }

  #quiet(): boolean {
    return this.#piscina.queueSize === 0 && this.#ready.size >= this.#piscina.threads.length
  }
}
