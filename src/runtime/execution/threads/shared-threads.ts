import type { Piscina } from 'piscina'
import type { WorkerResult, WorkerTask } from './protocol.ts'

/** The attempt as sharing needs it: its abort state, and where to put how it is abandoned. */
export interface Abandonable {
  readonly aborted: boolean
  abandon: (() => void) | undefined
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
 * would die with it): aborted, it is settled as aborted at once and its code left to finish.
 */
export class SharedThreads {
  readonly #piscina: Piscina<WorkerTask, WorkerResult>
  /** Ids of the threads piscina reported ready. */
  readonly #ready = new Set<number>()
  readonly #held: (() => void)[] = []
  #abandoned = 0

  constructor(piscina: Piscina<WorkerTask, WorkerResult>) {
    this.#piscina = piscina
    piscina.on('workerCreate', (thread: { id: number }) => {
      this.#ready.add(thread.id)
      // piscina hands its queue to the new thread after this event: look once it has.
      queueMicrotask(() => this.flush())
    })
    piscina.on('workerDestroy', (thread: { id: number }) => {
      this.#ready.delete(thread.id)
      queueMicrotask(() => this.flush())
    })
  }

  /** Abandoned attempts whose code still runs: closing must not wait for them. */
  get abandoned(): number {
    return this.#abandoned
  }

  run(task: WorkerTask, attempt: Abandonable): Promise<WorkerResult> {
    return new Promise<WorkerResult>((resolve, reject) => {
      let running: Promise<WorkerResult> | undefined
      attempt.abandon = () => {
        if (running !== undefined) {
          this.#abandoned++
          const done = () => void this.#abandoned--
          running.then(done, done)
        }
        reject(Object.assign(new Error(`Attempt ${task.attempt} of task "${task.taskId}" was abandoned on its shared thread`), { name: 'AbortError' }))
      }
      const submit = () => {
        if (attempt.aborted) return
        running = this.#piscina.run(task)
        running.then(resolve, reject)
      }
      if (this.#held.length === 0 && this.#quiet()) submit()
      else this.#held.push(submit)
    })
  }

  /** Submits held attempts while piscina can place them without starting a thread per task. Call when an attempt settles. */
  flush(): void {
    while (this.#held.length > 0 && this.#quiet()) this.#held.shift()!()
  }

  #quiet(): boolean {
    return this.#piscina.queueSize === 0 && this.#ready.size >= this.#piscina.threads.length
  }
}
